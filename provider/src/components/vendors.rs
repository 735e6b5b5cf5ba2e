//! The monitoring vendor's way in: the IAM role each vendor's AWS
//! integration documents, `idis-<env>-datadog` and `idis-<env>-newrelic`,
//! made when `monitoring.datadog` / `monitoring.newrelic` is set. Part of
//! the `monitoring` component (IDIS infrastructure spec §7.1: "Monitoring —
//! Datadog / New Relic").
//!
//! Each role trusts exactly one principal: the vendor's AWS account
//! (`arn:<partition>:iam::<account>:root`) with `sts:AssumeRole` when
//! `sts:ExternalId` equals the external id the vendor gives (IAM User
//! Guide, "Access to AWS accounts owned by third parties": the external id
//! guards against the confused deputy; it is not a secret).
//!
//! - Datadog ("AWS Integration — manual setup", role delegation): the
//!   trusted account is Datadog's `464622532012` (another for Datadog's
//!   GovCloud site: `aws_account_id`), the external id is the one Datadog's
//!   AWS integration page generates. Permissions: AWS's managed
//!   `SecurityAudit`, which Datadog documents for resource collection, and
//!   an inline policy `idis-datadog-integration` with the read-only part of
//!   Datadog's documented integration policy for the services an IDIS
//!   environment uses (CloudWatch metrics and alarms, tags, EC2/VPC, EKS,
//!   Auto Scaling, ELB, RDS, ElastiCache, S3 bucket metadata, CloudFront,
//!   WAF, Shield, SNS, CloudWatch Logs metadata, CloudTrail status). The
//!   write permissions Datadog's policy also lists (log subscription
//!   filters, bucket notifications, SNS publish) serve Datadog's log
//!   forwarder, which is set up on the vendor side, not here.
//! - New Relic ("Connect AWS to New Relic", API polling): the trusted
//!   account is New Relic's `754728514883`, the external id is the New
//!   Relic account id. Permissions: AWS's managed `ReadOnlyAccess`, which
//!   New Relic recommends ("Grant New Relic permissions with AWS managed
//!   policies").
//!
//! Everything is read back: the trust policy (its account and external id
//! are the settings, so a change shows as one), the attached and inline
//! policies and the tags (the `vendor_roles` guard). A role of a vendor no
//! longer configured is deleted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::describe::{Default, Output, Problem, Setting};
use super::iam_role::{self, as_list, RoleSeen, Wanted};
use super::{partition, ComponentError, Ctx};
use crate::protocol::cty::{Path, Type, Value};

/// The inline policy of the Datadog role.
pub const DATADOG_POLICY: &str = "idis-datadog-integration";

/// Datadog's AWS account (commercial sites).
pub const DATADOG_ACCOUNT: &str = "464622532012";
/// New Relic's AWS account.
pub const NEWRELIC_ACCOUNT: &str = "754728514883";

/// The read-only actions of the Datadog role's inline policy (see the
/// module documentation).
const DATADOG_ACTIONS: &[&str] = &[
    "autoscaling:Describe*",
    "cloudfront:GetDistributionConfig",
    "cloudfront:ListDistributions",
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:LookupEvents",
    "cloudwatch:Describe*",
    "cloudwatch:Get*",
    "cloudwatch:List*",
    "ec2:Describe*",
    "eks:Describe*",
    "eks:List*",
    "elasticache:Describe*",
    "elasticache:List*",
    "elasticloadbalancing:Describe*",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:DescribeSubscriptionFilters",
    "logs:FilterLogEvents",
    "logs:TestMetricFilter",
    "rds:Describe*",
    "rds:List*",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketNotification",
    "s3:GetBucketTagging",
    "s3:ListAllMyBuckets",
    "shield:DescribeProtection",
    "shield:DescribeSubscription",
    "shield:ListProtections",
    "sns:GetTopicAttributes",
    "sns:ListSubscriptions",
    "sns:ListTopics",
    "tag:GetResources",
    "tag:GetTagKeys",
    "tag:GetTagValues",
    "wafv2:GetLoggingConfiguration",
    "wafv2:ListLoggingConfigurations",
];

/// The vendors, in the order of their outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Vendor {
    Datadog,
    NewRelic,
}

impl Vendor {
    pub const ALL: [Vendor; 2] = [Vendor::Datadog, Vendor::NewRelic];

