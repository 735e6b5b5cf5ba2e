//! The cluster, audit storage and edge components against moto: what they
//! build, what they adopt, what drift they see and repair, and what they
//! leave behind. AWS state is checked through the SDK directly.

mod support;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, DefaultRetention, ObjectLockConfiguration,
    ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};
use aws_sdk_wafv2::types::Scope;
use support::Moto;
use terraform_provider_idis::components::cluster::ClusterSpec;
use terraform_provider_idis::components::edge::EdgeSpec;
use terraform_provider_idis::components::keys::KeysState;
use terraform_provider_idis::components::network::NetworkState;
use terraform_provider_idis::components::storage::AuditStorageSpec;
use terraform_provider_idis::components::{cluster, edge, storage, ComponentError, Ctx};
use terraform_provider_idis::provider::config::Aws;

fn start_moto() -> Moto {
    Moto::start()
}

// ---------------------------------------------------------------- inputs built by hand

/// A VPC with three private and three public subnets, a cluster security
/// group and one NAT Elastic IP, as the network component would report it.
async fn network(aws: &Aws) -> NetworkState {
    let ec2 = aws.ec2();
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create VPC")
        .vpc
        .and_then(|v| v.vpc_id)
        .expect("VPC id");
    let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let mut private = Vec::new();
    let mut public = Vec::new();
    for (i, zone) in zones.iter().enumerate() {
        for (list, offset) in [(&mut private, 0), (&mut public, 10)] {
            let subnet = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .availability_zone(*zone)
                .cidr_block(format!("10.0.{}.0/24", i + offset))
                .send()
                .await
                .expect("create subnet")
                .subnet
                .and_then(|s| s.subnet_id)
                .expect("subnet id");
            list.push(subnet);
        }
    }
    let sg = ec2
        .create_security_group()
        .group_name("idis-test-cluster")
        .description("cluster")
        .vpc_id(&vpc)
        .send()
        .await
        .expect("create security group")
        .group_id
        .expect("group id");
    let eip = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .expect("allocate EIP")
        .allocation_id
        .expect("allocation id");
    NetworkState {
        vpc_id: vpc,
        vpc_cidr: "10.0.0.0/16".to_string(),
        availability_zones: zones.iter().map(|z| z.to_string()).collect(),
        public_subnet_ids: public,
        private_subnet_ids: private,
        nat_gateway_per_az: false,
        nat_gateway_ids: vec!["nat-0123456789abcdef0".to_string()],
        nat_eip_allocation_ids: vec![eip],
        cluster_security_group_id: sg,
        ..NetworkState::default()
    }
}

/// A platform KMS key with its alias, as the keys component would make
/// and report it.
async fn keys(aws: &Aws, ctx: &Ctx) -> KeysState {
    let key = aws
        .kms()
        .create_key()
        .description("platform")
        .send()
        .await
        .expect("create key")
        .key_metadata
        .expect("key metadata");
    aws.kms()
        .create_alias()
        .alias_name(format!("alias/idis/{}/platform", ctx.env))
        .target_key_id(&key.key_id)
        .send()
        .await
        .expect("create alias");
    KeysState {
        platform_key_arn: key.arn.clone().expect("key ARN"),
        platform_key_id: key.key_id.clone(),
        tenant_key_arns: BTreeMap::new(),
        rotation_enabled: true,
        ..KeysState::default()
    }
}

fn cluster_spec() -> ClusterSpec {
    ClusterSpec {
        kubernetes_version: "1.31".to_string(),
        endpoint_public_access: false,
        node_instance_types: vec!["m6i.xlarge".to_string()],
        node_min_size: 3,
        node_max_size: 10,
        node_desired_size: 4,
        admin_principals: Vec::new(),
        viewer_principals: Vec::new(),
    }
}

fn storage_spec() -> AuditStorageSpec {
    AuditStorageSpec {
        versioning: true,
        worm: true,
        retention_mode: "COMPLIANCE".to_string(),
        retention_days: 30,
        retain_on_destroy: false,
    }
}

fn edge_spec() -> EdgeSpec {
    EdgeSpec {
        waf: true,
        ddos_protection: true,
        rate_limit: 2000,
        origin_domain: Some("app.idis.example.com".to_string()),
        cdn: false,
        aliases: Vec::new(),
        certificate_arn: None,
    }
}

fn expected_tags(ctx: &Ctx, component: &str) -> HashMap<String, String> {
    ctx.tags(component).into_iter().collect()
}

fn conflict_message(err: ComponentError) -> String {
    match err {
        ComponentError::Conflict { message, .. } => message,
        other => panic!("expected a Conflict error, got: {other}"),
    }
}

// ---------------------------------------------------------------- cluster

async fn role_policies(aws: &Aws, role: &str) -> Vec<String> {
    let mut arns: Vec<String> = aws
        .iam()
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("list attached policies")
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    arns.sort();
    arns
}

