//! The schema of `idis_environment`: a few top-level arguments, one GROUP
//! block per component (always present, so defaults are planned inside),
//! and top-level computed attributes for everything learnt from AWS.
//!
//! Every default lives in [`defaults`]; the plan writes them into the
//! planned state explicitly, so drift on a defaulted attribute is visible.

use super::plan;
use crate::protocol::cty::Type;
use crate::protocol::schema::{Attribute, Block, Nesting, Schema};

pub const TYPE_NAME: &str = "idis_environment";
pub const SCHEMA_VERSION: i64 = 0;

/// Production defaults, as the contract in DESIGN.md asks.
pub mod defaults {
    pub const VPC_CIDR: &str = "10.0.0.0/16";
    pub const NAT_GATEWAY_PER_AZ: bool = true;
    pub const DELETION_WINDOW_DAYS: i64 = 30;
    pub const KUBERNETES_VERSION: &str = "1.31";
    pub const NODE_INSTANCE_TYPE: &str = "m6i.xlarge";
    pub const NODE_MIN: i64 = 3;
    pub const NODE_MAX: i64 = 10;
    pub const DB_ENGINE_VERSION: &str = "16";
    pub const DB_INSTANCE_CLASS: &str = "db.r6g.xlarge";
    pub const DB_STORAGE_GB: i64 = 100;
    pub const DB_BACKUP_RETENTION_DAYS: i64 = 30;
    pub const DB_MASTER_USERNAME: &str = "idis_admin";
    pub const DB_NAME: &str = "idis";
    pub const CACHE_ENGINE_VERSION: &str = "7";
    pub const CACHE_NODE_TYPE: &str = "cache.r6g.large";
    pub const CACHE_NODE_COUNT: i64 = 2;
    pub const CACHE_SNAPSHOT_RETENTION_DAYS: i64 = 7;
    pub const RETENTION_MODE: &str = "COMPLIANCE";
    pub const RETENTION_DAYS: i64 = 365;
    pub const RATE_LIMIT: i64 = 2000;
    pub const CREATE_TIMEOUT: &str = "90m";
    pub const UPDATE_TIMEOUT: &str = "90m";
    pub const DELETE_TIMEOUT: &str = "90m";
}

fn oc(name: &str, ty: Type, description: &str) -> Attribute {
    Attribute::optional_computed(name, ty, description)
}

fn out(name: &str, ty: Type, description: &str) -> Attribute {
    Attribute::computed(name, ty, description)
}

fn strings() -> Type {
    Type::list(Type::String)
}

