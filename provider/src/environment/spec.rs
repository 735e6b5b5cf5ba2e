//! What one environment should be: the blocks of `idis_environment` once
//! planned (every default filled in), as typed structs. Components take
//! their part of it; nothing here talks to AWS.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// IPv4 CIDR of the VPC, /16 to /24.
    pub vpc_cidr: String,
    /// Exactly three zone names of the region, e.g. us-east-1a..c.
    pub availability_zones: Vec<String>,
    /// One NAT gateway per zone (true, production) or a single shared one.
    pub nat_gateway_per_az: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeysSpec {
    /// Tenant names; each gets a customer-managed key
    /// `alias/idis/<env>/<tenant>`. The platform key is
    /// `alias/idis/<env>/platform`.
    pub tenants: Vec<String>,
    /// Days a removed key waits before AWS deletes it (7 to 30).
    pub deletion_window_days: i64,
    /// Automatic yearly rotation on every key.
    pub rotation_enabled: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub kubernetes_version: String,
    pub endpoint_public_access: bool,
    pub node_instance_types: Vec<String>,
    pub node_min_size: i64,
    pub node_max_size: i64,
    pub node_desired_size: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseSpec {
    /// "16" (any 16.x) or a full version such as "16.4"; 15 is allowed.
    pub engine_version: String,
    pub instance_class: String,
    pub multi_az: bool,
    pub allocated_storage_gb: i64,
    pub backup_retention_days: i64,
    pub deletion_protection: bool,
    pub skip_final_snapshot: bool,
    pub performance_insights: bool,
    /// 0 to 5 read replicas.
    pub read_replicas: i64,
    pub master_username: String,
    pub database_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheSpec {
    /// "7" (any 7.x) or a full version.
    pub engine_version: String,
    pub node_type: String,
    /// Primary plus replicas, 2 to 6 (Multi-AZ needs at least 2).
    pub node_count: i64,
    pub multi_az: bool,
    pub snapshot_retention_days: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditStorageSpec {
    pub versioning: bool,
    /// S3 Object Lock; only settable when the bucket is created.
    pub worm: bool,
    /// "COMPLIANCE" or "GOVERNANCE".
    pub retention_mode: String,
    pub retention_days: i64,
    /// Keep the bucket when the environment is destroyed.
    pub retain_on_destroy: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeSpec {
    pub waf: bool,
    pub ddos_protection: bool,
    /// Requests per 5 minutes per IP before the rate rule blocks.
    pub rate_limit: i64,
    /// Origin of a CloudFront distribution; none when null.
    pub origin_domain: Option<String>,
}
