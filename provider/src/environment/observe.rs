//! Turning what the components found in AWS into Terraform state: outputs
//! always come from AWS; user-settable attributes come from AWS on refresh
//! (so drift shows) and from the plan after apply (so the result matches
//! the plan exactly where it was known).

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

/// "16" is satisfied by any 16.x: keep what the user wrote while AWS runs
/// a version of that major, else show AWS's version (drift).
fn version_setting(written: &Value, actual: Option<&str>) -> Option<Value> {
    let actual = actual?;
    match written.as_str() {
        Some(w) if !w.contains('.') && actual.split('.').next() == Some(w) => Some(written.clone()),
        Some(w) if w == actual => Some(written.clone()),
        _ => Some(Value::string(actual)),
    }
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
        // The resource's own tags: what the VPC carries beyond the
        // provider's default_tags (a default tag changed on the VPC counts).
        let own: BTreeMap<String, String> = n
            .tags
            .iter()
            .filter(|(k, v)| default_tags.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
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
            w.setting("cluster", "node_desired_size", int(c.node_desired_size));
        }
    }

    if let Some(d) = &observed.database {
        let written = w
            .state
            .get_attr("database")
            .get_attr("engine_version")
            .clone();
        if let Some(v) = version_setting(&written, Some(&d.engine_version_actual)) {
            w.setting("database", "engine_version", v);
        }
        w.setting(
            "database",
            "instance_class",
            Value::string(&d.instance_class),
        );
        w.setting("database", "multi_az", Value::Bool(d.multi_az));
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
        w.output(
            "database_engine_version_actual",
            Value::string(&d.engine_version_actual),
        );
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
