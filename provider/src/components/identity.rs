//! workload_identity: The cluster's IAM OIDC provider and the IAM roles for service accounts (IRSA) of the application and the cluster's controllers, each trusted by exactly one service account and allowed only this environment's resources.
//!
//! Pods get AWS credentials through IAM roles for service accounts (EKS
//! User Guide, "IAM roles for service accounts"): the cluster's OIDC
//! issuer (`DescribeCluster` `identity.oidc.issuer`) is registered as an
//! IAM OIDC provider for the audience `sts.amazonaws.com`, and each role
//! trusts that provider for one service account only (`<issuer>:sub` =
//! `system:serviceaccount:<namespace>:<name>`, `<issuer>:aud` =
//! `sts.amazonaws.com`: "Assign IAM roles to Kubernetes service
//! accounts", EKS User Guide).
//!
//! The thumbprint is the one IAM's procedure gives for the EKS issuers
//! (IAM User Guide, "Obtain the thumbprint for an OpenID Connect identity
//! provider": the SHA-1 of the top intermediate CA of the certificate
//! `oidc.eks.<region>.amazonaws.com` serves, Starfield Services Root
//! Certificate Authority - G2). IAM secures the EKS issuers with its own
//! library of trusted root CAs; the thumbprint is kept as documented.
//!
//! Roles (`idis-<env>-<role>`), each with one inline policy
//! `idis-workload-identity` and nothing attached:
//!
//! - `api`: the API and workers (`<namespace>/<api_service_account>`):
//!   read and write the documents bucket; put objects in the audit bucket
//!   and nothing else there (an explicit deny of deletes, retention
//!   changes and governance bypass); `kms:Encrypt`, `kms:Decrypt`,
//!   `kms:GenerateDataKey` on the platform and tenant keys; read the
//!   environment's four secrets.
//! - `external-secrets`: read the four secrets, decrypt with the platform
//!   key through Secrets Manager only.
//! - `load-balancer-controller`, `ebs-csi-driver`, `cluster-autoscaler`:
//!   the policies AWS documents for these controllers, narrowed to this
//!   environment: resources of this account and region, and conditions on
//!   the tags those controllers put on what they make for this cluster
//!   (`elbv2.k8s.aws/cluster`, `kubernetes.io/cluster/<cluster>`,
//!   `k8s.io/cluster-autoscaler/<cluster>`, `eks:cluster-name`). Their
//!   `Describe*`/`List*`/`Get*` actions keep the resource `*`: EC2, ELB,
//!   Auto Scaling, ACM and Shield describes support no resource-level
//!   permissions, and AWS's own policies for these controllers list them
//!   that way. Nothing that changes or reads data has the resource `*`.
//!
//! Everything is read back: the OIDC provider (URL, audience, thumbprint,
//! tags), every role's trust policy and permissions (compared as JSON,
//! statements in any order), attached or extra inline policies, tags.
//! Drift is judged against what the environment's other components report
//! in the same refresh, so a secret or key made anew shows at once.
//!
//! EKS Pod Identity is not made: moto 5.2.5 has none of its API
//! (`CreatePodIdentityAssociation`), and the proxy does not play it.

use std::collections::{BTreeMap, BTreeSet};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::describe::{Check, Component, Default, Guard, Output, Reading, Setting, Verdicts};
pub use super::iam_role::same_policy;
use super::iam_role::{self, as_list, differences, RoleSeen};
use super::{aws_error, is_not_found, partition, ComponentError, Ctx};
use crate::protocol::cty::{Type, Value};

pub const COMPONENT: &str = "workload_identity";

/// The audience of the tokens EKS projects for IRSA.
pub const AUDIENCE: &str = "sts.amazonaws.com";
/// SHA-1 of the top intermediate CA of `oidc.eks.<region>.amazonaws.com`
/// (see the module documentation).
pub const EKS_OIDC_THUMBPRINT: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";
/// The one inline policy of each role.
pub const POLICY_NAME: &str = "idis-workload-identity";

/// The EBS CSI driver's controller runs as this service account: the EKS
/// add-on makes it and annotates it with the add-on's role, so neither
/// name is a setting.
pub const EBS_CSI_NAMESPACE: &str = "kube-system";
pub const EBS_CSI_SERVICE_ACCOUNT: &str = "ebs-csi-controller-sa";

pub const DEFAULT_NAMESPACE: &str = "idis";
pub const DEFAULT_API_SERVICE_ACCOUNT: &str = "idis-api";
pub const DEFAULT_EXTERNAL_SECRETS_SERVICE_ACCOUNT: &str = "idis-external-secrets";
pub const DEFAULT_LB_NAMESPACE: &str = "kube-system";
pub const DEFAULT_LB_SERVICE_ACCOUNT: &str = "aws-load-balancer-controller";
pub const DEFAULT_AUTOSCALER_NAMESPACE: &str = "kube-system";
pub const DEFAULT_AUTOSCALER_SERVICE_ACCOUNT: &str = "cluster-autoscaler";

/// The roles, in the order of their outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Api,
    ExternalSecrets,
    LoadBalancerController,
    EbsCsiDriver,
    ClusterAutoscaler,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Api,
        Role::ExternalSecrets,
        Role::LoadBalancerController,
        Role::EbsCsiDriver,
        Role::ClusterAutoscaler,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::ExternalSecrets => "external-secrets",
            Role::LoadBalancerController => "load-balancer-controller",
            Role::EbsCsiDriver => "ebs-csi-driver",
            Role::ClusterAutoscaler => "cluster-autoscaler",
        }
    }

    /// `idis-<env>-<role>`.
    pub fn name(self, env: &str) -> String {
        self.name_at(env, false)
    }

    /// `idis-<env>-<role>`, or `idis-<env>-dr-<role>` for the DR site's
    /// cluster (IAM names are global; an environment name has at most 23
    /// characters, so this has at most 56 of IAM's 64).
    pub fn name_at(self, env: &str, dr_site: bool) -> String {
        let site = if dr_site { "dr-" } else { "" };
        format!("idis-{env}-{site}{}", self.suffix())
    }

    /// The ARN of the role of environment `env` (deterministic).
    pub fn arn(self, partition: &str, account: &str, env: &str) -> String {
        self.arn_at(partition, account, env, false)
    }

    /// The ARN of the role of environment `env`'s site.
    pub fn arn_at(self, partition: &str, account: &str, env: &str, dr_site: bool) -> String {
        format!(
            "arn:{partition}:iam::{account}:role/{}",
            self.name_at(env, dr_site)
        )
    }

    /// Who the role is for, in words.
    fn what(self) -> &'static str {
        match self {
            Role::Api => "the API and workers",
            Role::ExternalSecrets => "external-secrets",
            Role::LoadBalancerController => "the AWS Load Balancer Controller",
            Role::EbsCsiDriver => "the EBS CSI driver",
            Role::ClusterAutoscaler => "the cluster autoscaler",
        }
    }

    /// The service account the role trusts: (namespace, name).
    pub fn service_account(self, spec: &IdentitySpec) -> (String, String) {
        match self {
            Role::Api => (spec.namespace.clone(), spec.api_service_account.clone()),
            Role::ExternalSecrets => (
                spec.namespace.clone(),
                spec.external_secrets_service_account.clone(),
            ),
            Role::LoadBalancerController => (
                spec.load_balancer_controller_namespace.clone(),
                spec.load_balancer_controller_service_account.clone(),
            ),
            Role::EbsCsiDriver => (
                EBS_CSI_NAMESPACE.to_string(),
                EBS_CSI_SERVICE_ACCOUNT.to_string(),
            ),
            Role::ClusterAutoscaler => (
                spec.cluster_autoscaler_namespace.clone(),
                spec.cluster_autoscaler_service_account.clone(),
            ),
        }
    }
}

