//! cluster: IAM roles, the EKS cluster with secrets encrypted by the platform key, and its managed node group.
//!
//! Names are deterministic: the cluster is `idis-<env>`, its node group
//! `idis-<env>-default`, the roles `idis-<env>-eks-cluster` and
//! `idis-<env>-eks-nodes`. A re-run adopts whatever already carries these
//! names, so a killed apply never leaves a second cluster behind.
//!
//! What `ensure` repairs in place, and what it refuses:
//! - endpoint access (`UpdateClusterConfig`), Kubernetes version upgrades
//!   (`UpdateClusterVersion`, one minor version at a time, as EKS requires),
//!   secrets encryption when it is missing (`AssociateEncryptionConfig`),
//!   node group min/max (`UpdateNodegroupConfig`), tags, role policies and
//!   trust policies;
//! - other node instance types cannot be set on a managed node group: the
//!   group is replaced (deleted, then created with the new types), as
//!   terraform-provider-aws does; the plan warns that nodes are drained;
//! - a Kubernetes downgrade or another secrets key are not possible in
//!   place: they are `Conflict` errors.
//!
//! The node group's desired size belongs to the cluster autoscaler once the
//! group exists: `ensure` sets it when it creates the group, and afterwards
//! only clamps it into `[min, max]` when a new min/max leaves it outside.
//! Otherwise every apply would undo the autoscaler's work.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_eks::types::{
    AuthenticationMode, Cluster, ClusterStatus, CreateAccessConfigRequest, EncryptionConfig,
    LogSetup, LogType, Logging, Nodegroup, NodegroupScalingConfig, NodegroupStatus, Provider,
    UpdateAccessConfigRequest, VpcConfigRequest,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use super::describe::{
    is_dotted_version, is_instance_type, show, version_less, Check, Component, Default, Guard,
    Output, Problem, Reading, Setting, Verdicts,
};
use super::keys::KeysState;
use super::network::NetworkState;
use super::{
    addons, aws_error, cluster_access, is_not_found, same_members, user_visible_tags,
    ComponentError, Ctx, Neighbours,
};
use crate::protocol::cty::{Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

pub const COMPONENT: &str = "cluster";

/// Managed policies of the control plane role.
const CLUSTER_POLICIES: &[&str] = &["AmazonEKSClusterPolicy"];
/// Managed policies of the worker node role.
const NODE_POLICIES: &[&str] = &[
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
];

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub name: String,
    pub arn: String,
    pub endpoint: Option<String>,
    pub certificate_authority_data: Option<String>,
    pub oidc_issuer: Option<String>,
    pub kubernetes_version: String,
    pub endpoint_public_access: bool,
    pub secrets_key_arn: Option<String>,
    /// None when the node group is missing.
    pub node_group_arn: Option<String>,
    pub node_instance_types: Vec<String>,
    pub node_min_size: i64,
    pub node_max_size: i64,
    pub node_desired_size: i64,
    /// The control plane's private endpoint access (always on when converged).
    #[serde(default)]
    pub endpoint_private_access: bool,
    /// The IAM role the control plane runs as, as the cluster reports it.
    #[serde(default)]
    pub cluster_role_arn: Option<String>,
    /// The IAM role of the worker nodes, as the node group reports it.
    #[serde(default)]
    pub node_role_arn: Option<String>,
    /// The cluster's user-visible tags (no ownership or aws:* tags).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The Kubernetes version of the node group's nodes.
    #[serde(default)]
    pub node_kubernetes_version: Option<String>,
    /// The managed add-ons installed, with their versions.
    #[serde(default)]
    pub addon_versions: BTreeMap<String, String>,
    /// The authentication mode and the access entries.
    #[serde(default)]
    pub access: cluster_access::Access,
    /// The guards of the cluster, as read.
    #[serde(skip)]
    pub verdicts: Verdicts,
}

// ---------------------------------------------------------------- description

/// The `cluster` block once planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub kubernetes_version: String,
    pub endpoint_public_access: bool,
    pub node_instance_types: Vec<String>,
    pub node_min_size: i64,
    pub node_max_size: i64,
    pub node_desired_size: i64,
    /// IAM roles or users with cluster-wide AmazonEKSClusterAdminPolicy.
    #[serde(default)]
    pub admin_principals: Vec<String>,
    /// IAM roles or users with cluster-wide AmazonEKSViewPolicy.
    #[serde(default)]
    pub viewer_principals: Vec<String>,
}

/// The computed attributes of the cluster.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterOutputs {
    pub cluster_arn: String,
    pub cluster_endpoint: Option<String>,
    pub cluster_certificate_authority_data: Option<String>,
    pub cluster_oidc_issuer_url: Option<String>,
    pub node_group_arn: Option<String>,
}

/// Kubernetes versions EKS offers that this provider accepts.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.31";
pub const DEFAULT_NODE_INSTANCE_TYPE: &str = "m6i.xlarge";
pub const DEFAULT_NODE_MIN: i64 = 3;
pub const DEFAULT_NODE_MAX: i64 = 10;

/// The EKS cluster and its node group.
pub struct EksCluster;

/// `node_min_size` at create; afterwards the stored size clamped into the
/// planned bounds (the cluster autoscaler owns the size within them).
fn desired_default(planned: &Value, prior: &Value) -> Value {
    let min = planned.get_attr("node_min_size");
    let max = planned.get_attr("node_max_size");
    match (
        prior.get_attr("node_desired_size").as_i64(),
        min.as_i64(),
        max.as_i64(),
    ) {
        (Some(observed), Some(lo), Some(hi)) => Value::int(observed.clamp(lo, hi.max(lo))),
        (None, _, _) => min.clone(),
        _ => Value::Unknown,
    }
}

/// `cluster.node_desired_size` on refresh. The desired size is the initial
/// size; afterwards it belongs to the cluster autoscaler. While the size AWS
/// reports stays within the stored `[min, max]`, the stored value is kept
/// (no drift). Outside them AWS's value is written, so the plan shows it and
/// brings it back to the nearest bound (with a warning that says why). A
/// state without a node group yet (import, a group deleted out of band)
/// takes AWS's value.
fn desired_size_setting(stored: &ClusterSpec, had_group: bool, observed: i64) -> i64 {
    if had_group && (stored.node_min_size..=stored.node_max_size).contains(&observed) {
        stored.node_desired_size
    } else {
        observed
    }
}

