//! dr: A disaster-recovery site in a second region (`dr { region = ... }`),
//! pilot light: what holds data is copied there continuously, what serves
//! traffic is made only on promotion.
//!
//! In the DR region, with the environment's deterministic names (names are
//! regional for everything but S3 and IAM):
//!
//! - the network, made by the `network` component's own code for the DR
//!   region (`vpc_cidr`, three zones AWS offers there, one NAT gateway,
//!   every zone's after promotion as the primary's `nat_gateway_per_az`);
//! - multi-Region replicas of the platform key and of every tenant key
//!   (KMS `ReplicateKey`: same key id and key material, so data encrypted
//!   in either region decrypts in the other; KMS Developer Guide,
//!   "Multi-Region keys"), aliased there as in the primary region;
//! - a cross-Region read replica of the database, `idis-<env>-db` in the
//!   DR region, its source the primary's ARN, encrypted with the platform
//!   key's replica (RDS User Guide, "Creating a read replica in a
//!   different AWS Region": the replica's key is one of the destination
//!   Region; `PreSignedUrl` is ignored outside GovCloud and China);
//! - copies of the audit and documents buckets,
//!   `idis-<env>-{audit,documents}-<account>-<dr region>`, made by the
//!   storage and documents components' own code: versioned, SSE-KMS with
//!   the replica key, public access blocked, TLS only; the audit copy with
//!   Object Lock and the source's default retention (COMPLIANCE). The
//!   sources replicate into them (one rule `idis-dr`: every object,
//!   SSE-KMS objects included and re-encrypted with the replica key,
//!   delete markers not replicated, replication metrics on; S3 User Guide,
//!   "Replicating objects" and "Replicating encrypted objects") through
//!   the role `idis-<env>-replication` with the permissions that guide
//!   lists (Object Lock retention and legal hold read on the source);
//! - replicas of the application's secrets (`IDIS_JWT_SECRET`,
//!   `IDIS_ENCRYPTION_KEY`) by Secrets Manager's `ReplicateSecretToRegions`,
//!   encrypted with the platform key's replica: the DR site reads them
//!   while the primary region is down;
//! - the RPO alarm: `idis-<env>-dr-replica-lag` on the replica's
//!   `ReplicaLag` above `rpo_seconds`, to the topic `idis-<env>-dr-alarms`
//!   in the DR region (a CloudWatch alarm notifies a topic of its own
//!   Region), encrypted with the replica key.
//!
//! `promote = true` promotes the replica to a standalone instance (one
//! way: RDS cannot make it a replica again) and then builds the DR site up
//! to serve: the database and the cache by the `database` and `cache`
//! components' own code from the primary's planned settings (Multi-AZ,
//! retention, managed master secret, replicas; the cache with its AUTH
//! token secret in the DR region) and a NAT gateway per zone as the
//! primary has, then the EKS cluster and its node group by the `cluster`
//! component's own code from the cluster block (its two IAM roles are
//! global and shared with the primary's cluster), then the cluster's
//! IAM OIDC provider and service-account roles by the
//! `workload_identity` component's own code, named `idis-<env>-dr-<role>`
//! (IAM names are global) and allowed the DR site's resources only, and
//! the EBS CSI driver add-on with its role; beside them, with `edge.waf`,
//! the regional web ACL `idis-<env>` by the `edge` component's own code
//! (WAF attaches a regional web ACL only to resources of its own region).
//! `app_config`, `secret_refs`, the manifests and `ingress_annotations`
//! then point at the DR endpoints, secrets and web ACL.
//!
//! Everything is found again from AWS: the DR region is the one where the
//! platform key has a replica that is not pending deletion, so refresh,
//! import and the removal of `dr` need no memory of it. Removing `dr` (or
//! destroying) stops replication, removes the secrets' replicas, deletes
//! the replica, the alarm, the promoted site (cluster, cache, web ACL),
//! the network and the role, schedules the replica
//! keys' deletion, and keeps the bucket copies (data is never deleted on
//! the way out).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_kms::types::{KeyMetadata, KeyState, MultiRegionKeyType};
use aws_sdk_rds::types::DbInstance;
use aws_sdk_s3::types::{
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, EncryptionConfiguration,
    Metrics, MetricsStatus, ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter,
    ReplicationRuleStatus, SourceSelectionCriteria, SseKmsEncryptedObjects,
    SseKmsEncryptedObjectsStatus,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cache::{self, Cache, CacheState};
use super::cluster::{self, ClusterSpec, ClusterState, EksCluster};
use super::database::{self, Database, DatabaseState};
use super::describe::{
    Check, Component, Default, Guard, Output, Problem, Reading, Setting, Verdicts, When,
};
use super::documents::{self, DocumentsBucket, DocumentsState};
use super::edge::{self, Edge, EdgeSpec, RegionalAcl};
use super::iam_role::{self, RoleSeen, Wanted};
use super::identity::{self, IdentitySpec, IdentityState, Role, WorkloadIdentity};
use super::keys::{self, KeysState, TenantKeys, PLATFORM};
use super::logs::{self, Group, LogsState};
use super::monitoring::{self, Monitoring, MonitoringSpec};
use super::network::{self, Network, NetworkSpec, NetworkState};
use super::secrets::{self, AppSecret, Replica};
use super::storage::{self, AuditBucket, AuditStorageState};
use super::{aws_error, is_not_found, is_region_name, partition, ComponentError, Ctx, Observed};
use crate::protocol::cty::{Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

pub const COMPONENT: &str = "dr";

/// The DR network's CIDR unless set: apart from the primary's default
/// (`10.0.0.0/16`), so the two VPCs can be peered.
pub const DEFAULT_VPC_CIDR: &str = "10.1.0.0/16";
/// REQ-T237: RPO under five minutes.
pub const DEFAULT_RPO_SECONDS: i64 = 300;
/// The replication rule the provider owns on each source bucket.
pub const RULE_ID: &str = "idis-dr";
/// The replication role's inline policy.
pub const ROLE_POLICY: &str = "idis-replication";

// ---------------------------------------------------------------------------
// What is read

/// One replica key in the DR region.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaKey {
    pub arn: String,
    pub enabled: bool,
    /// A replica of the primary key of the same name.
    pub replica_of_primary: bool,
    /// Its alias `alias/idis/<env>/<name>` exists in the DR region.
    pub aliased: bool,
}

/// The DR database instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DrDatabase {
    pub arn: String,
    pub endpoint: Option<String>,
    pub status: String,
    /// The replication source (the primary's ARN); None once promoted.
    pub source: Option<String>,
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub instance_class: String,
    #[serde(default)]
    pub multi_az: bool,
    #[serde(default)]
    pub publicly_accessible: bool,
    /// Its VPC security groups.
    #[serde(default)]
    pub security_groups: Vec<String>,
}

/// The DR site as found; `region` None when the environment has none.
#[derive(Clone, Debug, Default)]
pub struct DrState {
    pub region: Option<String>,
    /// The environment's name.
    pub env: String,
    pub network: Option<NetworkState>,
    /// Key name (`platform` or a tenant) to its replica; names of the
    /// primary's keys without a replica are absent.
    pub keys: BTreeMap<String, ReplicaKey>,
    /// The names of the primary's keys.
    pub primary_keys: Vec<String>,
    /// The primary database's ARN (the replica's source).
    pub primary_database_arn: String,
    pub database: Option<DrDatabase>,
    /// The promoted database as the database component reads it.
    pub promoted: Option<DatabaseState>,
    pub cache: Option<CacheState>,
    /// The promoted site's EKS cluster as the cluster component reads it.
    pub cluster: Option<ClusterState>,
    /// The promoted cluster's OIDC provider and service-account roles
    /// (`idis-<env>-dr-<role>`).
    pub identity: Option<IdentityState>,
    /// The promoted site's regional web ACL `idis-<env>`.
    pub web_acl: Option<RegionalAcl>,
    /// The promoted site's log groups (cluster, database, cache) by name.
    pub log_groups: BTreeMap<String, Option<Group>>,
    pub audit: Option<AuditStorageState>,
    pub documents: Option<DocumentsState>,
    pub role: Option<RoleSeen>,
    /// How the role differs from what replication needs.
    pub role_problems: Vec<String>,
    /// Source bucket to the problems of its replication (none: as made).
    pub replication: BTreeMap<String, Vec<String>>,
    pub topic_arn: Option<String>,
    /// The key the topic encrypts with (`KmsMasterKeyId`); None: none.
    pub topic_key: Option<String>,
    pub alarm: Option<AlarmSeen>,
    /// The application's secrets' replicas in the DR region.
    pub secrets: Vec<(AppSecret, Replica)>,
}

/// The RPO alarm as CloudWatch has it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlarmSeen {
    pub arn: String,
    pub threshold: f64,
    pub metric: String,
    pub instance: String,
    pub actions: Vec<String>,
    /// How it judges the metric, in words (`alarm_shape`).
    pub shape: String,
}

/// How the RPO alarm judges the metric: namespace, statistic, period,
/// datapoints of evaluation periods, comparison, missing data, actions on.
const RPO_ALARM: (&str, &str, i32, i32, i32, &str, &str) = (
    "AWS/RDS",
    "Maximum",
    60,
    3,
    5,
    "GreaterThanThreshold",
    "breaching",
);

#[allow(clippy::too_many_arguments)]
fn alarm_shape(
    namespace: &str,
    statistic: &str,
    period: i32,
    datapoints: i32,
    periods: i32,
    comparison: &str,
    missing: &str,
    enabled: bool,
) -> String {
    format!(
        "{namespace} {statistic} over {period} s, {datapoints} of {periods} periods {comparison}, missing data {missing}, actions {}",
        if enabled { "on" } else { "off" }
    )
}

fn rpo_alarm_shape() -> String {
    let (namespace, statistic, period, datapoints, periods, comparison, missing) = RPO_ALARM;
    alarm_shape(
        namespace, statistic, period, datapoints, periods, comparison, missing, true,
    )
}

// ---------------------------------------------------------------------------
// Description: the `dr` block

/// The `dr` block once planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DrSpec {
    /// The DR region; None: no DR site.
    pub region: Option<String>,
    pub vpc_cidr: String,
    pub rpo_seconds: i64,
    /// A NAT gateway before promotion.
    pub nat_gateway: bool,
    pub promote: bool,
}

/// The DR site's computed attributes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DrOutputs {
    pub dr_vpc_id: Option<String>,
    pub dr_platform_key_arn: Option<String>,
    pub dr_database_arn: Option<String>,
    pub dr_database_endpoint: Option<String>,
    pub dr_database_master_secret_arn: Option<String>,
    pub dr_database_replica_endpoints: Option<Vec<String>>,
    pub dr_cache_primary_endpoint: Option<String>,
    pub dr_cache_reader_endpoint: Option<String>,
    pub dr_cache_auth_secret_arn: Option<String>,
    pub dr_cluster_arn: Option<String>,
    pub dr_cluster_endpoint: Option<String>,
    pub dr_cluster_certificate_authority_data: Option<String>,
    pub dr_audit_bucket_name: Option<String>,
    pub dr_documents_bucket_name: Option<String>,
    pub dr_replication_role_arn: Option<String>,
    pub dr_alarm_topic_arn: Option<String>,
    pub dr_jwt_secret_arn: Option<String>,
    pub dr_encryption_key_secret_arn: Option<String>,
    pub dr_oidc_provider_arn: Option<String>,
    pub dr_api_role_arn: Option<String>,
    pub dr_external_secrets_role_arn: Option<String>,
    pub dr_load_balancer_controller_role_arn: Option<String>,
    pub dr_ebs_csi_driver_role_arn: Option<String>,
    pub dr_cluster_autoscaler_role_arn: Option<String>,
    pub dr_web_acl_arn: Option<String>,
}

const GUARDS: &[Guard] = &[
    Guard::new(
        "network",
        "as the network component makes it",
        "The DR region's VPC, subnets over three zones, route tables, NAT gateway and security groups, judged as the primary's network is.",
    )
    .when(When::Set("region"))
    .affects(&["dr_vpc_id"]),
    Guard::new(
        "replica_keys",
        "a multi-Region replica of every key, enabled and aliased",
        "Every key of the environment (platform and tenants) has a multi-Region replica in the DR region, enabled, under the same alias.",
    )
    .when(When::Set("region"))
    .affects(&["dr_platform_key_arn"]),
    Guard::new(
        "database",
        "a replica of the primary with the replica key, or promoted as the database block says",
        "Until `promote`, the DR database is a read replica whose source is the primary, encrypted with the platform key's replica; once promoted, a standalone instance judged as the primary is.",
    )
    .when(When::Set("region"))
    .affects(&[
        "dr_database_arn",
        "dr_database_endpoint",
        "dr_database_master_secret_arn",
        "dr_database_replica_endpoints",
    ]),
    Guard::new(
        "copies",
        "guarded as their sources",
        "The audit and documents copies in the DR region: versioning, SSE-KMS with the replica key, public access blocked, TLS only; the audit copy with Object Lock and the source's retention.",
    )
    .when(When::Set("region"))
    .affects(&["dr_audit_bucket_name", "dr_documents_bucket_name"]),
    Guard::new(
        "replication",
        "every object replicated to the DR copies, re-encrypted with the replica key",
        "The audit and documents buckets replicate every object (SSE-KMS ones included, delete markers not) to their DR copies through the replication role, re-encrypted with the replica key, with replication metrics on.",
    )
    .when(When::Set("region"))
    .affects(&["dr_replication_role_arn"]),
    Guard::new(
        "cluster",
        "after promotion, the EKS cluster as the cluster block says",
        "Once promoted, the EKS cluster `idis-<name>` and its node group in the DR region, made by the cluster component's own code from the cluster block and judged as the primary's is (with the same two IAM roles, which are global), with its own IAM OIDC provider and service-account roles `idis-<name>-dr-<role>` (trusting the workload_identity block's service accounts of the DR cluster, allowed the DR site's buckets, keys and secrets) and the EBS CSI driver add-on running with its role.",
    )
    .when(When::On("promote"))
    .affects(&[
        "dr_cluster_arn",
        "dr_cluster_endpoint",
        "dr_cluster_certificate_authority_data",
    ]),
    Guard::new(
        "rpo_alarm",
        "replica lag above rpo_seconds notifies the DR alarm topic",
        "Until promotion, a CloudWatch alarm in the DR region on the replica's `ReplicaLag` above `rpo_seconds` (three of five minutes), to the encrypted topic `idis-<name>-dr-alarms`.",
    )
    .when(When::Set("region"))
    .affects(&["dr_alarm_topic_arn"]),
    Guard::new(
        "secrets",
        "the application's secrets replicated, with the replica key",
        "`IDIS_JWT_SECRET` and `IDIS_ENCRYPTION_KEY` (`app_secrets`) have Secrets Manager replicas in the DR region, in sync and encrypted with the platform key's replica, so the DR site has them while the primary region is down; data encrypted with the encryption key is readable only with it.",
    )
    .when(When::Set("region"))
    .affects(&["dr_jwt_secret_arn", "dr_encryption_key_secret_arn"]),
    Guard::new(
        "web_acl",
        "after promotion, the regional web ACL as the edge block says",
        "Once promoted, with `edge.waf`, the regional WAF web ACL `idis-<name>` in the DR region for the DR site's load balancers (WAF attaches a regional web ACL only to resources of its region), made by the edge component's own code with the same rules and `rate_limit`, and judged as the primary's is; without `edge.waf`, none. `ingress_annotations` names it once promoted.",
    )
    .when(When::On("promote"))
    .affects(&["dr_web_acl_arn"]),
];