#[tokio::test]
async fn cluster_is_built_as_specified_and_a_rerun_adopts_it() {
    let moto = start_moto();
    let ctx = moto.ctx("prod").await;
    let aws = moto.aws().await;
    let (net, keys) = (network(&aws).await, keys(&aws, &ctx).await);
    let spec = cluster_spec();

    let built = cluster::ensure(&ctx, &spec, &net, &keys)
        .await
        .expect("ensure builds the cluster");
    // The EBS CSI driver comes with the cluster's follow-up, once
    // workload_identity made its role (here: the role, made by hand).
    assert_eq!(
        built.verdicts.problems("ebs_csi_driver"),
        Some(&["add-on aws-ebs-csi-driver is not installed".to_string()][..])
    );
    let role = aws
        .iam()
        .create_role()
        .role_name("idis-prod-ebs-csi-driver")
        .assume_role_policy_document("{}")
        .send()
        .await
        .expect("role")
        .role
        .expect("role")
        .arn;
    terraform_provider_idis::components::addons::ensure_ebs_csi(
        &ctx,
        "idis-prod",
        "1.31",
        &role,
        &ctx.tags("cluster"),
    )
    .await
    .expect("the EBS CSI driver is installed");
    let built = cluster::find(&ctx).await.expect("find").expect("cluster");
    support::assert_read_guards_hold::<cluster::EksCluster>(&built, &spec);

    // The cluster, as EKS reports it.
    let eks = aws.eks();
    let c = eks
        .describe_cluster()
        .name("idis-prod")
        .send()
        .await
        .expect("cluster exists")
        .cluster
        .expect("cluster");
    assert_eq!(c.version(), Some("1.31"));
    assert_eq!(
        c.role_arn(),
        Some("arn:aws:iam::123456789012:role/idis-prod-eks-cluster")
    );
    let vpc = c.resources_vpc_config().expect("vpc config");
    let mut subnets: Vec<String> = vpc.subnet_ids().to_vec();
    let mut wanted: Vec<String> = net
        .private_subnet_ids
        .iter()
        .chain(&net.public_subnet_ids)
        .cloned()
        .collect();
    subnets.sort();
    wanted.sort();
    assert_eq!(subnets, wanted);
    assert_eq!(
        vpc.security_group_ids(),
        std::slice::from_ref(&net.cluster_security_group_id)
    );
    assert!(vpc.endpoint_private_access());
    assert!(!vpc.endpoint_public_access());
    let encryption = c.encryption_config();
    assert_eq!(encryption.len(), 1);
    assert_eq!(
        encryption[0].provider().and_then(|p| p.key_arn()),
        Some(keys.platform_key_arn.as_str())
    );
    assert_eq!(c.tags(), Some(&expected_tags(&ctx, "cluster")));

    // The node group.
    let g = eks
        .describe_nodegroup()
        .cluster_name("idis-prod")
        .nodegroup_name("idis-prod-default")
        .send()
        .await
        .expect("node group exists")
        .nodegroup
        .expect("node group");
    assert_eq!(g.subnets(), net.private_subnet_ids.as_slice());
    assert_eq!(
        g.node_role(),
        Some("arn:aws:iam::123456789012:role/idis-prod-eks-nodes")
    );
    assert_eq!(g.instance_types(), ["m6i.xlarge".to_string()]);
    let scaling = g.scaling_config().expect("scaling");
    assert_eq!(
        (
            scaling.min_size(),
            scaling.max_size(),
            scaling.desired_size()
        ),
        (Some(3), Some(10), Some(4))
    );
    assert_eq!(g.tags(), Some(&expected_tags(&ctx, "cluster")));

    // The roles: trust, policies, tags.
    let iam = aws.iam();
    assert_eq!(
        role_policies(&aws, "idis-prod-eks-cluster").await,
        ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]
    );
    assert_eq!(
        role_policies(&aws, "idis-prod-eks-nodes").await,
        [
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
            "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        ]
    );
    let role = iam
        .get_role()
        .role_name("idis-prod-eks-nodes")
        .send()
        .await
        .expect("node role")
        .role
        .expect("role");
    assert!(role
        .assume_role_policy_document()
        .is_some_and(|d| d.contains("ec2.amazonaws.com")));
    let role_tags: HashMap<String, String> = role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(role_tags, expected_tags(&ctx, "cluster"));

    // What ensure returned is what find reads back.
    assert_eq!(built.name, "idis-prod");
    assert_eq!(built.kubernetes_version, "1.31");
    assert!(!built.endpoint_public_access);
    assert!(built.endpoint_private_access);
    assert_eq!(
        built.secrets_key_arn.as_deref(),
        Some(keys.platform_key_arn.as_str())
    );
    assert!(built.node_group_arn.is_some());
    assert_eq!(built.node_instance_types, ["m6i.xlarge"]);
    assert_eq!(
        (
            built.node_min_size,
            built.node_max_size,
            built.node_desired_size
        ),
        (3, 10, 4)
    );
    assert!(built.endpoint.is_some());
    assert!(built.certificate_authority_data.is_some());
    assert!(built.oidc_issuer.is_some());
    assert_eq!(
        built.tags,
        BTreeMap::from([("team".to_string(), "platform".to_string())])
    );
    let found = cluster::find(&ctx).await.expect("find").expect("found");
    assert_eq!(found, built);

    // A second run adopts everything and duplicates nothing.
    let again = cluster::ensure(&ctx, &spec, &net, &keys)
        .await
        .expect("second ensure");
    assert_eq!(again, built);
    let clusters = eks.list_clusters().send().await.expect("list clusters");
    assert_eq!(clusters.clusters(), ["idis-prod".to_string()]);
    let groups = eks
        .list_nodegroups()
        .cluster_name("idis-prod")
        .send()
        .await
        .expect("list node groups");
    assert_eq!(groups.nodegroups(), ["idis-prod-default".to_string()]);
    let roles = iam.list_roles().send().await.expect("list roles");
    let ours = roles
        .roles()
        .iter()
        .filter(|r| r.role_name().starts_with("idis-prod-"))
        .count();
    // The control plane's and the nodes', and the EBS CSI driver's made above.
    assert_eq!(ours, 3);
}