impl Component for EksCluster {
    const NAME: &'static str = COMPONENT;
    const AFTER: &'static [&'static str] = &[super::network::COMPONENT, super::keys::COMPONENT];

    async fn find(ctx: &Ctx) -> Result<Option<ClusterState>, ComponentError> {
        find(ctx).await
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &ClusterSpec,
        built: &super::Observed,
    ) -> Result<ClusterState, ComponentError> {
        let network = built.need::<super::network::Network>(COMPONENT)?;
        let keys = built.need::<super::keys::TenantKeys>(COMPONENT)?;
        Box::pin(ensure(ctx, spec, network, keys)).await
    }

    /// The EBS CSI driver runs with a role of `workload_identity`, which
    /// needs the cluster's OIDC issuer: it is installed once both exist.
    const FOLLOW_UP_AFTER: &'static [&'static str] = &[super::identity::COMPONENT];

    async fn follow_up(
        ctx: &Ctx,
        built: &super::Observed,
    ) -> Result<Option<ClusterState>, ComponentError> {
        let cluster = built.need::<EksCluster>(COMPONENT)?;
        let identity = built.need::<super::identity::WorkloadIdentity>(COMPONENT)?;
        let role = identity
            .roles
            .get(&super::identity::Role::EbsCsiDriver)
            .map(|r| r.arn.clone())
            .ok_or_else(|| {
                conflict(format!(
                    "the IAM role of the EBS CSI driver ({}) is missing",
                    super::identity::Role::EbsCsiDriver.name(&ctx.env)
                ))
            })?;
        addons::ensure_ebs_csi(
            ctx,
            &cluster_name(ctx),
            &cluster.kubernetes_version,
            &role,
            &ctx.tags(COMPONENT),
        )
        .await?;
        find(ctx).await
    }

    async fn delete(ctx: &Ctx, _spec: &ClusterSpec) -> Result<Vec<String>, ComponentError> {
        delete(ctx).await
    }
    const DOC: &'static str = "EKS cluster (secrets envelope-encrypted with the platform key, private endpoint) and its managed node group.";
    type Spec = ClusterSpec;
    type State = ClusterState;
    type Outputs = ClusterOutputs;

    fn settings() -> Vec<Setting> {
        let nodes = Check::Range(1, 450);
        vec![
            Setting::new(
                "kubernetes_version",
                Type::String,
                Default::Str(DEFAULT_KUBERNETES_VERSION),
                format!("Kubernetes minor version (`1.32`), one EKS offers in the region (checked at plan). Default `{DEFAULT_KUBERNETES_VERSION}`. Upgrades happen in place, one minor at a time; downgrades are refused."),
            )
            .check(Check::Text(
                |v| is_dotted_version(v) && v.split('.').count() == 2,
                "use a Kubernetes minor version such as \"1.32\"",
            )),
            Setting::new(
                "endpoint_public_access",
                Type::Bool,
                Default::Bool(false),
                "Expose the API server endpoint publicly. Default `false` (private only).".into(),
            ),
            Setting::new(
                "node_instance_types",
                Type::list(Type::String),
                Default::Strings(&[DEFAULT_NODE_INSTANCE_TYPE]),
                format!("EC2 instance types of the node group. Default `[\"{DEFAULT_NODE_INSTANCE_TYPE}\"]`."),
            )
            .check(Check::EachText(
                |t| is_instance_type(t, ""),
                "use an EC2 instance type such as \"m6i.xlarge\"",
            )),
            Setting::new(
                "node_min_size",
                Type::Number,
                Default::Int(DEFAULT_NODE_MIN),
                format!("Minimum nodes. Default `{DEFAULT_NODE_MIN}`."),
            )
            .check(nodes),
            Setting::new(
                "node_max_size",
                Type::Number,
                Default::Int(DEFAULT_NODE_MAX),
                format!("Maximum nodes. Default `{DEFAULT_NODE_MAX}`."),
            )
            .check(nodes),
            Setting::new(
                "node_desired_size",
                Type::Number,
                Default::Derived(desired_default),
                "Initial node count. Default: `node_min_size`. Afterwards the cluster autoscaler owns the count: any size within [`node_min_size`, `node_max_size`] is not drift (the state keeps this value); a size outside them shows on refresh and the plan brings it back to the nearest bound, with a warning.".into(),
            )
            .check(Check::Range(0, 450)),
            Setting::new(
                "admin_principals",
                Type::list(Type::String),
                Default::Strings(&[]),
                "IAM role or user ARNs that administer the cluster: each gets an EKS access entry with `AmazonEKSClusterAdminPolicy` at cluster scope. Default `[]`. The cluster is created without the creator's bootstrap admin entry, so the principal that runs Terraform has no Kubernetes access unless it is listed here. Access entries nobody listed (type STANDARD) are drift and removed by apply; the ones EKS makes for node roles are not.".into(),
            )
            .check(Check::EachText(
                cluster_access::is_principal_arn,
                "use an IAM role or user ARN such as \"arn:aws:iam::123456789012:role/platform-admins\" (not an assumed-role session, group or root)",
            )),
            Setting::new(
                "viewer_principals",
                Type::list(Type::String),
                Default::Strings(&[]),
                "IAM role or user ARNs that may read the cluster: each gets an EKS access entry with `AmazonEKSViewPolicy` at cluster scope. Default `[]`.".into(),
            )
            .check(Check::EachText(
                cluster_access::is_principal_arn,
                "use an IAM role or user ARN such as \"arn:aws:iam::123456789012:role/support\" (not an assumed-role session, group or root)",
            )),
        ]
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new("cluster_arn", Type::String, "EKS cluster ARN."),
            Output::new(
                "cluster_endpoint",
                Type::String,
                "Kubernetes API server endpoint.",
            ),
            Output::new(
                "cluster_certificate_authority_data",
                Type::String,
                "Base64 CA certificate of the API server.",
            ),
            Output::new(
                "cluster_oidc_issuer_url",
                Type::String,
                "OIDC issuer URL, for IAM roles for service accounts.",
            ),
            Output::new("node_group_arn", Type::String, "Managed node group ARN."),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn check(config: &Value) -> Vec<Problem> {
        let block = config.get_attr(COMPONENT);
        let mut problems = Vec::new();
        let types = block.get_attr("node_instance_types");
        if matches!(types, Value::List(items) if items.is_empty()) {
            problems.push(Problem::at(
                "node_instance_types",
                types,
                "list at least one EC2 instance type",
            ));
        }
        principal_problems(block, &mut problems);
        let min = block.get_attr("node_min_size");
        if let (Some(lo), Some(hi)) = (min.as_i64(), block.get_attr("node_max_size").as_i64()) {
            if lo > hi {
                problems.push(Problem::at(
                    "node_min_size",
                    min,
                    format!("node_min_size must not exceed node_max_size ({hi})"),
                ));
            }
            let desired = block.get_attr("node_desired_size");
            if let Some(d) = desired.as_i64() {
                if d < lo || d > hi {
                    problems.push(Problem::at(
                        "node_desired_size",
                        desired,
                        format!("node_desired_size must be within node_min_size ({lo}) and node_max_size ({hi})"),
                    ));
                }
            }
        }
        problems
    }

    /// A new node group (none yet, or other instance types) has a new ARN.
    fn plan_outputs(prior: &Value, planned: &mut Value) {
        let types = |v: &Value| {
            v.get_attr(COMPONENT)
                .get_attr("node_instance_types")
                .clone()
        };
        if prior.get_attr("node_group_arn").is_null() || types(prior) != types(planned) {
            planned.set_attr("node_group_arn", Value::Unknown);
        }
    }

    fn judge(prior: &Value, planned: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        let was = |a: &str| prior.get_attr(COMPONENT).get_attr(a).clone();
        let now = |a: &str| planned.get_attr(COMPONENT).get_attr(a).clone();
        if let (Some(old), Some(new)) = (
            was("kubernetes_version").as_str(),
            now("kubernetes_version").as_str(),
        ) {
            let minor = |v: &str| -> Option<(u32, u32)> {
                let mut p = v.split('.').map(|n| n.parse::<u32>().ok());
                Some((p.next()??, p.next()??))
            };
            let skip = match (minor(old), minor(new)) {
                (Some(o), Some(n)) => o.0 == n.0 && n.1 > o.1 + 1,
                _ => false,
            };
            if skip {
                let (o, _) = (minor(old).unwrap_or_default(), ());
                d.push(
                    Diagnostic::error(
                        "Kubernetes upgrades go one minor version at a time",
                        format!(
                            "cluster.kubernetes_version: EKS upgrades the control plane one minor version at a time (UpdateClusterVersion), so {old} cannot go to {new} in one apply. \
                             Set kubernetes_version = \"{}.{}\" and apply (the nodes and add-ons follow), then the next minor, up to {new}.",
                            o.0,
                            o.1 + 1
                        ),
                    )
                    .at(crate::protocol::cty::Path::root()
                        .attr(COMPONENT)
                        .attr("kubernetes_version")),
                );
            } else if version_less(new, old) {
                d.push(
                    Diagnostic::error(
                        "Kubernetes cannot be downgraded",
                        format!(
                            "cluster.kubernetes_version: EKS cannot go back from {old} to {new}."
                        ),
                    )
                    .at(crate::protocol::cty::Path::root()
                        .attr(COMPONENT)
                        .attr("kubernetes_version")),
                );
            } else if old != new {
                d.push(Diagnostic::warning(
                    "Kubernetes upgrade",
                    format!("cluster: the control plane is upgraded from {old} to {new} in place (about 10 to 25 minutes, API stays available); then the node group (UpdateNodegroupVersion: a rolling node replacement that drains pods) and the add-ons vpc-cni, coredns, kube-proxy, metrics-server and, where {new} does not support its version, aws-ebs-csi-driver (to EKS's default version for {new})."),
                ));
            }
        }
        let types_now = now("node_instance_types");
        if was("node_instance_types") != types_now && types_now.is_known() {
            d.push(Diagnostic::warning(
                "Node group will be replaced",
                format!(
                    "cluster: EKS cannot change instance types of a node group in place; the node group is deleted and created again with {}: every node is drained, and pods wait for the new nodes (typically 5 to 15 minutes without worker capacity).",
                    show(&types_now)
                ),
            ));
        }
        if let (Some(running), Some(min), Some(max), Some(new)) = (
            was("node_desired_size").as_i64(),
            now("node_min_size").as_i64(),
            now("node_max_size").as_i64(),
            now("node_desired_size").as_i64(),
        ) {
            // Refresh keeps the stored size while AWS's stays within the
            // bounds, so a size here outside them is what the node group runs.
            if !(min..=max).contains(&running) && new != running {
                let effect = if new < running {
                    format!(
                        "{} node(s) are removed and their pods drained",
                        running - new
                    )
                } else {
                    format!("{} node(s) are added", new - running)
                };
                d.push(Diagnostic::warning(
                    "Node group size outside its bounds",
                    format!(
                        "cluster.node_desired_size: the node group runs {running} nodes, outside node_min_size..node_max_size = [{min}, {max}], so apply sets it to {new}: {effect}. \
                         Within [{min}, {max}] the cluster autoscaler owns the size and it is never drift; to keep {running} nodes, set node_min_size and node_max_size so that they include it."
                    ),
                ));
            }
        }
        if let (Some(old), Some(new)) =
            (was("node_max_size").as_i64(), now("node_max_size").as_i64())
        {
            // The state keeps the initial size while the autoscaler's stays
            // within the bounds, so the plan cannot know how many nodes run:
            // say what a lower maximum does to them.
            if new < old {
                d.push(Diagnostic::warning(
                    "Node group maximum lowered",
                    format!("cluster.node_max_size: lowered from {old} to {new}; if more than {new} nodes run, apply scales the node group down to {new} and the pods of the removed nodes are drained."),
                ));
            }
        }
        d
    }

    fn read(
        state: &ClusterState,
        stored: &ClusterSpec,
        prior: &Value,
    ) -> Reading<ClusterSpec, ClusterOutputs> {
        let had_group = prior.get_attr("node_group_arn").as_str().is_some();
        let mut settings = ClusterSpec {
            kubernetes_version: state.kubernetes_version.clone(),
            endpoint_public_access: state.endpoint_public_access,
            ..stored.clone()
        };
        // Without a node group its settings stay as stored: the plan makes
        // the group again from them.
        if state.node_group_arn.is_some() {
            settings.node_instance_types = state.node_instance_types.clone();
            settings.node_min_size = state.node_min_size;
            settings.node_max_size = state.node_max_size;
            settings.node_desired_size =
                desired_size_setting(stored, had_group, state.node_desired_size);
        }
        // The lists as AWS has them; the entries judged against the
        // lists as stored, or (import, a state from before the lists) as
        // read.
        let mut verdicts = state.verdicts.clone();
        let partition = state.arn.split(':').nth(1).unwrap_or("aws");
        let (admins, viewers) = cluster_access::lists(
            &state.access,
            partition,
            &stored.admin_principals,
            &stored.viewer_principals,
        );
        let block = prior.get_attr(COMPONENT);
        let stored_lists = !block.get_attr("admin_principals").is_null()
            && !block.get_attr("viewer_principals").is_null();
        let (want_admins, want_viewers) = if stored_lists {
            (&stored.admin_principals, &stored.viewer_principals)
        } else {
            (&admins, &viewers)
        };
        verdicts.judge(
            &GUARDS[ACCESS_ENTRIES],
            cluster_access::entry_problems(
                &state.access,
                &cluster_access::wanted(partition, want_admins, want_viewers),
            ),
        );
        settings.admin_principals = admins;
        settings.viewer_principals = viewers;
        Reading {
            settings,
            outputs: ClusterOutputs {
                cluster_arn: state.arn.clone(),
                cluster_endpoint: state.endpoint.clone(),
                cluster_certificate_authority_data: state.certificate_authority_data.clone(),
                cluster_oidc_issuer_url: state.oidc_issuer.clone(),
                node_group_arn: state.node_group_arn.clone(),
            },
            verdicts,
        }
    }
}

