//! Turning what the components found in AWS into Terraform state: outputs
//! always come from AWS; user-settable attributes come from AWS on refresh
//! (so drift shows) and from the plan after apply (so the result matches
//! the plan exactly where it was known).
//!
//! # Quiet drift
//!
//! A daily `terraform plan -refresh-only -detailed-exitcode` exits 2 as soon
//! as the refreshed state differs from the stored one in any attribute,
//! computed ones included. So what AWS does on its own, as designed, must
//! leave the refreshed state exactly as it was:
//!
//! - the node group's desired size belongs to the cluster autoscaler: while
//!   AWS's count stays within the stored `[node_min_size, node_max_size]`
//!   the stored `node_desired_size` is kept ([`desired_size_setting`]);
//! - an engine version given as a major (`"16"`, `"7"`) is satisfied by any
//!   minor of it ([`version_setting`]), and `database_engine_version_actual`
//!   is not refreshed for a minor upgrade under such a major
//!   ([`engine_version_output`]);
//! - tags AWS or EKS put on the VPC that the user never set (`aws:*`, and
//!   `kubernetes.io/cluster/<name>` unless `tags` sets that key) are not the
//!   resource's tags ([`own_tags`]).
//!
//! Real drift stays visible: a min or max changed out of band, a desired
//! size outside the bounds, another major, another pinned version, a user
//! tag changed or added.

use std::collections::BTreeMap;

use crate::components::cache::CacheState;
use crate::components::cluster::ClusterState;
use crate::components::database::DatabaseState;
use crate::components::edge::EdgeState;
use crate::components::keys::KeysState;
use crate::components::network::NetworkState;
use crate::components::storage::AuditStorageState;
use crate::protocol::cty::Value;

use super::plan::{derive_app_settings, COMPONENT_OUTPUTS};

/// What was found of each component; None = absent.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub network: Option<NetworkState>,
    pub keys: Option<KeysState>,
    pub cluster: Option<ClusterState>,
    pub database: Option<DatabaseState>,
    pub cache: Option<CacheState>,
    pub storage: Option<AuditStorageState>,
    pub edge: Option<EdgeState>,
}

impl Observed {
    pub fn is_empty(&self) -> bool {
        self.network.is_none()
            && self.keys.is_none()
            && self.cluster.is_none()
            && self.database.is_none()
            && self.cache.is_none()
            && self.storage.is_none()
            && self.edge.as_ref().is_none_or(|e| {
                e.web_acl_arn.is_none()
                    && e.shield_protection_id.is_none()
                    && e.cdn_distribution_id.is_none()
            })
    }
}

/// How a user-settable attribute is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refresh: AWS's value wins, so the plan shows drift.
    Refresh,
    /// After apply: the planned value wins where it is known.
    AfterApply,
}

struct Writer<'a> {
    state: &'a mut Value,
    mode: Mode,
}

impl Writer<'_> {
    fn setting(&mut self, block: &str, attr: &str, observed: Value) {
        let slot = self.state.attr_mut(block).attr_mut(attr);
        if self.mode == Mode::Refresh || !slot.is_known() {
            *slot = observed;
        }
    }

    fn output(&mut self, attr: &str, value: Value) {
        self.state.set_attr(attr, value);
    }
}