    /// The argument of the `monitoring` block.
    pub fn setting(self) -> &'static str {
        match self {
            Vendor::Datadog => "datadog",
            Vendor::NewRelic => "newrelic",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Vendor::Datadog => "Datadog",
            Vendor::NewRelic => "New Relic",
        }
    }

    /// `idis-<env>-datadog`, `idis-<env>-newrelic`.
    pub fn role_name(self, env: &str) -> String {
        format!("idis-{env}-{}", self.setting())
    }

    pub fn output(self) -> &'static str {
        match self {
            Vendor::Datadog => "datadog_role_arn",
            Vendor::NewRelic => "newrelic_role_arn",
        }
    }

    fn inline_policy(self) -> Option<&'static str> {
        match self {
            Vendor::Datadog => Some(DATADOG_POLICY),
            Vendor::NewRelic => None,
        }
    }

    /// The AWS managed policies the vendor documents.
    fn managed(self, partition: &str) -> Vec<String> {
        let name = match self {
            Vendor::Datadog => "SecurityAudit",
            Vendor::NewRelic => "ReadOnlyAccess",
        };
        vec![format!("arn:{partition}:iam::aws:policy/{name}")]
    }
}

/// `monitoring.datadog` / `monitoring.newrelic`: who may assume the role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorAccess {
    /// The external id the vendor gives (New Relic: its account id).
    pub external_id: String,
    /// The vendor's AWS account the role trusts.
    pub aws_account_id: String,
}

/// The vendors' arguments of the `monitoring` block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VendorsSpec {
    pub datadog: Option<VendorAccess>,
    pub newrelic: Option<VendorAccess>,
}

impl VendorsSpec {
    pub fn get(&self, vendor: Vendor) -> Option<&VendorAccess> {
        match vendor {
            Vendor::Datadog => self.datadog.as_ref(),
            Vendor::NewRelic => self.newrelic.as_ref(),
        }
    }
}

/// The roles' ARNs, as outputs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VendorsOutputs {
    pub datadog_role_arn: Option<String>,
    pub newrelic_role_arn: Option<String>,
}

fn access_type() -> Type {
    Type::Object(BTreeMap::from([
        ("external_id".to_string(), Type::String),
        ("aws_account_id".to_string(), Type::String),
    ]))
}

pub fn settings() -> Vec<Setting> {
    vec![
        Setting::new(
            "datadog",
            access_type(),
            Default::Null,
            format!("Datadog's AWS integration: an IAM role `idis-<name>-datadog` that Datadog's account `aws_account_id` (`{DATADOG_ACCOUNT}` for Datadog's commercial sites) may assume with `external_id` (from Datadog's AWS integration page), with AWS's `SecurityAudit` and the read-only part of Datadog's integration policy for this environment's services. Its ARN is `datadog_role_arn`. No role when unset."),
        ),
        Setting::new(
            "newrelic",
            access_type(),
            Default::Null,
            format!("New Relic's AWS integration (API polling): an IAM role `idis-<name>-newrelic` that New Relic's account `aws_account_id` (`{NEWRELIC_ACCOUNT}`) may assume with `external_id` (your New Relic account id), with AWS's `ReadOnlyAccess` as New Relic recommends. Its ARN is `newrelic_role_arn`. No role when unset."),
        ),
    ]
}

pub fn outputs() -> Vec<Output> {
    vec![
        Output::new(
            "datadog_role_arn",
            Type::String,
            "ARN of the IAM role Datadog's AWS integration assumes (`monitoring.datadog`); give it to Datadog's AWS integration page. Null without `datadog`.",
        ),
        Output::new(
            "newrelic_role_arn",
            Type::String,
            "ARN of the IAM role New Relic's AWS integration assumes (`monitoring.newrelic`); give it to New Relic's AWS integration set-up. Null without `newrelic`.",
        ),
    ]
}

/// The roles' ARNs in a plan: null without the vendor, kept while the
/// role stays, unknown until apply makes it.
pub fn plan_outputs(component: &str, prior: &Value, planned: &mut Value) {
    for vendor in Vendor::ALL {
        let wanted = planned
            .get_attr(component)
            .get_attr(vendor.setting())
            .clone();
        let had = prior.get_attr(vendor.output()).clone();
        let value = match wanted {
            Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
            _ if had.is_null() => Value::Unknown,
            _ => had,
        };
        planned.set_attr(vendor.output(), value);
    }
}