// ---------------------------------------------------------------- state

/// The IAM OIDC provider as IAM has it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OidcSeen {
    pub arn: String,
    pub url: String,
    pub client_ids: Vec<String>,
    pub thumbprints: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityState {
    pub env: String,
    pub account_id: String,
    pub region: String,
    /// The DR site's roles (`idis-<env>-dr-<role>`).
    #[serde(default)]
    pub dr_site: bool,
    /// The cluster's issuer, when the cluster exists.
    pub issuer: Option<String>,
    pub oidc: Option<OidcSeen>,
    pub roles: BTreeMap<Role, RoleSeen>,
    /// Verdicts judged without the other components (set by `ensure` and
    /// `find`); `read` adds the policies'.
    #[serde(skip)]
    pub verdicts: Verdicts,
}

/// The `workload_identity` block once planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentitySpec {
    pub namespace: String,
    pub api_service_account: String,
    pub external_secrets_service_account: String,
    pub load_balancer_controller_namespace: String,
    pub load_balancer_controller_service_account: String,
    pub cluster_autoscaler_namespace: String,
    pub cluster_autoscaler_service_account: String,
}

/// The computed attributes: the OIDC provider and every role's ARN.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IdentityOutputs {
    pub oidc_provider_arn: Option<String>,
    pub api_role_arn: Option<String>,
    pub external_secrets_role_arn: Option<String>,
    pub load_balancer_controller_role_arn: Option<String>,
    pub ebs_csi_driver_role_arn: Option<String>,
    pub cluster_autoscaler_role_arn: Option<String>,
}

// ---------------------------------------------------------------- targets

/// The ARNs of this environment the roles may use: what the policies are
/// written from. Built from the components an apply just ensured, or from
/// what a refresh read of them (the state's attributes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Targets {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub env: String,
    pub vpc_id: Option<String>,
    pub platform_key: Option<String>,
    /// Platform and tenant key ARNs, sorted.
    pub keys: Vec<String>,
    pub documents_bucket: String,
    pub audit_bucket: Option<String>,
    /// The four secret settings' ARNs that exist, sorted.
    pub secrets: Vec<String>,
}

impl Targets {
    pub fn new(env: &str, account: &str, region: &str) -> Targets {
        Targets {
            partition: partition(region).to_string(),
            region: region.to_string(),
            account: account.to_string(),
            env: env.to_string(),
            documents_bucket: format!(
                "arn:{}:s3:::idis-{env}-documents-{account}-{region}",
                partition(region)
            ),
            ..Targets::default()
        }
    }

    /// From the components an apply built.
    pub fn from_built(ctx: &Ctx, built: &super::Observed) -> Targets {
        let mut t = Targets::new(&ctx.env, &ctx.account_id, &ctx.region);
        if let Some(n) = built.get::<super::network::Network>() {
            t.vpc_id = Some(n.vpc_id.clone()).filter(|v| !v.is_empty());
        }
        if let Some(k) = built.get::<super::keys::TenantKeys>() {
            t.platform_key = Some(k.platform_key_arn.clone()).filter(|v| !v.is_empty());
            t.keys = t
                .platform_key
                .iter()
                .cloned()
                .chain(k.tenant_key_arns.values().cloned())
                .collect();
        }
        if let Some(a) = built.get::<super::storage::AuditBucket>() {
            t.audit_bucket = Some(a.arn.clone());
        }
        if let Some(d) = built.get::<super::documents::DocumentsBucket>() {
            t.documents_bucket = d.arn.clone();
        }
        let mut secrets = Vec::new();
        if let Some(db) = built.get::<super::database::Database>() {
            secrets.extend(db.master_secret_arn.clone());
        }
        if let Some(c) = built.get::<super::cache::Cache>() {
            secrets.extend(c.auth_secret_arn.clone());
        }
        if let Some(s) = built.get::<super::secrets::AppSecrets>() {
            for which in super::secrets::AppSecret::ALL {
                secrets.extend(s.live_arn(which));
            }
        }
        t.secrets = secrets;
        t.normalise();
        t
    }

    /// From the attributes of the resource, as the other components'
    /// readings wrote them.
    pub fn from_state(state: &IdentityState, resource: &Value) -> Targets {
        let mut t = Targets::new(&state.env, &state.account_id, &state.region);
        let text = |name: &str| resource.get_attr(name).as_str().map(str::to_string);
        t.vpc_id = text("vpc_id");
        t.platform_key = text("platform_key_arn");
        t.keys = t
            .platform_key
            .iter()
            .cloned()
            .chain(
                resource
                    .get_attr("tenant_key_arns")
                    .as_string_map()
                    .unwrap_or_default()
                    .into_values(),
            )
            .collect();
        t.audit_bucket = text("audit_bucket_arn");
        if let Some(d) = text("documents_bucket_arn") {
            t.documents_bucket = d;
        }
        t.secrets = [
            "database_master_secret_arn",
            "cache_auth_secret_arn",
            "jwt_secret_arn",
            "encryption_key_secret_arn",
        ]
        .iter()
        .filter_map(|n| text(n))
        .collect();
        t.normalise();
        t
    }

    pub fn normalise(&mut self) {
        self.keys.sort();
        self.keys.dedup();
        self.secrets.sort();
        self.secrets.dedup();
    }

    fn cluster(&self) -> String {
        format!("idis-{}", self.env)
    }

    /// `arn:<partition>:<service>:<region>:<account>:<rest>`.
    fn arn(&self, service: &str, rest: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{rest}",
            self.partition, self.region, self.account
        )
    }
}

