//! Planning `idis_environment`: a pure function of (prior state, config,
//! provider region). Defaults are written into the plan explicitly (never
//! copied from prior state), so drift on a defaulted attribute shows. What
//! AWS cannot change in place is planned as replacement or refused; what
//! disturbs running systems is planned with a warning that says so.

use std::collections::BTreeMap;

use super::schema::defaults::*;
use super::validate::validate;
use crate::protocol::cty::{Path, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

/// A default for an optional attribute left out of the configuration.
enum Default {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    Strings(&'static [&'static str]),
    Null,
    /// Chosen by AWS at create (the first three zones); kept afterwards.
    ChosenAtCreate,
    /// `node_min_size` at create; afterwards the observed size while it is
    /// within [min, max] (the cluster autoscaler owns it).
    NodeDesired,
}

const BLOCKS: &[(&str, &[(&str, Default)])] = &[
    (
        "network",
        &[
            ("vpc_cidr", Default::Str(VPC_CIDR)),
            ("availability_zones", Default::ChosenAtCreate),
            ("nat_gateway_per_az", Default::Bool(NAT_GATEWAY_PER_AZ)),
        ],
    ),
    (
        "keys",
        &[
            ("tenants", Default::Strings(&[])),
            ("deletion_window_days", Default::Int(DELETION_WINDOW_DAYS)),
            ("rotation_enabled", Default::Bool(true)),
        ],
    ),
    (
        "cluster",
        &[
            ("kubernetes_version", Default::Str(KUBERNETES_VERSION)),
            ("endpoint_public_access", Default::Bool(false)),
            (
                "node_instance_types",
                Default::Strings(&[NODE_INSTANCE_TYPE]),
            ),
            ("node_min_size", Default::Int(NODE_MIN)),
            ("node_max_size", Default::Int(NODE_MAX)),
            ("node_desired_size", Default::NodeDesired),
        ],
    ),
    (
        "database",
        &[
            ("engine_version", Default::Str(DB_ENGINE_VERSION)),
            ("instance_class", Default::Str(DB_INSTANCE_CLASS)),
            ("multi_az", Default::Bool(true)),
            ("allocated_storage_gb", Default::Int(DB_STORAGE_GB)),
            (
                "backup_retention_days",
                Default::Int(DB_BACKUP_RETENTION_DAYS),
            ),
            ("deletion_protection", Default::Bool(true)),
            ("skip_final_snapshot", Default::Bool(false)),
            ("performance_insights", Default::Bool(true)),
            ("read_replicas", Default::Int(0)),
            ("master_username", Default::Str(DB_MASTER_USERNAME)),
            ("database_name", Default::Str(DB_NAME)),
        ],
    ),
    (
        "cache",
        &[
            ("engine_version", Default::Str(CACHE_ENGINE_VERSION)),
            ("node_type", Default::Str(CACHE_NODE_TYPE)),
            ("node_count", Default::Int(CACHE_NODE_COUNT)),
            ("multi_az", Default::Bool(true)),
            (
                "snapshot_retention_days",
                Default::Int(CACHE_SNAPSHOT_RETENTION_DAYS),
            ),
        ],
    ),
    (
        "audit_storage",
        &[
            ("versioning", Default::Bool(true)),
            ("worm", Default::Bool(true)),
            ("retention_mode", Default::Str(RETENTION_MODE)),
            ("retention_days", Default::Int(RETENTION_DAYS)),
            ("retain_on_destroy", Default::Bool(true)),
        ],
    ),
    (
        "edge",
        &[
            ("waf", Default::Bool(true)),
            ("ddos_protection", Default::Bool(true)),
            ("rate_limit", Default::Int(RATE_LIMIT)),
            ("origin_domain", Default::Null),
        ],
    ),
    (
        "timeouts",
        &[
            ("create", Default::Str(CREATE_TIMEOUT)),
            ("update", Default::Str(UPDATE_TIMEOUT)),
            ("delete", Default::Str(DELETE_TIMEOUT)),
        ],
    ),
];

/// The computed outputs of each component; the first is its presence
/// marker (null in state when the component was not found on refresh).
pub const COMPONENT_OUTPUTS: &[(&str, &[&str])] = &[
    (
        "network",
        &["vpc_id", "public_subnet_ids", "private_subnet_ids"],
    ),
    ("keys", &["platform_key_arn", "tenant_key_arns"]),
    (
        "cluster",
        &[
            "cluster_arn",
            "cluster_endpoint",
            "cluster_certificate_authority_data",
            "cluster_oidc_issuer_url",
            "node_group_arn",
        ],
    ),
    (
        "database",
        &[
            "database_arn",
            "database_endpoint",
            "database_port",
            "database_master_secret_arn",
            "database_engine_version_actual",
            "database_replica_endpoints",
        ],
    ),
    (
        "cache",
        &[
            "cache_replication_group_id",
            "cache_primary_endpoint",
            "cache_reader_endpoint",
            "cache_port",
            "cache_auth_secret_arn",
        ],
    ),
    ("audit_storage", &["audit_bucket_arn", "audit_bucket_name"]),
];