/// The DR site of an environment.
pub struct DisasterRecovery;

impl Component for DisasterRecovery {
    const NAME: &'static str = COMPONENT;
    const DOC: &'static str = "A disaster-recovery site in a second region, pilot light: the network, multi-Region replicas of every key, a cross-Region read replica of the database, replicated copies of the audit and documents buckets and an RPO alarm. `promote = true` makes the DR site the one that serves.";
    const AFTER: &'static [&'static str] = &[
        super::keys::COMPONENT,
        super::secrets::COMPONENT,
        super::network::COMPONENT,
        super::database::COMPONENT,
        super::cache::COMPONENT,
        super::storage::COMPONENT,
        super::documents::COMPONENT,
    ];
    type Spec = DrSpec;
    type State = DrState;
    type Outputs = DrOutputs;

    fn settings() -> Vec<Setting> {
        vec![
            Setting::new(
                "region",
                Type::String,
                Default::Null,
                "The DR region, e.g. `us-west-2`: another region of the same partition than the environment's. No DR site when unset; removing it tears the DR site down (its bucket copies are kept).".into(),
            )
            .check(Check::Text(
                is_region_name,
                "an AWS region name such as \"us-west-2\"",
            )),
            Setting::new(
                "vpc_cidr",
                Type::String,
                Default::Str(DEFAULT_VPC_CIDR),
                format!("IPv4 CIDR of the DR network, /16 to /24; apart from the primary's so the two can be peered. Default `{DEFAULT_VPC_CIDR}`."),
            )
            .check(Check::Text(
                |s| network::cidr_problem(s).is_none(),
                "a private IPv4 CIDR from /16 to /24, such as \"10.1.0.0/16\"",
            )),
            Setting::new(
                "rpo_seconds",
                Type::Number,
                Default::Int(DEFAULT_RPO_SECONDS),
                format!("The recovery point objective: the RPO alarm fires when the DR replica lags the primary by more (60 to 3600). Default `{DEFAULT_RPO_SECONDS}` (REQ-T237)."),
            )
            .check(Check::Range(60, 3600)),
            Setting::new(
                "nat_gateway",
                Type::Bool,
                Default::Bool(false),
                "One NAT gateway in the DR network before promotion. Off (pilot light): the DR network's private subnets have no route out until promotion, which makes a NAT gateway per zone as the primary has (`network.nat_gateway_per_az`). Default `false`.".into(),
            ),
            Setting::new(
                "promote",
                Type::Bool,
                Default::Bool(false),
                "Promote the DR site: the DR replica becomes a standalone database (one way), the database and cache are built up in the DR region from this environment's settings, and `app_config` points at the DR endpoints. Default `false`.".into(),
            )
            .not_recorded(),
        ]
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new("dr_vpc_id", Type::String, "ID of the DR region's VPC. Null without `dr`."),
            Output::new("dr_platform_key_arn", Type::String, "ARN of the platform key's multi-Region replica in the DR region."),
            Output::new("dr_database_arn", Type::String, "ARN of the DR database: the cross-Region read replica, standalone once promoted."),
            Output::new("dr_database_endpoint", Type::String, "Endpoint address of the DR database."),
            Output::new("dr_database_master_secret_arn", Type::String, "ARN of the RDS-managed master secret of the promoted DR database (null until promotion)."),
            Output::new("dr_database_replica_endpoints", Type::list(Type::String), "Endpoints of the promoted DR database's read replicas (null until promotion)."),
            Output::new("dr_cache_primary_endpoint", Type::String, "Primary endpoint of the DR cache (null until promotion)."),
            Output::new("dr_cache_reader_endpoint", Type::String, "Reader endpoint of the DR cache (null until promotion)."),
            Output::new("dr_cache_auth_secret_arn", Type::String, "ARN of the DR cache's AUTH token secret (null until promotion)."),
            Output::new("dr_cluster_arn", Type::String, "ARN of the EKS cluster in the DR region (null until promotion)."),
            Output::new("dr_cluster_endpoint", Type::String, "Kubernetes API server endpoint of the DR cluster (null until promotion)."),
            Output::new("dr_cluster_certificate_authority_data", Type::String, "Base64 CA certificate of the DR cluster's API server (null until promotion)."),
            Output::new("dr_audit_bucket_name", Type::String, "Name of the audit bucket's copy in the DR region."),
            Output::new("dr_documents_bucket_name", Type::String, "Name of the documents bucket's copy in the DR region."),
            Output::new("dr_replication_role_arn", Type::String, "ARN of the IAM role S3 replicates the buckets with."),
            Output::new("dr_alarm_topic_arn", Type::String, "ARN of the DR region's alarm topic (the RPO alarm notifies it); subscribe the on-call rotation to it."),
            Output::new("dr_jwt_secret_arn", Type::String, "ARN of `IDIS_JWT_SECRET`'s replica in the DR region (`secret_refs` names it once promoted)."),
            Output::new("dr_encryption_key_secret_arn", Type::String, "ARN of `IDIS_ENCRYPTION_KEY`'s replica in the DR region (`secret_refs` names it once promoted)."),
            Output::new("dr_oidc_provider_arn", Type::String, "ARN of the DR cluster's IAM OIDC provider (null until promotion)."),
            Output::new("dr_api_role_arn", Type::String, "IAM role `idis-<name>-dr-api` of the API and workers on the DR cluster (null until promotion; the manifests' service account names it once promoted)."),
            Output::new("dr_external_secrets_role_arn", Type::String, "IAM role `idis-<name>-dr-external-secrets` the DR cluster's `SecretStore` reads the DR region's secrets with (null until promotion)."),
            Output::new("dr_load_balancer_controller_role_arn", Type::String, "IAM role of the AWS Load Balancer Controller on the DR cluster (null until promotion)."),
            Output::new("dr_ebs_csi_driver_role_arn", Type::String, "IAM role the DR cluster's `aws-ebs-csi-driver` add-on runs with (null until promotion)."),
            Output::new("dr_cluster_autoscaler_role_arn", Type::String, "IAM role of the cluster autoscaler on the DR cluster (null until promotion)."),
            Output::new("dr_web_acl_arn", Type::String, "ARN of the regional WAF web ACL for the DR site's load balancers (null until promotion, and without `edge.waf`; `ingress_annotations` names it once promoted)."),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn check(config: &Value) -> Vec<Problem> {
        let dr = config.get_attr(COMPONENT);
        let region = dr.get_attr("region");
        if region.is_null() && dr.get_attr("promote").as_bool() == Some(true) {
            return vec![Problem::at(
                "promote",
                dr.get_attr("promote"),
                "false without dr.region: there is no DR site to promote",
            )];
        }
        match (region.as_str(), config.get_attr("region").as_str()) {
            (Some(dr_region), Some(primary)) if dr_region == primary => vec![Problem::at(
                "region",
                region,
                format!("a region other than the environment's own ({primary})"),
            )],
            (Some(dr_region), Some(primary)) if partition(dr_region) != partition(primary) => {
                vec![Problem::at(
                    "region",
                    region,
                    format!(
                        "a region of the environment's partition ({}): KMS replicates keys and RDS and S3 replicate data only within one",
                        partition(primary)
                    ),
                )]
            }
            _ => Vec::new(),
        }
    }

    fn plan_outputs(prior: &Value, planned: &mut Value) {
        let dr = planned.get_attr(COMPONENT).clone();
        let region = dr.get_attr("region").clone();
        let prior_dr = prior.get_attr(COMPONENT);
        let names: Vec<&str> = Self::outputs().iter().map(|o| o.name).collect();
        if region.is_null() {
            for name in names {
                planned.set_attr(name, Value::Null);
            }
            return;
        }
        let moved = !region.is_known() || prior_dr.get_attr("region") != &region;
        let promoting = dr.get_attr("promote") != prior_dr.get_attr("promote");
        for name in names {
            let promoted_output = matches!(
                name,
                "dr_database_endpoint"
                    | "dr_database_master_secret_arn"
                    | "dr_database_replica_endpoints"
                    | "dr_cache_primary_endpoint"
                    | "dr_cache_reader_endpoint"
                    | "dr_cache_auth_secret_arn"
                    | "dr_cluster_arn"
                    | "dr_cluster_endpoint"
                    | "dr_cluster_certificate_authority_data"
                    | "dr_oidc_provider_arn"
                    | "dr_api_role_arn"
                    | "dr_external_secrets_role_arn"
                    | "dr_load_balancer_controller_role_arn"
                    | "dr_ebs_csi_driver_role_arn"
                    | "dr_cluster_autoscaler_role_arn"
                    | "dr_web_acl_arn"
                    | "dr_vpc_id"
            );
            // A replica made by this apply (none in the state yet).
            let new_replica = matches!(name, "dr_jwt_secret_arn" | "dr_encryption_key_secret_arn")
                && prior.get_attr(name).is_null();
            if moved || new_replica || (promoting && promoted_output) {
                planned.set_attr(name, Value::Unknown);
            }
        }
        // The VPC stays through a promotion.
        if !moved {
            planned.set_attr("dr_vpc_id", prior.get_attr("dr_vpc_id").clone());
        }
    }

    fn judge(prior: &Value, planned: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        let before = prior.get_attr(COMPONENT);
        let after = planned.get_attr(COMPONENT);
        let (was, now) = (before.get_attr("region"), after.get_attr("region"));
        if let (Some(was), Some(now)) = (was.as_str(), now.as_str()) {
            if was != now {
                d.push(Diagnostic::error(
                    "The DR region cannot move in one step",
                    format!("dr.region would change from {was:?} to {now:?}. Remove the dr block and apply (the DR site in {was} is torn down, its bucket copies kept), then set the new region."),
                ).at(crate::protocol::cty::Path::root().attr(COMPONENT).attr("region")));
            }
        }
        if before.get_attr("promote").as_bool() == Some(true) && now.is_null() {
            if let Some(was) = was.as_str() {
                d.push(Diagnostic::error(
                    "A promoted DR site cannot be removed",
                    format!("The dr block would go, but the DR site in {was} was promoted: it holds the database, cache and cluster that serve (app_config points at them), and removing dr would delete them. Keep the dr block; to retire the environment, destroy it (the promoted database's final snapshot is kept)."),
                ).at(crate::protocol::cty::Path::root().attr(COMPONENT).attr("region")));
            }
        }
        if before.get_attr("promote").as_bool() == Some(true)
            && after.get_attr("promote").as_bool() == Some(false)
            && now.as_str().is_some()
        {
            d.push(Diagnostic::error(
                "A promoted DR site cannot be demoted",
                "dr.promote would go from true to false: RDS cannot make a promoted instance a read replica again. Keep promote = true; to fail back, build a new environment in the original region from the DR site.",
            ).at(crate::protocol::cty::Path::root().attr(COMPONENT).attr("promote")));
        }
        if after.get_attr("promote").as_bool() == Some(true)
            && before.get_attr("promote").as_bool() != Some(true)
            && now.as_str().is_some()
        {
            d.push(Diagnostic::warning(
                "Promoting the DR site (one way)",
                format!(
                    "dr.promote = true: the read replica in {} stops replicating from the primary and becomes a standalone database (RDS cannot undo this); the database and cache are built up there from this environment's settings (Multi-AZ, retention, read replicas, a NAT gateway per zone as the primary has), and app_config, secret_refs and the manifests switch to the DR endpoints. The EKS cluster and its node group are made there from the cluster block, after the NAT gateways, with its own OIDC provider and service-account roles idis-<name>-dr-<role> (the manifests' service accounts name them) and the EBS CSI driver; with edge.waf, the regional web ACL idis-<name> there, which ingress_annotations then names. The primary region's resources are left as they are.",
                    now.as_str().unwrap_or_default()
                ),
            ));
        }
        d
    }

    fn on_destroy(prior: &Value) -> Diagnostics {
        match prior.get_attr(COMPONENT).get_attr("region").as_str() {
            Some(region) => Diagnostic::warning(
                "The DR site goes too",
                format!("Destroy tears down the DR site in {region}: replication stops, the DR database, cluster, cache, web ACL, network, alarm and role are deleted and the replica keys scheduled for deletion; the audit and documents copies there are kept."),
            )
            .into(),
            None => Diagnostics::new(),
        }
    }

    fn read(state: &DrState, stored: &DrSpec, prior: &Value) -> Reading<DrSpec, DrOutputs> {
        let Some(region) = state.region.clone() else {
            // No DR site: nothing in AWS to read the settings from; they
            // stay as stored, or take their defaults where the state has
            // no `dr` block (a state from before it).
            return Reading {
                settings: DrSpec {
                    region: None,
                    vpc_cidr: if stored.vpc_cidr.is_empty() {
                        DEFAULT_VPC_CIDR.to_string()
                    } else {
                        stored.vpc_cidr.clone()
                    },
                    rpo_seconds: if stored.rpo_seconds == 0 {
                        DEFAULT_RPO_SECONDS
                    } else {
                        stored.rpo_seconds
                    },
                    ..stored.clone()
                },
                outputs: DrOutputs::default(),
                verdicts: Verdicts::new(),
            };
        };
        let settings = DrSpec {
            region: Some(region),
            vpc_cidr: state
                .network
                .as_ref()
                .map(|n| n.vpc_cidr.clone())
                .unwrap_or_else(|| stored.vpc_cidr.clone()),
            rpo_seconds: state
                .alarm
                .as_ref()
                .filter(|_| !stored.promote)
                .map(|a| a.threshold as i64)
                .unwrap_or(stored.rpo_seconds),
            // Before promotion, whether the DR network has a NAT gateway;
            // after, every zone has one, as the primary's.
            nat_gateway: match (&state.network, stored.promote) {
                (Some(n), false) => !n.nat_gateway_ids.is_empty(),
                _ => stored.nat_gateway,
            },
            promote: stored.promote,
        };
        // The promoted site's cluster is judged against the cluster block
        // as stored (none on import: then only its guards are judged).
        let verdicts = judge(state, stored, &Blocks::stored(prior));
        let promoted = state.promoted.as_ref();
        let outputs = DrOutputs {
            dr_vpc_id: state.network.as_ref().map(|n| n.vpc_id.clone()),
            dr_platform_key_arn: state.keys.get(PLATFORM).map(|k| k.arn.clone()),
            dr_database_arn: state.database.as_ref().map(|d| d.arn.clone()),
            dr_database_endpoint: state.database.as_ref().and_then(|d| d.endpoint.clone()),
            dr_database_master_secret_arn: promoted.and_then(|p| p.master_secret_arn.clone()),
            dr_database_replica_endpoints: promoted.map(|p| p.replica_endpoints.clone()),
            dr_cache_primary_endpoint: state
                .cache
                .as_ref()
                .and_then(|c| c.primary_endpoint.clone()),
            dr_cache_reader_endpoint: state.cache.as_ref().and_then(|c| c.reader_endpoint.clone()),
            dr_cache_auth_secret_arn: state.cache.as_ref().and_then(|c| c.auth_secret_arn.clone()),
            dr_cluster_arn: state.cluster.as_ref().map(|c| c.arn.clone()),
            dr_cluster_endpoint: state.cluster.as_ref().and_then(|c| c.endpoint.clone()),
            dr_cluster_certificate_authority_data: state
                .cluster
                .as_ref()
                .and_then(|c| c.certificate_authority_data.clone()),
            dr_audit_bucket_name: state.audit.as_ref().map(|b| b.bucket.clone()),
            dr_documents_bucket_name: state.documents.as_ref().map(|b| b.bucket.clone()),
            dr_replication_role_arn: state.role.as_ref().map(|r| r.arn.clone()),
            dr_alarm_topic_arn: state.topic_arn.clone(),
            dr_jwt_secret_arn: secret_replica_arn(state, AppSecret::Jwt),
            dr_encryption_key_secret_arn: secret_replica_arn(state, AppSecret::EncryptionKey),
            dr_oidc_provider_arn: state
                .identity
                .as_ref()
                .and_then(|i| i.oidc.as_ref())
                .map(|o| o.arn.clone()),
            dr_api_role_arn: site_role_arn(state, Role::Api),
            dr_external_secrets_role_arn: site_role_arn(state, Role::ExternalSecrets),
            dr_load_balancer_controller_role_arn: site_role_arn(
                state,
                Role::LoadBalancerController,
            ),
            dr_ebs_csi_driver_role_arn: site_role_arn(state, Role::EbsCsiDriver),
            dr_cluster_autoscaler_role_arn: site_role_arn(state, Role::ClusterAutoscaler),
            dr_web_acl_arn: state.web_acl.as_ref().map(|a| a.arn.clone()),
        };
        Reading {
            settings,
            outputs,
            verdicts,
        }
    }

    async fn find(ctx: &Ctx) -> Result<Option<DrState>, ComponentError> {
        let Some(region) = dr_region(ctx).await? else {
            return Ok(None);
        };
        let keys = keys::find(ctx).await?.unwrap_or_default();
        Ok(Some(observe(ctx, &region, &keys).await?))
    }

    fn absent() -> Option<DrState> {
        Some(DrState::default())
    }

    async fn ensure(ctx: &Ctx, spec: &DrSpec, built: &Observed) -> Result<DrState, ComponentError> {
        Box::pin(ensure(ctx, spec, built)).await
    }

    async fn delete(ctx: &Ctx, spec: &DrSpec) -> Result<Vec<String>, ComponentError> {
        let region = match &spec.region {
            Some(region) => Some(region.clone()),
            None => dr_region(ctx).await?,
        };
        match region {
            Some(region) => Box::pin(tear_down(ctx, &region)).await,
            None => Ok(Vec::new()),
        }
    }
}