#[tokio::test]
async fn cluster_drift_is_seen_by_find_and_repaired_by_ensure() {
    let moto = start_moto();
    let ctx = moto.ctx("drift").await;
    let aws = moto.aws().await;
    let (net, keys) = (network(&aws).await, keys(&aws, &ctx).await);
    let spec = cluster_spec();
    cluster::ensure(&ctx, &spec, &net, &keys)
        .await
        .expect("ensure");
    let eks = aws.eks();

    // Out of band: public endpoint on, scaling shrunk, a node policy detached.
    eks.update_cluster_config()
        .name("idis-drift")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .endpoint_public_access(true)
                .endpoint_private_access(true)
                .build(),
        )
        .send()
        .await
        .expect("flip endpoint access");
    eks.update_nodegroup_config()
        .cluster_name("idis-drift")
        .nodegroup_name("idis-drift-default")
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder()
                .min_size(1)
                .max_size(2)
                .desired_size(1)
                .build(),
        )
        .send()
        .await
        .expect("shrink node group");
    aws.iam()
        .detach_role_policy()
        .role_name("idis-drift-eks-nodes")
        .policy_arn("arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy")
        .send()
        .await
        .expect("detach a policy");

    let seen = cluster::find(&ctx).await.expect("find").expect("found");
    assert!(seen.endpoint_public_access);
    assert_eq!(
        (
            seen.node_min_size,
            seen.node_max_size,
            seen.node_desired_size
        ),
        (1, 2, 1)
    );

    // Repair: endpoint back to private only; min/max back; the desired size
    // (1, below the new min) is clamped to 3, not reset to the spec's 4.
    let repaired = cluster::ensure(&ctx, &spec, &net, &keys)
        .await
        .expect("ensure repairs");
    assert!(!repaired.endpoint_public_access);
    assert_eq!(
        (
            repaired.node_min_size,
            repaired.node_max_size,
            repaired.node_desired_size
        ),
        (3, 10, 3)
    );
    let c = eks
        .describe_cluster()
        .name("idis-drift")
        .send()
        .await
        .expect("describe")
        .cluster
        .expect("cluster");
    let vpc = c.resources_vpc_config().expect("vpc config");
    assert!(!vpc.endpoint_public_access());
    assert!(vpc.endpoint_private_access());
    assert!(role_policies(&aws, "idis-drift-eks-nodes")
        .await
        .contains(&"arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy".to_string()));

    // The autoscaler moved desired to 7, inside [min, max]: ensure leaves it.
    eks.update_nodegroup_config()
        .cluster_name("idis-drift")
        .nodegroup_name("idis-drift-default")
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder()
                .desired_size(7)
                .build(),
        )
        .send()
        .await
        .expect("autoscaler scales out");
    let kept = cluster::ensure(&ctx, &spec, &net, &keys)
        .await
        .expect("ensure");
    assert_eq!(kept.node_desired_size, 7);
    let g = eks
        .describe_nodegroup()
        .cluster_name("idis-drift")
        .nodegroup_name("idis-drift-default")
        .send()
        .await
        .expect("describe node group")
        .nodegroup
        .expect("node group");
    assert_eq!(g.scaling_config().and_then(|s| s.desired_size()), Some(7));
}

#[tokio::test]
async fn new_instance_types_replace_the_node_group() {
    let moto = start_moto();
    let ctx = moto.ctx("retype").await;
    let aws = moto.aws().await;
    let (net, keys) = (network(&aws).await, keys(&aws, &ctx).await);
    let before = cluster::ensure(&ctx, &cluster_spec(), &net, &keys)
        .await
        .expect("ensure");

    let other_types = ClusterSpec {
        node_instance_types: vec!["m7i.2xlarge".to_string()],
        ..cluster_spec()
    };
    let after = cluster::ensure(&ctx, &other_types, &net, &keys)
        .await
        .expect("a new node group with the new instance types");

    let group = aws
        .eks()
        .describe_nodegroup()
        .cluster_name("idis-retype")
        .nodegroup_name("idis-retype-default")
        .send()
        .await
        .expect("describe node group")
        .nodegroup
        .expect("node group");
    assert_eq!(group.instance_types(), ["m7i.2xlarge".to_string()]);
    assert_eq!(after.node_instance_types, vec!["m7i.2xlarge".to_string()]);
    assert_eq!(after.arn, before.arn, "the cluster itself is kept");
    let groups = aws
        .eks()
        .list_nodegroups()
        .cluster_name("idis-retype")
        .send()
        .await
        .expect("list node groups");
    assert_eq!(groups.nodegroups().len(), 1, "the old node group is gone");
}

#[tokio::test]
async fn cluster_refuses_changes_eks_cannot_make_in_place() {
    let moto = start_moto();
    let ctx = moto.ctx("strict").await;
    let aws = moto.aws().await;
    let (net, keys) = (network(&aws).await, keys(&aws, &ctx).await);
    cluster::ensure(&ctx, &cluster_spec(), &net, &keys)
        .await
        .expect("ensure");

    let older = ClusterSpec {
        kubernetes_version: "1.30".to_string(),
        ..cluster_spec()
    };
    let err = cluster::ensure(&ctx, &older, &net, &keys)
        .await
        .expect_err("no downgrade");
    let message = conflict_message(err);
    assert!(message.contains("cannot be downgraded"), "{message}");

    // Nothing was changed by the refused runs.
    let g = aws
        .eks()
        .describe_nodegroup()
        .cluster_name("idis-strict")
        .nodegroup_name("idis-strict-default")
        .send()
        .await
        .expect("describe")
        .nodegroup
        .expect("node group");
    assert_eq!(g.instance_types(), ["m6i.xlarge".to_string()]);
}