const ENDPOINT_ACCESS: usize = 0;
const SECRETS_ENCRYPTION: usize = 1;
const LOGGING: usize = 2;
const ROLES: usize = 3;
const TAGS: usize = 4;
const NODE_VERSION: usize = 5;
const ADDONS: usize = 6;
const EBS_CSI: usize = 7;
const AUTHENTICATION_MODE: usize = 8;
const ACCESS_ENTRIES: usize = 9;
const METRICS_SERVER: usize = 10;

/// What the provider makes of the cluster without a knob.
const GUARDS: &[Guard] = &[
    Guard::new(
        "endpoint_access",
        "private endpoint on",
        "The API server is reachable from inside the VPC (public access is `endpoint_public_access`).",
    ),
    Guard::new(
        "secrets_encryption",
        "secrets encrypted with the platform key",
        "Kubernetes secrets are envelope-encrypted with the platform key (EKS cannot change the key later).",
    ),
    Guard::new(
        "logging",
        "api, audit and authenticator logs on",
        "The control plane sends its API server, audit and authenticator logs to CloudWatch Logs.",
    ),
    Guard::new(
        "roles",
        "cluster and node roles as made",
        "The control plane runs as `idis-<name>-eks-cluster` (trusting eks.amazonaws.com, with AmazonEKSClusterPolicy), the nodes as `idis-<name>-eks-nodes` (trusting ec2.amazonaws.com, with AmazonEKSWorkerNodePolicy, AmazonEKS_CNI_Policy and AmazonEC2ContainerRegistryReadOnly); no other policy is attached and neither has inline policies.",
    ),
    Guard::new(
        "tags",
        "ownership and user tags present",
        "The cluster and the node group carry `tags`, the provider's `default_tags` and the ownership tags. Tags others add are left alone.",
    ),
    Guard::new(
        "node_version",
        "nodes on the control plane's version",
        "The node group runs the control plane's Kubernetes version: after a control-plane upgrade it is upgraded too (`UpdateNodegroupVersion`, a rolling replacement of the nodes).",
    ),
    Guard::new(
        "addons",
        "vpc-cni, coredns, kube-proxy active and supported",
        "The EKS managed add-ons vpc-cni, coredns and kube-proxy are installed, ACTIVE, and on a version EKS supports for the cluster's Kubernetes version (`DescribeAddonVersions`); new ones, and upgrades, take EKS's default version for it.",
    ),
    Guard::new(
        "ebs_csi_driver",
        "aws-ebs-csi-driver active with its role",
        "The EKS managed add-on aws-ebs-csi-driver (persistent volumes) is installed, ACTIVE, on a version EKS supports for the cluster's Kubernetes version, runs with the role `idis-<name>-ebs-csi-driver` of `workload_identity` (`serviceAccountRoleArn`), and tags what it makes `kubernetes.io/cluster/idis-<name>` (`k8sTagClusterId`), which that role requires. Installed once the role exists.",
    ),
    Guard::new(
        "authentication_mode",
        "access entries on (API_AND_CONFIG_MAP)",
        "The cluster authenticates with EKS access entries and the `aws-auth` ConfigMap (`API_AND_CONFIG_MAP`): created so, or moved there from `CONFIG_MAP` (`UpdateClusterConfig`). EKS only moves forward, so a cluster someone moved on to `API` (access entries only) stays there and that is not drift.",
    ),
    Guard::new(
        "access_entries",
        "only the configured principals, with their policies",
        "Each of `admin_principals` has a STANDARD access entry with `AmazonEKSClusterAdminPolicy`, each of `viewer_principals` one with `AmazonEKSViewPolicy`, at cluster scope and with no other policy; a STANDARD entry nobody configured is drift, and apply deletes it (who may use a production cluster is this configuration's to say). Entries EKS makes itself are not judged: every type but STANDARD (a managed node group's role gets `EC2_LINUX`), and on a cluster created with the creator's bootstrap admin entry, that entry (the earliest STANDARD one, made within 30 minutes of the cluster).",
    ),
    Guard::new(
        "metrics_server",
        "metrics-server active and supported",
        "The EKS community add-on metrics-server (the resource metrics API a HorizontalPodAutoscaler reads) is installed, ACTIVE, and on a version EKS supports for the cluster's Kubernetes version; new installs, and upgrades after a control-plane upgrade, take EKS's default version for it.",
    ),
];

/// The lists of principals: valid alone, in no list twice, and in one list
/// only (an IAM principal has one access entry).
fn principal_problems(block: &Value, problems: &mut Vec<Problem>) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for attr in ["admin_principals", "viewer_principals"] {
        let Value::List(items) = block.get_attr(attr) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let Some(arn) = item.as_str() else { continue };
            match seen.get(arn) {
                Some(first) if *first == attr => problems.push(Problem::at_index(
                    attr,
                    i,
                    item,
                    format!("{arn} is listed twice in {attr}; list each principal once"),
                )),
                Some(first) => problems.push(Problem::at_index(
                    attr,
                    i,
                    item,
                    format!("{arn} is in {first} as well; an IAM principal has one access entry, so list it in one of admin_principals and viewer_principals (an admin can read everything)"),
                )),
                None => {
                    seen.insert(arn.to_string(), attr);
                }
            }
        }
    }
}

/// The EKS cluster's name, `idis-<env>`: what EKS and the cluster's
/// controllers tag their own objects with.
pub fn cluster_name(ctx: &Ctx) -> String {
    ctx.prefix()
}

fn node_group_name(ctx: &Ctx) -> String {
    format!("{}-default", ctx.prefix())
}

/// One IAM role of the cluster: its name, the service that assumes it and
/// its AWS managed policies.
struct RoleSpec {
    name: String,
    service: &'static str,
    policies: &'static [&'static str],
}

fn cluster_role(ctx: &Ctx) -> RoleSpec {
    RoleSpec {
        name: format!("{}-eks-cluster", ctx.prefix()),
        service: "eks.amazonaws.com",
        policies: CLUSTER_POLICIES,
    }
}

fn node_role(ctx: &Ctx) -> RoleSpec {
    RoleSpec {
        name: format!("{}-eks-nodes", ctx.prefix()),
        service: "ec2.amazonaws.com",
        policies: NODE_POLICIES,
    }
}

fn conflict(message: impl Into<String>) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: message.into(),
    }
}

fn to_i32(what: &str, value: i64) -> Result<i32, ComponentError> {
    i32::try_from(value).map_err(|_| conflict(format!("{what} = {value} is out of range")))
}

// ---------------------------------------------------------------- find