// ---------------------------------------------------------------------------
// Judging

/// What the promoted site is judged against of the environment's other
/// blocks, as stored.
struct Blocks {
    /// None on import: then only the cluster's guards are judged.
    cluster: Option<ClusterSpec>,
    /// The workload_identity block (the DR cluster's roles trust its
    /// service accounts); None on import: then the roles' trust and
    /// permissions are not judged.
    identity: Option<IdentitySpec>,
    /// The database block's instance class, which the replica is made with.
    database_class: Option<String>,
    log_retention_days: i64,
    /// The edge block (the DR web ACL's rules); None on import: then the
    /// web ACL found is judged, and its absence is not.
    edge: Option<EdgeSpec>,
}

impl std::default::Default for Blocks {
    fn default() -> Blocks {
        Blocks {
            cluster: None,
            identity: None,
            database_class: None,
            log_retention_days: logs::DEFAULT_RETENTION_DAYS,
            edge: None,
        }
    }
}

impl Blocks {
    fn stored(prior: &Value) -> Blocks {
        let monitoring: Option<MonitoringSpec> =
            crate::protocol::cty::from_value(prior.get_attr(monitoring::COMPONENT)).ok();
        Blocks {
            cluster: crate::protocol::cty::from_value(prior.get_attr(cluster::COMPONENT)).ok(),
            identity: crate::protocol::cty::from_value(prior.get_attr(identity::COMPONENT)).ok(),
            database_class: prior
                .get_attr(database::COMPONENT)
                .get_attr("instance_class")
                .as_str()
                .map(str::to_string),
            log_retention_days: monitoring
                .map(|m| m.log_retention_days)
                .filter(|d| *d > 0)
                .unwrap_or(logs::DEFAULT_RETENTION_DAYS),
            edge: crate::protocol::cty::from_value(prior.get_attr(edge::COMPONENT)).ok(),
        }
    }
}

/// The promoted site's log groups: the cluster's, the database's and the
/// cache's, made before their writers as the primary's are.
fn log_groups(dr: &Ctx) -> Vec<String> {
    let mut groups = vec![logs::eks_group(dr)];
    groups.extend(logs::database_groups(dr));
    groups.extend(logs::cache_groups(dr));
    groups
}

/// The problems of the log groups, by the group each concerns.
fn log_group_problems(state: &DrState, retention: i64) -> Vec<(String, String)> {
    let platform = state.keys.get(PLATFORM).map(|k| {
        let id = k.arn.rsplit('/').next().unwrap_or_default().to_string();
        (id, k.arn.clone())
    });
    state
        .log_groups
        .iter()
        .flat_map(|(name, group)| {
            let one = LogsState {
                groups: BTreeMap::from([(name.clone(), group.clone())]),
                platform: platform.clone(),
                ..LogsState::default()
            };
            logs::problems(&one, retention)
                .groups
                .into_iter()
                .map(move |p| (name.clone(), p))
        })
        .collect()
}

fn judge(state: &DrState, spec: &DrSpec, blocks: &Blocks) -> Verdicts {
    let mut v = Verdicts::new();
    let [network_guard, keys_guard, database_guard, copies_guard, replication_guard, cluster_guard, alarm_guard, secrets_guard, web_acl_guard] =
        GUARDS
    else {
        return v;
    };
    let region = state.region.as_deref().unwrap_or_default();

    match &state.network {
        None => v.problem(network_guard, format!("no DR network in {region}")),
        Some(n) => v.judge(
            network_guard,
            n.verdicts
                .failing()
                .map(|(key, problems)| format!("{key}: {}", problems.join("; "))),
        ),
    }

    let mut key_problems = Vec::new();
    for name in &state.primary_keys {
        match state.keys.get(name) {
            None => key_problems.push(format!("key {name} has no replica in {region}")),
            Some(k) => {
                if !k.replica_of_primary {
                    key_problems.push(format!(
                        "{} is not a replica of the environment's key {name}",
                        k.arn
                    ));
                }
                if !k.enabled {
                    key_problems.push(format!("the replica of key {name} is not enabled"));
                }
                if !k.aliased {
                    key_problems.push(format!(
                        "the replica of key {name} has no alias in {region}"
                    ));
                }
            }
        }
    }
    v.judge(keys_guard, key_problems);

    let replica_key = state.keys.get(PLATFORM).map(|k| k.arn.as_str());
    let mut db_problems = Vec::new();
    match &state.database {
        None => db_problems.push(format!("no DR database in {region}")),
        Some(db) => {
            match (&db.source, spec.promote) {
                (Some(source), false) if source != &state.primary_database_arn => {
                    db_problems.push(format!(
                        "replicates from {source}, not the primary {}",
                        state.primary_database_arn
                    ))
                }
                (None, false) => db_problems.push(
                    "was promoted outside Terraform (it no longer replicates); set dr.promote = true"
                        .to_string(),
                ),
                (Some(_), true) => db_problems.push("is still a read replica".to_string()),
                _ => {}
            }
            if !spec.promote {
                db_problems.extend(replica_problems(
                    db,
                    blocks.database_class.as_deref(),
                    state
                        .network
                        .as_ref()
                        .map(|n| n.database_security_group_id.as_str())
                        .filter(|g| !g.is_empty()),
                ));
            }
            if db.kms_key_id.as_deref() != replica_key {
                db_problems.push(format!(
                    "is encrypted with {}, not the platform key's replica",
                    db.kms_key_id.as_deref().unwrap_or("no key")
                ));
            }
        }
    }
    let log_problems = if spec.promote {
        log_group_problems(state, blocks.log_retention_days)
    } else {
        Vec::new()
    };
    let is_cluster_group = |name: &str| name.starts_with("/aws/eks/");
    if spec.promote {
        db_problems.extend(
            log_problems
                .iter()
                .filter(|(name, _)| !is_cluster_group(name))
                .map(|(_, p)| p.clone()),
        );
        if let Some(p) = &state.promoted {
            db_problems.extend(
                p.verdicts
                    .failing()
                    .map(|(key, problems)| format!("{key}: {}", problems.join("; "))),
            );
        }
        if state.cache.is_none() {
            db_problems.push(format!("no DR cache in {region}"));
        }
    }
    v.judge(database_guard, db_problems);

    if spec.promote {
        v.judge(
            cluster_guard,
            match &state.cluster {
                None => vec![format!("no DR cluster in {region}")],
                Some(c) => {
                    let mut problems: Vec<String> = blocks
                        .cluster
                        .as_ref()
                        .map(|wanted| cluster_settings_problems(c, wanted))
                        .unwrap_or_default();
                    problems.extend(
                        log_problems
                            .iter()
                            .filter(|(name, _)| is_cluster_group(name))
                            .map(|(_, p)| p.clone()),
                    );
                    problems.extend(
                        c.verdicts
                            .failing()
                            .map(|(key, problems)| format!("{key}: {}", problems.join("; "))),
                    );
                    problems.extend(identity_problems(state, blocks.identity.as_ref()));
                    problems
                }
            },
        );
    }

    let mut copy_problems = Vec::new();
    for (what, verdicts) in [
        ("audit copy", state.audit.as_ref().map(|a| &a.verdicts)),
        (
            "documents copy",
            state.documents.as_ref().map(|d| &d.verdicts),
        ),
    ] {
        match verdicts {
            None => copy_problems.push(format!("no {what} in {region}")),
            Some(verdicts) => copy_problems.extend(
                verdicts
                    .failing()
                    .map(|(key, p)| format!("{what} {key}: {}", p.join("; "))),
            ),
        }
    }
    v.judge(copies_guard, copy_problems);

    let mut replication_problems = Vec::new();
    match &state.role {
        None => replication_problems.push("no replication role".to_string()),
        Some(_) => replication_problems.extend(
            state
                .role_problems
                .iter()
                .map(|p| format!("replication role: {p}")),
        ),
    }
    for (bucket, problems) in &state.replication {
        replication_problems.extend(problems.iter().map(|p| format!("{bucket}: {p}")));
    }
    v.judge(replication_guard, replication_problems);

    let mut alarm_problems = Vec::new();
    if state.topic_arn.is_none() {
        alarm_problems.push("no DR alarm topic".to_string());
    } else if let Some(problem) = topic_key_problem(state.topic_key.as_deref(), replica_key) {
        alarm_problems.push(problem);
    }
    if !spec.promote {
        match &state.alarm {
            None => alarm_problems.push("no RPO alarm".to_string()),
            Some(a) => {
                if a.shape != rpo_alarm_shape() {
                    alarm_problems.push(format!(
                        "the RPO alarm judges {}, not {}",
                        a.shape,
                        rpo_alarm_shape()
                    ));
                }
                if a.metric != "ReplicaLag" {
                    alarm_problems.push(format!(
                        "the RPO alarm watches {}, not ReplicaLag",
                        a.metric
                    ));
                }
                if let Some(db) = &state.database {
                    if !db.arn.ends_with(&format!(":db:{}", a.instance)) {
                        alarm_problems.push(format!(
                            "the RPO alarm watches the instance {:?}, not the DR database",
                            a.instance
                        ));
                    }
                }
                if state
                    .topic_arn
                    .as_ref()
                    .is_some_and(|t| !a.actions.contains(t))
                {
                    alarm_problems
                        .push("the RPO alarm does not notify the DR alarm topic".to_string());
                }
            }
        }
    }
    v.judge(alarm_guard, alarm_problems);

    let env = state.env.as_str();
    let alias = keys::alias_of(env, PLATFORM);
    v.judge(
        secrets_guard,
        state.secrets.iter().flat_map(|(which, replica)| {
            secrets::replica_problems(env, region, *which, replica, replica_key, &alias)
        }),
    );

    if spec.promote {
        v.judge(
            web_acl_guard,
            web_acl_problems(state.web_acl.as_ref(), blocks.edge.as_ref(), region),
        );
    }
    v
}