#[tokio::test]
async fn cluster_delete_removes_node_group_cluster_and_roles_and_is_idempotent() {
    let moto = start_moto();
    let ctx = moto.ctx("gone").await;
    let aws = moto.aws().await;
    let (net, keys) = (network(&aws).await, keys(&aws, &ctx).await);
    cluster::ensure(&ctx, &cluster_spec(), &net, &keys)
        .await
        .expect("ensure");

    let warnings = cluster::delete(&ctx).await.expect("delete");
    assert!(warnings.is_empty());
    let eks = aws.eks();
    assert!(eks
        .list_clusters()
        .send()
        .await
        .expect("list")
        .clusters()
        .is_empty());
    let iam = aws.iam();
    for role in ["idis-gone-eks-cluster", "idis-gone-eks-nodes"] {
        let err = iam
            .get_role()
            .role_name(role)
            .send()
            .await
            .expect_err("role deleted");
        assert_eq!(
            aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&err),
            Some("NoSuchEntity")
        );
    }
    assert!(cluster::find(&ctx).await.expect("find").is_none());
    assert!(cluster::delete(&ctx)
        .await
        .expect("second delete is a no-op")
        .is_empty());
}

// ---------------------------------------------------------------- audit storage

/// The bucket's versioning status through GetBucketVersioning. moto 5.2.5
/// answers it under the root `GetBucketVersioningResponse`, which the SDK
/// refuses to parse; the status is then read from the raw answer.
async fn versioning_status(aws: &Aws, bucket: &str) -> Option<BucketVersioningStatus> {
    match aws.s3().get_bucket_versioning().bucket(bucket).send().await {
        Ok(out) => out.status().cloned(),
        Err(err) => {
            let body = err
                .raw_response()
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_else(|| panic!("GetBucketVersioning failed: {err:?}"));
            assert!(body.contains("<GetBucketVersioningResponse"), "{body}");
            body.split("<Status>")
                .nth(1)
                .and_then(|rest| rest.split("</Status>").next())
                .map(BucketVersioningStatus::from)
        }
    }
}

const AUDIT_BUCKET: &str = "idis-audit-audit-123456789012-us-east-1";

#[tokio::test]
async fn audit_bucket_is_locked_versioned_encrypted_private_and_tls_only() {
    let moto = start_moto();
    let ctx = moto.ctx("audit").await;
    let aws = moto.aws().await;
    let keys = keys(&aws, &ctx).await;
    let spec = storage_spec();

    let built = storage::ensure(&ctx, &spec, &keys).await.expect("ensure");
    support::assert_guards_hold::<storage::AuditBucket>(&built.verdicts, &spec);
    assert_eq!(built.bucket, AUDIT_BUCKET);

    let s3 = aws.s3();
    let lock = s3
        .get_object_lock_configuration()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("lock configuration")
        .object_lock_configuration
        .expect("config");
    assert_eq!(
        lock.object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );
    let retention = lock
        .rule()
        .and_then(|r| r.default_retention())
        .expect("retention");
    assert_eq!(retention.mode(), Some(&ObjectLockRetentionMode::Compliance));
    assert_eq!(retention.days(), Some(30));
    assert_eq!(
        versioning_status(&aws, AUDIT_BUCKET).await,
        Some(BucketVersioningStatus::Enabled)
    );
    let encryption = s3
        .get_bucket_encryption()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("encryption")
        .server_side_encryption_configuration
        .expect("config");
    let rule = &encryption.rules()[0];
    let default = rule
        .apply_server_side_encryption_by_default()
        .expect("default");
    assert_eq!(default.sse_algorithm(), &ServerSideEncryption::AwsKms);
    assert_eq!(
        default.kms_master_key_id(),
        Some(keys.platform_key_arn.as_str())
    );
    assert_eq!(rule.bucket_key_enabled(), Some(true));
    let pab = s3
        .get_public_access_block()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("public access block")
        .public_access_block_configuration
        .expect("config");
    assert_eq!(
        (
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let policy: serde_json::Value = serde_json::from_str(
        s3.get_bucket_policy()
            .bucket(AUDIT_BUCKET)
            .send()
            .await
            .expect("policy")
            .policy()
            .expect("policy text"),
    )
    .expect("policy JSON");
    // The TLS-only statement; the others let CloudTrail deliver the
    // environment's trail (audit_trail).
    let statements = policy["Statement"].as_array().expect("statements");
    let deny: Vec<_> = statements
        .iter()
        .filter(|s| s["Effect"] == "Deny")
        .collect();
    assert_eq!(deny.len(), 1, "{policy}");
    assert_eq!(deny[0]["Condition"]["Bool"]["aws:SecureTransport"], "false");
    for allow in statements.iter().filter(|s| s["Effect"] == "Allow") {
        assert_eq!(
            allow["Principal"]["Service"], "cloudtrail.amazonaws.com",
            "{policy}"
        );
    }
    let tags: HashMap<String, String> = s3
        .get_bucket_tagging()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("tags")
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(tags, expected_tags(&ctx, "audit_storage"));

    // State: every attribute, as find reads it back.
    assert!(built.versioning && built.worm && built.public_access_blocked);
    assert!(built.bucket_key_enabled && built.tls_only);
    assert_eq!(built.retention_mode.as_deref(), Some("COMPLIANCE"));
    assert_eq!(built.retention_days, Some(30));
    assert_eq!(
        built.kms_key_arn.as_deref(),
        Some(keys.platform_key_arn.as_str())
    );
    assert_eq!(built.arn, format!("arn:aws:s3:::{AUDIT_BUCKET}"));
    assert_eq!(
        storage::find(&ctx).await.expect("find"),
        Some(built.clone())
    );

    // A second run changes nothing and creates no second bucket.
    assert_eq!(
        storage::ensure(&ctx, &spec, &keys).await.expect("again"),
        built
    );
    let buckets = s3.list_buckets().send().await.expect("list buckets");
    let ours = buckets
        .buckets()
        .iter()
        .filter(|b| b.name().is_some_and(|n| n.starts_with("idis-audit-")))
        .count();
    assert_eq!(ours, 1);
}

#[tokio::test]
async fn audit_bucket_drift_is_seen_and_every_setting_is_put_back() {
    let moto = start_moto();
    let ctx = moto.ctx("audit").await;
    let aws = moto.aws().await;
    let keys = keys(&aws, &ctx).await;
    let spec = storage_spec();
    storage::ensure(&ctx, &spec, &keys).await.expect("ensure");
    let s3 = aws.s3();

    // Out of band: retention shortened, versioning suspended, public access
    // block removed, encryption downgraded, policy and tags removed.
    s3.put_object_lock_configuration()
        .bucket(AUDIT_BUCKET)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("shorten retention");
    s3.put_bucket_versioning()
        .bucket(AUDIT_BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .expect("suspend versioning");
    s3.delete_public_access_block()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("remove public access block");
    s3.put_bucket_encryption()
        .bucket(AUDIT_BUCKET)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::Aes256)
                                .build()
                                .expect("sse"),
                        )
                        .build(),
                )
                .build()
                .expect("config"),
        )
        .send()
        .await
        .expect("downgrade encryption");
    s3.delete_bucket_policy()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("remove policy");
    s3.delete_bucket_tagging()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("remove tags");

    let seen = storage::find(&ctx).await.expect("find").expect("found");
    assert_eq!(seen.retention_mode.as_deref(), Some("GOVERNANCE"));
    assert_eq!(seen.retention_days, Some(1));
    assert!(!seen.versioning);
    assert!(!seen.public_access_blocked);
    assert_eq!(seen.kms_key_arn, None);
    assert!(!seen.bucket_key_enabled);
    assert!(!seen.tls_only);
    assert!(seen.tags.is_empty());
    assert!(seen.worm, "Object Lock itself cannot be switched off");

    let repaired = storage::ensure(&ctx, &spec, &keys).await.expect("repair");
    assert!(repaired.versioning && repaired.public_access_blocked && repaired.tls_only);
    assert_eq!(repaired.retention_mode.as_deref(), Some("COMPLIANCE"));
    assert_eq!(repaired.retention_days, Some(30));
    assert_eq!(
        repaired.kms_key_arn.as_deref(),
        Some(keys.platform_key_arn.as_str())
    );
    assert!(repaired.bucket_key_enabled);
    assert_eq!(
        repaired.tags,
        BTreeMap::from([("team".to_string(), "platform".to_string())])
    );

    // And S3 says so too.
    assert_eq!(
        versioning_status(&aws, AUDIT_BUCKET).await,
        Some(BucketVersioningStatus::Enabled)
    );
    let retention = s3
        .get_object_lock_configuration()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("lock")
        .object_lock_configuration
        .and_then(|c| c.rule)
        .and_then(|r| r.default_retention)
        .expect("retention");
    assert_eq!(retention.mode(), Some(&ObjectLockRetentionMode::Compliance));
    assert_eq!(retention.days(), Some(30));
    assert!(s3
        .get_public_access_block()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .is_ok());
    assert!(s3
        .get_bucket_policy()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .is_ok());

    // Versioning is never suspended on a locked bucket, whatever the spec says.
    let unversioned = AuditStorageSpec {
        versioning: false,
        worm: false,
        ..storage_spec()
    };
    let message = conflict_message(
        storage::ensure(&ctx, &unversioned, &keys)
            .await
            .expect_err("Object Lock cannot be turned off"),
    );
    assert!(message.contains("Object Lock"), "{message}");
}