pub async fn find(ctx: &Ctx) -> Result<Option<ClusterState>, ComponentError> {
    // The add-ons' supported versions depend on the cluster's version:
    // asked right after DescribeCluster, while the rest is still read.
    let cluster_and_addons = async {
        let Some(cluster) = describe_cluster(ctx).await? else {
            return Ok((None, Addons::default(), cluster_access::Access::default()));
        };
        if cluster.status() == Some(&ClusterStatus::Deleting) {
            return Ok((None, Addons::default(), cluster_access::Access::default()));
        }
        let (addons, access) = tokio::try_join!(
            read_addons(ctx, &cluster),
            cluster_access::read(ctx, &cluster)
        )?;
        Ok::<_, ComponentError>((Some(cluster), addons, access))
    };
    let (cluster, group, roles, platform) = tokio::join!(
        cluster_and_addons,
        describe_node_group(ctx),
        read_roles(ctx),
        super::platform_key(ctx, COMPONENT),
    );
    let (cluster, addons, access) = cluster?;
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    let group = group?.filter(|g| g.status() != Some(&NodegroupStatus::Deleting));
    let neighbours = Neighbours {
        platform_key: platform?,
        ..Neighbours::default()
    };
    Ok(Some(observe(
        ctx,
        &cluster,
        group.as_ref(),
        &roles?,
        &neighbours,
        &addons,
        access,
    )))
}

/// Control-plane logs the provider turns on: the API server, the audit
/// log and the authenticator (who did what, and who got in).
const LOG_TYPES: &[LogType] = &[LogType::Api, LogType::Audit, LogType::Authenticator];

fn enabled_logs(cluster: &Cluster) -> BTreeSet<String> {
    cluster
        .logging()
        .map(|l| {
            l.cluster_logging()
                .iter()
                .filter(|s| s.enabled() == Some(true))
                .flat_map(|s| s.types().iter().map(|t| t.as_str().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn logs_ok(cluster: &Cluster) -> bool {
    let on = enabled_logs(cluster);
    LOG_TYPES.iter().all(|t| on.contains(t.as_str()))
}

fn logging() -> Logging {
    Logging::builder()
        .cluster_logging(
            LogSetup::builder()
                .set_types(Some(LOG_TYPES.to_vec()))
                .enabled(true)
                .build(),
        )
        .build()
}

/// One IAM role of the cluster as IAM has it.
#[derive(Clone, Debug, Default)]
struct RoleView {
    arn: String,
    trusted: bool,
    attached: BTreeSet<String>,
    inline: Vec<String>,
}

async fn read_role(ctx: &Ctx, role: &RoleSpec) -> Result<Option<RoleView>, ComponentError> {
    let iam = ctx.aws.iam();
    let (got, attached, inline) = tokio::join!(
        iam.get_role().role_name(&role.name).send(),
        attached_policies(ctx, &role.name),
        iam.list_role_policies().role_name(&role.name).send(),
    );
    let got = match got {
        Ok(out) => out.role,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("read the IAM role {}", role.name),
                e,
            ))
        }
    };
    let Some(got) = got else { return Ok(None) };
    let inline = match inline {
        Ok(out) => out.policy_names().to_vec(),
        Err(e) if is_not_found(&e) => Vec::new(),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("list the inline policies of the IAM role {}", role.name),
                e,
            ))
        }
    };
    Ok(Some(RoleView {
        trusted: got
            .assume_role_policy_document()
            .is_some_and(|doc| trusts_service(doc, role.service)),
        arn: got.arn,
        attached: attached?,
        inline,
    }))
}

/// Both roles; a missing role is None.
async fn read_roles(ctx: &Ctx) -> Result<[Option<RoleView>; 2], ComponentError> {
    let (control_plane, nodes) = (cluster_role(ctx), node_role(ctx));
    let (c, n) = tokio::try_join!(read_role(ctx, &control_plane), read_role(ctx, &nodes))?;
    Ok([c, n])
}

/// What is wrong with one role against what the provider makes.
fn role_problems(
    role: &RoleSpec,
    view: Option<&RoleView>,
    used_by: Option<&str>,
    what: &str,
) -> Vec<String> {
    let Some(view) = view else {
        return vec![format!("IAM role {} is missing", role.name)];
    };
    let mut problems = Vec::new();
    if let Some(arn) = used_by {
        if arn != view.arn {
            problems.push(format!("the {what} runs as {arn}, not {}", role.name));
        }
    }
    if !view.trusted {
        problems.push(format!(
            "IAM role {} does not trust {}",
            role.name, role.service
        ));
    }
    let partition = view.arn.split(':').nth(1).unwrap_or("aws");
    let wanted: BTreeSet<String> = role
        .policies
        .iter()
        .map(|p| format!("arn:{partition}:iam::aws:policy/{p}"))
        .collect();
    for p in wanted.difference(&view.attached) {
        problems.push(format!(
            "IAM role {} lacks {}",
            role.name,
            p.rsplit('/').next().unwrap_or(p)
        ));
    }
    for p in view.attached.difference(&wanted) {
        problems.push(format!("IAM role {} has {p} attached as well", role.name));
    }
    for p in &view.inline {
        problems.push(format!("IAM role {} has the inline policy {p}", role.name));
    }
    problems
}

/// Judges what the provider makes of the cluster without a knob.
fn judge(
    ctx: &Ctx,
    cluster: &Cluster,
    group: Option<&Nodegroup>,
    roles: &[Option<RoleView>; 2],
    n: &Neighbours,
    addons: &Addons,
    access: &cluster_access::Access,
) -> Verdicts {
    let mut v = Verdicts::new();
    let name = cluster_name(ctx);
    let version = cluster.version().unwrap_or_default();
    if let Some(g) = group {
        let nodes = g.version().unwrap_or_default();
        v.judge(
            &GUARDS[NODE_VERSION],
            (parse_version(nodes) != parse_version(version)).then(|| {
                format!("the node group runs Kubernetes {nodes}, the control plane {version}")
            }),
        );
    }
    v.judge(
        &GUARDS[ADDONS],
        addons::problems(&addons.seen, &addons.supported, version, addons::CORE),
    );
    v.judge(
        &GUARDS[METRICS_SERVER],
        addons::problems(
            &addons.seen,
            &addons.supported,
            version,
            &[addons::METRICS_SERVER],
        ),
    );
    v.judge(
        &GUARDS[EBS_CSI],
        addons::ebs_csi_problems(
            addons.ebs_csi.as_ref(),
            &addons.ebs_csi_supported,
            version,
            &ebs_csi_role_arn(ctx),
            &name,
        ),
    );
    v.judge(
        &GUARDS[AUTHENTICATION_MODE],
        cluster_access::mode_problems(access),
    );
    let private = cluster
        .resources_vpc_config()
        .is_some_and(|c| c.endpoint_private_access());
    v.judge(
        &GUARDS[ENDPOINT_ACCESS],
        (!private).then(|| format!("the private endpoint of EKS cluster {name} is off")),
    );
    v.judge(
        &GUARDS[SECRETS_ENCRYPTION],
        match secrets_key_arn(cluster) {
            None => Some("Kubernetes secrets are not envelope-encrypted".to_string()),
            Some(key) if !n.is_platform_key(&key) => Some(format!(
                "secrets are encrypted with {key}, not the platform key"
            )),
            Some(_) => None,
        },
    );
    let on = enabled_logs(cluster);
    let missing: Vec<&str> = LOG_TYPES
        .iter()
        .map(|t| t.as_str())
        .filter(|t| !on.contains(*t))
        .collect();
    v.judge(
        &GUARDS[LOGGING],
        (!missing.is_empty()).then(|| format!("{} logs off", missing.join(", "))),
    );
    let mut role = role_problems(
        &cluster_role(ctx),
        roles[0].as_ref(),
        cluster.role_arn(),
        "control plane",
    );
    role.extend(role_problems(
        &node_role(ctx),
        roles[1].as_ref(),
        group.and_then(|g| g.node_role()),
        "node group",
    ));
    v.judge(&GUARDS[ROLES], role);
    let mut tags = super::tag_problems(
        &format!("EKS cluster {name}"),
        &cluster
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        &ctx.tags(COMPONENT),
    );
    if let Some(g) = group {
        tags.extend(super::tag_problems(
            &format!("EKS node group {}", node_group_name(ctx)),
            &g.tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            &ctx.tags(COMPONENT),
        ));
    }
    v.judge(&GUARDS[TAGS], tags);
    v
}

/// The managed add-ons as read, and what EKS supports on the cluster's version.
#[derive(Default)]
struct Addons {
    seen: BTreeMap<String, Option<addons::Seen>>,
    supported: BTreeMap<String, addons::Supported>,
    ebs_csi: Option<addons::Seen>,
    ebs_csi_supported: addons::Supported,
}

async fn read_addons(ctx: &Ctx, cluster: &Cluster) -> Result<Addons, ComponentError> {
    let name = cluster_name(ctx);
    let version = cluster.version().unwrap_or_default();
    let (seen, supported, (ebs_csi, ebs_csi_supported)) = tokio::try_join!(
        addons::read(ctx, &name),
        addons::supported(ctx, version),
        addons::read_ebs_csi(ctx, &name, version),
    )?;
    Ok(Addons {
        seen,
        supported,
        ebs_csi,
        ebs_csi_supported,
    })
}