/// How the promoted site's regional web ACL differs from the edge block.
fn web_acl_problems(
    acl: Option<&RegionalAcl>,
    edge: Option<&EdgeSpec>,
    region: &str,
) -> Vec<String> {
    match (acl, edge.map(|e| (e.waf, e.rate_limit))) {
        (None, Some((true, _))) => vec![format!("no regional web ACL in {region}")],
        (None, _) => Vec::new(),
        (Some(acl), Some((false, _))) => vec![format!(
            "the web ACL {} is there though edge.waf is false",
            acl.arn
        )],
        (Some(acl), wanted) => {
            let mut problems = acl.problems.clone();
            if let (Some(have), Some((_, limit))) = (acl.rate_limit, wanted) {
                if have != limit {
                    problems.push(format!(
                        "the rate rule blocks above {have} requests, not rate_limit = {limit}"
                    ));
                }
            }
            problems
        }
    }
}

/// How the DR cluster's workload identity differs from the primary's
/// shape, with the DR site's resources: the OIDC provider and tags, and
/// with the workload_identity block, every role's trust and permissions.
fn identity_problems(state: &DrState, spec: Option<&IdentitySpec>) -> Vec<String> {
    let Some(found) = &state.identity else {
        return vec!["no workload identity for the DR cluster".to_string()];
    };
    let mut v = found.verdicts.clone();
    if let Some(spec) = spec {
        identity::policy_verdicts(found, &site_targets(state, &found.account_id), spec, &mut v);
    }
    v.failing()
        .map(|(key, problems)| format!("workload identity {key}: {}", problems.join("; ")))
        .collect()
}

/// What the DR cluster's roles may use: the DR site's own network, replica
/// keys, bucket copies and secrets (the promoted database's and cache's,
/// the application secrets' replicas).
fn site_targets(state: &DrState, account: &str) -> identity::Targets {
    let region = state.region.as_deref().unwrap_or_default();
    let mut t = identity::Targets::new(&state.env, account, region);
    t.vpc_id = state.network.as_ref().map(|n| n.vpc_id.clone());
    t.platform_key = state.keys.get(PLATFORM).map(|k| k.arn.clone());
    t.keys = state.keys.values().map(|k| k.arn.clone()).collect();
    if let Some(d) = &state.documents {
        t.documents_bucket = d.arn.clone();
    }
    t.audit_bucket = state.audit.as_ref().map(|a| a.arn.clone());
    t.secrets = state
        .promoted
        .iter()
        .filter_map(|p| p.master_secret_arn.clone())
        .chain(state.cache.iter().filter_map(|c| c.auth_secret_arn.clone()))
        .chain(
            AppSecret::ALL
                .iter()
                .filter_map(|w| secret_replica_arn(state, *w)),
        )
        .collect();
    t.normalise();
    t
}

/// The ARN of the DR cluster's role `role`, when it exists.
fn site_role_arn(state: &DrState, role: Role) -> Option<String> {
    state
        .identity
        .as_ref()
        .and_then(|i| i.roles.get(&role))
        .map(|r| r.arn.clone())
}

/// The ARN of the replica of `which` in the DR region, when it is one.
fn secret_replica_arn(state: &DrState, which: AppSecret) -> Option<String> {
    state
        .secrets
        .iter()
        .find(|(w, _)| *w == which)
        .and_then(|(_, r)| r.arn.clone().filter(|_| r.primary_region.is_some()))
}

/// How the promoted site's cluster differs from the cluster block: the
/// settings an apply converges it to, as the primary's (the node group's
/// desired size is the autoscaler's, not judged).
fn cluster_settings_problems(c: &ClusterState, wanted: &ClusterSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let version =
        super::describe::version_setting(&wanted.kubernetes_version, Some(&c.kubernetes_version));
    if version != wanted.kubernetes_version {
        problems.push(format!(
            "runs Kubernetes {}, not {}",
            c.kubernetes_version, wanted.kubernetes_version
        ));
    }
    if c.endpoint_public_access != wanted.endpoint_public_access {
        problems.push(format!(
            "public endpoint access is {}, not {}",
            c.endpoint_public_access, wanted.endpoint_public_access
        ));
    }
    if c.node_group_arn.is_none() {
        problems.push(format!("no node group {}-default", c.name));
        return problems;
    }
    if c.node_instance_types != wanted.node_instance_types {
        problems.push(format!(
            "the nodes are {}, not {}",
            c.node_instance_types.join(", "),
            wanted.node_instance_types.join(", ")
        ));
    }
    if (c.node_min_size, c.node_max_size) != (wanted.node_min_size, wanted.node_max_size) {
        problems.push(format!(
            "the node group scales {} to {}, not {} to {}",
            c.node_min_size, c.node_max_size, wanted.node_min_size, wanted.node_max_size
        ));
    }
    problems
}

// ---------------------------------------------------------------------------
// Finding

async fn read_log_groups(dr: &Ctx) -> Result<BTreeMap<String, Option<Group>>, ComponentError> {
    let mut groups = BTreeMap::new();
    for name in log_groups(dr) {
        let group = logs::read_group(dr, COMPONENT, &name).await?;
        groups.insert(name, group);
    }
    Ok(groups)
}

/// The environment's context in the DR region.
pub fn in_region(ctx: &Ctx, region: &str) -> Ctx {
    Ctx {
        aws: Arc::new(ctx.aws.with_region(region)),
        region: region.to_string(),
        dr_site: true,
        ..ctx.clone()
    }
}

/// `arn:...:<primary region>:...` with the DR region: a multi-Region
/// replica's ARN (same key id).
fn replica_arn(primary_arn: &str, primary_region: &str, region: &str) -> String {
    primary_arn.replacen(&format!(":{primary_region}:"), &format!(":{region}:"), 1)
}

fn primary_database_arn(ctx: &Ctx) -> String {
    format!(
        "arn:{}:rds:{}:{}:db:{}",
        partition(&ctx.region),
        ctx.region,
        ctx.account_id,
        database::identifier(ctx)
    )
}

async fn describe_key(ctx: &Ctx, key: &str) -> Result<Option<KeyMetadata>, ComponentError> {
    match ctx.aws.kms().describe_key().key_id(key).send().await {
        Ok(out) => Ok(out.key_metadata().cloned()),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(COMPONENT, format!("describe the key {key}"), e)),
    }
}

fn pending_deletion(meta: &KeyMetadata) -> bool {
    matches!(
        meta.key_state(),
        Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
    )
}

/// The region of the environment's DR site: where the platform key has a
/// replica that is not pending deletion.
async fn dr_region(ctx: &Ctx) -> Result<Option<String>, ComponentError> {
    let alias = keys::alias_name(ctx, PLATFORM);
    let Some(primary) = describe_key(ctx, &alias).await? else {
        return Ok(None);
    };
    let replicas: Vec<String> = primary
        .multi_region_configuration()
        .map(|c| {
            c.replica_keys()
                .iter()
                .filter_map(|k| k.region().map(str::to_string))
                .filter(|r| r != &ctx.region)
                .collect()
        })
        .unwrap_or_default();
    for region in replicas {
        let dr = in_region(ctx, &region);
        let arn = replica_arn(primary.arn().unwrap_or_default(), &ctx.region, &region);
        if let Some(replica) = describe_key(&dr, &arn).await? {
            if !pending_deletion(&replica) {
                return Ok(Some(region));
            }
        }
    }
    Ok(None)
}

/// The primary's keys by name (`platform` first).
fn primary_keys(keys: &KeysState) -> BTreeMap<String, String> {
    let mut all = keys.tenant_key_arns.clone();
    if !keys.platform_key_arn.is_empty() {
        all.insert(PLATFORM.to_string(), keys.platform_key_arn.clone());
    }
    all
}

async fn read_replica_keys(
    ctx: &Ctx,
    dr: &Ctx,
    keys: &KeysState,
) -> Result<BTreeMap<String, ReplicaKey>, ComponentError> {
    let mut found = BTreeMap::new();
    for (name, primary_arn) in primary_keys(keys) {
        let arn = replica_arn(&primary_arn, &ctx.region, &dr.region);
        let Some(meta) = describe_key(dr, &arn).await? else {
            continue;
        };
        if pending_deletion(&meta) {
            continue;
        }
        let config = meta.multi_region_configuration();
        let replica_of_primary = config.is_some_and(|c| {
            c.multi_region_key_type() == Some(&MultiRegionKeyType::Replica)
                && c.primary_key().and_then(|p| p.arn()) == Some(primary_arn.as_str())
        });
        let aliased = describe_key(dr, &keys::alias_name(dr, &name))
            .await?
            .is_some_and(|m| m.arn() == Some(arn.as_str()));
        found.insert(
            name,
            ReplicaKey {
                arn: arn.clone(),
                enabled: meta.key_state() == Some(&KeyState::Enabled),
                replica_of_primary,
                aliased,
            },
        );
    }
    Ok(found)
}

/// The DR database, None when absent or being deleted.
async fn describe_db(dr: &Ctx) -> Result<Option<DbInstance>, ComponentError> {
    Ok(
        database::describe_instance(&dr.aws.rds(), &database::identifier(dr), COMPONENT)
            .await?
            .filter(|db| db.db_instance_status() != Some("deleting")),
    )
}

fn dr_database(db: &DbInstance) -> DrDatabase {
    DrDatabase {
        arn: db.db_instance_arn().unwrap_or_default().to_string(),
        endpoint: db.endpoint().and_then(|e| e.address()).map(str::to_string),
        status: db.db_instance_status().unwrap_or_default().to_string(),
        source: db
            .read_replica_source_db_instance_identifier()
            .map(str::to_string),
        kms_key_id: db.kms_key_id().map(str::to_string),
        instance_class: db.db_instance_class().unwrap_or_default().to_string(),
        multi_az: db.multi_az().unwrap_or(false),
        publicly_accessible: db.publicly_accessible().unwrap_or(false),
        security_groups: db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .map(str::to_string)
            .collect(),
    }
}

/// How the unpromoted replica differs from what is made: the primary's
/// instance class (`class`, when known), in the DR network's database
/// security group alone (`group`, when the network is there), single-AZ
/// and private.
fn replica_problems(db: &DrDatabase, class: Option<&str>, group: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(class) = class.filter(|c| *c != db.instance_class) {
        problems.push(format!(
            "is a {}, not the primary's {class}",
            db.instance_class
        ));
    }
    if let Some(group) = group.filter(|g| db.security_groups != [g.to_string()]) {
        problems.push(format!(
            "is in the security groups [{}], not the DR network's database group {group}",
            db.security_groups.join(", ")
        ));
    }
    if db.multi_az {
        problems.push("is Multi-AZ (a replica is single-AZ until promotion)".to_string());
    }
    if db.publicly_accessible {
        problems.push("is publicly accessible".to_string());
    }
    problems
}

fn role_name(ctx: &Ctx) -> String {
    format!("{}-replication", ctx.prefix())
}

fn topic_name(ctx: &Ctx) -> String {
    format!("{}-dr-alarms", ctx.prefix())
}

fn alarm_name(ctx: &Ctx) -> String {
    format!("{}-dr-replica-lag", ctx.prefix())
}

fn bucket_arn(region: &str, bucket: &str) -> String {
    format!("arn:{}:s3:::{bucket}", partition(region))
}

/// The sources and their copies: (source, copy) bucket names.
fn bucket_pairs(ctx: &Ctx, dr: &Ctx) -> [(String, String); 2] {
    [
        (storage::bucket_name(ctx), storage::bucket_name(dr)),
        (documents::bucket_name(ctx), documents::bucket_name(dr)),
    ]
}