pub fn schema() -> Schema {
    use defaults::*;
    let network = Block::new("The VPC: public and private subnets in three availability zones, internet gateway, NAT, route tables, security groups.")
        .attr(oc("vpc_cidr", Type::String, &format!("IPv4 CIDR of the VPC, /16 to /24, carved into 3 private and 3 public subnets. Default `{VPC_CIDR}`.")))
        .attr(oc("availability_zones", strings(), "Exactly three availability zones of the region. Default: the first three available zones, chosen at create."))
        .attr(oc("nat_gateway_per_az", Type::Bool, "One NAT gateway per zone (true), or one shared NAT gateway (false, cheaper, not zone-redundant). Default `true`."));
    let keys = Block::new("KMS keys: one platform key for the environment and one customer-managed key per tenant, aliases `alias/idis/<name>/<tenant>`.")
        .attr(oc("tenants", strings(), "Tenant names (lowercase letters, digits, dashes; unique). Each gets its own key. Removing a tenant schedules its key for deletion. Default: none."))
        .attr(oc("deletion_window_days", Type::Number, &format!("Days a removed key waits before AWS deletes it, 7 to 30. Keys are never deleted at once. Default `{DELETION_WINDOW_DAYS}`.")))
        .attr(oc("rotation_enabled", Type::Bool, "Automatic yearly rotation of every key. Default `true`."));
    let cluster = Block::new("EKS cluster (secrets envelope-encrypted with the platform key, private endpoint) and its managed node group.")
        .attr(oc("kubernetes_version", Type::String, &format!("Kubernetes version, `1.28` to `1.33`. Default `{KUBERNETES_VERSION}`. Upgrades happen in place; downgrades are refused.")))
        .attr(oc("endpoint_public_access", Type::Bool, "Expose the API server endpoint publicly. Default `false` (private only)."))
        .attr(oc("node_instance_types", strings(), &format!("EC2 instance types of the node group. Default `[\"{NODE_INSTANCE_TYPE}\"]`.")))
        .attr(oc("node_min_size", Type::Number, &format!("Minimum nodes. Default `{NODE_MIN}`.")))
        .attr(oc("node_max_size", Type::Number, &format!("Maximum nodes. Default `{NODE_MAX}`.")))
        .attr(oc("node_desired_size", Type::Number, "Initial node count. Default: `node_min_size`. Afterwards the cluster autoscaler owns the count: any size within [`node_min_size`, `node_max_size`] is not drift (the state keeps this value); a size outside them shows on refresh and the plan brings it back to the nearest bound, with a warning."));
    let database = Block::new("RDS PostgreSQL: Multi-AZ, gp3, encrypted with the platform key, master password managed by AWS Secrets Manager (never in state), backups, deletion protection, final snapshot.")
        .attr(oc("engine_version", Type::String, &format!("PostgreSQL version: a major (`16`, `15`; any minor of it satisfies) or a full version (`16.4`). Default `\"{DB_ENGINE_VERSION}\"`. Downgrades are refused.")))
        .attr(oc("instance_class", Type::String, &format!("DB instance class. Default `{DB_INSTANCE_CLASS}`.")))
        .attr(oc("multi_az", Type::Bool, "Synchronous standby in another zone. Default `true`."))
        .attr(oc("allocated_storage_gb", Type::Number, &format!("Storage in GiB, 20 to 65536; can only grow. Default `{DB_STORAGE_GB}`.")))
        .attr(oc("backup_retention_days", Type::Number, &format!("Days of automated backups (point-in-time restore window), 1 to 35. Default `{DB_BACKUP_RETENTION_DAYS}`.")))
        .attr(oc("deletion_protection", Type::Bool, "Refuse to delete the database (and so the environment). Default `true`."))
        .attr(oc("skip_final_snapshot", Type::Bool, "Delete without a final snapshot. Default `false`."))
        .attr(oc("performance_insights", Type::Bool, "Performance Insights, encrypted with the platform key. Default `true`."))
        .attr(oc("read_replicas", Type::Number, "Read replicas, 0 to 5. Default `0`."))
        .attr(oc("master_username", Type::String, &format!("Master user name; its password is generated and kept by AWS Secrets Manager. Default `{DB_MASTER_USERNAME}`.")))
        .attr(oc("database_name", Type::String, &format!("Initial database. Default `{DB_NAME}`.")));
    let cache = Block::new("ElastiCache Redis replication group: Multi-AZ with automatic failover, encryption at rest and in transit, auth token kept in Secrets Manager.")
        .attr(oc("engine_version", Type::String, &format!("Redis version: a major (`7`; any minor satisfies) or a full version. Default `\"{CACHE_ENGINE_VERSION}\"`.")))
        .attr(oc("node_type", Type::String, &format!("Cache node type. Default `{CACHE_NODE_TYPE}`.")))
        .attr(oc("node_count", Type::Number, &format!("Nodes (primary plus replicas), 1 to 6; Multi-AZ needs 2 or more. Default `{CACHE_NODE_COUNT}`.")))
        .attr(oc("multi_az", Type::Bool, "Multi-AZ with automatic failover. Default `true`."))
        .attr(oc("snapshot_retention_days", Type::Number, &format!("Days of daily snapshots, 0 to 35. Default `{CACHE_SNAPSHOT_RETENTION_DAYS}`.")));
    let audit_storage = Block::new("The audit bucket: S3 Object Lock (WORM), versioning, default retention, SSE-KMS with the platform key, public access blocked, TLS-only policy.")
        .attr(oc("versioning", Type::Bool, "Bucket versioning; required by WORM. Default `true`."))
        .attr(oc("worm", Type::Bool, "S3 Object Lock. Default `true`. Cannot be turned off once on."))
        .attr(oc("retention_mode", Type::String, &format!("Default retention mode of new objects: `COMPLIANCE` (nobody can delete before expiry) or `GOVERNANCE`. Default `{RETENTION_MODE}`.")))
        .attr(oc("retention_days", Type::Number, &format!("Default retention of new objects in days, 1 to 36500. Default `{RETENTION_DAYS}`.")))
        .attr(oc("retain_on_destroy", Type::Bool, "Keep the bucket when the environment is destroyed. Default `true`; when false, destroy deletes the bucket only if it is empty."));
    let edge = Block::new("The edge: WAFv2 web ACL (AWS managed rule groups and a rate limit), Shield protection, optional CloudFront distribution.")
        .attr(oc("waf", Type::Bool, "Create the WAFv2 web ACL. Default `true`."))
        .attr(oc("ddos_protection", Type::Bool, "Shield protection (on the distribution when there is one, else on the NAT addresses). Default `true`."))
        .attr(oc("rate_limit", Type::Number, &format!("Requests per 5 minutes from one IP before the rate rule blocks, 100 to 2000000000. Default `{RATE_LIMIT}`.")))
        .attr(Attribute::optional("origin_domain", Type::String, "Origin domain of a CloudFront distribution (e.g. the ingress load balancer's name). No distribution when unset."));
    let timeouts =
        Block::new("How long apply may wait for AWS, as Go-style durations (`90m`, `1h30m`).")
            .attr(oc(
                "create",
                Type::String,
                &format!("Longest a create may wait for AWS before it fails (the next apply resumes). Default `{CREATE_TIMEOUT}`."),
            ))
            .attr(oc(
                "update",
                Type::String,
                &format!("Longest an update may wait for AWS before it fails (the next apply resumes). Default `{UPDATE_TIMEOUT}`."),
            ))
            .attr(oc(
                "delete",
                Type::String,
                &format!("Longest a destroy may wait for AWS, including what the cluster left in the VPC, before it fails (destroy can be run again). Default `{DELETE_TIMEOUT}`."),
            ));

    let block = Block::new("A whole IDIS environment on AWS: network, KMS keys, EKS, RDS PostgreSQL, ElastiCache Redis, the WORM audit bucket and the edge (WAF, Shield, CloudFront), built, read, repaired and destroyed as one unit.")
        .attr(Attribute::required("name", Type::String, "Environment name: lowercase letters, digits and dashes, starting with a letter, at most 23 characters. Every AWS name derives from it (`idis-<name>-...`)."))
        .attr(oc("region", Type::String, "AWS region. Default: the provider's."))
        .attr(Attribute::optional("tags", Type::map(Type::String), "Tags for every AWS object, on top of the provider's `default_tags` and the ownership tags `idis:environment`, `idis:component`, `managed-by`. Read back from the VPC; tags AWS manages (`aws:*`) and `kubernetes.io/cluster/<name>` tags that EKS and Kubernetes tooling add (unless set here) are not drift."))
        .attr(out("id", Type::String, "The environment name."))
        .attr(out("vpc_id", Type::String, "VPC id."))
        .attr(out("public_subnet_ids", strings(), "Public subnet ids, in zone order."))
        .attr(out("private_subnet_ids", strings(), "Private subnet ids, in zone order."))
        .attr(out("platform_key_arn", Type::String, "ARN of the environment's platform KMS key."))
        .attr(out("tenant_key_arns", Type::map(Type::String), "Tenant name to KMS key ARN."))
        .attr(out("cluster_name", Type::String, "EKS cluster name."))
        .attr(out("cluster_arn", Type::String, "EKS cluster ARN."))
        .attr(out("cluster_endpoint", Type::String, "Kubernetes API server endpoint."))
        .attr(out("cluster_certificate_authority_data", Type::String, "Base64 CA certificate of the API server."))
        .attr(out("cluster_oidc_issuer_url", Type::String, "OIDC issuer URL, for IAM roles for service accounts."))
        .attr(out("node_group_arn", Type::String, "Managed node group ARN."))
        .attr(out("database_arn", Type::String, "RDS instance ARN."))
        .attr(out("database_endpoint", Type::String, "Database host name."))
        .attr(out("database_port", Type::Number, "Database port."))
        .attr(out("database_master_secret_arn", Type::String, "ARN of the Secrets Manager secret AWS keeps the master credentials in."))
        .attr(out("database_engine_version_actual", Type::String, "The PostgreSQL version AWS reported when the major was last set: at create, after a major upgrade, or always when `database.engine_version` pins a full version. Minor upgrades AWS applies under a major-only `engine_version` do not refresh it (they are not drift); ask RDS for the version running right now."))
        .attr(out("database_replica_endpoints", strings(), "Read replica host names."))
        .attr(out("cache_replication_group_id", Type::String, "ElastiCache replication group id."))
        .attr(out("cache_primary_endpoint", Type::String, "Redis primary endpoint."))
        .attr(out("cache_reader_endpoint", Type::String, "Redis reader endpoint."))
        .attr(out("cache_port", Type::Number, "Redis port."))
        .attr(out("cache_auth_secret_arn", Type::String, "ARN of the Secrets Manager secret holding the Redis auth token."))
        .attr(out("audit_bucket_name", Type::String, "Audit bucket name."))
        .attr(out("audit_bucket_arn", Type::String, "Audit bucket ARN."))
        .attr(out("web_acl_arn", Type::String, "WAFv2 web ACL ARN (null when `edge.waf` is false)."))
        .attr(out("shield_protection_id", Type::String, "Shield protection id (null when `edge.ddos_protection` is false)."))
        .attr(out("cdn_domain_name", Type::String, "CloudFront domain name (null without `edge.origin_domain`)."))
        .attr(out("app_config", Type::map(Type::String), "Non-secret `IDIS_*` settings for the application's ConfigMap."))
        .attr(out("secret_refs", Type::map(Type::String), "Secret `IDIS_*` settings mapped to the Secrets Manager ARNs that hold them, for external-secrets."))
        .block("network", Nesting::Group, network)
        .block("keys", Nesting::Group, keys)
        .block("cluster", Nesting::Group, cluster)
        .block("database", Nesting::Group, database)
        .block("cache", Nesting::Group, cache)
        .block("audit_storage", Nesting::Group, audit_storage)
        .block("edge", Nesting::Group, edge)
        .block("timeouts", Nesting::Group, timeouts);
    Schema::new(SCHEMA_VERSION, mark_replacing(block))
}