/// The role the EBS CSI driver runs with (made by `workload_identity`,
/// or for the DR site's cluster by `dr`).
pub fn ebs_csi_role_arn(ctx: &Ctx) -> String {
    super::identity::Role::EbsCsiDriver.arn_at(
        super::partition(&ctx.region),
        &ctx.account_id,
        &ctx.env,
        ctx.dr_site,
    )
}

/// The state as AWS reports it.
fn observe(
    ctx: &Ctx,
    cluster: &Cluster,
    group: Option<&Nodegroup>,
    roles: &[Option<RoleView>; 2],
    n: &Neighbours,
    addons: &Addons,
    access: cluster_access::Access,
) -> ClusterState {
    let vpc = cluster.resources_vpc_config();
    let scaling = group.and_then(Nodegroup::scaling_config);
    let tags = cluster
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    ClusterState {
        name: cluster.name().unwrap_or_default().to_string(),
        arn: cluster.arn().unwrap_or_default().to_string(),
        endpoint: cluster.endpoint().map(str::to_string),
        certificate_authority_data: cluster
            .certificate_authority()
            .and_then(|c| c.data())
            .map(str::to_string),
        oidc_issuer: cluster
            .identity()
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .map(str::to_string),
        kubernetes_version: cluster.version().unwrap_or_default().to_string(),
        endpoint_public_access: vpc.is_some_and(|v| v.endpoint_public_access()),
        endpoint_private_access: vpc.is_some_and(|v| v.endpoint_private_access()),
        secrets_key_arn: secrets_key_arn(cluster),
        node_group_arn: group.and_then(|g| g.nodegroup_arn()).map(str::to_string),
        node_instance_types: group
            .map(|g| g.instance_types().to_vec())
            .unwrap_or_default(),
        node_min_size: scaling.and_then(|s| s.min_size()).unwrap_or(0).into(),
        node_max_size: scaling.and_then(|s| s.max_size()).unwrap_or(0).into(),
        node_desired_size: scaling.and_then(|s| s.desired_size()).unwrap_or(0).into(),
        cluster_role_arn: cluster.role_arn().map(str::to_string),
        node_role_arn: group.and_then(|g| g.node_role()).map(str::to_string),
        tags: user_visible_tags(tags),
        node_kubernetes_version: group.and_then(|g| g.version()).map(str::to_string),
        addon_versions: addons
            .seen
            .iter()
            .chain([(&addons::EBS_CSI.to_string(), &addons.ebs_csi)])
            .filter_map(|(name, a)| {
                let version = a.as_ref()?.version.clone()?;
                Some((name.clone(), version))
            })
            .collect(),
        verdicts: judge(ctx, cluster, group, roles, n, addons, &access),
        access,
    }
}

/// The customer KMS key that envelope-encrypts Kubernetes secrets (and,
/// from Kubernetes 1.28, all API data), if any.
fn secrets_key_arn(cluster: &Cluster) -> Option<String> {
    cluster
        .encryption_config()
        .iter()
        .find_map(|e| e.provider().and_then(|p| p.key_arn()))
        .map(str::to_string)
}

async fn describe_cluster(ctx: &Ctx) -> Result<Option<Cluster>, ComponentError> {
    let name = cluster_name(ctx);
    match ctx.aws.eks().describe_cluster().name(&name).send().await {
        Ok(out) => Ok(out.cluster),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("describe the EKS cluster {name}"),
            e,
        )),
    }
}

async fn describe_node_group(ctx: &Ctx) -> Result<Option<Nodegroup>, ComponentError> {
    let name = node_group_name(ctx);
    match ctx
        .aws
        .eks()
        .describe_nodegroup()
        .cluster_name(cluster_name(ctx))
        .nodegroup_name(&name)
        .send()
        .await
    {
        Ok(out) => Ok(out.nodegroup),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("describe the EKS node group {name}"),
            e,
        )),
    }
}

// ---------------------------------------------------------------- ensure

pub async fn ensure(
    ctx: &Ctx,
    spec: &ClusterSpec,
    network: &NetworkState,
    keys: &KeysState,
) -> Result<ClusterState, ComponentError> {
    let wanted_version = parse_version(&spec.kubernetes_version).ok_or_else(|| {
        conflict(format!(
            "kubernetes_version = {:?} is not a version such as \"1.31\"",
            spec.kubernetes_version
        ))
    })?;
    if spec.node_min_size > spec.node_max_size {
        return Err(conflict(format!(
            "node_min_size = {} is greater than node_max_size = {}",
            spec.node_min_size, spec.node_max_size
        )));
    }
    // Roles and the current cluster and node group are read at once: a
    // converged environment costs one round of calls.
    let (control_plane, nodes) = (cluster_role(ctx), node_role(ctx));
    let (cluster_role_arn, node_role_arn, current_cluster, current_group) = tokio::try_join!(
        ensure_role(ctx, &control_plane),
        ensure_role(ctx, &nodes),
        describe_cluster(ctx),
        describe_node_group(ctx),
    )?;
    let cluster = ensure_cluster(
        ctx,
        spec,
        wanted_version,
        network,
        keys,
        &cluster_role_arn,
        current_cluster,
    )
    .await?;
    let group = ensure_node_group(ctx, spec, network, &node_role_arn, current_group).await?;
    // The nodes, then the add-ons, follow the control plane's version.
    let version = cluster
        .version()
        .unwrap_or(&spec.kubernetes_version)
        .to_string();
    let group = ensure_node_version(ctx, group, &version).await?;
    let tags = ctx.tags(COMPONENT);
    let name = cluster_name(ctx);
    tokio::try_join!(
        addons::ensure(ctx, &name, &version, &tags),
        cluster_access::ensure(
            ctx,
            &cluster,
            &spec.admin_principals,
            &spec.viewer_principals,
            &tags
        ),
    )?;
    let (roles, addons, access) = tokio::try_join!(
        read_roles(ctx),
        read_addons(ctx, &cluster),
        cluster_access::read(ctx, &cluster)
    )?;
    let neighbours = Neighbours::of(ctx, network, keys);
    Ok(observe(
        ctx,
        &cluster,
        Some(&group),
        &roles,
        &neighbours,
        &addons,
        access,
    ))
}

/// Creates or adopts one IAM role, then makes its trust policy, managed
/// policies and tags match. Returns the role ARN.
async fn ensure_role(ctx: &Ctx, role: &RoleSpec) -> Result<String, ComponentError> {
    let iam = ctx.aws.iam();
    let tags = ctx.tags(COMPONENT);
    let trust = trust_policy(role.service);
    let existing = match iam.get_role().role_name(&role.name).send().await {
        Ok(out) => out.role,
        Err(e) if is_not_found(&e) => None,
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("read the IAM role {}", role.name),
                e,
            ))
        }
    };
    let (arn, attached) = match existing {
        None => {
            let mut create = iam
                .create_role()
                .role_name(&role.name)
                .assume_role_policy_document(&trust)
                .description(format!(
                    "IDIS environment {}: assumed by {}",
                    ctx.env, role.service
                ));
            for (k, v) in &tags {
                create = create.tags(iam_tag(k, v)?);
            }
            let created = match create.send().await {
                Ok(out) => out.role.map(|r| r.arn),
                // Created by a concurrent or killed run: adopt it.
                Err(e) if e.code() == Some("EntityAlreadyExists") => None,
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!("create the IAM role {}", role.name),
                        e,
                    ))
                }
            };
            match created {
                Some(arn) => (arn, BTreeSet::new()),
                None => {
                    let arn = read_role_arn(ctx, &role.name).await?;
                    let attached = attached_policies(ctx, &role.name).await?;
                    (arn, attached)
                }
            }
        }
        Some(existing) => {
            let (attached, repaired) = tokio::join!(
                attached_policies(ctx, &role.name),
                repair_role(ctx, role, &existing, &trust, &tags),
            );
            repaired?;
            (existing.arn, attached?)
        }
    };
    // Policies nobody asked for go: the roles hold what the provider
    // makes, and an extra policy is extra power for every node.
    let partition = arn.split(':').nth(1).unwrap_or("aws").to_string();
    let wanted: BTreeSet<String> = role
        .policies
        .iter()
        .map(|p| format!("arn:{partition}:iam::aws:policy/{p}"))
        .collect();
    let extra: Vec<String> = attached.difference(&wanted).cloned().collect();
    let inline = match iam.list_role_policies().role_name(&role.name).send().await {
        Ok(out) => out.policy_names().to_vec(),
        Err(e) if is_not_found(&e) => Vec::new(),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("list the inline policies of the IAM role {}", role.name),
                e,
            ))
        }
    };
    futures_util::future::try_join_all(extra.iter().map(|policy| {
        let iam = iam.clone();
        async move {
            iam.detach_role_policy()
                .role_name(&role.name)
                .policy_arn(policy)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("detach {policy} from the IAM role {}", role.name),
                        e,
                    )
                })
        }
    }))
    .await?;
    futures_util::future::try_join_all(inline.iter().map(|policy| {
        let iam = iam.clone();
        async move {
            iam.delete_role_policy()
                .role_name(&role.name)
                .policy_name(policy)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!(
                            "delete the inline policy {policy} of the IAM role {}",
                            role.name
                        ),
                        e,
                    )
                })
        }
    }))
    .await?;
    let missing = role
        .policies
        .iter()
        .map(|p| format!("arn:{partition}:iam::aws:policy/{p}"))
        .filter(|p| !attached.contains(p));
    futures_util::future::try_join_all(missing.map(|policy| {
        let iam = iam.clone();
        async move {
            iam.attach_role_policy()
                .role_name(&role.name)
                .policy_arn(&policy)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("attach {policy} to the IAM role {}", role.name),
                        e,
                    )
                })
        }
    }))
    .await?;
    Ok(arn)
}