/// Paths whose change replaces the whole environment, as (block, attribute).
/// The schema's descriptions say "Changing this forces replacement." for
/// exactly these (see `schema::schema`), and the docs are generated from
/// those descriptions.
pub const REPLACING: &[(Option<&str>, &str)] = &[
    (None, "name"),
    (None, "region"),
    (Some("network"), "vpc_cidr"),
    (Some("network"), "availability_zones"),
];

pub struct Plan {
    pub planned: Value,
    pub requires_replace: Vec<Path>,
    pub diagnostics: Diagnostics,
}

fn get<'a>(v: &'a Value, block: Option<&str>, attr: &str) -> &'a Value {
    match block {
        Some(b) => v.get_attr(b).get_attr(attr),
        None => v.get_attr(attr),
    }
}

fn path(block: Option<&str>, attr: &str) -> Path {
    match block {
        Some(b) => Path::root().attr(b).attr(attr),
        None => Path::root().attr(attr),
    }
}

fn default_value(default: &Default, block: &str, prior: &Value, planned_block: &Value) -> Value {
    match default {
        Default::Str(s) => Value::string(*s),
        Default::Int(i) => Value::int(*i),
        Default::Bool(b) => Value::Bool(*b),
        Default::Strings(items) => Value::strings(items.iter().copied()),
        Default::Null => Value::Null,
        Default::ChosenAtCreate => match prior.get_attr(block).get_attr("availability_zones") {
            v @ Value::List(_) => v.clone(),
            _ => Value::Unknown,
        },
        Default::NodeDesired => {
            let min = planned_block.get_attr("node_min_size");
            let max = planned_block.get_attr("node_max_size");
            match (
                prior.get_attr(block).get_attr("node_desired_size").as_i64(),
                min.as_i64(),
                max.as_i64(),
            ) {
                (Some(observed), Some(lo), Some(hi)) => Value::int(observed.clamp(lo, hi.max(lo))),
                (None, _, _) => min.clone(),
                _ => Value::Unknown,
            }
        }
    }
}

/// Plans create (prior null), update, or destroy (proposed null).
pub fn plan(prior: &Value, proposed: &Value, config: &Value, provider_region: &str) -> Plan {
    if proposed.is_null() {
        return plan_destroy(prior);
    }
    let mut diagnostics = validate(config);
    let mut planned = Value::Object(BTreeMap::new());
    planned.set_attr("name", config.get_attr("name").clone());
    planned.set_attr("id", config.get_attr("name").clone());
    planned.set_attr(
        "region",
        match config.get_attr("region") {
            Value::Null => Value::string(provider_region),
            v => v.clone(),
        },
    );
    planned.set_attr("tags", config.get_attr("tags").clone());
    for (block, attrs) in BLOCKS {
        let mut planned_block = Value::Object(BTreeMap::new());
        for (attr, default) in *attrs {
            let configured = config.get_attr(block).get_attr(attr);
            let value = if configured.is_null() {
                default_value(default, block, prior, &planned_block)
            } else {
                configured.clone()
            };
            planned_block.set_attr(attr, value);
        }
        planned.set_attr(block, planned_block);
    }
    // Defaults can break a rule that the configuration alone did not
    // (desired size against a configured max): check the planned value.
    if !diagnostics.has_errors() {
        diagnostics.extend(validate(&planned));
    }

    plan_outputs(prior, &mut planned);
    derive_app_settings(&mut planned);

    let mut requires_replace = Vec::new();
    if !prior.is_null() {
        for (block, attr) in REPLACING {
            if get(prior, *block, attr) != get(&planned, *block, attr) {
                requires_replace.push(path(*block, attr));
            }
        }
        diagnostics.extend(judge_update(prior, &planned, &requires_replace));
    }
    Plan {
        planned,
        requires_replace,
        diagnostics,
    }
}