/// The replication role (S3 User Guide, "Setting up permissions for live
/// replication"; "Replicating encrypted objects": decrypt with the source
/// key via S3 in the source region, encrypt with the replica key via S3
/// in the destination region).
fn role_wanted(ctx: &Ctx, dr: &Ctx, source_key: &str, replica_key: &str) -> Wanted {
    let pairs = bucket_pairs(ctx, dr);
    let sources: Vec<String> = pairs
        .iter()
        .map(|(source, _)| bucket_arn(&ctx.region, source))
        .collect();
    let source_objects: Vec<String> = sources.iter().map(|b| format!("{b}/*")).collect();
    let copies: Vec<String> = pairs
        .iter()
        .map(|(_, copy)| format!("{}/*", bucket_arn(&dr.region, copy)))
        .collect();
    Wanted {
        name: role_name(ctx),
        description: format!(
            "IDIS environment {}: S3 replication of the audit and documents buckets to the DR region {}",
            ctx.env, dr.region
        ),
        trust: json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }],
        }),
        inline: Some((
            ROLE_POLICY,
            json!({
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadSourceConfiguration",
                        "Effect": "Allow",
                        "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                        "Resource": sources,
                    },
                    {
                        "Sid": "ReadSourceObjects",
                        "Effect": "Allow",
                        "Action": [
                            "s3:GetObjectVersionForReplication",
                            "s3:GetObjectVersionAcl",
                            "s3:GetObjectVersionTagging",
                            "s3:GetObjectRetention",
                            "s3:GetObjectLegalHold",
                        ],
                        "Resource": source_objects,
                    },
                    {
                        "Sid": "WriteCopies",
                        "Effect": "Allow",
                        "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                        "Resource": copies,
                    },
                    {
                        "Sid": "DecryptSource",
                        "Effect": "Allow",
                        "Action": "kms:Decrypt",
                        "Resource": source_key,
                        "Condition": {"StringLike": {"kms:ViaService": format!("s3.{}.amazonaws.com", ctx.region)}},
                    },
                    {
                        "Sid": "EncryptCopies",
                        "Effect": "Allow",
                        "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                        "Resource": replica_key,
                        "Condition": {"StringLike": {"kms:ViaService": format!("s3.{}.amazonaws.com", dr.region)}},
                    },
                ],
            }),
        )),
        attached: Vec::new(),
    }
}

/// Our rule on `source`, judged: None when the bucket has no replication
/// configuration at all.
async fn read_replication(
    ctx: &Ctx,
    source: &str,
) -> Result<Option<ReplicationConfiguration>, ComponentError> {
    match ctx
        .aws
        .s3()
        .get_bucket_replication()
        .bucket(source)
        .send()
        .await
    {
        Ok(out) => Ok(out.replication_configuration().cloned()),
        Err(e)
            if is_not_found(&e)
                || e.code() == Some("ReplicationConfigurationNotFoundError")
                || e.code() == Some("NoSuchBucket") =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("read the replication configuration of {source}"),
            e,
        )),
    }
}

fn replication_problems(
    config: Option<&ReplicationConfiguration>,
    role_arn: Option<&str>,
    copy_arn: &str,
    replica_key: Option<&str>,
) -> Vec<String> {
    let Some(config) = config else {
        return vec!["does not replicate".to_string()];
    };
    let Some(rule) = config.rules().iter().find(|r| r.id() == Some(RULE_ID)) else {
        return vec![format!("has no replication rule {RULE_ID}")];
    };
    let mut problems = Vec::new();
    if role_arn.is_some_and(|r| config.role() != r) {
        problems.push(format!("replicates with the role {}", config.role()));
    }
    if rule.status() != &ReplicationRuleStatus::Enabled {
        problems.push(format!("rule {RULE_ID} is {}", rule.status().as_str()));
    }
    if rule.filter().is_some_and(|f| {
        f.prefix().is_some_and(|p| !p.is_empty()) || f.tag().is_some() || f.and().is_some()
    }) {
        problems.push(format!("rule {RULE_ID} replicates only part of the bucket"));
    }
    let destination = rule.destination();
    if destination.map(|d| d.bucket()) != Some(copy_arn) {
        problems.push(format!(
            "rule {RULE_ID} replicates to {}, not {copy_arn}",
            destination.map(|d| d.bucket()).unwrap_or("nowhere")
        ));
    }
    let key = destination
        .and_then(|d| d.encryption_configuration())
        .and_then(|e| e.replica_kms_key_id());
    if key != replica_key {
        problems.push(format!(
            "rule {RULE_ID} encrypts the copies with {}, not the platform key's replica",
            key.unwrap_or("no key")
        ));
    }
    let sse_kms = rule
        .source_selection_criteria()
        .and_then(|c| c.sse_kms_encrypted_objects())
        .map(|o| o.status() == &SseKmsEncryptedObjectsStatus::Enabled);
    if sse_kms != Some(true) {
        problems.push(format!("rule {RULE_ID} leaves SSE-KMS objects out"));
    }
    if destination
        .and_then(|d| d.metrics())
        .map(|m| m.status() == &MetricsStatus::Enabled)
        != Some(true)
    {
        problems.push(format!("rule {RULE_ID} has replication metrics off"));
    }
    if rule.delete_marker_replication().and_then(|d| d.status())
        == Some(&DeleteMarkerReplicationStatus::Enabled)
    {
        problems.push(format!("rule {RULE_ID} replicates delete markers"));
    }
    problems
}

/// What is wrong with the key the DR topic encrypts with, if anything:
/// it is the platform key's replica (SNS keeps the ARN, alias or id it
/// was given).
fn topic_key_problem(key: Option<&str>, replica_key: Option<&str>) -> Option<String> {
    let replica = replica_key?;
    let id = replica.rsplit('/').next().unwrap_or(replica);
    match key {
        None | Some("") => Some("the DR alarm topic is not encrypted".to_string()),
        Some(k) if k == replica || k == id || k.ends_with(&format!("key/{id}")) => None,
        Some(k) => Some(format!(
            "the DR alarm topic is encrypted with {k}, not the platform key's replica"
        )),
    }
}

/// The DR topic's ARN and the key it encrypts with, None when absent.
async fn read_topic(dr: &Ctx) -> Result<Option<(String, Option<String>)>, ComponentError> {
    let arn = format!(
        "arn:{}:sns:{}:{}:{}",
        partition(&dr.region),
        dr.region,
        dr.account_id,
        topic_name(dr)
    );
    match dr
        .aws
        .sns()
        .get_topic_attributes()
        .topic_arn(&arn)
        .send()
        .await
    {
        Ok(out) => {
            let key = out
                .attributes()
                .and_then(|a| a.get("KmsMasterKeyId"))
                .cloned();
            Ok(Some((arn, key)))
        }
        Err(e) if is_not_found(&e) || e.code() == Some("NotFound") => Ok(None),
        Err(e) => Err(aws_error(COMPONENT, format!("read the topic {arn}"), e)),
    }
}

async fn read_alarm(dr: &Ctx) -> Result<Option<AlarmSeen>, ComponentError> {
    let name = alarm_name(dr);
    let out = dr
        .aws
        .cloudwatch()
        .describe_alarms()
        .alarm_names(&name)
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("read the alarm {name}"), e))?;
    Ok(out.metric_alarms().first().map(|a| AlarmSeen {
        arn: a.alarm_arn().unwrap_or_default().to_string(),
        threshold: a.threshold().unwrap_or_default(),
        metric: a.metric_name().unwrap_or_default().to_string(),
        instance: a
            .dimensions()
            .iter()
            .find(|d| d.name() == Some("DBInstanceIdentifier"))
            .and_then(|d| d.value())
            .unwrap_or_default()
            .to_string(),
        actions: a.alarm_actions().to_vec(),
        shape: alarm_shape(
            a.namespace().unwrap_or_default(),
            a.statistic().map(|s| s.as_str()).unwrap_or_default(),
            a.period().unwrap_or_default(),
            a.datapoints_to_alarm().unwrap_or_default(),
            a.evaluation_periods().unwrap_or_default(),
            a.comparison_operator()
                .map(|c| c.as_str())
                .unwrap_or_default(),
            a.treat_missing_data().unwrap_or_default(),
            a.actions_enabled().unwrap_or(false),
        ),
    }))
}

/// Everything of the DR site in `region`, as AWS has it.
async fn observe(ctx: &Ctx, region: &str, keys: &KeysState) -> Result<DrState, ComponentError> {
    let dr = in_region(ctx, region);
    let role_name = role_name(ctx);
    let (net, replica_keys, db, audit, docs, role, topic, alarm, secret_replicas) = tokio::try_join!(
        network::find(&dr),
        read_replica_keys(ctx, &dr, keys),
        describe_db(&dr),
        storage::find(&dr),
        <DocumentsBucket as Component>::find(&dr),
        iam_role::read(ctx, COMPONENT, &role_name, Some(ROLE_POLICY)),
        read_topic(&dr),
        read_alarm(&dr),
        secrets::replicas(ctx, &dr),
    )?;
    let database = db.as_ref().map(dr_database);
    let standalone = database.as_ref().is_some_and(|d| d.source.is_none());
    let (promoted, cache, cluster, log_groups, site_identity, web_acl) = if standalone {
        let (promoted, cache, (cluster, site_identity), log_groups, web_acl) = tokio::try_join!(
            database::find(&dr),
            cache::find(&dr),
            read_cluster_and_identity(&dr),
            read_log_groups(&dr),
            edge::read_regional(&dr),
        )?;
        (
            promoted,
            cache,
            cluster,
            log_groups,
            Some(site_identity),
            web_acl,
        )
    } else {
        (None, None, None, BTreeMap::new(), None, None)
    };
    let replica_key = replica_keys.get(PLATFORM).map(|k| k.arn.clone());
    let role_problems = match (&role, &replica_key) {
        (Some(seen), Some(replica)) => iam_role::problems(
            seen,
            &role_wanted(ctx, &dr, &keys.platform_key_arn, replica),
        ),
        _ => Vec::new(),
    };
    let mut replication = BTreeMap::new();
    for (source, copy) in bucket_pairs(ctx, &dr) {
        let config = read_replication(ctx, &source).await?;
        replication.insert(
            source,
            replication_problems(
                config.as_ref(),
                role.as_ref().map(|r| r.arn.as_str()),
                &bucket_arn(region, &copy),
                replica_key.as_deref(),
            ),
        );
    }
    Ok(DrState {
        region: Some(region.to_string()),
        env: ctx.env.clone(),
        network: net,
        keys: replica_keys,
        primary_keys: primary_keys(keys).into_keys().collect(),
        primary_database_arn: primary_database_arn(ctx),
        database,
        promoted,
        cache,
        cluster,
        identity: site_identity,
        web_acl,
        log_groups,
        audit,
        documents: docs,
        role,
        role_problems,
        replication,
        topic_key: topic.as_ref().and_then(|(_, key)| key.clone()),
        topic_arn: topic.map(|(arn, _)| arn),
        alarm,
        secrets: secret_replicas,
    })
}

/// The promoted site's cluster, then its workload identity: the cluster's
/// issuer names the OIDC provider (one DescribeCluster, not two).
async fn read_cluster_and_identity(
    dr: &Ctx,
) -> Result<(Option<ClusterState>, IdentityState), ComponentError> {
    let cluster = cluster::find(dr).await?;
    let issuer = cluster.as_ref().and_then(|c| c.oidc_issuer.as_deref());
    let site_identity = identity::read(dr, issuer).await?;
    Ok((cluster, site_identity))
}

// ---------------------------------------------------------------------------
// Making

fn conflict(message: impl Into<String>) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: message.into(),
    }
}