// ---------------------------------------------------------------- documents

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Json {
    json!({ "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources })
}

fn statement_if(sid: &str, actions: &[&str], resources: Vec<String>, condition: Json) -> Json {
    let mut s = statement(sid, actions, resources);
    s["Condition"] = condition;
    s
}

fn document(statements: Vec<Json>) -> Json {
    let statements: Vec<Json> = statements
        .into_iter()
        .filter(|s| !s["Resource"].as_array().is_some_and(|r| r.is_empty()))
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The host and path of the issuer (the OIDC provider's name in IAM and
/// the prefix of its condition keys).
pub fn issuer_host(issuer: &str) -> &str {
    issuer.trim_start_matches("https://").trim_end_matches('/')
}

/// The OIDC provider's ARN for `issuer`.
pub fn oidc_provider_arn(partition: &str, account: &str, issuer: &str) -> String {
    format!(
        "arn:{partition}:iam::{account}:oidc-provider/{}",
        issuer_host(issuer)
    )
}

/// The trust policy of `role`: the cluster's OIDC provider, for exactly
/// one service account and the STS audience.
pub fn trust_policy(t: &Targets, issuer: &str, role: Role, spec: &IdentitySpec) -> Json {
    let host = issuer_host(issuer);
    let (namespace, name) = role.service_account(spec);
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": oidc_provider_arn(&t.partition, &t.account, issuer) },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": { "StringEquals": {
                format!("{host}:sub"): format!("system:serviceaccount:{namespace}:{name}"),
                format!("{host}:aud"): AUDIENCE,
            }},
        }],
    })
}

/// The permission policy of `role`.
pub fn permission_policy(t: &Targets, role: Role) -> Json {
    match role {
        Role::Api => api_policy(t),
        Role::ExternalSecrets => external_secrets_policy(t),
        Role::LoadBalancerController => load_balancer_controller_policy(t),
        Role::EbsCsiDriver => ebs_csi_policy(t),
        Role::ClusterAutoscaler => autoscaler_policy(t),
    }
}