fn plan_outputs(prior: &Value, planned: &mut Value) {
    let name = planned.get_attr("name").as_str().map(str::to_string);
    planned.set_attr(
        "cluster_name",
        name.as_ref()
            .map_or(Value::Unknown, |n| Value::string(format!("idis-{n}"))),
    );
    for (_, outputs) in COMPONENT_OUTPUTS {
        let present = !prior.get_attr(outputs[0]).is_null();
        for output in *outputs {
            let value = if present {
                prior.get_attr(output).clone()
            } else {
                Value::Unknown
            };
            planned.set_attr(output, value);
        }
    }
    // Outputs that follow from the spec and must be recomputed when the
    // spec and what exists disagree.
    let tenants: Option<Vec<String>> = planned.get_attr("keys").get_attr("tenants").as_strings();
    let known_tenants: Option<Vec<String>> = prior
        .get_attr("tenant_key_arns")
        .as_string_map()
        .map(|m| m.into_keys().collect());
    let tenants_match = match (&tenants, &known_tenants) {
        (Some(want), Some(have)) => {
            let mut want = want.clone();
            want.sort();
            &want == have
        }
        _ => false,
    };
    if !tenants_match {
        planned.set_attr("tenant_key_arns", Value::Unknown);
    }
    let replicas = planned
        .get_attr("database")
        .get_attr("read_replicas")
        .as_i64();
    let have = prior
        .get_attr("database_replica_endpoints")
        .as_strings()
        .map(|v| v.len() as i64);
    if replicas.is_none() || replicas != have {
        planned.set_attr("database_replica_endpoints", Value::Unknown);
    }
    if prior.get_attr("database").get_attr("engine_version")
        != planned.get_attr("database").get_attr("engine_version")
    {
        planned.set_attr("database_engine_version_actual", Value::Unknown);
    }
    if prior.get_attr("node_group_arn").is_null()
        || prior.get_attr("cluster").get_attr("node_instance_types")
            != planned.get_attr("cluster").get_attr("node_instance_types")
    {
        planned.set_attr("node_group_arn", Value::Unknown);
    }
    let edge = planned.get_attr("edge").clone();
    for (toggle, output) in [
        ("waf", "web_acl_arn"),
        ("ddos_protection", "shield_protection_id"),
    ] {
        let value = match edge.get_attr(toggle).as_bool() {
            Some(false) => Value::Null,
            Some(true) if !prior.get_attr(output).is_null() => prior.get_attr(output).clone(),
            _ => Value::Unknown,
        };
        planned.set_attr(output, value);
    }
    let cdn = match edge.get_attr("origin_domain") {
        Value::Null => Value::Null,
        origin
            if origin == prior.get_attr("edge").get_attr("origin_domain")
                && !prior.get_attr("cdn_domain_name").is_null() =>
        {
            prior.get_attr("cdn_domain_name").clone()
        }
        _ => Value::Unknown,
    };
    planned.set_attr("cdn_domain_name", cdn);
}

/// `app_config` and `secret_refs` from the other attributes: the non-secret
/// `IDIS_*` settings, and the secret ones as Secrets Manager ARNs. Unknown
/// while anything they depend on is unknown.
pub fn derive_app_settings(state: &mut Value) {
    let s = |name: &str| state.get_attr(name).clone();
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut config: Vec<(&str, Value)> = vec![
        ("IDIS_ENV", s("name")),
        ("IDIS_AWS_REGION", s("region")),
        ("IDIS_OBJECT_STORE_TYPE", Value::string("s3")),
        ("IDIS_S3_BUCKET", s("audit_bucket_name")),
        ("IDIS_S3_REGION", s("region")),
        ("IDIS_S3_KMS_KEY_ARN", s("platform_key_arn")),
        (
            "IDIS_S3_OBJECT_LOCK",
            state.get_attr("audit_storage").get_attr("worm").clone(),
        ),
        ("IDIS_DATABASE_HOST", s("database_endpoint")),
        ("IDIS_DATABASE_PORT", s("database_port")),
        (
            "IDIS_DATABASE_NAME",
            state.get_attr("database").get_attr("database_name").clone(),
        ),
        ("IDIS_DATABASE_SSLMODE", Value::string("require")),
        ("IDIS_REDIS_HOST", s("cache_primary_endpoint")),
        ("IDIS_REDIS_READER_HOST", s("cache_reader_endpoint")),
        ("IDIS_REDIS_PORT", s("cache_port")),
        ("IDIS_REDIS_TLS", Value::string("true")),
        ("IDIS_EKS_CLUSTER_NAME", s("cluster_name")),
    ];
    if let Some(replicas) = state.get_attr("database_replica_endpoints").as_strings() {
        config.push((
            "IDIS_DATABASE_READ_HOSTS",
            Value::string(replicas.join(",")),
        ));
    } else {
        config.push(("IDIS_DATABASE_READ_HOSTS", s("database_replica_endpoints")));
    }
    let secrets = [
        ("IDIS_DATABASE_CREDENTIALS", s("database_master_secret_arn")),
        ("IDIS_REDIS_AUTH_TOKEN", s("cache_auth_secret_arn")),
    ];
    let as_map = |items: &[(&str, Value)]| -> Value {
        let mut map = BTreeMap::new();
        for (key, value) in items {
            match value {
                Value::Bool(b) => {
                    map.insert(key.to_string(), b.to_string());
                }
                Value::Null => {}
                other => match text(other) {
                    Some(t) => {
                        map.insert(key.to_string(), t);
                    }
                    None => return Value::Unknown,
                },
            }
        }
        Value::string_map(map)
    };
    let app_config = as_map(&config);
    let secret_refs = as_map(&secrets);
    state.set_attr("app_config", app_config);
    state.set_attr("secret_refs", secret_refs);
}