pub async fn ensure(ctx: &Ctx, spec: &DrSpec, built: &Observed) -> Result<DrState, ComponentError> {
    let Some(region) = spec.region.clone() else {
        // No DR site wanted: tear down one that exists.
        if let Some(region) = dr_region(ctx).await? {
            tear_down(ctx, &region).await?;
        }
        return Ok(DrState::default());
    };
    if region == ctx.region {
        return Err(conflict(format!(
            "dr.region is {region}, the environment's own region; the DR site needs another"
        )));
    }
    let keys = built.need::<TenantKeys>(COMPONENT)?;
    let primary_db = built.need::<Database>(COMPONENT)?;
    let primary_network = built.need_spec::<Network>(COMPONENT)?;
    let dr = in_region(ctx, &region);

    // Keys first: everything in the DR region is encrypted with them.
    let replica_keys = ensure_replica_keys(ctx, &dr, keys).await?;
    let dr_keys = KeysState {
        platform_key_arn: replica_keys
            .get(PLATFORM)
            .cloned()
            .ok_or_else(|| conflict("the platform key has no replica after ReplicateKey"))?,
        platform_key_id: keys.platform_key_id.clone(),
        tenant_key_arns: replica_keys
            .iter()
            .filter(|(name, _)| name.as_str() != PLATFORM)
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect(),
        rotation_enabled: keys.rotation_enabled,
        ..KeysState::default()
    };

    ctx.check_cancelled(COMPONENT, "building the DR network")?;
    let found_network = network::find(&dr).await?;
    let zones = match &found_network {
        Some(n) if !n.availability_zones.is_empty() => n.availability_zones.clone(),
        _ => choose_zones(&dr).await?,
    };
    let net_spec = NetworkSpec {
        vpc_cidr: spec.vpc_cidr.clone(),
        availability_zones: zones,
        nat_gateway_per_az: spec.promote && primary_network.nat_gateway_per_az,
        without_nat: !spec.promote && !spec.nat_gateway,
    };
    let audit_spec = storage::AuditStorageSpec {
        retain_on_destroy: true,
        ..built.need_spec::<AuditBucket>(COMPONENT)?.clone()
    };
    let documents_spec = documents::DocumentsSpec {
        retain_on_destroy: true,
        ..built.need_spec::<DocumentsBucket>(COMPONENT)?.clone()
    };

    if spec.promote {
        // The recovery time: the database is what the application waits
        // for, so it is promoted first and then converged (Multi-AZ,
        // replicas) in the network as it stands, which has its subnets and
        // security groups already; beside it the cache is made, and the
        // network gets its NAT gateways and then the cluster, whose nodes
        // in the private subnets reach EKS and pull images through them.
        let standing = found_network.ok_or_else(|| {
            conflict(format!(
                "dr.promote is true but there is no DR network in {region} to promote into; set promote = false and apply to build the DR site first"
            ))
        })?;
        let cache_spec = built.need_spec::<Cache>(COMPONENT)?;
        let cluster_spec = built.need_spec::<EksCluster>(COMPONENT)?;
        let database_spec = built.need_spec::<Database>(COMPONENT)?;
        let edge_spec = built.need_spec::<Edge>(COMPONENT)?;
        let retention = built.need_spec::<Monitoring>(COMPONENT)?.log_retention_days;
        ctx.check_cancelled(COMPONENT, "promoting the DR site")?;
        // The log groups before their writers (the cache delivers its logs
        // from creation), encrypted with the replica key, as the primary's.
        let groups = log_groups(&dr);
        try_join_all(groups.iter().map(|name| {
            logs::ensure_group(
                &dr,
                COMPONENT,
                name,
                &dr_keys.platform_key_arn,
                Some(retention),
                None,
            )
        }))
        .await?;
        let database = async {
            promote_replica(&dr, built, &dr_keys).await?;
            database::ensure(&dr, database_spec, &standing, &dr_keys).await
        };
        let network_then_cluster = async {
            let net = network::ensure(&dr, &net_spec).await?;
            Box::pin(cluster::ensure(&dr, cluster_spec, &net, &dr_keys)).await?;
            // The database and cache groups admit the cluster's own
            // security group, as the network's follow-up does for the
            // primary.
            network::admit_cluster(&dr).await
        };
        tokio::try_join!(
            database,
            network_then_cluster,
            cache::ensure(&dr, cache_spec, &standing, &dr_keys),
            storage::ensure(&dr, &audit_spec, &dr_keys),
            documents::ensure(&dr, &documents_spec, &dr_keys),
            // The DR load balancers' web ACL, beside the rest.
            edge::ensure_regional(&dr, edge_spec),
        )?;
        ensure_role_and_replication(ctx, &dr, keys, &dr_keys).await?;
        ensure_secret_replicas(ctx, &dr, &dr_keys).await?;
        ensure_topic(&dr, &dr_keys).await?;
        delete_alarm(&dr).await?;
        // Workload identity for the DR cluster, from what now stands in
        // the DR region, then the EBS CSI driver that runs with one of its
        // roles (as the cluster's follow-up does for the primary).
        let mut standing = observe(ctx, &region, keys).await?;
        let identity_spec = built.need_spec::<WorkloadIdentity>(COMPONENT)?;
        ensure_site_identity(&dr, &standing, identity_spec).await?;
        // Only the identity and the cluster's add-ons changed since.
        let (cluster, site_identity) = read_cluster_and_identity(&dr).await?;
        standing.cluster = cluster;
        standing.identity = Some(site_identity);
        return Ok(standing);
    }

    // The copies do not wait for the network.
    let (net, _, _, ()) = tokio::try_join!(
        network::ensure(&dr, &net_spec),
        storage::ensure(&dr, &audit_spec, &dr_keys),
        documents::ensure(&dr, &documents_spec, &dr_keys),
        ensure_secret_replicas(ctx, &dr, &dr_keys),
    )?;
    ensure_role_and_replication(ctx, &dr, keys, &dr_keys).await?;
    ctx.check_cancelled(COMPONENT, "making the DR database")?;
    ensure_replica_database(&dr, primary_db, &net, &dr_keys).await?;
    let topic = ensure_topic(&dr, &dr_keys).await?;
    ensure_alarm(&dr, spec, &topic).await?;
    observe(ctx, &region, keys).await
}

/// The DR cluster's IAM OIDC provider and roles `idis-<env>-dr-<role>`,
/// allowed the DR site's resources, and its EBS CSI driver add-on.
async fn ensure_site_identity(
    dr: &Ctx,
    standing: &DrState,
    spec: &IdentitySpec,
) -> Result<(), ComponentError> {
    let cluster = standing
        .cluster
        .as_ref()
        .ok_or_else(|| conflict(format!("no DR cluster in {} after it was made", dr.region)))?;
    let issuer = cluster.oidc_issuer.clone().ok_or_else(|| {
        conflict(format!(
            "EKS reports no OIDC issuer for the DR cluster {}; IAM roles for service accounts need one",
            cluster.name
        ))
    })?;
    identity::ensure(dr, spec, &issuer, &site_targets(standing, &dr.account_id)).await?;
    super::addons::ensure_ebs_csi(
        dr,
        &cluster.name,
        &cluster.kubernetes_version,
        &cluster::ebs_csi_role_arn(dr),
        &dr.tags(cluster::COMPONENT),
    )
    .await
}

/// The application's secrets' replicas, with the platform key's replica.
async fn ensure_secret_replicas(
    ctx: &Ctx,
    dr: &Ctx,
    dr_keys: &KeysState,
) -> Result<(), ComponentError> {
    secrets::ensure_replicas(
        ctx,
        dr,
        &dr_keys.platform_key_arn,
        &keys::alias_name(dr, PLATFORM),
    )
    .await
}

/// The replication role, and the rule on each source bucket.
async fn ensure_role_and_replication(
    ctx: &Ctx,
    dr: &Ctx,
    keys: &KeysState,
    dr_keys: &KeysState,
) -> Result<(), ComponentError> {
    let want = role_wanted(ctx, dr, &keys.platform_key_arn, &dr_keys.platform_key_arn);
    let seen = iam_role::read(ctx, COMPONENT, &want.name, Some(ROLE_POLICY)).await?;
    iam_role::ensure(ctx, COMPONENT, seen.as_ref(), &want).await?;
    let role = iam_role::read(ctx, COMPONENT, &want.name, Some(ROLE_POLICY))
        .await?
        .ok_or_else(|| {
            conflict(format!(
                "the role {} vanished right after it was made",
                want.name
            ))
        })?;
    for (source, copy) in bucket_pairs(ctx, dr) {
        ensure_replication(
            ctx,
            &source,
            &role.arn,
            &bucket_arn(&dr.region, &copy),
            &dr_keys.platform_key_arn,
        )
        .await?;
    }
    Ok(())
}

/// The first three available zones of the DR region.
async fn choose_zones(dr: &Ctx) -> Result<Vec<String>, ComponentError> {
    let mut names = network::available_zones(dr).await.map_err(|e| {
        aws_error(
            COMPONENT,
            format!("list the availability zones of {}", dr.region),
            e,
        )
    })?;
    if names.len() < 3 {
        return Err(conflict(format!(
            "the DR region {} offers {} available zones; the DR network needs three",
            dr.region,
            names.len()
        )));
    }
    names.truncate(3);
    Ok(names)
}

/// Every key of the environment has an enabled, aliased replica in the
/// DR region. Returns the replicas' ARNs by key name.
async fn ensure_replica_keys(
    ctx: &Ctx,
    dr: &Ctx,
    keys: &KeysState,
) -> Result<BTreeMap<String, String>, ComponentError> {
    let kms = ctx.aws.kms();
    let dr_kms = dr.aws.kms();
    let mut arns = BTreeMap::new();
    for (name, primary_arn) in primary_keys(keys) {
        let arn = replica_arn(&primary_arn, &ctx.region, &dr.region);
        let meta = match describe_key(dr, &arn).await? {
            Some(meta) => meta,
            None => {
                let primary = describe_key(ctx, &primary_arn)
                    .await?
                    .ok_or_else(|| conflict(format!("the key {primary_arn} vanished")))?;
                if primary.multi_region() != Some(true) {
                    return Err(conflict(format!(
                        "the key {name} ({primary_arn}) is a single-Region key, made before this provider made multi-Region keys; KMS cannot replicate it nor make it multi-Region (KMS Developer Guide, \"Multi-Region keys\"). A DR site needs the environment's data re-encrypted under new keys: that migration is not automated yet, so dr cannot be enabled on this environment"
                    )));
                }
                let mut tags = dr.tags(keys::COMPONENT);
                tags.insert(keys::TAG_TENANT.to_string(), name.clone());
                let replicate = kms
                    .replicate_key()
                    // The key id (an ARN works on AWS too; moto 5.2.5
                    // takes only the id).
                    .key_id(primary.key_id())
                    .replica_region(&dr.region)
                    .description(keys::description(ctx, &name))
                    .set_policy((name == PLATFORM).then(|| keys::wanted_policy(dr, &name)))
                    .set_tags(Some(
                        tags.iter()
                            .filter_map(|(k, v)| {
                                aws_sdk_kms::types::Tag::builder()
                                    .tag_key(k)
                                    .tag_value(v)
                                    .build()
                                    .ok()
                            })
                            .collect(),
                    ))
                    .send()
                    .await;
                match replicate {
                    Ok(_) => {}
                    // Made by a call whose answer was lost.
                    Err(e) if e.code() == Some("AlreadyExistsException") => {}
                    Err(e) => {
                        return Err(aws_error(
                            COMPONENT,
                            format!("replicate the key {name} to {}", dr.region),
                            e,
                        ))
                    }
                }
                dr.wait_for(COMPONENT, &format!("the replica of key {name}"), || async {
                    Ok(describe_key(dr, &arn)
                        .await?
                        .filter(|m| m.key_state() != Some(&KeyState::Creating)))
                })
                .await?
            }
        };
        // KMS takes the key id or ARN; moto 5.2.5 only the id.
        let key_id = meta.key_id().to_string();
        if pending_deletion(&meta) {
            dr_kms
                .cancel_key_deletion()
                .key_id(&key_id)
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, format!("cancel the deletion of {arn}"), e))?;
        }
        if meta.key_state() != Some(&KeyState::Enabled) {
            dr_kms
                .enable_key()
                .key_id(&key_id)
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, format!("enable {arn}"), e))?;
        }
        let alias = keys::alias_name(dr, &name);
        let aliased = describe_key(dr, &alias).await?;
        match aliased.as_ref().and_then(|m| m.arn()) {
            Some(a) if a == arn => {}
            Some(_) => {
                dr_kms
                    .update_alias()
                    .alias_name(&alias)
                    .target_key_id(&key_id)
                    .send()
                    .await
                    .map_err(|e| aws_error(COMPONENT, format!("point {alias} at {arn}"), e))?;
            }
            None => match dr_kms
                .create_alias()
                .alias_name(&alias)
                .target_key_id(&key_id)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == Some("AlreadyExistsException") => {}
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!("create {alias} in {}", dr.region),
                        e,
                    ))
                }
            },
        }
        arns.insert(name, arn);
    }
    Ok(arns)
}

/// Our rule on `source`, keeping the rules of others.
async fn ensure_replication(
    ctx: &Ctx,
    source: &str,
    role_arn: &str,
    copy_arn: &str,
    replica_key: &str,
) -> Result<(), ComponentError> {
    let current = read_replication(ctx, source).await?;
    if replication_problems(
        current.as_ref(),
        Some(role_arn),
        copy_arn,
        Some(replica_key),
    )
    .is_empty()
    {
        return Ok(());
    }
    let built = |e: aws_smithy_types::error::operation::BuildError| {
        conflict(format!(
            "the replication rule of {source} could not be built: {e}"
        ))
    };
    let ours = ReplicationRule::builder()
        .id(RULE_ID)
        .priority(1)
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .status(ReplicationRuleStatus::Enabled)
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(DeleteMarkerReplicationStatus::Disabled)
                .build(),
        )
        .source_selection_criteria(
            SourceSelectionCriteria::builder()
                .sse_kms_encrypted_objects(
                    SseKmsEncryptedObjects::builder()
                        .status(SseKmsEncryptedObjectsStatus::Enabled)
                        .build()
                        .map_err(built)?,
                )
                .build(),
        )
        .destination(
            Destination::builder()
                .bucket(copy_arn)
                .encryption_configuration(
                    EncryptionConfiguration::builder()
                        .replica_kms_key_id(replica_key)
                        .build(),
                )
                .metrics(
                    Metrics::builder()
                        .status(MetricsStatus::Enabled)
                        .build()
                        .map_err(built)?,
                )
                .build()
                .map_err(built)?,
        )
        .build()
        .map_err(built)?;
    let mut rules: Vec<ReplicationRule> = current
        .map(|c| {
            c.rules()
                .iter()
                .filter(|r| r.id() != Some(RULE_ID))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    rules.insert(0, ours);
    let config = ReplicationConfiguration::builder()
        .role(role_arn)
        .set_rules(Some(rules))
        .build()
        .map_err(built)?;
    ctx.aws
        .s3()
        .put_bucket_replication()
        .bucket(source)
        .replication_configuration(config)
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("set the replication of {source}"), e))?;
    Ok(())
}

/// The cross-Region read replica, made if missing, waited for.
async fn ensure_replica_database(
    dr: &Ctx,
    primary: &DatabaseState,
    net: &NetworkState,
    dr_keys: &KeysState,
) -> Result<(), ComponentError> {
    let rds = dr.aws.rds();
    let id = database::identifier(dr);
    let tags = dr.tags(COMPONENT);
    database::ensure_subnet_group(dr, &rds, net, &tags).await?;
    let existing = describe_db(dr).await?;
    if let Some(db) = existing.as_ref().map(dr_database) {
        let wrong = replica_problems(
            &db,
            Some(&primary.instance_class),
            Some(&net.database_security_group_id),
        );
        if db.source.is_some() && !wrong.is_empty() {
            crate::logging::info(&format!(
                "{}: the DR database {id} {}; putting it back",
                dr.env,
                wrong.join("; ")
            ));
            rds.modify_db_instance()
                .db_instance_identifier(&id)
                .db_instance_class(&primary.instance_class)
                .vpc_security_group_ids(&net.database_security_group_id)
                .multi_az(false)
                .publicly_accessible(false)
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, format!("put the DR database {id} back"), e))?;
        }
    }
    if existing.is_none() {
        let created = rds
            .create_db_instance_read_replica()
            .db_instance_identifier(&id)
            .source_db_instance_identifier(&primary.arn)
            .db_instance_class(&primary.instance_class)
            .kms_key_id(&dr_keys.platform_key_arn)
            .db_subnet_group_name(&id)
            .vpc_security_group_ids(&net.database_security_group_id)
            .publicly_accessible(false)
            .multi_az(false)
            .copy_tags_to_snapshot(true)
            .set_tags(Some(database::rds_tags(&tags)))
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_instance_already_exists_fault()) => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!(
                        "create the cross-Region read replica {id} in {} of {}",
                        dr.region, primary.arn
                    ),
                    e,
                ))
            }
        }
    }
    dr.wait_for(
        COMPONENT,
        &format!("the DR database {id} to become available"),
        || async {
            Ok(describe_db(dr)
                .await?
                .filter(|db| db.db_instance_status() == Some("available")))
        },
    )
    .await?;
    Ok(())
}