/// AWS's rule for an external id (AssumeRole API reference: 2 to 1224
/// characters of `[\w+=,.@:/-]`).
pub fn is_external_id(s: &str) -> bool {
    (2..=1224).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The arguments' problems (validate and plan time).
pub fn check(block: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    for vendor in Vendor::ALL {
        let access = block.get_attr(vendor.setting());
        let at = |attr: &str, value: &Value, allowed: String| Problem {
            path: Path::root().attr(vendor.setting()).attr(attr),
            value: value.clone(),
            allowed,
        };
        let id = access.get_attr("external_id");
        if let Some(text) = id.as_str() {
            if !is_external_id(text) {
                problems.push(at(
                    "external_id",
                    id,
                    format!("the external id {} gives: 2 to 1224 letters, digits or any of _+=,.@:/- (no spaces)", vendor.title()),
                ));
            }
            if vendor == Vendor::NewRelic && !text.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(at(
                    "external_id",
                    id,
                    "your New Relic account id, digits only (New Relic uses it as the external id)"
                        .to_string(),
                ));
            }
        }
        let account = access.get_attr("aws_account_id");
        if let Some(text) = account.as_str() {
            if !is_account(text) {
                let default = match vendor {
                    Vendor::Datadog => DATADOG_ACCOUNT,
                    Vendor::NewRelic => NEWRELIC_ACCOUNT,
                };
                problems.push(at(
                    "aws_account_id",
                    account,
                    format!(
                        "a 12-digit AWS account id, {}'s own (\"{default}\")",
                        vendor.title()
                    ),
                ));
            }
        }
    }
    problems
}

/// The trust policy of a vendor's role.
pub fn trust_policy(partition: &str, access: &VendorAccess) -> Json {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:{partition}:iam::{}:root", access.aws_account_id)},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": access.external_id}},
        }],
    })
}

fn datadog_policy() -> Json {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DatadogReadOnly",
            "Effect": "Allow",
            "Action": DATADOG_ACTIONS,
            "Resource": "*",
        }],
    })
}

/// The role as wanted for `access`.
pub fn wanted(env: &str, partition: &str, vendor: Vendor, access: &VendorAccess) -> Wanted {
    Wanted {
        name: vendor.role_name(env),
        description: format!(
            "IDIS environment {env}: {}'s AWS integration (read-only)",
            vendor.title()
        ),
        trust: trust_policy(partition, access),
        inline: vendor.inline_policy().map(|name| (name, datadog_policy())),
        attached: vendor.managed(partition),
    }
}

/// Who a role's trust policy lets in, when it is one statement of the
/// shape [`trust_policy`] makes (another shape reads as nobody's).
pub fn access_of(trust: &str) -> Option<VendorAccess> {
    let doc: Json = serde_json::from_str(&super::cluster::percent_decode(trust)).ok()?;
    let statements = as_list(&doc["Statement"]);
    let [s] = statements.as_slice() else {
        return None;
    };
    let principals = as_list(&s["Principal"]["AWS"]);
    let [principal] = principals.as_slice() else {
        return None;
    };
    let account = principal
        .as_str()?
        .strip_suffix(":root")?
        .rsplit(':')
        .next()?
        .to_string();
    let ids = as_list(&s["Condition"]["StringEquals"]["sts:ExternalId"]);
    let [id] = ids.as_slice() else {
        return None;
    };
    (s["Effect"] == "Allow").then(|| VendorAccess {
        external_id: id.as_str().unwrap_or_default().to_string(),
        aws_account_id: account,
    })
}