fn api_policy(t: &Targets) -> Json {
    let docs = &t.documents_bucket;
    let mut statements = vec![
        statement(
            "DocumentsBucket",
            &[
                "s3:GetBucketLocation",
                "s3:ListBucket",
                "s3:ListBucketMultipartUploads",
            ],
            vec![docs.clone()],
        ),
        statement(
            "Documents",
            &[
                "s3:AbortMultipartUpload",
                "s3:DeleteObject",
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:ListMultipartUploadParts",
                "s3:PutObject",
            ],
            vec![format!("{docs}/*")],
        ),
    ];
    if let Some(audit) = &t.audit_bucket {
        statements.push(statement(
            "AuditAppendOnly",
            &["s3:PutObject"],
            vec![format!("{audit}/*")],
        ));
        statements.push(json!({
            "Sid": "AuditNeverDeletedOrUnlocked",
            "Effect": "Deny",
            "Action": [
                "s3:BypassGovernanceRetention",
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
                "s3:PutObjectLegalHold",
                "s3:PutObjectRetention",
            ],
            "Resource": [audit.clone(), format!("{audit}/*")],
        }));
    }
    statements.push(statement(
        "Keys",
        &["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
        t.keys.clone(),
    ));
    statements.push(statement(
        "Secrets",
        &[
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
        ],
        t.secrets.clone(),
    ));
    document(statements)
}

fn external_secrets_policy(t: &Targets) -> Json {
    document(vec![
        statement(
            "Secrets",
            &[
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
            ],
            t.secrets.clone(),
        ),
        statement_if(
            "DecryptThroughSecretsManager",
            &["kms:Decrypt"],
            t.platform_key.iter().cloned().collect(),
            json!({ "StringEquals": { "kms:ViaService": format!("secretsmanager.{}.amazonaws.com", t.region) } }),
        ),
    ])
}

/// AWS's policy for the EBS CSI driver (the managed policy
/// `AmazonEBSCSIDriverPolicy`), narrowed to volumes and snapshots tagged
/// for this cluster (the add-on is configured with `k8sTagClusterId`, so
/// the driver tags them `kubernetes.io/cluster/<cluster>: owned`) and to
/// the cluster's nodes (`eks:cluster-name`, which EKS puts on a managed
/// node group's instances).
fn ebs_csi_policy(t: &Targets) -> Json {
    let cluster = t.cluster();
    let owned = json!({ format!("aws:ResourceTag/kubernetes.io/cluster/{cluster}"): "owned" });
    let requested = json!({ format!("aws:RequestTag/kubernetes.io/cluster/{cluster}"): "owned" });
    let volumes = t.arn("ec2", "volume/*");
    let snapshots = t.arn("ec2", "snapshot/*");
    document(vec![
        // EC2 describes support no resource-level permissions.
        statement(
            "DescribeOnly",
            &[
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInstances",
                "ec2:DescribeSnapshots",
                "ec2:DescribeTags",
                "ec2:DescribeVolumes",
                "ec2:DescribeVolumesModifications",
            ],
            vec!["*".to_string()],
        ),
        statement_if(
            "CreateClusterVolumes",
            &["ec2:CreateSnapshot", "ec2:CreateVolume"],
            vec![volumes.clone(), snapshots.clone()],
            json!({ "StringEquals": requested }),
        ),
        statement_if(
            "TagOnCreate",
            &["ec2:CreateTags"],
            vec![volumes.clone(), snapshots.clone()],
            json!({ "StringEquals": {
                "ec2:CreateAction": ["CreateSnapshot", "CreateVolume"],
                format!("aws:RequestTag/kubernetes.io/cluster/{cluster}"): "owned",
            }}),
        ),
        statement_if(
            "ClusterVolumes",
            &[
                "ec2:AttachVolume",
                "ec2:CreateSnapshot",
                "ec2:CreateVolume",
                "ec2:DeleteSnapshot",
                "ec2:DeleteVolume",
                "ec2:DetachVolume",
                "ec2:ModifyVolume",
            ],
            vec![volumes, snapshots],
            json!({ "StringEquals": owned }),
        ),
        statement_if(
            "ClusterNodes",
            &["ec2:AttachVolume", "ec2:DetachVolume"],
            vec![t.arn("ec2", "instance/*")],
            json!({ "StringEquals": { "aws:ResourceTag/eks:cluster-name": cluster } }),
        ),
    ])
}

/// The policy the Cluster Autoscaler documents for AWS, narrowed to the
/// Auto Scaling group of this cluster's node group (EKS names it
/// `eks-<node group>-<id>` and tags it
/// `k8s.io/cluster-autoscaler/<cluster>: owned`).
fn autoscaler_policy(t: &Targets) -> Json {
    let cluster = t.cluster();
    document(vec![
        // Auto Scaling and EC2 describes support no resource-level permissions.
        statement(
            "DescribeOnly",
            &[
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            vec!["*".to_string()],
        ),
        statement(
            "NodeGroup",
            &["eks:DescribeNodegroup"],
            vec![t.arn("eks", &format!("nodegroup/{cluster}/*/*"))],
        ),
        statement_if(
            "ScaleClusterNodeGroup",
            &[
                "autoscaling:SetDesiredCapacity",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
            ],
            vec![t.arn(
                "autoscaling",
                &format!("autoScalingGroup:*:autoScalingGroupName/eks-{cluster}-default-*"),
            )],
            json!({ "StringEquals": { format!("aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}"): "owned" } }),
        ),
    ])
}

/// The AWS Load Balancer Controller's documented policy, narrowed to what
/// it makes for this cluster (it tags every security group, load
/// balancer, target group, listener and rule it makes with
/// `elbv2.k8s.aws/cluster: <cluster>`), this VPC, and this environment's
/// regional web ACL (`idis-<env>`).
fn load_balancer_controller_policy(t: &Targets) -> Json {
    let cluster = t.cluster();
    let tag = "elbv2.k8s.aws/cluster";
    let ours = json!({ "StringEquals": { format!("aws:ResourceTag/{tag}"): cluster } });
    let lbs = vec![
        t.arn("elasticloadbalancing", "loadbalancer/app/*/*"),
        t.arn("elasticloadbalancing", "loadbalancer/net/*/*"),
        t.arn("elasticloadbalancing", "targetgroup/*/*"),
    ];
    let listeners = vec![
        t.arn("elasticloadbalancing", "listener/app/*/*/*"),
        t.arn("elasticloadbalancing", "listener/net/*/*/*"),
        t.arn("elasticloadbalancing", "listener-rule/app/*/*/*/*"),
        t.arn("elasticloadbalancing", "listener-rule/net/*/*/*/*"),
    ];
    let groups = t.arn("ec2", "security-group/*");
    let mut statements = vec![
        statement_if(
            "ServiceLinkedRole",
            &["iam:CreateServiceLinkedRole"],
            vec![format!(
                "arn:{}:iam::{}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing",
                t.partition, t.account
            )],
            json!({ "StringEquals": { "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com" } }),
        ),
        // EC2, ELB, ACM, IAM server certificate, WAF and Shield describes
        // support no resource-level permissions.
        statement(
            "DescribeOnly",
            &[
                "acm:DescribeCertificate",
                "acm:ListCertificates",
                "cognito-idp:DescribeUserPoolClient",
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeCoipPools",
                "ec2:DescribeInstances",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeTags",
                "ec2:DescribeVpcPeeringConnections",
                "ec2:DescribeVpcs",
                "ec2:GetCoipPoolUsage",
                "ec2:GetSecurityGroupsForVpc",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTrustStores",
                "iam:GetServerCertificate",
                "iam:ListServerCertificates",
                "shield:DescribeProtection",
                "shield:GetSubscriptionState",
                "wafv2:GetWebACL",
                "wafv2:GetWebACLForResource",
            ],
            vec!["*".to_string()],
        ),
    ];
    if let Some(vpc) = &t.vpc_id {
        let vpc_arn = t.arn("ec2", &format!("vpc/{vpc}"));
        statements.push(statement_if(
            "NodeSecurityGroupsInThisVpc",
            &[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
            ],
            vec![groups.clone()],
            json!({ "ArnEquals": { "ec2:Vpc": vpc_arn.clone() } }),
        ));
        statements.push(statement_if(
            "CreateClusterSecurityGroups",
            &["ec2:CreateSecurityGroup"],
            vec![groups.clone(), vpc_arn],
            json!({ "StringEquals": { format!("aws:RequestTag/{tag}"): cluster } }),
        ));
    }
    statements.extend([
        statement_if(
            "TagSecurityGroupsOnCreate",
            &["ec2:CreateTags"],
            vec![groups.clone()],
            json!({ "StringEquals": {
                "ec2:CreateAction": "CreateSecurityGroup",
                format!("aws:RequestTag/{tag}"): cluster,
            }}),
        ),
        statement_if(
            "ClusterSecurityGroups",
            &[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:CreateTags",
                "ec2:DeleteSecurityGroup",
                "ec2:DeleteTags",
                "ec2:RevokeSecurityGroupIngress",
            ],
            vec![groups],
            ours.clone(),
        ),
        statement_if(
            "CreateClusterLoadBalancers",
            &[
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup",
            ],
            lbs.clone(),
            json!({ "StringEquals": { format!("aws:RequestTag/{tag}"): cluster } }),
        ),
        statement_if(
            "TagOnCreate",
            &["elasticloadbalancing:AddTags"],
            lbs.iter().chain(&listeners).cloned().collect(),
            json!({ "StringEquals": {
                "elasticloadbalancing:CreateAction": ["CreateListener", "CreateLoadBalancer", "CreateRule", "CreateTargetGroup"],
                format!("aws:RequestTag/{tag}"): cluster,
            }}),
        ),
        statement_if(
            "ClusterLoadBalancers",
            &[
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:DeregisterTargets",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:RemoveTags",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:SetWebAcl",
                "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL",
            ],
            lbs,
            ours.clone(),
        ),
        statement_if(
            "ClusterListenersAndRules",
            &[
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:DeleteRule",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:RemoveTags",
            ],
            listeners,
            ours,
        ),
        statement(
            "EnvironmentWebAcl",
            &["wafv2:AssociateWebACL", "wafv2:DisassociateWebACL"],
            vec![t.arn("wafv2", &format!("regional/webacl/{cluster}/*"))],
        ),
        // Shield protection ARNs carry an id AWS chooses and the
        // controller tags none: the account's protections are the
        // narrowest resource IAM offers.
        statement(
            "ShieldProtections",
            &["shield:CreateProtection", "shield:DeleteProtection"],
            vec![format!("arn:{}:shield::{}:protection/*", t.partition, t.account)],
        ),
    ]);
    document(statements)
}

// ---------------------------------------------------------------- judging

const OIDC_PROVIDER: usize = 0;
const TRUST: usize = 1;
const PERMISSIONS: usize = 2;
const TAGS: usize = 3;

const GUARDS: &[Guard] = &[
    Guard::new(
        "oidc_provider",
        "the cluster's issuer, for sts.amazonaws.com",
        "An IAM OIDC provider for the cluster's issuer (`DescribeCluster` `identity.oidc.issuer`), with the audience `sts.amazonaws.com` only and the thumbprint IAM documents for the EKS issuers.",
    )
    .affects(&["oidc_provider_arn"]),
    Guard::new(
        "trust_policies",
        "each role trusts one service account",
        "Each role's trust policy is exactly: the cluster's OIDC provider may assume it with `sts:AssumeRoleWithWebIdentity` when `<issuer>:sub` is `system:serviceaccount:<namespace>:<service account>` of that role and `<issuer>:aud` is `sts.amazonaws.com` (StringEquals). Any other statement, principal or condition shows.",
    )
    .affects(&[
        "api_role_arn",
        "external_secrets_role_arn",
        "load_balancer_controller_role_arn",
        "ebs_csi_driver_role_arn",
        "cluster_autoscaler_role_arn",
    ]),
    Guard::new(
        "permissions",
        "each role has exactly its policy",
        "Each role has the inline policy `idis-workload-identity` exactly as the provider writes it from this environment's ARNs (statements in any order), no other inline policy and no attached policy.",
    ),
    Guard::new(
        "tags",
        "ownership and user tags present",
        "The OIDC provider and every role carry `tags`, the provider's `default_tags` and the ownership tags. Tags others add are left alone.",
    ),
];

/// The service account a trust policy binds, when it binds exactly one
/// with StringEquals.
fn bound_service_account(trust: &str, issuer: &str) -> Option<(String, String)> {
    let doc = serde_json::from_str::<Json>(&super::cluster::percent_decode(trust)).ok()?;
    let statements = as_list(&doc["Statement"]);
    let [s] = statements.as_slice() else {
        return None;
    };
    let sub = &s["Condition"]["StringEquals"][format!("{}:sub", issuer_host(issuer))];
    let sub = match sub {
        Json::String(v) => v.clone(),
        Json::Array(v) if v.len() == 1 => v[0].as_str()?.to_string(),
        _ => return None,
    };
    let rest = sub.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    Some((namespace.to_string(), name.to_string()))
}

/// The settings as IAM records them: each role's trust policy names its
/// service account. What cannot be read (a missing role, a widened trust)
/// stays as stored, and the trust guard says why.
fn settings_from(state: &IdentityState, stored: &IdentitySpec) -> IdentitySpec {
    let mut spec = stored.clone();
    let Some(issuer) = state.issuer.as_deref() else {
        return spec;
    };
    let bound = |role: Role| {
        state
            .roles
            .get(&role)
            .and_then(|r| bound_service_account(&r.trust, issuer))
    };
    if let Some((ns, sa)) = bound(Role::Api) {
        spec.namespace = ns;
        spec.api_service_account = sa;
    }
    if let Some((ns, sa)) = bound(Role::ExternalSecrets) {
        if ns == spec.namespace {
            spec.external_secrets_service_account = sa;
        }
    }
    if let Some((ns, sa)) = bound(Role::LoadBalancerController) {
        spec.load_balancer_controller_namespace = ns;
        spec.load_balancer_controller_service_account = sa;
    }
    if let Some((ns, sa)) = bound(Role::ClusterAutoscaler) {
        spec.cluster_autoscaler_namespace = ns;
        spec.cluster_autoscaler_service_account = sa;
    }
    spec
}

/// The verdicts that need no other component: the OIDC provider and the
/// tags.
fn own_verdicts(ctx_tags: &BTreeMap<String, String>, state: &IdentityState) -> Verdicts {
    let mut v = Verdicts::new();
    let mut oidc = Vec::new();
    let mut tags = Vec::new();
    match (&state.issuer, &state.oidc) {
        (None, _) => oidc.push("the EKS cluster does not exist, so it has no issuer".to_string()),
        (Some(issuer), None) => oidc.push(format!(
            "no IAM OIDC provider for the cluster's issuer {issuer}"
        )),
        (Some(_), Some(o)) => {
            if o.client_ids != [AUDIENCE] {
                oidc.push(format!(
                    "the OIDC provider's audiences are [{}], not [{AUDIENCE}]",
                    o.client_ids.join(", ")
                ));
            }
            if !o.thumbprints.iter().any(|t| t == EKS_OIDC_THUMBPRINT) {
                oidc.push(format!(
                    "the OIDC provider's thumbprints [{}] lack {EKS_OIDC_THUMBPRINT}",
                    o.thumbprints.join(", ")
                ));
            }
            tags.extend(super::tag_problems("the OIDC provider", &o.tags, ctx_tags));
        }
    }
    for role in Role::ALL {
        if let Some(r) = state.roles.get(&role) {
            tags.extend(super::tag_problems(
                &format!("IAM role {}", role.name_at(&state.env, state.dr_site)),
                &r.tags,
                ctx_tags,
            ));
        }
    }
    v.judge(&GUARDS[OIDC_PROVIDER], oidc);
    v.judge(&GUARDS[TAGS], tags);
    v
}

/// Adds the verdicts on trust and permissions, against `t` and `spec`.
pub fn policy_verdicts(state: &IdentityState, t: &Targets, spec: &IdentitySpec, v: &mut Verdicts) {
    let mut trust = Vec::new();
    let mut permissions = Vec::new();
    for role in Role::ALL {
        let name = role.name_at(&state.env, state.dr_site);
        let Some(r) = state.roles.get(&role) else {
            trust.push(format!("IAM role {name} ({}) is missing", role.what()));
            continue;
        };
        if let Some(issuer) = &state.issuer {
            let want = trust_policy(t, issuer, role, spec);
            if !same_policy(&r.trust, &want) {
                let (ns, sa) = role.service_account(spec);
                trust.push(format!(
                    "the trust policy of {name} is not exactly service account {ns}/{sa} of the cluster's issuer: it {}",
                    differences(&r.trust, &want)
                ));
            }
        }
        let want = permission_policy(t, role);
        match r.inline.get(POLICY_NAME) {
            None => permissions.push(format!("{name} lacks its policy {POLICY_NAME}")),
            Some(doc) if !same_policy(doc, &want) => permissions.push(format!(
                "the policy {POLICY_NAME} of {name} {}",
                differences(doc, &want)
            )),
            Some(_) => {}
        }
        for other in r.inline.keys().filter(|k| *k != POLICY_NAME) {
            permissions.push(format!("{name} has the inline policy {other} as well"));
        }
        for arn in &r.attached {
            permissions.push(format!("{name} has {arn} attached"));
        }
    }
    v.judge(&GUARDS[TRUST], trust);
    v.judge(&GUARDS[PERMISSIONS], permissions);
}

// ---------------------------------------------------------------- component

/// The OIDC provider and the IRSA roles of an environment.
pub struct WorkloadIdentity;

fn name_check(namespace: bool) -> Check {
    if namespace {
        Check::Text(
            is_dns_label,
            "use a Kubernetes namespace name: 1 to 63 lowercase letters, digits and dashes, starting and ending with a letter or digit",
        )
    } else {
        Check::Text(
            is_dns_subdomain,
            "use a Kubernetes service account name: 1 to 253 lowercase letters, digits, dashes and dots, starting and ending with a letter or digit",
        )
    }
}

/// An RFC 1123 label, as Kubernetes names namespaces.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An RFC 1123 subdomain, as Kubernetes names service accounts.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && !s.is_empty() && s.split('.').all(is_dns_label)
}

impl Component for WorkloadIdentity {
    const NAME: &'static str = COMPONENT;
    const DOC: &'static str = "The cluster's IAM OIDC provider and IAM roles for service accounts (IRSA): the API and workers, external-secrets, the AWS Load Balancer Controller, the EBS CSI driver and the cluster autoscaler, each trusted by exactly one service account and allowed only this environment's resources.";
    /// IAM is global: an environment's roles are not a sign that it
    /// exists in a region.
    const REGIONAL: bool = false;
    const AFTER: &'static [&'static str] = &[
        super::network::COMPONENT,
        super::keys::COMPONENT,
        super::cluster::COMPONENT,
        super::database::COMPONENT,
        super::cache::COMPONENT,
        super::storage::COMPONENT,
        super::documents::COMPONENT,
        super::secrets::COMPONENT,
    ];
    type Spec = IdentitySpec;
    type State = IdentityState;
    type Outputs = IdentityOutputs;

    async fn find(ctx: &Ctx) -> Result<Option<IdentityState>, ComponentError> {
        let state = read_all(ctx, issuer_of(ctx).await?.as_deref()).await?;
        if state.oidc.is_none() && state.roles.is_empty() {
            return Ok(None);
        }
        Ok(Some(state))
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &IdentitySpec,
        built: &super::Observed,
    ) -> Result<IdentityState, ComponentError> {
        let cluster = built.need::<super::cluster::EksCluster>(COMPONENT)?;
        let issuer = cluster.oidc_issuer.clone().ok_or_else(|| ComponentError::Conflict {
            component: COMPONENT,
            message: format!(
                "EKS reports no OIDC issuer for the cluster {}; IAM roles for service accounts need one",
                cluster.name
            ),
        })?;
        let targets = Targets::from_built(ctx, built);
        ensure(ctx, spec, &issuer, &targets).await
    }

    async fn delete(ctx: &Ctx, _spec: &IdentitySpec) -> Result<Vec<String>, ComponentError> {
        delete(ctx).await
    }

    fn settings() -> Vec<Setting> {
        let s = |name, default, namespace: bool, description: String| {
            Setting::new(name, Type::String, Default::Str(default), description)
                .check(name_check(namespace))
        };
        vec![
            s("namespace", DEFAULT_NAMESPACE, true, format!("Kubernetes namespace of the application: its API and worker service account, the external-secrets `SecretStore` and `ExternalSecret`, and the ConfigMap of `kubernetes_manifests`. Default `\"{DEFAULT_NAMESPACE}\"`.")),
            s("api_service_account", DEFAULT_API_SERVICE_ACCOUNT, false, format!("Service account of the API and workers, the only one the API role trusts. Default `\"{DEFAULT_API_SERVICE_ACCOUNT}\"`.")),
            s("external_secrets_service_account", DEFAULT_EXTERNAL_SECRETS_SERVICE_ACCOUNT, false, format!("Service account (in `namespace`) the `SecretStore` authenticates as, the only one the external-secrets role trusts. Default `\"{DEFAULT_EXTERNAL_SECRETS_SERVICE_ACCOUNT}\"`.")),
            s("load_balancer_controller_namespace", DEFAULT_LB_NAMESPACE, true, format!("Namespace of the AWS Load Balancer Controller. Default `\"{DEFAULT_LB_NAMESPACE}\"`.")),
            s("load_balancer_controller_service_account", DEFAULT_LB_SERVICE_ACCOUNT, false, format!("Service account of the AWS Load Balancer Controller. Default `\"{DEFAULT_LB_SERVICE_ACCOUNT}\"`.")),
            s("cluster_autoscaler_namespace", DEFAULT_AUTOSCALER_NAMESPACE, true, format!("Namespace of the cluster autoscaler. Default `\"{DEFAULT_AUTOSCALER_NAMESPACE}\"`.")),
            s("cluster_autoscaler_service_account", DEFAULT_AUTOSCALER_SERVICE_ACCOUNT, false, format!("Service account of the cluster autoscaler. Default `\"{DEFAULT_AUTOSCALER_SERVICE_ACCOUNT}\"`.")),
        ]
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new(
                "oidc_provider_arn",
                Type::String,
                "ARN of the cluster's IAM OIDC provider.",
            ),
            Output::new(
                "api_role_arn",
                Type::String,
                "IAM role of the API and workers (annotate their service account with it: `eks.amazonaws.com/role-arn`).",
            ),
            Output::new(
                "external_secrets_role_arn",
                Type::String,
                "IAM role the external-secrets `SecretStore` uses to read the environment's secrets.",
            ),
            Output::new(
                "load_balancer_controller_role_arn",
                Type::String,
                "IAM role of the AWS Load Balancer Controller.",
            ),
            Output::new(
                "ebs_csi_driver_role_arn",
                Type::String,
                "IAM role of the EBS CSI driver (the `aws-ebs-csi-driver` add-on runs with it).",
            ),
            Output::new(
                "cluster_autoscaler_role_arn",
                Type::String,
                "IAM role of the cluster autoscaler.",
            ),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn read(
        state: &IdentityState,
        stored: &IdentitySpec,
        prior: &Value,
    ) -> Reading<IdentitySpec, IdentityOutputs> {
        let settings = settings_from(state, stored);
        let targets = Targets::from_state(state, prior);
        let mut verdicts = state.verdicts.clone();
        policy_verdicts(state, &targets, &settings, &mut verdicts);
        let arn = |role: Role| state.roles.get(&role).map(|r| r.arn.clone());
        Reading {
            settings,
            outputs: IdentityOutputs {
                oidc_provider_arn: state.oidc.as_ref().map(|o| o.arn.clone()),
                api_role_arn: arn(Role::Api),
                external_secrets_role_arn: arn(Role::ExternalSecrets),
                load_balancer_controller_role_arn: arn(Role::LoadBalancerController),
                ebs_csi_driver_role_arn: arn(Role::EbsCsiDriver),
                cluster_autoscaler_role_arn: arn(Role::ClusterAutoscaler),
            },
            verdicts,
        }
    }
}

// ---------------------------------------------------------------- reading

fn iam_error<E, R>(
    action: String,
    e: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> ComponentError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + super::HttpStatus + 'static,
{
    aws_error(COMPONENT, action, e)
}

async fn issuer_of(ctx: &Ctx) -> Result<Option<String>, ComponentError> {
    let name = super::cluster::cluster_name(ctx);
    match ctx.aws.eks().describe_cluster().name(&name).send().await {
        Ok(out) => Ok(out
            .cluster
            .filter(|c| c.status() != Some(&aws_sdk_eks::types::ClusterStatus::Deleting))
            .and_then(|c| c.identity)
            .and_then(|i| i.oidc)
            .and_then(|o| o.issuer)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(iam_error(format!("describe the EKS cluster {name}"), e)),
    }
}

async fn read_oidc(ctx: &Ctx, arn: &str) -> Result<Option<OidcSeen>, ComponentError> {
    match ctx
        .aws
        .iam()
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(out) => Ok(Some(OidcSeen {
            arn: arn.to_string(),
            url: out.url().unwrap_or_default().to_string(),
            client_ids: out.client_id_list().to_vec(),
            thumbprints: out.thumbprint_list().to_vec(),
            tags: out
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        })),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(iam_error(format!("read the IAM OIDC provider {arn}"), e)),
    }
}

async fn read_role(ctx: &Ctx, name: &str) -> Result<Option<RoleSeen>, ComponentError> {
    iam_role::read(ctx, COMPONENT, name, Some(POLICY_NAME)).await
}

/// Reads the OIDC provider of `issuer` (the cluster's; None when there is
/// no cluster or it has none) and every role concurrently, and judges
/// what needs no other component.
async fn read_all(ctx: &Ctx, issuer: Option<&str>) -> Result<IdentityState, ComponentError> {
    let part = partition(&ctx.region);
    let issuer = issuer.map(str::to_string);
    let oidc = async {
        match &issuer {
            Some(i) => read_oidc(ctx, &oidc_provider_arn(part, &ctx.account_id, i)).await,
            None => Ok(None),
        }
    };
    let roles = futures_util::future::try_join_all(Role::ALL.iter().map(|role| async move {
        Ok::<_, ComponentError>((
            *role,
            read_role(ctx, &role.name_at(&ctx.env, ctx.dr_site)).await?,
        ))
    }));
    let (oidc, roles) = tokio::try_join!(oidc, roles)?;
    let mut state = IdentityState {
        env: ctx.env.clone(),
        account_id: ctx.account_id.clone(),
        region: ctx.region.clone(),
        dr_site: ctx.dr_site,
        issuer,
        oidc,
        roles: roles
            .into_iter()
            .filter_map(|(role, seen)| Some((role, seen?)))
            .collect(),
        verdicts: Verdicts::new(),
    };
    state.verdicts = own_verdicts(&ctx.tags(COMPONENT), &state);
    Ok(state)
}

/// The OIDC provider and roles as IAM has them, for the cluster of `ctx`'s
/// site whose issuer the caller has read (its verdicts without the
/// policies': see [`policy_verdicts`]).
pub async fn read(ctx: &Ctx, issuer: Option<&str>) -> Result<IdentityState, ComponentError> {
    read_all(ctx, issuer).await
}

// ---------------------------------------------------------------- ensure

fn iam_tags(
    tags: &BTreeMap<String, String>,
) -> Result<Vec<aws_sdk_iam::types::Tag>, ComponentError> {
    iam_role::iam_tags(COMPONENT, tags)
}

async fn ensure_oidc(
    ctx: &Ctx,
    issuer: &str,
    seen: Option<&OidcSeen>,
) -> Result<(), ComponentError> {
    let iam = ctx.aws.iam();
    let arn = oidc_provider_arn(partition(&ctx.region), &ctx.account_id, issuer);
    let tags = ctx.tags(COMPONENT);
    let Some(seen) = seen else {
        // Unique by URL: a provider made by a killed apply answers
        // EntityAlreadyExists, and is repaired by the next apply's reading.
        return match iam
            .create_open_id_connect_provider()
            .url(issuer)
            .client_id_list(AUDIENCE)
            .thumbprint_list(EKS_OIDC_THUMBPRINT)
            .set_tags(Some(iam_tags(&tags)?))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("EntityAlreadyExists") => Ok(()),
            Err(e) => Err(iam_error(
                format!("create the IAM OIDC provider for {issuer}"),
                e,
            )),
        };
    };
    for extra in seen.client_ids.iter().filter(|c| *c != AUDIENCE) {
        iam.remove_client_id_from_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .client_id(extra)
            .send()
            .await
            .map_err(|e| iam_error(format!("remove the audience {extra} from {arn}"), e))?;
    }
    if !seen.client_ids.iter().any(|c| c == AUDIENCE) {
        iam.add_client_id_to_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .client_id(AUDIENCE)
            .send()
            .await
            .map_err(|e| iam_error(format!("add the audience {AUDIENCE} to {arn}"), e))?;
    }
    if !seen.thumbprints.iter().any(|t| t == EKS_OIDC_THUMBPRINT) {
        iam.update_open_id_connect_provider_thumbprint()
            .open_id_connect_provider_arn(&arn)
            .thumbprint_list(EKS_OIDC_THUMBPRINT)
            .send()
            .await
            .map_err(|e| iam_error(format!("set the thumbprint of {arn}"), e))?;
    }
    let stale: BTreeMap<String, String> = tags
        .into_iter()
        .filter(|(k, v)| seen.tags.get(k) != Some(v))
        .collect();
    if !stale.is_empty() {
        iam.tag_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .set_tags(Some(iam_tags(&stale)?))
            .send()
            .await
            .map_err(|e| iam_error(format!("tag {arn}"), e))?;
    }
    Ok(())
}

async fn ensure_role(
    ctx: &Ctx,
    role: Role,
    seen: Option<&RoleSeen>,
    trust: &Json,
    policy: &Json,
) -> Result<(), ComponentError> {
    let want = iam_role::Wanted {
        name: role.name_at(&ctx.env, ctx.dr_site),
        description: format!(
            "IDIS environment {}: {} (IAM role for a service account{})",
            ctx.env,
            role.what(),
            if ctx.dr_site {
                " of the DR site's cluster"
            } else {
                ""
            }
        ),
        trust: trust.clone(),
        inline: Some((POLICY_NAME, policy.clone())),
        attached: Vec::new(),
    };
    iam_role::ensure(ctx, COMPONENT, seen, &want).await
}

pub async fn ensure(
    ctx: &Ctx,
    spec: &IdentitySpec,
    issuer: &str,
    targets: &Targets,
) -> Result<IdentityState, ComponentError> {
    let seen = read_all(ctx, Some(issuer)).await?;
    let roles = futures_util::future::try_join_all(Role::ALL.iter().map(|role| {
        let trust = trust_policy(targets, issuer, *role, spec);
        let policy = permission_policy(targets, *role);
        let seen = seen.roles.get(role);
        async move { ensure_role(ctx, *role, seen, &trust, &policy).await }
    }));
    tokio::try_join!(ensure_oidc(ctx, issuer, seen.oidc.as_ref()), roles)?;
    read_all(ctx, Some(issuer)).await
}

// ---------------------------------------------------------------- delete

/// The OIDC providers tagged for this environment in this context's
/// region (the cluster may be gone already, and with it the issuer that
/// names the provider; an EKS issuer names its region,
/// `oidc.eks.<region>.amazonaws.com`, so the DR site's is not the
/// primary's).
async fn tagged_providers(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    let iam = ctx.aws.iam();
    let list = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .map_err(|e| iam_error("list the IAM OIDC providers".to_string(), e))?;
    let mut ours = Vec::new();
    for arn in list
        .open_id_connect_provider_list()
        .iter()
        .filter_map(|p| p.arn())
    {
        if !arn.contains(&format!("oidc.eks.{}.", ctx.region)) {
            continue;
        }
        let tags = match iam
            .list_open_id_connect_provider_tags()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
        {
            Ok(out) => out.tags,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(iam_error(format!("read the tags of {arn}"), e)),
        };
        let has = |k: &str, v: &str| tags.iter().any(|t| t.key() == k && t.value() == v);
        if has(super::TAG_ENVIRONMENT, &ctx.env)
            && has(super::TAG_COMPONENT, COMPONENT)
            && has(super::TAG_MANAGED_BY, super::MANAGED_BY)
        {
            ours.push(arn.to_string());
        }
    }
    Ok(ours)
}

async fn delete_role(ctx: &Ctx, role: Role) -> Result<(), ComponentError> {
    iam_role::delete(ctx, COMPONENT, &role.name_at(&ctx.env, ctx.dr_site)).await
}

/// Deletes the roles and the OIDC provider: they hold no data.
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    futures_util::future::try_join_all(Role::ALL.iter().map(|r| delete_role(ctx, *r))).await?;
    let mut providers: BTreeSet<String> = tagged_providers(ctx).await?.into_iter().collect();
    if let Some(issuer) = issuer_of(ctx).await? {
        let arn = oidc_provider_arn(partition(&ctx.region), &ctx.account_id, &issuer);
        if read_oidc(ctx, &arn)
            .await?
            .is_some_and(|o| o.tags.get(super::TAG_ENVIRONMENT) == Some(&ctx.env))
        {
            providers.insert(arn);
        }
    }
    for arn in providers {
        match ctx
            .aws
            .iam()
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(iam_error(format!("delete the IAM OIDC provider {arn}"), e)),
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> IdentitySpec {
        IdentitySpec {
            namespace: DEFAULT_NAMESPACE.into(),
            api_service_account: DEFAULT_API_SERVICE_ACCOUNT.into(),
            external_secrets_service_account: DEFAULT_EXTERNAL_SECRETS_SERVICE_ACCOUNT.into(),
            load_balancer_controller_namespace: DEFAULT_LB_NAMESPACE.into(),
            load_balancer_controller_service_account: DEFAULT_LB_SERVICE_ACCOUNT.into(),
            cluster_autoscaler_namespace: DEFAULT_AUTOSCALER_NAMESPACE.into(),
            cluster_autoscaler_service_account: DEFAULT_AUTOSCALER_SERVICE_ACCOUNT.into(),
        }
    }

    fn targets() -> Targets {
        let mut t = Targets::new("production", "123456789012", "us-east-1");
        t.vpc_id = Some("vpc-1".into());
        t.platform_key = Some("arn:aws:kms:us-east-1:123456789012:key/p".into());
        t.keys = vec![
            "arn:aws:kms:us-east-1:123456789012:key/p".into(),
            "arn:aws:kms:us-east-1:123456789012:key/t".into(),
        ];
        t.audit_bucket = Some("arn:aws:s3:::idis-production-audit-123456789012-us-east-1".into());
        t.secrets = vec!["arn:aws:secretsmanager:us-east-1:123456789012:secret:a".into()];
        t
    }

    const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";

    #[test]
    fn statements_in_another_order_with_single_values_mean_the_same() {
        let want = permission_policy(&targets(), Role::Api);
        let mut shuffled = want.clone();
        let list = shuffled["Statement"].as_array_mut().unwrap();
        list.reverse();
        let single = list
            .iter_mut()
            .find(|s| s["Sid"] == "AuditAppendOnly")
            .unwrap();
        single["Action"] = single["Action"][0].clone();
        let text = shuffled.to_string();
        // IAM answers URL-encoded documents.
        let encoded = text
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22");
        assert!(same_policy(&encoded, &want));
        assert!(!same_policy(
            &permission_policy(&targets(), Role::ExternalSecrets).to_string(),
            &want
        ));
    }

    #[test]
    fn a_trust_widened_to_every_service_account_is_not_the_trust_and_names_none() {
        let t = targets();
        let want = trust_policy(&t, ISSUER, Role::Api, &spec());
        assert_eq!(
            bound_service_account(&want.to_string(), ISSUER),
            Some(("idis".into(), "idis-api".into()))
        );
        let mut wide = want.clone();
        let cond = &mut wide["Statement"][0]["Condition"];
        let sub = cond["StringEquals"]
            .as_object_mut()
            .unwrap()
            .remove("oidc.eks.us-east-1.amazonaws.com/id/ABC:sub")
            .unwrap();
        assert_eq!(sub, "system:serviceaccount:idis:idis-api");
        cond["StringLike"] =
            json!({"oidc.eks.us-east-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:*:*"});
        assert!(!same_policy(&wide.to_string(), &want));
        assert_eq!(bound_service_account(&wide.to_string(), ISSUER), None);
    }

    #[test]
    fn no_statement_that_changes_or_reads_data_has_every_resource() {
        let read_only = |a: &str| {
            let action = a.split(':').nth(1).unwrap_or_default();
            ["Describe", "List", "Get"]
                .iter()
                .any(|p| action.starts_with(p))
        };
        for role in Role::ALL {
            let doc = permission_policy(&targets(), role);
            for s in doc["Statement"].as_array().unwrap() {
                let resources = as_list(&s["Resource"]);
                assert!(!resources.is_empty(), "{role:?}: {s}");
                if resources.iter().any(|r| r == "*") {
                    for a in as_list(&s["Action"]) {
                        let a = a.as_str().unwrap();
                        assert!(read_only(a), "{role:?}: {a} on *");
                        // And never an S3, KMS or Secrets Manager one.
                        assert!(
                            !a.starts_with("s3:")
                                && !a.starts_with("kms:")
                                && !a.starts_with("secretsmanager:")
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(is_dns_label("kube-system"));
        assert!(!is_dns_label("Kube"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("idis.api-1"));
        assert!(!is_dns_subdomain("idis..api"));
        assert!(!is_dns_subdomain("idis_api"));
    }
}
