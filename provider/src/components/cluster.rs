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
    Cluster, ClusterStatus, EncryptionConfig, Nodegroup, NodegroupScalingConfig, NodegroupStatus,
    Provider, VpcConfigRequest,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use super::keys::KeysState;
use super::network::NetworkState;
use super::{aws_error, is_not_found, same_members, user_visible_tags, ComponentError, Ctx};
use crate::environment::spec::ClusterSpec;

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
    let (cluster, group) = tokio::join!(describe_cluster(ctx), describe_node_group(ctx));
    let Some(cluster) = cluster? else {
        return Ok(None);
    };
    if cluster.status() == Some(&ClusterStatus::Deleting) {
        return Ok(None);
    }
    let group = group?.filter(|g| g.status() != Some(&NodegroupStatus::Deleting));
    Ok(Some(observe(&cluster, group.as_ref())))
}

/// The state as AWS reports it.
fn observe(cluster: &Cluster, group: Option<&Nodegroup>) -> ClusterState {
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
    Ok(observe(&cluster, Some(&group)))
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
    // The partition comes from the role's own ARN: right in every partition.
    let partition = arn.split(':').nth(1).unwrap_or("aws").to_string();
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

fn percent_decode(text: &str) -> String {
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
    delete_node_group(ctx).await?;

    let name = cluster_name(ctx);
    if let Some(cluster) = describe_cluster(ctx).await? {
        if cluster.status() != Some(&ClusterStatus::Deleting) {
            match ctx.aws.eks().delete_cluster().name(&name).send().await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!("delete the EKS cluster {name} (node groups or Fargate profiles made outside this environment must be deleted first)"),
                        e,
                    ))
                }
            }
        }
        wait_cluster_gone(ctx).await?;
    }

    let (control_plane, nodes) = (cluster_role(ctx), node_role(ctx));
    tokio::try_join!(
        delete_role(ctx, &control_plane.name),
        delete_role(ctx, &nodes.name),
    )?;
    Ok(Vec::new())
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
                return Err(aws_error(
                    COMPONENT,
                    format!("delete the EKS node group {group_name}"),
                    e,
                ))
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