fn major_of(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// "16" is satisfied by any 16.x: keep what the user wrote while AWS runs
/// a version of that major, else show AWS's version (drift). A full version
/// ("16.4") pins it: any other version AWS runs shows. None when AWS does
/// not report a version (moto for ElastiCache): the stored value stays.
fn version_setting(written: &Value, actual: Option<&str>) -> Option<Value> {
    let actual = actual?;
    match written.as_str() {
        Some(w) if !w.contains('.') && major_of(actual) == w => Some(written.clone()),
        Some(w) if w == actual => Some(written.clone()),
        _ => Some(Value::string(actual)),
    }
}

/// `database_engine_version_actual` on refresh: the version AWS runs,
/// recorded when it is first read, when the major changes, or whenever
/// `engine_version` pins a full version. A minor upgrade AWS makes in a
/// maintenance window under a major-only `engine_version` keeps the
/// recorded value: it is not drift, and the output would otherwise make
/// every refresh after a maintenance window report a change.
fn engine_version_output(recorded: &Value, written: &Value, actual: &str) -> Value {
    match (recorded.as_str(), written.as_str()) {
        (Some(rec), Some(w)) if !w.contains('.') && major_of(actual) == w && major_of(rec) == w => {
            recorded.clone()
        }
        _ => Value::string(actual),
    }
}

/// `cluster.node_desired_size` on refresh (`stored` is the state's
/// `cluster` block before this read). The desired size is the initial
/// size; afterwards it belongs to the cluster autoscaler. While the size AWS
/// reports stays within the stored `[min, max]`, the stored value is kept
/// (no drift). Outside them AWS's value is written, so the plan shows it and
/// brings it back to the nearest bound (with a warning that says why). A
/// state without a node group yet (import, a group deleted out of band)
/// takes AWS's value.
fn desired_size_setting(stored: &Value, had_group: bool, observed: i64) -> Value {
    match (
        stored.get_attr("node_desired_size").as_i64(),
        stored.get_attr("node_min_size").as_i64(),
        stored.get_attr("node_max_size").as_i64(),
    ) {
        (Some(desired), Some(min), Some(max)) if had_group && (min..=max).contains(&observed) => {
            Value::int(desired)
        }
        _ => Value::int(observed),
    }
}

/// The resource's own tags, from the tags on the VPC: without the
/// provider's `default_tags` (a default tag changed on the VPC counts),
/// and without `kubernetes.io/cluster/<name>` tags that EKS and Kubernetes
/// tooling put on a cluster's VPC unless `tags` itself sets that key
/// (`stored` are the tags in state). `aws:*` tags never get here (see
/// `components::user_visible_tags`).
fn own_tags(
    vpc_tags: &BTreeMap<String, String>,
    default_tags: &BTreeMap<String, String>,
    stored: &Value,
) -> BTreeMap<String, String> {
    let stored = stored.as_string_map().unwrap_or_default();
    vpc_tags
        .iter()
        .filter(|(k, v)| default_tags.get(*k) != Some(*v))
        .filter(|(k, _)| !k.starts_with("kubernetes.io/cluster/") || stored.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn int(i: i64) -> Value {
    Value::int(i)
}

/// Writes `observed` into `state` (the prior state on refresh, the planned
/// state after apply).
pub fn write(
    state: &mut Value,
    observed: &Observed,
    default_tags: &BTreeMap<String, String>,
    mode: Mode,
) {
    // Absent components: their outputs are null.
    let present = [
        observed.network.is_some(),
        observed.keys.is_some(),
        observed.cluster.is_some(),
        observed.database.is_some(),
        observed.cache.is_some(),
        observed.storage.is_some(),
    ];
    for ((_, outputs), present) in COMPONENT_OUTPUTS.iter().zip(present) {
        if !present {
            for output in *outputs {
                state.set_attr(output, Value::Null);
            }
        }
    }
    let mut w = Writer { state, mode };

    if let Some(n) = &observed.network {
        w.setting("network", "vpc_cidr", Value::string(&n.vpc_cidr));
        w.setting(
            "network",
            "availability_zones",
            Value::strings(n.availability_zones.iter().cloned()),
        );
        w.setting(
            "network",
            "nat_gateway_per_az",
            Value::Bool(n.nat_gateway_per_az),
        );
        w.output("vpc_id", Value::string(&n.vpc_id));
        w.output(
            "public_subnet_ids",
            Value::strings(n.public_subnet_ids.iter().cloned()),
        );
        w.output(
            "private_subnet_ids",
            Value::strings(n.private_subnet_ids.iter().cloned()),
        );
        let own = own_tags(&n.tags, default_tags, w.state.get_attr("tags"));
        let tags = if own.is_empty() && w.state.get_attr("tags").is_null() {
            Value::Null
        } else {
            Value::string_map(own)
        };
        if mode == Mode::Refresh {
            w.state.set_attr("tags", tags);
        }
    }

    if let Some(k) = &observed.keys {
        let written = w
            .state
            .get_attr("keys")
            .get_attr("tenants")
            .as_strings()
            .unwrap_or_default();
        let mut tenants: Vec<String> = written
            .iter()
            .filter(|t| k.tenant_key_arns.contains_key(*t))
            .cloned()
            .collect();
        tenants.extend(
            k.tenant_key_arns
                .keys()
                .filter(|t| !written.contains(t))
                .cloned(),
        );
        w.setting("keys", "tenants", Value::strings(tenants));
        w.setting("keys", "rotation_enabled", Value::Bool(k.rotation_enabled));
        w.output("platform_key_arn", Value::string(&k.platform_key_arn));
        w.output(
            "tenant_key_arns",
            Value::string_map(k.tenant_key_arns.clone()),
        );
    }

    if let Some(c) = &observed.cluster {
        // What the state said before this read: the autoscaler rule
        // compares AWS's size with the stored bounds.
        let stored_cluster = w.state.get_attr("cluster").clone();
        let had_group = w.state.get_attr("node_group_arn").as_str().is_some();
        w.setting(
            "cluster",
            "kubernetes_version",
            Value::string(&c.kubernetes_version),
        );
        w.setting(
            "cluster",
            "endpoint_public_access",
            Value::Bool(c.endpoint_public_access),
        );
        w.output("cluster_arn", Value::string(&c.arn));
        w.output("cluster_endpoint", Value::opt_string(c.endpoint.clone()));
        w.output(
            "cluster_certificate_authority_data",
            Value::opt_string(c.certificate_authority_data.clone()),
        );
        w.output(
            "cluster_oidc_issuer_url",
            Value::opt_string(c.oidc_issuer.clone()),
        );
        w.output(
            "node_group_arn",
            Value::opt_string(c.node_group_arn.clone()),
        );
        if c.node_group_arn.is_some() {
            w.setting(
                "cluster",
                "node_instance_types",
                Value::strings(c.node_instance_types.iter().cloned()),
            );
            w.setting("cluster", "node_min_size", int(c.node_min_size));
            w.setting("cluster", "node_max_size", int(c.node_max_size));
            w.setting(
                "cluster",
                "node_desired_size",
                desired_size_setting(&stored_cluster, had_group, c.node_desired_size),
            );
        }
    }

    if let Some(d) = &observed.database {
        let written = w
            .state
            .get_attr("database")
            .get_attr("engine_version")
            .clone();
        let recorded = w.state.get_attr("database_engine_version_actual").clone();
        if let Some(v) = version_setting(&written, Some(&d.engine_version_actual)) {
            w.setting("database", "engine_version", v);
        }
        w.setting(
            "database",
            "instance_class",
            Value::string(&d.instance_class),
        );
        w.setting("database", "multi_az", Value::Bool(d.multi_az));
        // Fixed at creation, but an import or a lookup must see them.
        if !d.master_username.is_empty() {
            w.setting(
                "database",
                "master_username",
                Value::string(&d.master_username),
            );
        }
        if let Some(name) = &d.database_name {
            w.setting("database", "database_name", Value::string(name));
        }
        w.setting(
            "database",
            "allocated_storage_gb",
            int(d.allocated_storage_gb),
        );
        w.setting(
            "database",
            "backup_retention_days",
            int(d.backup_retention_days),
        );
        w.setting(
            "database",
            "deletion_protection",
            Value::Bool(d.deletion_protection),
        );
        w.setting(
            "database",
            "performance_insights",
            Value::Bool(d.performance_insights),
        );
        w.setting(
            "database",
            "read_replicas",
            int(d.replica_endpoints.len() as i64),
        );
        w.output("database_arn", Value::string(&d.arn));
        w.output("database_endpoint", Value::opt_string(d.endpoint.clone()));
        w.output("database_port", int(d.port));
        w.output(
            "database_master_secret_arn",
            Value::opt_string(d.master_secret_arn.clone()),
        );
        // After apply a version known in the plan must come back as it was.
        if mode == Mode::Refresh || !recorded.is_known() {
            w.output(
                "database_engine_version_actual",
                engine_version_output(&recorded, &written, &d.engine_version_actual),
            );
        }
        w.output(
            "database_replica_endpoints",
            Value::strings(d.replica_endpoints.iter().cloned()),
        );
    }

    if let Some(c) = &observed.cache {
        let written = w.state.get_attr("cache").get_attr("engine_version").clone();
        if let Some(v) = version_setting(&written, c.engine_version_actual.as_deref()) {
            w.setting("cache", "engine_version", v);
        }
        w.setting("cache", "node_type", Value::string(&c.node_type));
        w.setting("cache", "node_count", int(c.node_count));
        w.setting("cache", "multi_az", Value::Bool(c.multi_az));
        w.setting(
            "cache",
            "snapshot_retention_days",
            int(c.snapshot_retention_days),
        );
        w.output(
            "cache_replication_group_id",
            Value::string(&c.replication_group_id),
        );
        w.output(
            "cache_primary_endpoint",
            Value::opt_string(c.primary_endpoint.clone()),
        );
        w.output(
            "cache_reader_endpoint",
            Value::opt_string(c.reader_endpoint.clone()),
        );
        w.output("cache_port", int(c.port));
        w.output(
            "cache_auth_secret_arn",
            Value::opt_string(c.auth_secret_arn.clone()),
        );
    }

    if let Some(s) = &observed.storage {
        w.setting("audit_storage", "versioning", Value::Bool(s.versioning));
        w.setting("audit_storage", "worm", Value::Bool(s.worm));
        if let Some(mode) = &s.retention_mode {
            w.setting("audit_storage", "retention_mode", Value::string(mode));
        }
        if let Some(days) = s.retention_days {
            w.setting("audit_storage", "retention_days", int(days));
        }
        w.output("audit_bucket_name", Value::string(&s.bucket));
        w.output("audit_bucket_arn", Value::string(&s.arn));
    }

    let edge = observed.edge.clone().unwrap_or_default();
    w.setting("edge", "waf", Value::Bool(edge.web_acl_arn.is_some()));
    w.setting(
        "edge",
        "ddos_protection",
        Value::Bool(edge.shield_protection_id.is_some()),
    );
    if let Some(limit) = edge.rate_limit {
        w.setting("edge", "rate_limit", int(limit));
    }
    w.output("web_acl_arn", Value::opt_string(edge.web_acl_arn.clone()));
    w.output(
        "shield_protection_id",
        Value::opt_string(edge.shield_protection_id.clone()),
    );
    w.output(
        "cdn_domain_name",
        Value::opt_string(edge.cdn_domain_name.clone()),
    );

    derive_app_settings(state);
}

/// State may not hold unknowns: anything still unknown becomes null.
pub fn resolve_unknowns(v: &mut Value) {
    match v {
        Value::Unknown => *v = Value::Null,
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
            items.iter_mut().for_each(resolve_unknowns)
        }
        Value::Map(items) | Value::Object(items) => items.values_mut().for_each(resolve_unknowns),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::plan::plan;

    /// What AWS reports right after the production defaults were applied
    /// with `tags = { team = "platform" }`.
    fn aws() -> Observed {
        Observed {
            network: Some(NetworkState {
                vpc_id: "vpc-1".into(),
                vpc_cidr: "10.0.0.0/16".into(),
                availability_zones: vec![
                    "us-east-1a".into(),
                    "us-east-1b".into(),
                    "us-east-1c".into(),
                ],
                public_subnet_ids: vec!["p1".into(), "p2".into(), "p3".into()],
                private_subnet_ids: vec!["s1".into(), "s2".into(), "s3".into()],
                nat_gateway_per_az: true,
                tags: BTreeMap::from([("team".into(), "platform".into())]),
                ..Default::default()
            }),
            keys: Some(KeysState {
                platform_key_arn: "arn:key".into(),
                rotation_enabled: true,
                ..Default::default()
            }),
            cluster: Some(ClusterState {
                arn: "arn:eks".into(),
                kubernetes_version: "1.31".into(),
                node_group_arn: Some("arn:ng".into()),
                node_instance_types: vec!["m6i.xlarge".into()],
                node_min_size: 3,
                node_max_size: 10,
                node_desired_size: 3,
                ..Default::default()
            }),
            database: Some(DatabaseState {
                arn: "arn:db".into(),
                port: 5432,
                engine_version_actual: "16.3".into(),
                instance_class: "db.r6g.xlarge".into(),
                multi_az: true,
                allocated_storage_gb: 100,
                backup_retention_days: 30,
                deletion_protection: true,
                performance_insights: true,
                master_username: "idis_admin".into(),
                database_name: Some("idis".into()),
                ..Default::default()
            }),
            cache: Some(CacheState {
                replication_group_id: "idis-production-cache".into(),
                port: 6379,
                engine_version_actual: Some("7.1.0".into()),
                node_type: "cache.r6g.large".into(),
                node_count: 2,
                multi_az: true,
                snapshot_retention_days: 7,
                ..Default::default()
            }),
            storage: Some(AuditStorageState {
                bucket: "bucket".into(),
                arn: "arn:s3:bucket".into(),
                versioning: true,
                worm: true,
                retention_mode: Some("COMPLIANCE".into()),
                retention_days: Some(365),
                ..Default::default()
            }),
            edge: Some(EdgeState {
                web_acl_arn: Some("arn:waf".into()),
                rate_limit: Some(2000),
                shield_protection_id: Some("prot-1".into()),
                ..Default::default()
            }),
        }
    }

    fn config(engine: Option<&str>) -> Value {
        let mut c = Value::Object(BTreeMap::new());
        c.set_attr("name", Value::string("production"));
        c.set_attr("tags", Value::string_map([("team", "platform")]));
        for block in [
            "network",
            "keys",
            "cluster",
            "database",
            "cache",
            "audit_storage",
            "edge",
            "timeouts",
        ] {
            c.set_attr(block, Value::Object(BTreeMap::new()));
        }
        if let Some(v) = engine {
            c.attr_mut("database")
                .set_attr("engine_version", Value::string(v));
        }
        c
    }

    /// The state an apply of `config` leaves when AWS reports `aws()`.
    fn applied(config: &Value) -> Value {
        let mut state = plan(&Value::Null, config, config, "us-east-1").planned;
        state.attr_mut("network").set_attr(
            "availability_zones",
            Value::strings(["us-east-1a", "us-east-1b", "us-east-1c"]),
        );
        write(&mut state, &aws(), &BTreeMap::new(), Mode::AfterApply);
        resolve_unknowns(&mut state);
        state
    }

    fn refreshed(state: &Value, aws: &Observed) -> Value {
        let mut next = state.clone();
        write(&mut next, aws, &BTreeMap::new(), Mode::Refresh);
        resolve_unknowns(&mut next);
        next
    }

    /// The attributes whose value a refresh changed, as `block.attr`.
    fn changed(before: &Value, after: &Value) -> Vec<String> {
        let (Value::Object(a), Value::Object(b)) = (before, after) else {
            panic!("states are objects");
        };
        let mut out = Vec::new();
        for (k, v) in b {
            match (a.get(k), v) {
                (Some(Value::Object(x)), Value::Object(y)) => {
                    for (kk, vv) in y {
                        if x.get(kk) != Some(vv) {
                            out.push(format!("{k}.{kk}"));
                        }
                    }
                }
                (old, new) if old != Some(new) => out.push(k.clone()),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn nothing_changed_in_aws_refreshes_to_the_same_state() {
        let state = applied(&config(None));
        assert_eq!(refreshed(&state, &aws()), state);
    }

    #[test]
    fn the_autoscaler_resizing_within_bounds_is_not_drift() {
        let state = applied(&config(None));
        for size in [3, 7, 10] {
            let mut now = aws();
            now.cluster.as_mut().unwrap().node_desired_size = size;
            assert_eq!(refreshed(&state, &now), state, "desired size {size}");
        }
    }

    #[test]
    fn bounds_changed_out_of_band_show_and_a_size_outside_them_shows_too() {
        let state = applied(&config(None));
        // min raised to 5: the autoscaler had to follow, that size is fine.
        let mut now = aws();
        let c = now.cluster.as_mut().unwrap();
        (c.node_min_size, c.node_desired_size) = (5, 5);
        assert_eq!(
            changed(&state, &refreshed(&state, &now)),
            ["cluster.node_min_size"]
        );
        // max raised to 20 and 15 nodes: outside [3, 10], so the size shows.
        let mut now = aws();
        let c = now.cluster.as_mut().unwrap();
        (c.node_max_size, c.node_desired_size) = (20, 15);
        let next = refreshed(&state, &now);
        assert_eq!(
            changed(&state, &next),
            ["cluster.node_desired_size", "cluster.node_max_size"]
        );
        assert_eq!(
            next.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(15)
        );
    }

    #[test]
    fn a_state_without_a_node_group_takes_the_size_aws_reports() {
        let mut state = applied(&config(None));
        state.set_attr("node_group_arn", Value::Null);
        let mut now = aws();
        now.cluster.as_mut().unwrap().node_desired_size = 6;
        let next = refreshed(&state, &now);
        assert_eq!(
            next.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(6)
        );
    }

    #[test]
    fn the_database_name_and_master_user_come_from_aws_and_reach_app_config() {
        // What import and the data source see: a state of defaults,
        // refreshed from an environment created with other names.
        let state = applied(&config(None));
        let mut now = aws();
        let d = now.database.as_mut().unwrap();
        (d.master_username, d.database_name) = ("owner".into(), Some("ledger".into()));
        let next = refreshed(&state, &now);
        assert_eq!(
            changed(&state, &next),
            [
                "app_config",
                "database.database_name",
                "database.master_username"
            ]
        );
        let app_config = next
            .get_attr("app_config")
            .as_string_map()
            .unwrap_or_default();
        assert_eq!(
            app_config.get("IDIS_DATABASE_NAME").map(String::as_str),
            Some("ledger")
        );
    }

    #[test]
    fn a_minor_upgrade_under_a_major_is_not_drift_not_even_in_the_actual_version() {
        let state = applied(&config(None));
        assert_eq!(
            state.get_attr("database_engine_version_actual"),
            &Value::string("16.3")
        );
        let mut now = aws();
        now.database.as_mut().unwrap().engine_version_actual = "16.4".into();
        now.cache.as_mut().unwrap().engine_version_actual = Some("7.2.4".into());
        assert_eq!(refreshed(&state, &now), state);
    }

    #[test]
    fn another_major_shows_in_the_setting_and_the_actual_version() {
        let state = applied(&config(None));
        let mut now = aws();
        now.database.as_mut().unwrap().engine_version_actual = "17.2".into();
        now.cache.as_mut().unwrap().engine_version_actual = Some("6.2.6".into());
        let next = refreshed(&state, &now);
        assert_eq!(
            changed(&state, &next),
            [
                "cache.engine_version",
                "database.engine_version",
                "database_engine_version_actual"
            ]
        );
        assert_eq!(
            next.get_attr("database_engine_version_actual"),
            &Value::string("17.2")
        );
        assert_eq!(
            next.get_attr("cache").get_attr("engine_version"),
            &Value::string("6.2.6")
        );
    }

    #[test]
    fn a_pinned_full_version_shows_any_other_version() {
        let state = applied(&config(Some("16.3")));
        let mut now = aws();
        now.database.as_mut().unwrap().engine_version_actual = "16.4".into();
        let next = refreshed(&state, &now);
        assert_eq!(
            changed(&state, &next),
            ["database.engine_version", "database_engine_version_actual"]
        );
    }

    #[test]
    fn a_cache_version_aws_does_not_report_keeps_the_stored_one() {
        let state = applied(&config(None));
        let mut now = aws();
        now.cache.as_mut().unwrap().engine_version_actual = None;
        assert_eq!(refreshed(&state, &now), state);
    }

    #[test]
    fn tags_aws_and_eks_add_to_the_vpc_are_not_drift_but_a_user_tag_is() {
        let state = applied(&config(None));
        // aws:* tags are dropped by the network component already; EKS's
        // cluster tag arrives here.
        let mut now = aws();
        now.network.as_mut().unwrap().tags.insert(
            "kubernetes.io/cluster/idis-production".into(),
            "shared".into(),
        );
        assert_eq!(refreshed(&state, &now), state);

        let mut now = aws();
        now.network
            .as_mut()
            .unwrap()
            .tags
            .insert("team".into(), "someone-else".into());
        assert_eq!(changed(&state, &refreshed(&state, &now)), ["tags"]);
    }

    #[test]
    fn a_cluster_tag_the_user_sets_is_theirs() {
        let mut c = config(None);
        c.set_attr(
            "tags",
            Value::string_map([
                ("team", "platform"),
                ("kubernetes.io/cluster/idis-production", "owned"),
            ]),
        );
        let mut aws_now = aws();
        aws_now.network.as_mut().unwrap().tags.insert(
            "kubernetes.io/cluster/idis-production".into(),
            "owned".into(),
        );
        let mut state = plan(&Value::Null, &c, &c, "us-east-1").planned;
        state.attr_mut("network").set_attr(
            "availability_zones",
            Value::strings(["us-east-1a", "us-east-1b", "us-east-1c"]),
        );
        write(&mut state, &aws_now, &BTreeMap::new(), Mode::AfterApply);
        resolve_unknowns(&mut state);
        assert_eq!(refreshed(&state, &aws_now), state);
        aws_now.network.as_mut().unwrap().tags.insert(
            "kubernetes.io/cluster/idis-production".into(),
            "shared".into(),
        );
        assert_eq!(changed(&state, &refreshed(&state, &aws_now)), ["tags"]);
    }

    #[test]
    fn after_apply_a_version_known_in_the_plan_comes_back_unchanged() {
        let state = applied(&config(None));
        // An apply for something else, planned from a state recorded before
        // a minor upgrade AWS made: the planned output is the recorded one.
        let mut planned = state.clone();
        let mut now = aws();
        now.database.as_mut().unwrap().engine_version_actual = "16.4".into();
        write(&mut planned, &now, &BTreeMap::new(), Mode::AfterApply);
        assert_eq!(
            planned.get_attr("database_engine_version_actual"),
            &Value::string("16.3")
        );
    }
}