/// Puts back the trust policy and the tags of an adopted role when they drifted.
async fn repair_role(
    ctx: &Ctx,
    role: &RoleSpec,
    existing: &aws_sdk_iam::types::Role,
    trust: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), ComponentError> {
    let iam = ctx.aws.iam();
    let trusted = existing
        .assume_role_policy_document()
        .is_some_and(|doc| trusts_service(doc, role.service));
    let trust_fix = async {
        if trusted {
            return Ok(());
        }
        iam.update_assume_role_policy()
            .role_name(&role.name)
            .policy_document(trust)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("restore the trust policy of the IAM role {}", role.name),
                    e,
                )
            })
    };
    let current: BTreeMap<&str, &str> = existing
        .tags()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    let stale: Vec<(&String, &String)> = tags
        .iter()
        .filter(|(k, v)| current.get(k.as_str()) != Some(&v.as_str()))
        .collect();
    let tag_fix = async {
        if stale.is_empty() {
            return Ok(());
        }
        let mut call = iam.tag_role().role_name(&role.name);
        for (k, v) in &stale {
            call = call.tags(iam_tag(k, v)?);
        }
        call.send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error(COMPONENT, format!("tag the IAM role {}", role.name), e))
    };
    tokio::try_join!(trust_fix, tag_fix)?;
    Ok(())
}

async fn read_role_arn(ctx: &Ctx, name: &str) -> Result<String, ComponentError> {
    let out = ctx
        .aws
        .iam()
        .get_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("read the IAM role {name}"), e))?;
    out.role
        .map(|r| r.arn)
        .ok_or_else(|| conflict(format!("IAM returned no role for {name}")))
}

async fn attached_policies(ctx: &Ctx, role: &str) -> Result<BTreeSet<String>, ComponentError> {
    let mut arns = BTreeSet::new();
    let mut marker: Option<String> = None;
    loop {
        let out = ctx
            .aws
            .iam()
            .list_attached_role_policies()
            .role_name(role)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("list the policies attached to the IAM role {role}"),
                    e,
                )
            })?;
        arns.extend(
            out.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .map(str::to_string),
        );
        match (out.is_truncated, out.marker) {
            (true, Some(next)) => marker = Some(next),
            _ => return Ok(arns),
        }
    }
}

fn iam_tag(key: &str, value: &str) -> Result<aws_sdk_iam::types::Tag, ComponentError> {
    aws_sdk_iam::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| conflict(format!("invalid IAM tag {key:?}: {e}")))
}

fn trust_policy(service: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole",
        }],
    })
    .to_string()
}

/// True when a trust policy (as IAM returns it: RFC 3986 URL-encoded JSON) lets
/// `service` assume the role.
fn trusts_service(document: &str, service: &str) -> bool {
    let decoded = percent_decode(document);
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&decoded) else {
        return false;
    };
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(list) => list.clone(),
        single => vec![single.clone()],
    };
    let has = |v: &serde_json::Value, wanted: &str| match v {
        serde_json::Value::String(s) => s == wanted,
        serde_json::Value::Array(list) => list.iter().any(|s| s == wanted),
        _ => false,
    };
    statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && has(&s["Action"], "sts:AssumeRole")
            && has(&s["Principal"]["Service"], service)
    })
}

pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.extend(u8::try_from(high * 16 + low).ok());
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `"1.31"` as `(1, 31)`; patch levels are ignored.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

async fn ensure_cluster(
    ctx: &Ctx,
    spec: &ClusterSpec,
    wanted_version: (u32, u32),
    network: &NetworkState,
    keys: &KeysState,
    role_arn: &str,
    mut current: Option<Cluster>,
) -> Result<Cluster, ComponentError> {
    let name = cluster_name(ctx);
    if current
        .as_ref()
        .is_some_and(|c| c.status() == Some(&ClusterStatus::Deleting))
    {
        wait_cluster_gone(ctx).await?;
        current = None;
    }
    let mut cluster = match current {
        None => create_cluster(ctx, spec, network, keys, role_arn).await?,
        Some(c) => match c.status() {
            Some(ClusterStatus::Active) => c,
            Some(ClusterStatus::Failed) => {
                return Err(conflict(format!(
                    "EKS cluster {name} is in status FAILED; delete it (terraform destroy, or the EKS console) and apply again"
                )))
            }
            _ => wait_cluster(ctx, "become ACTIVE", |_| true).await?,
        },
    };

    // Kubernetes version: upgrades go one minor version at a time.
    let mut observed = cluster.version().and_then(parse_version);
    if let Some(current) = observed {
        if wanted_version < current {
            return Err(conflict(format!(
                "EKS cluster {name} runs Kubernetes {}.{} and cannot be downgraded to {}; keep kubernetes_version at {}.{} or later",
                current.0, current.1, spec.kubernetes_version, current.0, current.1
            )));
        }
    }
    if let Some(current) =
        observed.filter(|v| v.0 == wanted_version.0 && wanted_version.1 > v.1 + 1)
    {
        return Err(conflict(format!(
            "EKS cluster {name} runs Kubernetes {}.{}; EKS upgrades one minor version at a time: set kubernetes_version = \"{}.{}\" and apply, then the next",
            current.0, current.1, current.0, current.1 + 1
        )));
    }
    while let Some(current) = observed.filter(|v| *v < wanted_version) {
        let next = if current.0 == wanted_version.0 {
            (current.0, current.1 + 1)
        } else {
            wanted_version
        };
        let next_text = format!("{}.{}", next.0, next.1);
        ctx.aws
            .eks()
            .update_cluster_version()
            .name(&name)
            .version(&next_text)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("upgrade the EKS cluster {name} to Kubernetes {next_text}"),
                    e,
                )
            })?;
        cluster = wait_cluster(ctx, &format!("finish its upgrade to {next_text}"), |c| {
            c.version().and_then(parse_version) == Some(next)
        })
        .await?;
        observed = Some(next);
    }

    // Secrets encryption can be added to a cluster, never changed.
    match secrets_key_arn(&cluster) {
        Some(key) if key == keys.platform_key_arn => {}
        Some(key) => {
            return Err(conflict(format!(
                "EKS cluster {name} encrypts secrets with {key}, not the platform key {}; EKS cannot change this key, so the cluster must be replaced",
                keys.platform_key_arn
            )))
        }
        None => {
            ctx.aws
                .eks()
                .associate_encryption_config()
                .cluster_name(&name)
                .encryption_config(secrets_encryption(keys))
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("enable secrets encryption on the EKS cluster {name}"),
                        e,
                    )
                })?;
            cluster = wait_cluster(ctx, "finish enabling secrets encryption", |c| {
                secrets_key_arn(c).is_some()
            })
            .await?;
        }
    }

    // Endpoint access.
    let access_ok = |c: &Cluster| {
        c.resources_vpc_config().is_some_and(|v| {
            v.endpoint_private_access() && v.endpoint_public_access() == spec.endpoint_public_access
        })
    };
    if !access_ok(&cluster) {
        ctx.aws
            .eks()
            .update_cluster_config()
            .name(&name)
            .resources_vpc_config(
                VpcConfigRequest::builder()
                    .endpoint_private_access(true)
                    .endpoint_public_access(spec.endpoint_public_access)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("update the endpoint access of the EKS cluster {name}"),
                    e,
                )
            })?;
        cluster = wait_cluster(ctx, "apply the endpoint access change", access_ok).await?;
    }

    // Control-plane logs: one update of its own (EKS takes one kind of
    // change per UpdateClusterConfig).
    if !logs_ok(&cluster) {
        ctx.aws
            .eks()
            .update_cluster_config()
            .name(&name)
            .logging(logging())
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("turn on the control-plane logs of the EKS cluster {name}"),
                    e,
                )
            })?;
        cluster = wait_cluster(ctx, "apply the logging change", logs_ok).await?;
    }

    // Access entries need the API in the authentication mode. EKS moves
    // it forward only (CONFIG_MAP -> API_AND_CONFIG_MAP -> API), so a
    // cluster on API stays there.
    let mode_ok = |c: &Cluster| {
        matches!(
            cluster_access::config_of(c).0.as_deref(),
            Some(cluster_access::MODE) | Some(cluster_access::MODE_API)
        )
    };
    if !mode_ok(&cluster) {
        ctx.aws
            .eks()
            .update_cluster_config()
            .name(&name)
            .access_config(
                UpdateAccessConfigRequest::builder()
                    .authentication_mode(AuthenticationMode::ApiAndConfigMap)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!(
                        "move the EKS cluster {name} to the authentication mode API_AND_CONFIG_MAP"
                    ),
                    e,
                )
            })?;
        cluster = wait_cluster(ctx, "apply the authentication mode change", mode_ok).await?;
    }

    // Tags: add or correct ours, leave others alone.
    let stale = stale_tags(ctx, cluster.tags());
    if !stale.is_empty() {
        let arn = cluster.arn().unwrap_or_default().to_string();
        ctx.aws
            .eks()
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(stale.into_iter().collect()))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("tag the EKS cluster {name}"), e))?;
        cluster = describe_cluster(ctx).await?.ok_or_else(|| {
            conflict(format!(
                "EKS cluster {name} disappeared while it was tagged"
            ))
        })?;
    }
    Ok(cluster)
}