/// Promotes the replica (once, with the primary's backup retention) and
/// has RDS keep its master password in the DR region.
async fn promote_replica(
    dr: &Ctx,
    built: &Observed,
    dr_keys: &KeysState,
) -> Result<(), ComponentError> {
    let db_spec = built.need_spec::<Database>(COMPONENT)?;
    promote_database(dr, db_spec.backup_retention_days, &dr_keys.platform_key_arn)
        .await
        .map(|_| ())
}

/// Promotes the DR database of `dr`'s region to a standalone instance
/// keeping automated backups `backup_retention_days` (1 to 35), once it is
/// available, and has RDS keep its master password in a secret of that
/// region encrypted with `key_arn` (the replica knew only the primary
/// region's). Only the DR region is asked: this is what a promotion needs
/// while the primary region does not answer (the `idis_dr_promote`
/// action). Returns whether it promoted now (false: it stood alone
/// already).
pub async fn promote_database(
    dr: &Ctx,
    backup_retention_days: i64,
    key_arn: &str,
) -> Result<bool, ComponentError> {
    let rds = dr.aws.rds();
    let id = database::identifier(dr);
    let Some(db) = describe_db(dr).await? else {
        return Err(conflict(format!(
            "there is no DR database {id} in {} to promote; apply with dr.region set (and promote = false) to make the replica first",
            dr.region
        )));
    };
    let promoted_now = db.read_replica_source_db_instance_identifier().is_some();
    if promoted_now {
        // RDS promotes an available replica only.
        if db.db_instance_status() != Some("available") {
            dr.wait_for(
                COMPONENT,
                &format!("the DR database {id} to become available"),
                || async {
                    Ok(describe_db(dr)
                        .await?
                        .filter(|db| db.db_instance_status() == Some("available")))
                },
            )
            .await?;
        }
        crate::logging::info(&format!(
            "{}: promoting the DR database {id} in {} to a standalone instance",
            dr.env, dr.region
        ));
        rds.promote_read_replica()
            .db_instance_identifier(&id)
            .backup_retention_period(backup_retention_days.clamp(1, 35) as i32)
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("promote the DR database {id}"), e))?;
        dr.wait_for(
            COMPONENT,
            &format!("the DR database {id} to stand alone"),
            || async {
                Ok(describe_db(dr).await?.filter(|db| {
                    db.db_instance_status() == Some("available")
                        && db.read_replica_source_db_instance_identifier().is_none()
                }))
            },
        )
        .await?;
    }
    // The master password must be readable where the database now
    // serves: a secret RDS manages in the DR region with the DR key (the
    // replica knew only the primary region's).
    let secret_elsewhere = describe_db(dr).await?.is_some_and(|db| {
        db.master_user_secret()
            .and_then(|s| s.secret_arn())
            .is_none_or(|arn| arn.split(':').nth(3) != Some(dr.region.as_str()))
    });
    if secret_elsewhere {
        rds.modify_db_instance()
            .db_instance_identifier(&id)
            .manage_master_user_password(true)
            .master_user_secret_kms_key_id(key_arn)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("have RDS keep the master password of {id} in {}", dr.region),
                    e,
                )
            })?;
    }
    Ok(promoted_now)
}

async fn ensure_topic(dr: &Ctx, dr_keys: &KeysState) -> Result<String, ComponentError> {
    let name = topic_name(dr);
    let mut tags = dr.tags(COMPONENT);
    tags.insert("Name".to_string(), name.clone());
    let tags: Vec<aws_sdk_sns::types::Tag> = tags
        .iter()
        .filter_map(|(k, v)| {
            aws_sdk_sns::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect();
    // CreateTopic returns the existing topic's ARN for the same name and
    // attributes; SetTopicAttributes puts the key back if it changed.
    let sns = dr.aws.sns();
    let arn = match read_topic(dr).await? {
        Some((arn, key)) => {
            if topic_key_problem(key.as_deref(), Some(&dr_keys.platform_key_arn)).is_some() {
                sns.set_topic_attributes()
                    .topic_arn(&arn)
                    .attribute_name("KmsMasterKeyId")
                    .attribute_value(&dr_keys.platform_key_arn)
                    .send()
                    .await
                    .map_err(|e| aws_error(COMPONENT, format!("encrypt the topic {arn}"), e))?;
            }
            arn
        }
        None => sns
            .create_topic()
            .name(&name)
            .attributes("KmsMasterKeyId", &dr_keys.platform_key_arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("create the topic {name}"), e))?
            .topic_arn()
            .unwrap_or_default()
            .to_string(),
    };
    Ok(arn)
}

async fn ensure_alarm(dr: &Ctx, spec: &DrSpec, topic: &str) -> Result<(), ComponentError> {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic, Tag};
    let name = alarm_name(dr);
    let instance = database::identifier(dr);
    if let Some(seen) = read_alarm(dr).await? {
        if seen.metric == "ReplicaLag"
            && seen.shape == rpo_alarm_shape()
            && seen.instance == instance
            && seen.threshold == spec.rpo_seconds as f64
            && seen.actions.iter().any(|a| a == topic)
        {
            return Ok(());
        }
    }
    let (namespace, statistic, period, datapoints, periods, comparison, missing) = RPO_ALARM;
    let mut tags = dr.tags(COMPONENT);
    tags.insert("Name".to_string(), name.clone());
    let mut put = dr
        .aws
        .cloudwatch()
        .put_metric_alarm()
        .alarm_name(&name)
        .alarm_description(format!(
            "IDIS environment {}: the DR replica in {} lags the primary by more than the RPO ({} s)",
            dr.env, dr.region, spec.rpo_seconds
        ))
        .namespace(namespace)
        .metric_name("ReplicaLag")
        .dimensions(
            Dimension::builder()
                .name("DBInstanceIdentifier")
                .value(&instance)
                .build(),
        )
        .statistic(Statistic::from(statistic))
        .period(period)
        .evaluation_periods(periods)
        .datapoints_to_alarm(datapoints)
        .threshold(spec.rpo_seconds as f64)
        .comparison_operator(ComparisonOperator::from(comparison))
        // No lag reported means replication is not running: the RPO is
        // not known to hold.
        .treat_missing_data(missing)
        .actions_enabled(true)
        .alarm_actions(topic)
        .ok_actions(topic);
    for (key, value) in tags {
        put = put.tags(Tag::builder().key(key).value(value).build());
    }
    put.send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("put the alarm {name}"), e))?;
    Ok(())
}

async fn delete_alarm(dr: &Ctx) -> Result<(), ComponentError> {
    let name = alarm_name(dr);
    match dr
        .aws
        .cloudwatch()
        .delete_alarms()
        .alarm_names(&name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ResourceNotFound") => Ok(()),
        Err(e) => Err(aws_error(COMPONENT, format!("delete the alarm {name}"), e)),
    }
}

// ---------------------------------------------------------------------------
// Tearing down

/// Removes the DR site in `region`, keeping the bucket copies. Returns
/// what was kept or scheduled.
async fn tear_down(ctx: &Ctx, region: &str) -> Result<Vec<String>, ComponentError> {
    let dr = in_region(ctx, region);
    let mut warnings = Vec::new();
    // Replication first: nothing new goes to the copies. The secrets'
    // replicas go at once (the primaries keep the values).
    secrets::remove_replicas(ctx, Some(region)).await?;
    for (source, _) in bucket_pairs(ctx, &dr) {
        let Some(config) = read_replication(ctx, &source).await? else {
            continue;
        };
        let others: Vec<ReplicationRule> = config
            .rules()
            .iter()
            .filter(|r| r.id() != Some(RULE_ID))
            .cloned()
            .collect();
        if others.len() == config.rules().len() {
            continue;
        }
        let s3 = ctx.aws.s3();
        let result = if others.is_empty() {
            s3.delete_bucket_replication()
                .bucket(&source)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error(COMPONENT, format!("stop the replication of {source}"), e))
        } else {
            let kept = ReplicationConfiguration::builder()
                .role(config.role())
                .set_rules(Some(others))
                .build()
                .map_err(|e| conflict(e.to_string()))?;
            s3.put_bucket_replication()
                .bucket(&source)
                .replication_configuration(kept)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error(COMPONENT, format!("stop the replication of {source}"), e))
        };
        result?;
    }
    delete_alarm(&dr).await?;
    let topic = read_topic(&dr).await?;
    if let Some((arn, _)) = topic {
        dr.aws
            .sns()
            .delete_topic()
            .topic_arn(&arn)
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("delete the topic {arn}"), e))?;
    }

    // The DR cluster's roles and OIDC provider (none before promotion),
    // then the promoted site's cluster and cache and the database, then
    // the network they stand in.
    identity::delete(&dr).await?;
    let (mut db_warnings, mut cache_warnings, (), ()) = tokio::try_join!(
        delete_database(&dr, region),
        cache::delete(&dr),
        cluster::delete_cluster(&dr),
        edge::delete_regional(&dr),
    )?;
    warnings.append(&mut db_warnings);
    warnings.append(&mut cache_warnings);
    database::delete_subnet_group(&dr, COMPONENT).await?;
    logs::delete_groups(&dr, COMPONENT, &log_groups(&dr)).await?;
    warnings.extend(network::delete(&dr).await?);

    // The role, once nothing replicates with it.
    iam_role::delete(ctx, COMPONENT, &role_name(ctx)).await?;

    // The replica keys: scheduled, never deleted at once.
    let dr_kms = dr.aws.kms();
    let primary = keys::find(ctx).await?.unwrap_or_default();
    for (name, primary_arn) in primary_keys(&primary) {
        let arn = replica_arn(&primary_arn, &ctx.region, region);
        let Some(meta) = describe_key(&dr, &arn).await? else {
            continue;
        };
        let _ = dr_kms
            .delete_alias()
            .alias_name(keys::alias_name(&dr, &name))
            .send()
            .await;
        if pending_deletion(&meta) {
            continue;
        }
        match dr_kms
            .schedule_key_deletion()
            .key_id(meta.key_id())
            .pending_window_in_days(keys::DEFAULT_DELETION_WINDOW_DAYS as i32)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("KMSInvalidStateException") => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("schedule the deletion of {arn}"),
                    e,
                ))
            }
        }
        // The kept copies stay readable: replicating the same primary key
        // into the region again makes a replica with the same key id and
        // material (KMS Developer Guide, "Create multi-Region replica
        // keys"), and the primary is kept while data it encrypts is.
        warnings.push(format!(
            "the replica of key {name} in {region} is scheduled for deletion in {} days; the kept copies there stay readable by replicating the primary key into {region} again (same key id and material)",
            keys::DEFAULT_DELETION_WINDOW_DAYS
        ));
    }
    for (_, copy) in bucket_pairs(ctx, &dr) {
        warnings.push(format!(
            "kept the DR copy {copy} in {region} and what it holds"
        ));
    }
    Ok(warnings)
}