/// Every vendor role of the environment as IAM has it.
pub async fn read(
    ctx: &Ctx,
    component: &'static str,
) -> Result<BTreeMap<Vendor, RoleSeen>, ComponentError> {
    let found = futures_util::future::try_join_all(Vendor::ALL.iter().map(|v| async move {
        let seen =
            iam_role::read(ctx, component, &v.role_name(&ctx.env), v.inline_policy()).await?;
        Ok::<_, ComponentError>(seen.map(|s| (*v, s)))
    }))
    .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The settings as AWS has them.
pub fn reading(roles: &BTreeMap<Vendor, RoleSeen>) -> (VendorsSpec, VendorsOutputs) {
    let access = |v: Vendor| roles.get(&v).and_then(|r| access_of(&r.trust));
    let arn = |v: Vendor| roles.get(&v).map(|r| r.arn.clone());
    (
        VendorsSpec {
            datadog: access(Vendor::Datadog),
            newrelic: access(Vendor::NewRelic),
        },
        VendorsOutputs {
            datadog_role_arn: arn(Vendor::Datadog),
            newrelic_role_arn: arn(Vendor::NewRelic),
        },
    )
}

/// What is wrong with the roles against the stored arguments, in words:
/// policies, tags, and roles of vendors no longer configured.
pub fn problems(
    env: &str,
    region: &str,
    spec: &VendorsSpec,
    roles: &BTreeMap<Vendor, RoleSeen>,
) -> Vec<String> {
    let part = partition(region);
    let mut words = Vec::new();
    for vendor in Vendor::ALL {
        match (spec.get(vendor), roles.get(&vendor)) {
            (Some(access), Some(seen)) => {
                let want = wanted(env, part, vendor, access);
                // The trust policy's account and external id are the
                // settings; only another shape of it is the guard's.
                words.extend(iam_role::problems(seen, &want).into_iter().filter(|p| {
                    !p.starts_with("the trust policy") || access_of(&seen.trust).is_none()
                }));
            }
            (None, Some(_)) => words.push(format!(
                "role {} is there though `{}` is not set",
                vendor.role_name(env),
                vendor.setting()
            )),
            _ => {}
        }
    }
    words
}

/// What is wrong with the roles' tags.
pub fn tag_problems(
    ctx: &Ctx,
    component: &'static str,
    roles: &BTreeMap<Vendor, RoleSeen>,
) -> Vec<String> {
    roles
        .iter()
        .flat_map(|(v, seen)| {
            super::tag_problems(
                &format!("role {}", v.role_name(&ctx.env)),
                &seen.tags,
                &ctx.tags(component),
            )
        })
        .collect()
}

/// Makes the roles of the configured vendors, deletes the others.
pub async fn ensure(
    ctx: &Ctx,
    component: &'static str,
    spec: &VendorsSpec,
    seen: &BTreeMap<Vendor, RoleSeen>,
) -> Result<(), ComponentError> {
    let part = partition(&ctx.region);
    futures_util::future::try_join_all(Vendor::ALL.iter().map(|v| async move {
        match spec.get(*v) {
            Some(access) => {
                iam_role::ensure(
                    ctx,
                    component,
                    seen.get(v),
                    &wanted(&ctx.env, part, *v, access),
                )
                .await
            }
            None if seen.contains_key(v) => {
                iam_role::delete(ctx, component, &v.role_name(&ctx.env)).await
            }
            None => Ok(()),
        }
    }))
    .await?;
    Ok(())
}

/// Deletes both roles (they hold no data).
pub async fn delete(ctx: &Ctx, component: &'static str) -> Result<(), ComponentError> {
    futures_util::future::try_join_all(
        Vendor::ALL
            .iter()
            .map(|v| async move { iam_role::delete(ctx, component, &v.role_name(&ctx.env)).await }),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> VendorAccess {
        VendorAccess {
            external_id: "0123abcd".into(),
            aws_account_id: DATADOG_ACCOUNT.into(),
        }
    }

    #[test]
    fn the_trust_policy_reads_back_as_the_access_it_was_made_from() {
        let doc = trust_policy("aws", &access()).to_string();
        assert_eq!(access_of(&doc), Some(access()));
        // IAM answers URL-encoded documents.
        let encoded = doc
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace(':', "%3A");
        assert_eq!(access_of(&encoded), Some(access()));
    }

    #[test]
    fn a_trust_policy_of_another_shape_is_nobodys() {
        let mut doc = trust_policy("aws", &access());
        doc["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = json!(["a", "b"]);
        assert_eq!(access_of(&doc.to_string()), None);
        let mut two = trust_policy("aws", &access());
        let s = two["Statement"][0].clone();
        two["Statement"].as_array_mut().unwrap().push(s);
        assert_eq!(access_of(&two.to_string()), None);
    }

    #[test]
    fn external_ids_follow_aws_rules() {
        assert!(is_external_id("ab"));
        assert!(is_external_id("a_b+c=d,e.f@g:h/i-j"));
        assert!(!is_external_id("a"));
        assert!(!is_external_id("has space"));
        assert!(!is_external_id(&"x".repeat(1225)));
    }

    #[test]
    fn the_datadog_policy_reads_nothing_it_could_change() {
        for action in DATADOG_ACTIONS {
            let verb = action.split(':').nth(1).unwrap();
            assert!(
                ["Describe", "Get", "List", "Lookup", "Filter", "Test"]
                    .iter()
                    .any(|p| verb.starts_with(p)),
                "{action} is not read-only"
            );
        }
    }
}