/// Ownership and user tags that are missing or different on an EKS object.
fn stale_tags(
    ctx: &Ctx,
    current: Option<&std::collections::HashMap<String, String>>,
) -> BTreeMap<String, String> {
    ctx.tags(COMPONENT)
        .into_iter()
        .filter(|(k, v)| current.and_then(|c| c.get(k)) != Some(v))
        .collect()
}

/// `resources = ["secrets"]` is deprecated (EKS encrypts all API data from
/// Kubernetes 1.28) but still the one accepted value, and required by
/// clusters older than 1.28.
#[allow(deprecated)]
fn secrets_encryption(keys: &KeysState) -> EncryptionConfig {
    EncryptionConfig::builder()
        .resources("secrets")
        .provider(Provider::builder().key_arn(&keys.platform_key_arn).build())
        .build()
}

async fn create_cluster(
    ctx: &Ctx,
    spec: &ClusterSpec,
    network: &NetworkState,
    keys: &KeysState,
    role_arn: &str,
) -> Result<Cluster, ComponentError> {
    let name = cluster_name(ctx);
    // The control plane logs from its first minute: its log group first,
    // encrypted with the platform key (EKS would make it unencrypted and
    // kept forever). `monitoring` sets its retention.
    super::logs::ensure_group(
        ctx,
        COMPONENT,
        &super::logs::eks_group(ctx),
        &keys.platform_key_arn,
        None,
        None,
    )
    .await?;
    let subnets: Vec<String> = network
        .private_subnet_ids
        .iter()
        .chain(&network.public_subnet_ids)
        .cloned()
        .collect();
    let result = ctx
        .aws
        .eks()
        .create_cluster()
        .name(&name)
        .version(&spec.kubernetes_version)
        .role_arn(role_arn)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .set_subnet_ids(Some(subnets))
                .security_group_ids(&network.cluster_security_group_id)
                .endpoint_private_access(true)
                .endpoint_public_access(spec.endpoint_public_access)
                .build(),
        )
        .encryption_config(secrets_encryption(keys))
        .logging(logging())
        // Access entries from the start, and no admin entry for whoever
        // runs the apply: admin_principals say who administers it.
        .access_config(
            CreateAccessConfigRequest::builder()
                .authentication_mode(AuthenticationMode::ApiAndConfigMap)
                .bootstrap_cluster_creator_admin_permissions(false)
                .build(),
        )
        .set_tags(Some(ctx.tags(COMPONENT).into_iter().collect()))
        .send()
        .await;
    match result {
        Ok(_) => {}
        // Created meanwhile (a concurrent or killed run): adopt it.
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("create the EKS cluster {name}"),
                e,
            ))
        }
    }
    wait_cluster(ctx, "become ACTIVE", |_| true).await
}

/// Waits until the cluster is ACTIVE and `done` holds; FAILED or a
/// vanished cluster end the wait with an error.
async fn wait_cluster(
    ctx: &Ctx,
    what: &str,
    done: impl Fn(&Cluster) -> bool,
) -> Result<Cluster, ComponentError> {
    let name = cluster_name(ctx);
    let done = &done;
    let name_ref = &name;
    ctx.wait_for(COMPONENT, &format!("EKS cluster {name} to {what}"), || async move {
        match describe_cluster(ctx).await? {
            None => Err(conflict(format!(
                "EKS cluster {name_ref} disappeared while waiting for it to {what}"
            ))),
            Some(c) => match c.status() {
                Some(ClusterStatus::Active) if done(&c) => Ok(Some(c)),
                Some(ClusterStatus::Failed) => Err(conflict(format!(
                    "EKS cluster {name_ref} is in status FAILED; see its health issues in the EKS console"
                ))),
                _ => Ok(None),
            },
        }
    })
    .await
}

async fn wait_cluster_gone(ctx: &Ctx) -> Result<(), ComponentError> {
    let name = cluster_name(ctx);
    ctx.wait_for(
        COMPONENT,
        &format!("EKS cluster {name} to be deleted"),
        || async move {
            match describe_cluster(ctx).await? {
                None => Ok(Some(())),
                Some(c) if c.status() == Some(&ClusterStatus::Failed) => Err(conflict(format!(
                    "deleting the EKS cluster {} failed (status FAILED); see the EKS console",
                    cluster_name(ctx)
                ))),
                Some(_) => Ok(None),
            }
        },
    )
    .await
}

fn node_group_settled(group: &Nodegroup) -> bool {
    matches!(
        group.status(),
        Some(NodegroupStatus::Active) | Some(NodegroupStatus::Degraded)
    )
}

async fn ensure_node_group(
    ctx: &Ctx,
    spec: &ClusterSpec,
    network: &NetworkState,
    role_arn: &str,
    mut current: Option<Nodegroup>,
) -> Result<Nodegroup, ComponentError> {
    let name = node_group_name(ctx);
    if current
        .as_ref()
        .is_some_and(|g| g.status() == Some(&NodegroupStatus::Deleting))
    {
        wait_node_group_gone(ctx).await?;
        current = None;
    }
    let min = to_i32("node_min_size", spec.node_min_size)?;
    let max = to_i32("node_max_size", spec.node_max_size)?;
    let mut group = match current {
        None => {
            let desired = to_i32("node_desired_size", spec.node_desired_size)?.clamp(min, max);
            return create_node_group(ctx, spec, network, role_arn, min, max, desired).await;
        }
        Some(g) => match g.status() {
            Some(NodegroupStatus::CreateFailed) | Some(NodegroupStatus::DeleteFailed) => {
                return Err(conflict(format!(
                    "EKS node group {name} is in status {}; see its health issues in the EKS console, delete it and apply again",
                    g.status().map(|s| s.as_str()).unwrap_or("?")
                )))
            }
            _ if node_group_settled(&g) => g,
            _ => wait_node_group(ctx, "become ACTIVE", |_| true).await?,
        },
    };

    let observed = group.instance_types().iter().map(String::as_str);
    if !same_members(
        observed,
        spec.node_instance_types.iter().map(String::as_str),
    ) {
        // A managed node group cannot change instance types: replace it.
        crate::logging::info(&format!(
            "EKS node group {name}: replacing [{}] with [{}]",
            group.instance_types().join(", "),
            spec.node_instance_types.join(", ")
        ));
        delete_node_group(ctx).await?;
        let desired = group
            .scaling_config()
            .and_then(|s| s.desired_size())
            .unwrap_or(min)
            .clamp(min, max);
        return create_node_group(ctx, spec, network, role_arn, min, max, desired).await;
    }

    // Scaling: min and max are ours; desired belongs to the autoscaler and
    // is only clamped into the new bounds.
    let scaling = group.scaling_config();
    let cur_min = scaling.and_then(|s| s.min_size());
    let cur_max = scaling.and_then(|s| s.max_size());
    let cur_desired = scaling.and_then(|s| s.desired_size());
    let clamp = cur_desired
        .filter(|d| *d < min || *d > max)
        .map(|d| d.clamp(min, max));
    if cur_min != Some(min) || cur_max != Some(max) || clamp.is_some() {
        ctx.aws
            .eks()
            .update_nodegroup_config()
            .cluster_name(cluster_name(ctx))
            .nodegroup_name(&name)
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(min)
                    .max_size(max)
                    .set_desired_size(clamp)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("update the scaling of the EKS node group {name}"),
                    e,
                )
            })?;
        group = wait_node_group(ctx, "apply the new scaling", |g| {
            g.scaling_config().is_some_and(|s| {
                s.min_size() == Some(min)
                    && s.max_size() == Some(max)
                    && s.desired_size().is_some_and(|d| (min..=max).contains(&d))
            })
        })
        .await?;
    }

    let stale = stale_tags(ctx, group.tags());
    if !stale.is_empty() {
        let arn = group.nodegroup_arn().unwrap_or_default().to_string();
        ctx.aws
            .eks()
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(stale.into_iter().collect()))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("tag the EKS node group {name}"), e))?;
        group = describe_node_group(ctx).await?.ok_or_else(|| {
            conflict(format!(
                "EKS node group {name} disappeared while it was tagged"
            ))
        })?;
    }
    Ok(group)
}