#[tokio::test]
async fn audit_bucket_holding_records_is_kept_on_delete() {
    let moto = start_moto();
    let ctx = moto.ctx("audit").await;
    let aws = moto.aws().await;
    let keys = keys(&aws, &ctx).await;
    storage::ensure(&ctx, &storage_spec(), &keys)
        .await
        .expect("ensure");
    let s3 = aws.s3();
    let record = || {
        s3.put_object()
            .bucket(AUDIT_BUCKET)
            .key("2024/01/01/events.jsonl")
            .body(ByteStream::from_static(b"{\"event\":\"login\"}\n"))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
    };
    // moto serves plain HTTP, so the TLS-only policy refuses the write...
    let refused = record().await.expect_err("plain HTTP is denied");
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );
    // ...so the test lifts the policy to write one record, and ensure puts
    // the policy back.
    s3.delete_bucket_policy()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("lift the policy");
    record().await.expect("write an audit record");
    let state = storage::ensure(&ctx, &storage_spec(), &keys)
        .await
        .expect("ensure");
    assert!(state.tls_only);

    // retain_on_destroy: kept with a warning, nothing touched.
    let retained = AuditStorageSpec {
        retain_on_destroy: true,
        ..storage_spec()
    };
    let warnings = storage::delete(&ctx, &retained).await.expect("delete");
    assert_eq!(
        warnings,
        [format!(
            "audit bucket {AUDIT_BUCKET} kept (retain_on_destroy)"
        )]
    );

    // Without it: refused, because the bucket holds a version under retention.
    let message = conflict_message(
        storage::delete(&ctx, &storage_spec())
            .await
            .expect_err("a bucket with records is not deleted"),
    );
    assert!(message.contains("holds 1 object versions"), "{message}");
    assert!(message.contains("retention"), "{message}");
    let listed = s3
        .list_object_versions()
        .bucket(AUDIT_BUCKET)
        .send()
        .await
        .expect("bucket still there");
    assert_eq!(listed.versions().len(), 1);
    assert!(storage::find(&ctx).await.expect("find").is_some());
}