/// The sentence the description of every attribute in
/// [`plan::REPLACING`] ends with; the docs generator reads it.
pub const FORCES_REPLACEMENT: &str = "Changing this forces replacement.";

/// Appends [`FORCES_REPLACEMENT`] to the attributes whose change the plan
/// answers with a replacement, from the list the plan itself uses, so the
/// schema (and the docs built from it) cannot disagree with the plan.
fn mark_replacing(mut block: Block) -> Block {
    for (nested, attr) in plan::REPLACING {
        let target = match nested {
            None => &mut block,
            Some(name) => match block.blocks.iter_mut().find(|b| b.name == *name) {
                Some(b) => &mut b.block,
                None => continue,
            },
        };
        if let Some(a) = target.attributes.iter_mut().find(|a| a.name == *attr) {
            a.description = format!("{} {FORCES_REPLACEMENT}", a.description);
        }
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (block, attribute) of every attribute whose description says it
    /// forces replacement.
    fn marked(block: &Block, under: Option<&str>, out: &mut Vec<(Option<String>, String)>) {
        for a in &block.attributes {
            if a.description.contains(FORCES_REPLACEMENT) {
                out.push((under.map(str::to_string), a.name.clone()));
            }
        }
        for b in &block.blocks {
            marked(&b.block, Some(&b.name), out);
        }
    }

    #[test]
    fn exactly_the_attributes_the_plan_replaces_say_they_force_replacement() {
        let mut found = Vec::new();
        marked(&schema().block, None, &mut found);
        let mut expected: Vec<(Option<String>, String)> = plan::REPLACING
            .iter()
            .map(|(b, a)| (b.map(str::to_string), a.to_string()))
            .collect();
        found.sort();
        expected.sort();
        assert_eq!(found, expected);
        assert_eq!(found.len(), 4);
    }

    #[test]
    fn no_description_speaks_of_replacement_in_its_own_words() {
        let text = format!("{:?}", schema().block);
        assert!(!text.contains("replaces the environment"));
    }
}