/// The DR database: a replica is deleted; a promoted one holds data of its
/// own, so its replicas go and it is deleted with a final snapshot, kept.
async fn delete_database(dr: &Ctx, region: &str) -> Result<Vec<String>, ComponentError> {
    let mut warnings = Vec::new();
    let rds = dr.aws.rds();
    let id = database::identifier(dr);
    if let Some(db) = describe_db(dr).await? {
        if db.read_replica_source_db_instance_identifier().is_some() {
            database::delete_instance(dr, &rds, &id, None).await?;
        } else {
            // A promoted DR database holds data of its own.
            for replica in db.read_replica_db_instance_identifiers() {
                database::delete_instance(dr, &rds, replica, None).await?;
            }
            for replica in db.read_replica_db_instance_identifiers() {
                database::wait_gone(dr, &rds, replica).await?;
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let snapshot = format!("{id}-final-{now}");
            if db.deletion_protection() == Some(true) {
                rds.modify_db_instance()
                    .db_instance_identifier(&id)
                    .deletion_protection(false)
                    .apply_immediately(true)
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            COMPONENT,
                            format!("turn off deletion protection of {id}"),
                            e,
                        )
                    })?;
            }
            database::delete_instance(dr, &rds, &id, Some(&snapshot)).await?;
            warnings.push(format!(
                "kept the final snapshot {snapshot} of the promoted DR database {id} in {region}"
            ));
        }
        database::wait_gone(dr, &rds, &id).await?;
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_dr(region: Option<&str>, promote: bool) -> Value {
        let mut dr = Value::Null;
        dr.set_attr("region", Value::opt_string(region));
        dr.set_attr("promote", Value::Bool(promote));
        let mut resource = Value::Null;
        resource.set_attr(COMPONENT, dr);
        resource
    }

    #[test]
    fn a_promoted_site_cannot_be_removed_or_demoted_but_an_unpromoted_one_can_go() {
        let promoted = with_dr(Some("us-west-2"), true);
        let removed = DisasterRecovery::judge(&promoted, &with_dr(None, false));
        assert!(removed.has_errors(), "{removed:?}");
        assert!(format!("{removed:?}").contains("cannot be removed"));
        let demoted = DisasterRecovery::judge(&promoted, &with_dr(Some("us-west-2"), false));
        assert!(format!("{demoted:?}").contains("cannot be demoted"));
        let unpromoted = with_dr(Some("us-west-2"), false);
        assert!(!DisasterRecovery::judge(&unpromoted, &with_dr(None, false)).has_errors());
        assert!(!DisasterRecovery::judge(&promoted, &promoted).has_errors());
    }

    #[test]
    fn the_promoted_web_acl_follows_the_edge_block() {
        let edge = |waf: bool| EdgeSpec {
            waf,
            rate_limit: 2000,
            ..EdgeSpec::default()
        };
        let acl = RegionalAcl {
            arn: "arn:aws:wafv2:us-west-2:1:regional/webacl/idis-p/1".into(),
            rate_limit: Some(2000),
            problems: Vec::new(),
        };
        assert!(web_acl_problems(Some(&acl), Some(&edge(true)), "us-west-2").is_empty());
        assert_eq!(
            web_acl_problems(None, Some(&edge(true)), "us-west-2"),
            vec!["no regional web ACL in us-west-2"]
        );
        assert!(web_acl_problems(None, Some(&edge(false)), "us-west-2").is_empty());
        // On import (no edge block): what is there is judged, not absence.
        assert!(web_acl_problems(None, None, "us-west-2").is_empty());
        let changed = RegionalAcl {
            rate_limit: Some(100_000),
            problems: vec!["rule AWSManagedRulesCommonRuleSet removed".into()],
            ..acl.clone()
        };
        assert_eq!(
            web_acl_problems(Some(&changed), Some(&edge(true)), "us-west-2"),
            vec![
                "rule AWSManagedRulesCommonRuleSet removed",
                "the rate rule blocks above 100000 requests, not rate_limit = 2000",
            ]
        );
        assert_eq!(
            web_acl_problems(Some(&acl), Some(&edge(false)), "us-west-2"),
            vec![format!(
                "the web ACL {} is there though edge.waf is false",
                acl.arn
            )]
        );
    }

    #[test]
    fn the_topic_is_encrypted_with_the_replica_key_however_sns_names_it() {
        let replica = "arn:aws:kms:us-west-2:1:key/mrk-1";
        assert_eq!(topic_key_problem(Some(replica), Some(replica)), None);
        assert_eq!(topic_key_problem(Some("mrk-1"), Some(replica)), None);
        assert_eq!(
            topic_key_problem(Some("alias/aws/sns"), Some(replica)).as_deref(),
            Some("the DR alarm topic is encrypted with alias/aws/sns, not the platform key's replica")
        );
        assert_eq!(
            topic_key_problem(None, Some(replica)).as_deref(),
            Some("the DR alarm topic is not encrypted")
        );
        // Without a replica key the keys guard says what is wrong.
        assert_eq!(topic_key_problem(None, None), None);
    }

    #[test]
    fn the_replica_is_judged_by_class_group_zones_and_privacy() {
        let mut db = DrDatabase {
            instance_class: "db.r6g.xlarge".into(),
            security_groups: vec!["sg-db".into()],
            ..DrDatabase::default()
        };
        let judged = |db: &DrDatabase| replica_problems(db, Some("db.r6g.xlarge"), Some("sg-db"));
        assert!(judged(&db).is_empty());
        db.instance_class = "db.t4g.micro".into();
        db.security_groups.push("sg-open".into());
        db.multi_az = true;
        db.publicly_accessible = true;
        assert_eq!(
            judged(&db),
            vec![
                "is a db.t4g.micro, not the primary's db.r6g.xlarge",
                "is in the security groups [sg-db, sg-open], not the DR network's database group sg-db",
                "is Multi-AZ (a replica is single-AZ until promotion)",
                "is publicly accessible",
            ]
        );
        // What is not known (an import, no DR network) is not judged.
        assert_eq!(replica_problems(&db, None, None).len(), 2);
    }

    #[test]
    fn a_replica_arn_names_the_dr_region_and_the_same_key() {
        assert_eq!(
            replica_arn(
                "arn:aws:kms:us-east-1:123456789012:key/mrk-1234",
                "us-east-1",
                "us-west-2"
            ),
            "arn:aws:kms:us-west-2:123456789012:key/mrk-1234"
        );
    }

    #[test]
    fn region_names() {
        assert!(is_region_name("us-west-2"));
        assert!(is_region_name("ap-southeast-2"));
        assert!(is_region_name("us-gov-west-1"));
        assert!(!is_region_name("uswest2"));
        assert!(!is_region_name("us-west-"));
        assert!(!is_region_name("US-WEST-2"));
    }

    fn replicating(role: &str, copy: &str, key: &str) -> ReplicationConfiguration {
        ReplicationConfiguration::builder()
            .role(role)
            .rules(
                ReplicationRule::builder()
                    .id(RULE_ID)
                    .status(ReplicationRuleStatus::Enabled)
                    .filter(ReplicationRuleFilter::builder().prefix("").build())
                    .source_selection_criteria(
                        SourceSelectionCriteria::builder()
                            .sse_kms_encrypted_objects(
                                SseKmsEncryptedObjects::builder()
                                    .status(SseKmsEncryptedObjectsStatus::Enabled)
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    )
                    .destination(
                        Destination::builder()
                            .bucket(copy)
                            .encryption_configuration(
                                EncryptionConfiguration::builder()
                                    .replica_kms_key_id(key)
                                    .build(),
                            )
                            .metrics(
                                Metrics::builder()
                                    .status(MetricsStatus::Enabled)
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn replication_as_made_has_no_problems_and_each_change_is_named() {
        let (role, copy, key) = ("arn:aws:iam::1:role/r", "arn:aws:s3:::copy", "arn:k");
        let made = replicating(role, copy, key);
        assert!(replication_problems(Some(&made), Some(role), copy, Some(key)).is_empty());
        let elsewhere = replicating(role, "arn:aws:s3:::other", key);
        assert_eq!(
            replication_problems(Some(&elsewhere), Some(role), copy, Some(key)),
            vec!["rule idis-dr replicates to arn:aws:s3:::other, not arn:aws:s3:::copy"]
        );
        let other_key = replicating(role, copy, "arn:other");
        assert_eq!(
            replication_problems(Some(&other_key), Some(role), copy, Some(key)),
            vec!["rule idis-dr encrypts the copies with arn:other, not the platform key's replica"]
        );
        assert_eq!(
            replication_problems(None, Some(role), copy, Some(key)),
            vec!["does not replicate"]
        );
    }

    fn healthy() -> (DrState, DrSpec) {
        let region = "us-west-2";
        let state = DrState {
            region: Some(region.into()),
            network: Some(NetworkState {
                vpc_id: "vpc-1".into(),
                vpc_cidr: DEFAULT_VPC_CIDR.into(),
                ..NetworkState::default()
            }),
            keys: BTreeMap::from([(
                PLATFORM.to_string(),
                ReplicaKey {
                    arn: "arn:aws:kms:us-west-2:1:key/mrk-1".into(),
                    enabled: true,
                    replica_of_primary: true,
                    aliased: true,
                },
            )]),
            primary_keys: vec![PLATFORM.to_string()],
            primary_database_arn: "arn:aws:rds:us-east-1:1:db:idis-p-db".into(),
            database: Some(DrDatabase {
                arn: "arn:aws:rds:us-west-2:1:db:idis-p-db".into(),
                endpoint: Some("idis-p-db.us-west-2.rds.amazonaws.com".into()),
                status: "available".into(),
                source: Some("arn:aws:rds:us-east-1:1:db:idis-p-db".into()),
                kms_key_id: Some("arn:aws:kms:us-west-2:1:key/mrk-1".into()),
                ..DrDatabase::default()
            }),
            audit: Some(AuditStorageState::default()),
            documents: Some(DocumentsState::default()),
            role: Some(RoleSeen::default()),
            topic_arn: Some("arn:aws:sns:us-west-2:1:idis-p-dr-alarms".into()),
            topic_key: Some("arn:aws:kms:us-west-2:1:key/mrk-1".into()),
            alarm: Some(AlarmSeen {
                arn: "arn:aws:cloudwatch:us-west-2:1:alarm:idis-p-dr-replica-lag".into(),
                threshold: 300.0,
                metric: "ReplicaLag".into(),
                instance: "idis-p-db".into(),
                actions: vec!["arn:aws:sns:us-west-2:1:idis-p-dr-alarms".into()],
                shape: rpo_alarm_shape(),
            }),
            ..DrState::default()
        };
        let spec = DrSpec {
            region: Some(region.into()),
            vpc_cidr: DEFAULT_VPC_CIDR.into(),
            rpo_seconds: DEFAULT_RPO_SECONDS,
            nat_gateway: false,
            promote: false,
        };
        (state, spec)
    }

    #[test]
    fn the_description_is_whole_and_a_healthy_site_holds_every_guard() {
        let (state, spec) = healthy();
        crate::components::describe::testing::description_is_whole::<DisasterRecovery>(
            &state, &spec,
        );
        let v = judge(&state, &spec, &Blocks::default());
        assert!(v.is_clean(), "{v:?}");
        // Every guard but the cluster's and the web ACL's, which apply
        // once promoted.
        let map = v.to_map(GUARDS);
        assert_eq!(map.len(), GUARDS.len() - 2);
        assert!(!map.contains_key("cluster") && !map.contains_key("web_acl"));
    }

    #[test]
    fn a_promoted_site_without_its_cluster_says_so() {
        let (mut state, mut spec) = healthy();
        spec.promote = true;
        let db = state.database.as_mut().unwrap();
        db.source = None;
        let v = judge(&state, &spec, &Blocks::default());
        let map = v.to_map(GUARDS);
        assert_eq!(
            map.get("cluster").map(String::as_str),
            Some("no DR cluster in us-west-2")
        );
        let wanted = ClusterSpec {
            kubernetes_version: "1.31".into(),
            node_instance_types: vec!["m6i.xlarge".into()],
            node_min_size: 3,
            node_max_size: 10,
            ..ClusterSpec::default()
        };
        let mut cluster = ClusterState {
            name: "idis-p".into(),
            kubernetes_version: "1.31".into(),
            node_instance_types: vec!["m6i.xlarge".into()],
            node_min_size: 3,
            node_max_size: 10,
            ..ClusterState::default()
        };
        state.cluster = Some(cluster.clone());
        let map = judge(
            &state,
            &spec,
            &Blocks {
                cluster: Some(wanted.clone()),
                ..Blocks::default()
            },
        )
        .to_map(GUARDS);
        assert_eq!(
            map.get("cluster").map(String::as_str),
            Some("no node group idis-p-default; no workload identity for the DR cluster")
        );
        // The DR cluster's roles, judged with the workload_identity block:
        // none made yet names each.
        state.identity = Some(IdentityState {
            env: "p".into(),
            dr_site: true,
            ..IdentityState::default()
        });
        let map = judge(
            &state,
            &spec,
            &Blocks {
                cluster: Some(wanted.clone()),
                identity: Some(IdentitySpec::default()),
                ..Blocks::default()
            },
        )
        .to_map(GUARDS);
        let said = map.get("cluster").cloned().unwrap_or_default();
        assert!(
            said.contains("IAM role idis-p-dr-api (the API and workers) is missing"),
            "{said}"
        );
        // Without the block (an import), only the provider and tags are.
        let map = judge(
            &state,
            &spec,
            &Blocks {
                cluster: Some(wanted.clone()),
                ..Blocks::default()
            },
        )
        .to_map(GUARDS);
        assert_eq!(
            map.get("cluster").map(String::as_str),
            Some("no node group idis-p-default")
        );
        cluster.node_group_arn =
            Some("arn:aws:eks:us-west-2:1:nodegroup/idis-p/idis-p-default/1".into());
        cluster.node_max_size = 4;
        state.cluster = Some(cluster);
        let map = judge(
            &state,
            &spec,
            &Blocks {
                cluster: Some(wanted.clone()),
                ..Blocks::default()
            },
        )
        .to_map(GUARDS);
        assert_eq!(
            map.get("cluster").map(String::as_str),
            Some("the node group scales 3 to 4, not 3 to 10")
        );
        state.cluster.as_mut().unwrap().node_max_size = 10;
        let map = judge(
            &state,
            &spec,
            &Blocks {
                cluster: Some(wanted.clone()),
                ..Blocks::default()
            },
        )
        .to_map(GUARDS);
        let made = GUARDS.iter().find(|g| g.key == "cluster").map(|g| g.made);
        assert_eq!(map.get("cluster").map(String::as_str), made);
    }

    #[test]
    fn an_alarm_at_another_threshold_reads_back_as_the_rpo() {
        let (mut state, spec) = healthy();
        state.alarm.as_mut().unwrap().threshold = 900.0;
        let reading = DisasterRecovery::read(&state, &spec, &Value::Null);
        assert_eq!(reading.settings.rpo_seconds, 900);
    }

    #[test]
    fn without_a_site_nothing_is_judged_and_every_output_is_null() {
        let spec = DrSpec::default();
        let reading = DisasterRecovery::read(&DrState::default(), &spec, &Value::Null);
        assert!(reading.verdicts.to_map(GUARDS).is_empty());
        assert!(reading.outputs.dr_vpc_id.is_none() && reading.outputs.dr_database_arn.is_none());
    }

    #[test]
    fn an_unpromoted_site_wants_a_replica_of_the_primary() {
        let state = DrState {
            region: Some("us-west-2".into()),
            primary_database_arn: "arn:aws:rds:us-east-1:1:db:idis-p-db".into(),
            database: Some(DrDatabase {
                arn: "arn:aws:rds:us-west-2:1:db:idis-p-db".into(),
                source: None,
                ..DrDatabase::default()
            }),
            ..DrState::default()
        };
        let spec = DrSpec {
            region: Some("us-west-2".into()),
            ..DrSpec::default()
        };
        let v = judge(&state, &spec, &Blocks::default());
        let problems = v.problems("database").unwrap().join("; ");
        assert!(
            problems.contains("promoted outside Terraform"),
            "{problems}"
        );
    }
}