#[tokio::test]
async fn empty_audit_bucket_is_deleted_and_a_second_delete_is_a_no_op() {
    let moto = start_moto();
    let ctx = moto.ctx("audit").await;
    let aws = moto.aws().await;
    let keys = keys(&aws, &ctx).await;
    storage::ensure(&ctx, &storage_spec(), &keys)
        .await
        .expect("ensure");

    let warnings = storage::delete(&ctx, &storage_spec())
        .await
        .expect("delete");
    assert!(warnings.is_empty());
    let buckets = aws.s3().list_buckets().send().await.expect("list");
    assert!(buckets.buckets().is_empty());
    assert!(storage::find(&ctx).await.expect("find").is_none());
    assert!(storage::delete(&ctx, &storage_spec())
        .await
        .expect("second delete")
        .is_empty());
    // With retain_on_destroy and no bucket, there is nothing to warn about.
    let retained = AuditStorageSpec {
        retain_on_destroy: true,
        ..storage_spec()
    };
    assert!(storage::delete(&ctx, &retained)
        .await
        .expect("delete")
        .is_empty());
}

// ---------------------------------------------------------------- edge

async fn web_acl(aws: &Aws, name: &str) -> Option<aws_sdk_wafv2::types::WebAcl> {
    let waf = aws.wafv2();
    let list = waf
        .list_web_acls()
        .scope(Scope::Regional)
        .send()
        .await
        .expect("list web ACLs");
    let summary = list.web_acls().iter().find(|a| a.name() == Some(name))?;
    waf.get_web_acl()
        .name(name)
        .scope(Scope::Regional)
        .id(summary.id().expect("id"))
        .send()
        .await
        .expect("get web ACL")
        .web_acl
}

async fn protections(aws: &Aws) -> Vec<aws_sdk_shield::types::Protection> {
    aws.shield()
        .list_protections()
        .send()
        .await
        .expect("list protections")
        .protections()
        .to_vec()
}

async fn distributions(aws: &Aws) -> Vec<aws_sdk_cloudfront::types::DistributionSummary> {
    aws.cloudfront()
        .list_distributions()
        .send()
        .await
        .expect("list distributions")
        .distribution_list
        .map(|l| l.items().to_vec())
        .unwrap_or_default()
}