/// Upgrades the node group to the control plane's Kubernetes version
/// (`UpdateNodegroupVersion`: EKS replaces the nodes one batch at a time,
/// draining each; "Update a managed node group for your cluster", EKS User
/// Guide), bounded by the apply's timeout.
async fn ensure_node_version(
    ctx: &Ctx,
    group: Nodegroup,
    version: &str,
) -> Result<Nodegroup, ComponentError> {
    let nodes = group.version().unwrap_or_default().to_string();
    if parse_version(&nodes) == parse_version(version) {
        return Ok(group);
    }
    let name = node_group_name(ctx);
    crate::logging::info(&format!(
        "EKS node group {name}: upgrading its nodes from Kubernetes {nodes} to {version}"
    ));
    ctx.aws
        .eks()
        .update_nodegroup_version()
        .cluster_name(cluster_name(ctx))
        .nodegroup_name(&name)
        .version(version)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!("upgrade the EKS node group {name} from Kubernetes {nodes} to {version}"),
                e,
            )
        })?;
    let wanted = parse_version(version);
    wait_node_group(ctx, &format!("run Kubernetes {version}"), |g| {
        g.status() == Some(&NodegroupStatus::Active)
            && g.version().and_then(parse_version) == wanted
    })
    .await
}

async fn create_node_group(
    ctx: &Ctx,
    spec: &ClusterSpec,
    network: &NetworkState,
    role_arn: &str,
    min: i32,
    max: i32,
    desired: i32,
) -> Result<Nodegroup, ComponentError> {
    let name = node_group_name(ctx);
    let result = ctx
        .aws
        .eks()
        .create_nodegroup()
        .cluster_name(cluster_name(ctx))
        .nodegroup_name(&name)
        .node_role(role_arn)
        .set_subnets(Some(network.private_subnet_ids.clone()))
        .set_instance_types(Some(spec.node_instance_types.clone()))
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(min)
                .max_size(max)
                .desired_size(desired)
                .build(),
        )
        .set_tags(Some(ctx.tags(COMPONENT).into_iter().collect()))
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("create the EKS node group {name}"),
                e,
            ))
        }
    }
    wait_node_group(ctx, "become ACTIVE", |_| true).await
}

async fn wait_node_group(
    ctx: &Ctx,
    what: &str,
    done: impl Fn(&Nodegroup) -> bool,
) -> Result<Nodegroup, ComponentError> {
    let name = node_group_name(ctx);
    let done = &done;
    let name_ref = &name;
    ctx.wait_for(COMPONENT, &format!("EKS node group {name} to {what}"), || async move {
        match describe_node_group(ctx).await? {
            None => Err(conflict(format!(
                "EKS node group {name_ref} disappeared while waiting for it to {what}"
            ))),
            Some(g) => match g.status() {
                Some(NodegroupStatus::CreateFailed) => Err(conflict(format!(
                    "EKS node group {name_ref} failed to create (CREATE_FAILED); see its health issues in the EKS console"
                ))),
                _ if node_group_settled(&g) && done(&g) => Ok(Some(g)),
                _ => Ok(None),
            },
        }
    })
    .await
}

async fn wait_node_group_gone(ctx: &Ctx) -> Result<(), ComponentError> {
    let name = node_group_name(ctx);
    let name_ref = &name;
    ctx.wait_for(
        COMPONENT,
        &format!("EKS node group {name} to be deleted"),
        || async move {
            match describe_node_group(ctx).await? {
                None => Ok(Some(())),
                Some(g) if g.status() == Some(&NodegroupStatus::DeleteFailed) => {
                    Err(conflict(format!(
                        "deleting the EKS node group {name_ref} failed (DELETE_FAILED); see its health issues in the EKS console"
                    )))
                }
                Some(_) => Ok(None),
            }
        },
    )
    .await
}

// ---------------------------------------------------------------- delete

/// Deletes the node group, then the cluster, then both roles, waiting for
/// each to be gone. Absent pieces are skipped. Returns warnings for the
/// plan/apply output (none today).
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    delete_cluster(ctx).await?;
    let (control_plane, nodes) = (cluster_role(ctx), node_role(ctx));
    tokio::try_join!(
        delete_role(ctx, &control_plane.name),
        delete_role(ctx, &nodes.name),
    )?;
    Ok(Vec::new())
}

/// Deletes the node group, then the cluster, of `ctx`'s region, and keeps
/// the two IAM roles: IAM is global, and a cluster of the same environment
/// in another region (the DR site's) runs with the same ones.
pub async fn delete_cluster(ctx: &Ctx) -> Result<(), ComponentError> {
    delete_node_group(ctx).await?;

    let name = cluster_name(ctx);
    if let Some(cluster) = describe_cluster(ctx).await? {
        if cluster.status() != Some(&ClusterStatus::Deleting) {
            match ctx.aws.eks().delete_cluster().name(&name).send().await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    // A retry after a lost answer finds the cluster already
                    // deleting (ResourceInUseException): that is success.
                    let now = describe_cluster(ctx).await?;
                    if now
                        .as_ref()
                        .is_some_and(|c| c.status() != Some(&ClusterStatus::Deleting))
                    {
                        return Err(aws_error(
                            COMPONENT,
                            format!("delete the EKS cluster {name} (node groups or Fargate profiles made outside this environment must be deleted first)"),
                            e,
                        ));
                    }
                }
            }
        }
        wait_cluster_gone(ctx).await?;
    }
    Ok(())
}

/// Deletes the node group (if any) and waits until it is gone.
async fn delete_node_group(ctx: &Ctx) -> Result<(), ComponentError> {
    let group_name = node_group_name(ctx);
    let Some(group) = describe_node_group(ctx).await? else {
        return Ok(());
    };
    if group.status() != Some(&NodegroupStatus::Deleting) {
        let result = ctx
            .aws
            .eks()
            .delete_nodegroup()
            .cluster_name(cluster_name(ctx))
            .nodegroup_name(&group_name)
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                // Already deleting after a lost answer: that is success.
                let now = describe_node_group(ctx).await?;
                if now
                    .as_ref()
                    .is_some_and(|g| g.status() != Some(&NodegroupStatus::Deleting))
                {
                    return Err(aws_error(
                        COMPONENT,
                        format!("delete the EKS node group {group_name}"),
                        e,
                    ));
                }
            }
        }
    }
    wait_node_group_gone(ctx).await
}

/// Detaches managed policies, deletes inline policies, leaves instance
/// profiles, then deletes the role. An absent role is success.
async fn delete_role(ctx: &Ctx, name: &str) -> Result<(), ComponentError> {
    let iam = ctx.aws.iam();
    let attached = match attached_policies(ctx, name).await {
        Ok(a) => a,
        Err(e) if e.code() == Some("NoSuchEntity") => return Ok(()),
        Err(e) => return Err(e),
    };
    let inline = iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!("list the inline policies of the IAM role {name}"),
                e,
            )
        })?;
    let profiles = iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!("list the instance profiles of the IAM role {name}"),
                e,
            )
        })?;
    let detach = futures_util::future::try_join_all(attached.iter().map(|policy| {
        let iam = iam.clone();
        async move {
            match iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(policy)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(aws_error(
                    COMPONENT,
                    format!("detach {policy} from the IAM role {name}"),
                    e,
                )),
            }
        }
    }));
    let remove_inline = futures_util::future::try_join_all(inline.policy_names().iter().map(|p| {
        let iam = iam.clone();
        async move {
            match iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(p)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(aws_error(
                    COMPONENT,
                    format!("delete the inline policy {p} of the IAM role {name}"),
                    e,
                )),
            }
        }
    }));
    let leave_profiles =
        futures_util::future::try_join_all(profiles.instance_profiles().iter().map(|p| {
            let iam = iam.clone();
            let profile = p.instance_profile_name().to_string();
            async move {
                match iam
                    .remove_role_from_instance_profile()
                    .instance_profile_name(&profile)
                    .role_name(name)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if is_not_found(&e) => Ok(()),
                    Err(e) => Err(aws_error(
                        COMPONENT,
                        format!("remove the IAM role {name} from the instance profile {profile}"),
                        e,
                    )),
                }
            }
        }));
    tokio::try_join!(detach, remove_inline, leave_profiles)?;
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("delete the IAM role {name}"),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number_not_text() {
        assert!(parse_version("1.9") < parse_version("1.10"));
        assert_eq!(parse_version("1.31"), Some((1, 31)));
        assert_eq!(parse_version("1.31.2"), Some((1, 31)));
        assert_eq!(parse_version("latest"), None);
    }

    #[test]
    fn trust_policies_are_read_url_encoded_or_not() {
        let doc = trust_policy("eks.amazonaws.com");
        assert!(trusts_service(&doc, "eks.amazonaws.com"));
        assert!(!trusts_service(&doc, "ec2.amazonaws.com"));
        let encoded = doc
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace(':', "%3A");
        assert!(trusts_service(&encoded, "eks.amazonaws.com"));
    }
}