fn plan_destroy(prior: &Value) -> Plan {
    let mut diagnostics = Diagnostics::new();
    let database = prior.get_attr("database");
    if database.get_attr("deletion_protection").as_bool() == Some(true)
        && !prior.get_attr("database_arn").is_null()
    {
        diagnostics.push(
            Diagnostic::error(
                "Destroy refused: the database has deletion protection",
                format!(
                    "Destroying environment {} would delete its PostgreSQL database. Nothing was deleted. \
                     To destroy it deliberately, set database.deletion_protection = false (and decide on \
                     database.skip_final_snapshot), run terraform apply, then destroy again.",
                    prior.get_attr("name").as_str().unwrap_or("?")
                ),
            )
            .at(Path::root().attr("database").attr("deletion_protection")),
        );
    } else {
        diagnostics.extend(destroy_warnings(prior));
    }
    Plan {
        planned: Value::Null,
        requires_replace: Vec::new(),
        diagnostics,
    }
}

fn destroy_warnings(prior: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    if prior
        .get_attr("audit_storage")
        .get_attr("retain_on_destroy")
        .as_bool()
        != Some(false)
    {
        if let Some(bucket) = prior.get_attr("audit_bucket_name").as_str() {
            d.push(Diagnostic::warning(
                "Audit bucket will be kept",
                format!("audit_storage: bucket {bucket} stays (retain_on_destroy = true) with its locked objects; delete it yourself once retention allows."),
            ));
        }
    }
    let window = prior
        .get_attr("keys")
        .get_attr("deletion_window_days")
        .as_i64()
        .unwrap_or(DELETION_WINDOW_DAYS);
    d.push(Diagnostic::warning(
        "KMS keys will be scheduled for deletion",
        format!("keys: the platform and tenant keys are scheduled for deletion in {window} days, not deleted now; until then `aws kms cancel-key-deletion` restores them. Data encrypted with them becomes unreadable after that."),
    ));
    if prior
        .get_attr("database")
        .get_attr("skip_final_snapshot")
        .as_bool()
        == Some(true)
    {
        d.push(Diagnostic::warning(
            "Database deleted without a final snapshot",
            "database: skip_final_snapshot = true, so no final snapshot is taken; automated backups are kept per the retention period.",
        ));
    }
    d
}

fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// Version strings compared numerically part by part.
fn version_less(a: &str, b: &str) -> bool {
    let parse = |v: &str| {
        v.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    parse(a) < parse(b)
}

/// Refuses updates that would lose data and warns about updates that
/// disturb running systems.
fn judge_update(prior: &Value, planned: &Value, requires_replace: &[Path]) -> Diagnostics {
    let mut d = Diagnostics::new();
    let was = |b: &str, a: &str| prior.get_attr(b).get_attr(a).clone();
    let now = |b: &str, a: &str| planned.get_attr(b).get_attr(a).clone();
    let changed = |b: &str, a: &str| was(b, a) != now(b, a) && now(b, a).is_known();

    if !requires_replace.is_empty() {
        let what: Vec<String> = requires_replace.iter().map(|p| p.to_string()).collect();
        if was("database", "deletion_protection").as_bool() == Some(true) {
            d.push(
                Diagnostic::error(
                    "Change would replace the environment and its database",
                    format!(
                        "Changing {} cannot be done in place: the whole environment, including its PostgreSQL database, would be destroyed and created again. \
                         Refused because database.deletion_protection is on. To do it deliberately, set database.deletion_protection = false and apply first, \
                         or create a second environment and migrate.",
                        what.join(", ")
                    ),
                )
                .at(requires_replace[0].clone()),
            );
        } else {
            d.push(Diagnostic::warning(
                "The environment will be replaced",
                format!("Changing {} replaces the whole environment: the database is deleted (final snapshot unless skip_final_snapshot) and every endpoint changes.", what.join(", ")),
            ));
        }
    }
    if was("audit_storage", "worm").as_bool() == Some(true)
        && now("audit_storage", "worm").as_bool() == Some(false)
    {
        d.push(
            Diagnostic::error(
                "Object Lock cannot be turned off",
                "audit_storage.worm: S3 Object Lock stays on for the life of a bucket, and turning it off would mean deleting the audit trail. \
                 To stop locking new objects, lower audit_storage.retention_days; to start over, create a new environment.",
            )
            .at(Path::root().attr("audit_storage").attr("worm")),
        );
    }
    if let (Some(old), Some(new)) = (
        was("database", "allocated_storage_gb").as_i64(),
        now("database", "allocated_storage_gb").as_i64(),
    ) {
        if new < old {
            d.push(
                Diagnostic::error(
                    "Database storage cannot shrink",
                    format!("database.allocated_storage_gb: RDS cannot shrink storage from {old} to {new} GiB in place. Keep {old} or more; to shrink, restore a snapshot into a new environment."),
                )
                .at(Path::root().attr("database").attr("allocated_storage_gb")),
            );
        }
    }
    let actual = prior
        .get_attr("database_engine_version_actual")
        .as_str()
        .map(str::to_string);
    if let Some(new) = now("database", "engine_version").as_str() {
        let current = actual.clone().or_else(|| {
            was("database", "engine_version")
                .as_str()
                .map(str::to_string)
        });
        if let Some(current) = current {
            let downgrade = match (major(new), major(&current)) {
                (Some(n), Some(c)) if n < c => true,
                (Some(n), Some(c)) if n == c && new.contains('.') => version_less(new, &current),
                _ => false,
            };
            if downgrade {
                d.push(
                    Diagnostic::error(
                        "PostgreSQL cannot be downgraded",
                        format!("database.engine_version: the database runs {current}; RDS cannot downgrade it to {new}. To go back, restore a snapshot into a new environment."),
                    )
                    .at(Path::root().attr("database").attr("engine_version")),
                );
            } else if changed("database", "engine_version") && major(new) != major(&current) {
                d.push(Diagnostic::warning(
                    "Major PostgreSQL upgrade",
                    format!("database: upgrading {current} to {new} takes the database offline for the upgrade (typically 10 to 30 minutes) and read replicas are upgraded too; take a manual snapshot first."),
                ));
            } else if changed("database", "engine_version") {
                d.push(Diagnostic::warning(
                    "PostgreSQL minor upgrade",
                    format!("database: upgrading to {new} restarts PostgreSQL; with Multi-AZ the standby is upgraded first and a failover of about a minute drops connections."),
                ));
            }
        }
    }
    if let (Some(old), Some(new)) = (
        was("cluster", "kubernetes_version").as_str(),
        now("cluster", "kubernetes_version").as_str(),
    ) {
        if version_less(new, old) {
            d.push(
                Diagnostic::error(
                    "Kubernetes cannot be downgraded",
                    format!("cluster.kubernetes_version: EKS cannot go back from {old} to {new}."),
                )
                .at(Path::root().attr("cluster").attr("kubernetes_version")),
            );
        } else if old != new {
            d.push(Diagnostic::warning(
                "Kubernetes upgrade",
                format!("cluster: the control plane is upgraded from {old} to {new} in place (about 10 to 25 minutes, API stays available); the node group follows with a rolling node replacement that drains pods."),
            ));
        }
    }
    let mut warn = |cond: bool, summary: &str, detail: String| {
        if cond {
            d.push(Diagnostic::warning(summary, detail));
        }
    };
    warn(
        changed("database", "instance_class"),
        "Database instance class change",
        format!(
            "database: moving from {} to {} restarts PostgreSQL; with Multi-AZ the standby is resized first, then a failover of about 1 to 2 minutes drops open connections.",
            show(&was("database", "instance_class")),
            show(&now("database", "instance_class"))
        ),
    );
    warn(
        now("database", "multi_az").as_bool() == Some(false) && was("database", "multi_az").as_bool() == Some(true),
        "Database Multi-AZ turned off",
        "database: the standby in the second zone is removed; an outage of the primary's zone will then mean downtime until a restore.".to_string(),
    );
    warn(
        now("database", "multi_az").as_bool() == Some(true) && was("database", "multi_az").as_bool() == Some(false),
        "Database Multi-AZ turned on",
        "database: a standby is created from a snapshot of the primary; I/O may be slower while it syncs, no downtime.".to_string(),
    );
    if let (Some(old), Some(new)) = (
        was("database", "read_replicas").as_i64(),
        now("database", "read_replicas").as_i64(),
    ) {
        warn(
            new < old,
            "Read replicas will be deleted",
            format!("database: {} read replica(s) are deleted (the highest numbered); connections to their endpoints fail.", old - new),
        );
    }
    warn(
        changed("cache", "node_type"),
        "Cache node type change",
        format!(
            "cache: scaling from {} to {} is done online by ElastiCache, with raised latency and a brief failover at the end.",
            show(&was("cache", "node_type")),
            show(&now("cache", "node_type"))
        ),
    );
    warn(
        now("cache", "multi_az").as_bool() == Some(false) && was("cache", "multi_az").as_bool() == Some(true),
        "Cache Multi-AZ turned off",
        "cache: automatic failover is turned off; a primary node failure will then mean downtime until it is replaced.".to_string(),
    );
    warn(
        changed("cluster", "node_instance_types"),
        "Node group will be replaced",
        format!(
            "cluster: EKS cannot change instance types of a node group in place; the node group is deleted and created again with {}: every node is drained, and pods wait for the new nodes (typically 5 to 15 minutes without worker capacity).",
            show(&now("cluster", "node_instance_types"))
        ),
    );
    if let (Some(running), Some(min), Some(max), Some(new)) = (
        was("cluster", "node_desired_size").as_i64(),
        now("cluster", "node_min_size").as_i64(),
        now("cluster", "node_max_size").as_i64(),
        now("cluster", "node_desired_size").as_i64(),
    ) {
        // Refresh keeps the stored size while AWS's stays within the bounds,
        // so a size here outside them is what the node group runs.
        if !(min..=max).contains(&running) && new != running {
            let effect = if new < running {
                format!(
                    "{} node(s) are removed and their pods drained",
                    running - new
                )
            } else {
                format!("{} node(s) are added", new - running)
            };
            warn(
                true,
                "Node group size outside its bounds",
                format!(
                    "cluster.node_desired_size: the node group runs {running} nodes, outside node_min_size..node_max_size = [{min}, {max}], so apply sets it to {new}: {effect}. \
                     Within [{min}, {max}] the cluster autoscaler owns the size and it is never drift; to keep {running} nodes, set node_min_size and node_max_size so that they include it."
                ),
            );
        }
    }
    if let (Some(old), Some(new)) = (
        was("cluster", "node_max_size").as_i64(),
        now("cluster", "node_max_size").as_i64(),
    ) {
        // The state keeps the initial size while the autoscaler's stays
        // within the bounds, so the plan cannot know how many nodes run:
        // say what a lower maximum does to them.
        warn(
            new < old,
            "Node group maximum lowered",
            format!("cluster.node_max_size: lowered from {old} to {new}; if more than {new} nodes run, apply scales the node group down to {new} and the pods of the removed nodes are drained."),
        );
    }
    if let (Some(old), Some(new)) = (
        was("keys", "tenants").as_strings(),
        now("keys", "tenants").as_strings(),
    ) {
        let window = now("keys", "deletion_window_days")
            .as_i64()
            .unwrap_or(DELETION_WINDOW_DAYS);
        for gone in old.iter().filter(|t| !new.contains(t)) {
            warn(
                true,
                "Tenant key will be scheduled for deletion",
                format!("keys: the key of tenant {gone:?} (alias/idis/{}/{gone}) is scheduled for deletion in {window} days; data encrypted with it becomes unreadable then. Re-adding the tenant before that restores the key.", show_plain(planned.get_attr("name"))),
            );
        }
    }
    warn(
        was("edge", "waf").as_bool() == Some(true) && now("edge", "waf").as_bool() == Some(false),
        "WAF will be removed",
        "edge: the web ACL is deleted; traffic is no longer filtered by the managed rules or rate-limited.".to_string(),
    );
    warn(
        was("edge", "ddos_protection").as_bool() == Some(true)
            && now("edge", "ddos_protection").as_bool() == Some(false),
        "Shield protection will be removed",
        "edge: the Shield protection is deleted; the environment falls back to Shield Standard."
            .to_string(),
    );
    if let (Some(old), Some(new)) = (
        was("audit_storage", "retention_days").as_i64(),
        now("audit_storage", "retention_days").as_i64(),
    ) {
        warn(
            new < old,
            "Audit retention shortened",
            format!("audit_storage: new objects are locked for {new} days instead of {old}; objects already written keep their retention."),
        );
    }
    d
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::List(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Unknown => "(known after apply)".into(),
        other => format!("{other:?}"),
    }
}

fn show_plain(v: &Value) -> String {
    v.as_str().unwrap_or("?").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str) -> Value {
        let mut c = Value::Object(BTreeMap::new());
        c.set_attr("name", Value::string(name));
        for (block, _) in BLOCKS {
            c.set_attr(block, Value::Object(BTreeMap::new()));
        }
        c
    }

    /// A state as apply would leave it for `planned`.
    fn applied(planned: &Value) -> Value {
        let mut s = planned.clone();
        let fill = [
            ("vpc_id", Value::string("vpc-1")),
            ("public_subnet_ids", Value::strings(["a", "b", "c"])),
            ("private_subnet_ids", Value::strings(["d", "e", "f"])),
            ("platform_key_arn", Value::string("arn:key")),
            (
                "tenant_key_arns",
                Value::string_map(BTreeMap::<String, String>::new()),
            ),
            ("cluster_arn", Value::string("arn:eks")),
            ("cluster_endpoint", Value::string("https://eks")),
            ("cluster_certificate_authority_data", Value::string("ca")),
            ("cluster_oidc_issuer_url", Value::string("https://oidc")),
            ("node_group_arn", Value::string("arn:ng")),
            ("database_arn", Value::string("arn:db")),
            ("database_endpoint", Value::string("db.host")),
            ("database_port", Value::int(5432)),
            ("database_master_secret_arn", Value::string("arn:secret:db")),
            ("database_engine_version_actual", Value::string("16.4")),
            (
                "database_replica_endpoints",
                Value::strings(Vec::<String>::new()),
            ),
            (
                "cache_replication_group_id",
                Value::string("idis-production-cache"),
            ),
            ("cache_primary_endpoint", Value::string("cache.host")),
            ("cache_reader_endpoint", Value::string("cache-ro.host")),
            ("cache_port", Value::int(6379)),
            ("cache_auth_secret_arn", Value::string("arn:secret:cache")),
            ("audit_bucket_name", Value::string("bucket")),
            ("audit_bucket_arn", Value::string("arn:s3:bucket")),
            ("web_acl_arn", Value::string("arn:waf")),
            ("shield_protection_id", Value::string("prot-1")),
        ];
        for (k, v) in fill {
            s.set_attr(k, v);
        }
        s.attr_mut("network").set_attr(
            "availability_zones",
            Value::strings(["us-east-1a", "us-east-1b", "us-east-1c"]),
        );
        derive_app_settings(&mut s);
        s
    }

    #[test]
    fn create_plans_every_default_explicitly() {
        let c = config("production");
        let p = plan(&Value::Null, &c, &c, "us-east-1");
        assert!(!p.diagnostics.has_errors(), "{:?}", p.diagnostics);
        let v = &p.planned;
        assert_eq!(v.get_attr("region"), &Value::string("us-east-1"));
        assert_eq!(
            v.get_attr("network").get_attr("vpc_cidr"),
            &Value::string("10.0.0.0/16")
        );
        assert_eq!(
            v.get_attr("network").get_attr("availability_zones"),
            &Value::Unknown
        );
        assert_eq!(
            v.get_attr("database").get_attr("multi_az"),
            &Value::Bool(true)
        );
        assert_eq!(
            v.get_attr("database").get_attr("deletion_protection"),
            &Value::Bool(true)
        );
        assert_eq!(
            v.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(3)
        );
        assert_eq!(
            v.get_attr("audit_storage").get_attr("retention_mode"),
            &Value::string("COMPLIANCE")
        );
        assert_eq!(v.get_attr("vpc_id"), &Value::Unknown);
        assert_eq!(
            v.get_attr("cluster_name"),
            &Value::string("idis-production")
        );
        assert_eq!(v.get_attr("cdn_domain_name"), &Value::Null);
        assert_eq!(v.get_attr("app_config"), &Value::Unknown);
    }

    #[test]
    fn a_matching_config_plans_no_change() {
        let c = config("production");
        let created = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let p = plan(&created, &c, &c, "us-east-1");
        assert_eq!(p.planned, created);
        assert!(p.requires_replace.is_empty());
        assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    }

    #[test]
    fn drift_on_a_defaulted_attribute_is_planned_back() {
        let c = config("production");
        let mut state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        state
            .attr_mut("database")
            .set_attr("multi_az", Value::Bool(false));
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(
            p.planned.get_attr("database").get_attr("multi_az"),
            &Value::Bool(true)
        );
        assert_ne!(p.planned, state);
    }

    #[test]
    fn a_missing_component_plans_its_outputs_unknown() {
        let c = config("production");
        let mut state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        for output in [
            "cache_replication_group_id",
            "cache_primary_endpoint",
            "cache_auth_secret_arn",
        ] {
            state.set_attr(output, Value::Null);
        }
        derive_app_settings(&mut state);
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(
            p.planned.get_attr("cache_primary_endpoint"),
            &Value::Unknown
        );
        assert_eq!(p.planned.get_attr("vpc_id"), &Value::string("vpc-1"));
        assert_eq!(p.planned.get_attr("app_config"), &Value::Unknown);
    }

    #[test]
    fn renaming_a_protected_environment_is_refused() {
        let c = config("production");
        let state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let renamed = config("prod2");
        let p = plan(&state, &renamed, &renamed, "us-east-1");
        assert_eq!(p.requires_replace, vec![Path::root().attr("name")]);
        assert!(p.diagnostics.has_errors());
        assert!(p.diagnostics.0[0].detail.contains("deletion_protection"));
    }

    #[test]
    fn destroy_with_deletion_protection_is_refused_at_plan() {
        let c = config("production");
        let state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let p = plan(&state, &Value::Null, &Value::Null, "us-east-1");
        assert!(p.diagnostics.has_errors());
        let mut unprotected = state.clone();
        unprotected
            .attr_mut("database")
            .set_attr("deletion_protection", Value::Bool(false));
        let p = plan(&unprotected, &Value::Null, &Value::Null, "us-east-1");
        assert!(!p.diagnostics.has_errors());
        assert!(p
            .diagnostics
            .0
            .iter()
            .any(|d| d.detail.contains("bucket bucket stays")));
        assert_eq!(p.planned, Value::Null);
    }

    #[test]
    fn data_losing_updates_are_refused_and_disruptive_ones_warned() {
        let c = config("production");
        let state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let mut worm_off = config("production");
        worm_off
            .attr_mut("audit_storage")
            .set_attr("worm", Value::Bool(false));
        worm_off
            .attr_mut("audit_storage")
            .set_attr("versioning", Value::Bool(true));
        let p = plan(&state, &worm_off, &worm_off, "us-east-1");
        assert!(p.diagnostics.has_errors());
        assert_eq!(
            p.diagnostics.0[0].path,
            Some(Path::root().attr("audit_storage").attr("worm"))
        );

        let mut downgrade = config("production");
        downgrade
            .attr_mut("database")
            .set_attr("engine_version", Value::string("15"));
        assert!(plan(&state, &downgrade, &downgrade, "us-east-1")
            .diagnostics
            .has_errors());

        let mut resize = config("production");
        resize
            .attr_mut("database")
            .set_attr("instance_class", Value::string("db.r6g.2xlarge"));
        let p = plan(&state, &resize, &resize, "us-east-1");
        assert!(!p.diagnostics.has_errors());
        assert!(
            p.diagnostics
                .0
                .iter()
                .any(|d| d.detail.contains("failover")),
            "{:?}",
            p.diagnostics
        );

        let mut tenants = config("production");
        tenants
            .attr_mut("keys")
            .set_attr("tenants", Value::strings(["acme"]));
        let p = plan(&state, &tenants, &tenants, "us-east-1");
        assert_eq!(p.planned.get_attr("tenant_key_arns"), &Value::Unknown);
    }

    #[test]
    fn desired_size_follows_the_autoscaler_within_bounds() {
        let c = config("production");
        let mut state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        state
            .attr_mut("cluster")
            .set_attr("node_desired_size", Value::int(7));
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(
            p.planned.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(7)
        );
        assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
        // Refresh writes AWS's size only when it is outside the bounds.
        state
            .attr_mut("cluster")
            .set_attr("node_desired_size", Value::int(12));
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(
            p.planned.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(10)
        );
        let why: Vec<&Diagnostic> = p
            .diagnostics
            .0
            .iter()
            .filter(|d| d.summary == "Node group size outside its bounds")
            .collect();
        assert_eq!(why.len(), 1, "{:?}", p.diagnostics);
        assert!(!p.diagnostics.has_errors());
        for part in [
            "node_desired_size",
            "12 nodes",
            "[3, 10]",
            "sets it to 10",
            "2 node(s) are removed",
        ] {
            assert!(why[0].detail.contains(part), "{part}: {}", why[0].detail);
        }
    }

    #[test]
    fn lowering_the_maximum_warns_that_running_nodes_may_go() {
        let c = config("production");
        let state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let mut smaller = config("production");
        smaller
            .attr_mut("cluster")
            .set_attr("node_max_size", Value::int(5));
        let p = plan(&state, &smaller, &smaller, "us-east-1");
        assert!(!p.diagnostics.has_errors());
        let warned: Vec<&str> = p.diagnostics.0.iter().map(|d| d.summary.as_str()).collect();
        assert_eq!(
            warned,
            ["Node group maximum lowered"],
            "{:?}",
            p.diagnostics
        );
        assert!(p.diagnostics.0[0].detail.contains("from 10 to 5"));
        let mut larger = config("production");
        larger
            .attr_mut("cluster")
            .set_attr("node_max_size", Value::int(20));
        assert!(plan(&state, &larger, &larger, "us-east-1")
            .diagnostics
            .is_empty());
    }
}