#[tokio::test]
async fn edge_builds_the_web_acls_the_distribution_and_its_shield_protection() {
    let moto = start_moto();
    let ctx = moto.ctx("web").await;
    let aws = moto.aws().await;
    let spec = edge_spec();

    let built = edge::ensure(&ctx, &spec).await.expect("ensure");
    support::assert_read_guards_hold::<edge::Edge>(&built, &spec);

    // WAF: default allow, three managed groups with override none, a rate rule.
    let acl = web_acl(&aws, "idis-web").await.expect("web ACL exists");
    assert!(acl.default_action().and_then(|d| d.allow()).is_some());
    let mut rules: Vec<_> = acl.rules().to_vec();
    rules.sort_by_key(|r| r.priority());
    let names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "AWSManagedRulesCommonRuleSet",
            "AWSManagedRulesKnownBadInputsRuleSet",
            "AWSManagedRulesAmazonIpReputationList",
            "rate-limit"
        ]
    );
    for rule in &rules[..3] {
        let group = rule
            .statement()
            .and_then(|s| s.managed_rule_group_statement())
            .expect("managed rule group");
        assert_eq!((group.vendor_name(), group.name()), ("AWS", rule.name()));
        assert!(rule.override_action().and_then(|o| o.none()).is_some());
        assert!(rule.visibility_config().is_some());
    }
    let rate = rules[3]
        .statement()
        .and_then(|s| s.rate_based_statement())
        .expect("rate statement");
    assert_eq!(rate.limit(), 2000);
    assert_eq!(
        rate.aggregate_key_type(),
        &aws_sdk_wafv2::types::RateBasedStatementAggregateKeyType::Ip
    );
    assert!(rules[3].action().and_then(|a| a.block()).is_some());
    let acl_tags: HashMap<String, String> = aws
        .wafv2()
        .list_tags_for_resource()
        .resource_arn(acl.arn())
        .send()
        .await
        .expect("tags")
        .tag_info_for_resource()
        .expect("tag info")
        .tag_list()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(acl_tags, expected_tags(&ctx, "edge"));

    // The CloudFront-scope ACL (us-east-1 here) with the same rules.
    let cdn_acls = aws
        .wafv2()
        .list_web_acls()
        .scope(Scope::Cloudfront)
        .send()
        .await
        .expect("list CloudFront ACLs");
    assert_eq!(cdn_acls.web_acls().len(), 1);
    let cdn_acl_arn = cdn_acls.web_acls()[0].arn().expect("arn").to_string();
    assert_eq!(cdn_acls.web_acls()[0].name(), Some("idis-web-cdn"));

    // CloudFront: HTTPS-only origin, redirect to HTTPS, CachingOptimized,
    // enabled, tagged, and behind the CloudFront ACL.
    let dists = distributions(&aws).await;
    assert_eq!(dists.len(), 1);
    let got = aws
        .cloudfront()
        .get_distribution()
        .id(dists[0].id())
        .send()
        .await
        .expect("get distribution")
        .distribution
        .expect("distribution");
    let config = got.distribution_config().expect("config");
    assert_eq!(config.comment(), "idis-web");
    assert!(config.enabled());
    let origin = &config.origins().expect("origins").items()[0];
    assert_eq!(origin.domain_name(), "app.idis.example.com");
    assert_eq!(
        origin
            .custom_origin_config()
            .map(|c| c.origin_protocol_policy().clone()),
        Some(aws_sdk_cloudfront::types::OriginProtocolPolicy::HttpsOnly)
    );
    let behavior = config.default_cache_behavior().expect("behavior");
    assert_eq!(
        behavior.viewer_protocol_policy(),
        &aws_sdk_cloudfront::types::ViewerProtocolPolicy::RedirectToHttps
    );
    assert_eq!(
        behavior.cache_policy_id(),
        Some(edge::CACHING_OPTIMIZED_POLICY_ID)
    );
    assert_eq!(config.web_acl_id(), Some(cdn_acl_arn.as_str()));
    let cdn_tags: HashMap<String, String> = aws
        .cloudfront()
        .list_tags_for_resource()
        .resource(got.arn())
        .send()
        .await
        .expect("tags")
        .tags()
        .map(|t| {
            t.items()
                .iter()
                .map(|t| {
                    (
                        t.key().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(cdn_tags, expected_tags(&ctx, "edge"));

    // Shield covers the distribution.
    let shielded = protections(&aws).await;
    assert_eq!(shielded.len(), 1);
    assert_eq!(shielded[0].name(), Some("idis-web"));
    assert_eq!(shielded[0].resource_arn(), Some(got.arn()));

    // State, and find reads the same back.
    assert_eq!(built.web_acl_arn.as_deref(), Some(acl.arn()));
    assert_eq!(built.web_acl_id.as_deref(), Some(acl.id()));
    assert_eq!(built.rate_limit, Some(2000));
    assert_eq!(built.web_acl_rules, names);
    assert_eq!(built.cdn_distribution_id.as_deref(), Some(got.id()));
    assert_eq!(built.cdn_domain_name.as_deref(), Some(got.domain_name()));
    assert_eq!(
        built.cdn_origin_domain.as_deref(),
        Some("app.idis.example.com")
    );
    assert!(built.cdn_enabled);
    assert_eq!(built.shield_protection_id.as_deref(), shielded[0].id());
    assert_eq!(built.shield_resource_arn.as_deref(), Some(got.arn()));
    assert_eq!(built.cdn_web_acl_arn.as_deref(), Some(cdn_acl_arn.as_str()));
    assert_eq!(
        built.cdn_uses_web_acl.as_deref(),
        Some(cdn_acl_arn.as_str())
    );
    assert_eq!(built.web_acl_associations, Vec::<String>::new());
    assert_eq!(edge::find(&ctx).await.expect("find"), Some(built.clone()));

    // A second run adopts all three.
    assert_eq!(edge::ensure(&ctx, &spec).await.expect("again"), built);
    assert_eq!(distributions(&aws).await.len(), 1);
    assert_eq!(protections(&aws).await.len(), 1);
    let acls = aws
        .wafv2()
        .list_web_acls()
        .scope(Scope::Regional)
        .send()
        .await
        .expect("list");
    assert_eq!(acls.web_acls().len(), 1);
    let acls = aws
        .wafv2()
        .list_web_acls()
        .scope(Scope::Cloudfront)
        .send()
        .await
        .expect("list");
    assert_eq!(acls.web_acls().len(), 1);
}

#[tokio::test]
async fn edge_drift_is_seen_and_repaired() {
    let moto = start_moto();
    let ctx = moto.ctx("web").await;
    let aws = moto.aws().await;
    let spec = edge_spec();
    let built = edge::ensure(&ctx, &spec).await.expect("ensure");

    // Out of band: the rate rule loosened and a managed group dropped.
    let waf = aws.wafv2();
    let got = waf
        .get_web_acl()
        .name("idis-web")
        .scope(Scope::Regional)
        .id(built.web_acl_id.clone().expect("id"))
        .send()
        .await
        .expect("get");
    let acl = got.web_acl().expect("acl");
    let loosened: Vec<aws_sdk_wafv2::types::Rule> = acl
        .rules()
        .iter()
        .filter(|r| r.name() != "AWSManagedRulesKnownBadInputsRuleSet")
        .map(|r| {
            let mut r = r.clone();
            if r.name() == "rate-limit" {
                r.statement = Some(
                    aws_sdk_wafv2::types::Statement::builder()
                        .rate_based_statement(
                            aws_sdk_wafv2::types::RateBasedStatement::builder()
                                .limit(100_000)
                                .aggregate_key_type(
                                    aws_sdk_wafv2::types::RateBasedStatementAggregateKeyType::Ip,
                                )
                                .build()
                                .expect("statement"),
                        )
                        .build(),
                );
            }
            r
        })
        .collect();
    waf.update_web_acl()
        .name("idis-web")
        .scope(Scope::Regional)
        .id(acl.id())
        .lock_token(got.lock_token().expect("lock token"))
        .set_default_action(acl.default_action().cloned())
        .set_visibility_config(acl.visibility_config().cloned())
        .set_rules(Some(loosened))
        .send()
        .await
        .expect("loosen the ACL");
    // The Shield protection removed, and the distribution disabled.
    aws.shield()
        .delete_protection()
        .protection_id(built.shield_protection_id.clone().expect("id"))
        .send()
        .await
        .expect("remove protection");
    let cf = aws.cloudfront();
    let dist_id = built.cdn_distribution_id.clone().expect("distribution id");
    let current = cf
        .get_distribution_config()
        .id(&dist_id)
        .send()
        .await
        .expect("config");
    let mut config = current.distribution_config().cloned().expect("config");
    config.enabled = false;
    // ... and taken from behind its web ACL.
    config.web_acl_id = Some(String::new());
    cf.update_distribution()
        .id(&dist_id)
        .set_if_match(current.e_tag().map(str::to_string))
        .distribution_config(config)
        .send()
        .await
        .expect("disable distribution");

    let seen = edge::find(&ctx).await.expect("find").expect("found");
    assert_eq!(seen.rate_limit, Some(100_000));
    assert!(!seen
        .web_acl_rules
        .contains(&"AWSManagedRulesKnownBadInputsRuleSet".to_string()));
    assert_eq!(seen.shield_protection_id, None);
    assert!(!seen.cdn_enabled);
    assert_eq!(seen.cdn_uses_web_acl.as_deref(), Some(""));
    // The distribution is judged against the block in the reading.
    let reading = <edge::Edge as terraform_provider_idis::components::describe::Component>::read(
        &seen,
        &edge_spec(),
        &terraform_provider_idis::protocol::cty::Value::Null,
    );
    let problems = reading
        .verdicts
        .problems("distribution")
        .expect("judged")
        .to_vec();
    assert!(
        problems.iter().any(|p| p.contains("uses no web ACL")),
        "{problems:?}"
    );

    let repaired = edge::ensure(&ctx, &spec).await.expect("repair");
    assert_eq!(repaired.rate_limit, Some(2000));
    assert_eq!(repaired.web_acl_rules, built.web_acl_rules);
    assert!(repaired.cdn_enabled);
    assert_eq!(repaired.cdn_distribution_id, built.cdn_distribution_id);
    assert_eq!(repaired.shield_resource_arn, built.shield_resource_arn);
    assert!(repaired.shield_protection_id.is_some());
    assert_eq!(repaired.cdn_uses_web_acl, built.cdn_web_acl_arn);

    // Checked through the SDK.
    let acl = web_acl(&aws, "idis-web").await.expect("acl");
    assert_eq!(acl.rules().len(), 4);
    let limit = acl
        .rules()
        .iter()
        .find(|r| r.name() == "rate-limit")
        .and_then(|r| r.statement())
        .and_then(|s| s.rate_based_statement())
        .map(|s| s.limit());
    assert_eq!(limit, Some(2000));
    let enabled = cf
        .get_distribution_config()
        .id(&dist_id)
        .send()
        .await
        .expect("config")
        .distribution_config()
        .map(|c| c.enabled());
    assert_eq!(enabled, Some(true));
    let behind = cf
        .get_distribution_config()
        .id(&dist_id)
        .send()
        .await
        .expect("config")
        .distribution_config()
        .and_then(|c| c.web_acl_id().map(str::to_string));
    assert_eq!(behind, built.cdn_web_acl_arn);
    let shielded = protections(&aws).await;
    assert_eq!(shielded.len(), 1);
    assert_eq!(
        shielded[0].resource_arn(),
        built.shield_resource_arn.as_deref()
    );
}

#[tokio::test]
async fn edge_without_a_cdn_protects_no_nat_ip_and_features_switch_off() {
    let moto = start_moto();
    let ctx = moto.ctx("web").await;
    let aws = moto.aws().await;
    let net = network(&aws).await;
    let eip_arn = format!(
        "arn:aws:ec2:us-east-1:123456789012:eip-allocation/{}",
        net.nat_eip_allocation_ids[0]
    );

    // Start with a distribution, then drop the origin: the distribution is
    // disabled and deleted, its protection and its CloudFront ACL go, and
    // nothing else is protected (the NAT addresses carry only egress).
    edge::ensure(&ctx, &edge_spec()).await.expect("ensure");
    let no_cdn = EdgeSpec {
        origin_domain: None,
        ..edge_spec()
    };
    let state = edge::ensure(&ctx, &no_cdn).await.expect("ensure");
    assert_eq!(state.cdn_distribution_id, None);
    assert!(distributions(&aws).await.is_empty());
    assert_eq!(state.shield_resource_arn, None);
    assert!(protections(&aws).await.is_empty());
    assert!(state.web_acl_arn.is_some());
    assert_eq!(state.cdn_web_acl_arn, None);
    let cdn_acls = aws
        .wafv2()
        .list_web_acls()
        .scope(Scope::Cloudfront)
        .send()
        .await
        .expect("list");
    assert!(cdn_acls.web_acls().is_empty());
    assert!(state.verdicts.is_clean());

    // A protection of the NAT address (what 0.1 made) is seen and removed.
    aws.shield()
        .create_protection()
        .name("idis-web")
        .resource_arn(&eip_arn)
        .send()
        .await
        .expect("protect the NAT address");
    let seen = edge::find(&ctx).await.expect("find").expect("found");
    let problems = seen.verdicts.problems("shield").expect("judged");
    assert!(problems[0].contains("eip-allocation"), "{problems:?}");
    let state = edge::ensure(&ctx, &no_cdn).await.expect("ensure");
    assert_eq!(state.shield_protection_id, None);
    assert!(protections(&aws).await.is_empty());

    // WAF and DDoS protection off: the ACL and the protection go away.
    let off = EdgeSpec {
        waf: false,
        ddos_protection: false,
        ..no_cdn
    };
    let state = edge::ensure(&ctx, &off).await.expect("ensure");
    assert_eq!(
        edge::EdgeState {
            verdicts: Default::default(),
            ..state.clone()
        },
        edge::EdgeState::default()
    );
    assert!(state.verdicts.is_clean());
    assert!(web_acl(&aws, "idis-web").await.is_none());
    assert!(protections(&aws).await.is_empty());
    assert_eq!(edge::find(&ctx).await.expect("find"), None);
}

#[tokio::test]
async fn edge_delete_removes_protection_distribution_and_acl_and_is_idempotent() {
    let moto = start_moto();
    let ctx = moto.ctx("web").await;
    let aws = moto.aws().await;
    edge::ensure(&ctx, &edge_spec()).await.expect("ensure");

    let warnings = edge::delete(&ctx).await.expect("delete");
    assert!(warnings.is_empty());
    assert!(protections(&aws).await.is_empty());
    assert!(distributions(&aws).await.is_empty());
    assert!(web_acl(&aws, "idis-web").await.is_none());
    let cdn_acls = aws
        .wafv2()
        .list_web_acls()
        .scope(Scope::Cloudfront)
        .send()
        .await
        .expect("list");
    assert!(cdn_acls.web_acls().is_empty());
    assert_eq!(edge::find(&ctx).await.expect("find"), None);
    assert!(edge::delete(&ctx).await.expect("second delete").is_empty());
}
