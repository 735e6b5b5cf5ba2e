//! audit_trail: Who touched the data: S3 server access logs of the documents and audit buckets in a log bucket of their own, and a CloudTrail trail of the S3 data events of both buckets and the account's management events (KMS key use among them), delivered to the WORM audit bucket.
//!
//! - The access-log bucket `idis-<env>-access-logs-<account>-<region>`
//!   (the documents bucket's naming: S3 names are global). Server access
//!   logs cannot go to the audit bucket: a destination must not have an
//!   Object Lock default retention period ("Logging requests with server
//!   access logging", S3 User Guide). S3 delivers them as the service
//!   principal `logging.s3.amazonaws.com`, allowed by the bucket policy
//!   per source bucket with `aws:SourceArn` and `aws:SourceAccount`
//!   ("Enabling Amazon S3 server access logging", S3 User Guide: with
//!   Object Ownership `BucketOwnerEnforced` ACL grants to the log delivery
//!   group do not work, the policy is the way). Default encryption is
//!   SSE-S3: the S3 API Reference (`LoggingEnabled`) says a log target
//!   "can't use SSE-KMS or DSSE-KMS default encryption". Public access is
//!   blocked, requests without TLS are refused, and a lifecycle rule
//!   expires logs after `log_expiration_days`.
//! - Server access logging of the documents bucket (under `documents/`)
//!   and of the audit bucket (under `audit/`) into it, read back with
//!   GetBucketLogging.
//! - The trail `idis-<env>-data-events`: single-region, log file
//!   validation on, encrypted with the platform key, delivered to the
//!   audit bucket under `cloudtrail/` (the audit bucket's policy and the
//!   platform key's policy let CloudTrail in for this trail alone:
//!   `storage` and `keys`). Its advanced event selectors log the S3 data
//!   events of objects in both buckets and every management event: KMS
//!   key use (Decrypt, GenerateDataKey) is a management event, and so is
//!   each change that turns this audit off (StopLogging, PutBucketLogging,
//!   PutKeyPolicy), which is who-did-it evidence a KMS-only selector would
//!   drop. The trail is read back (GetTrail, GetTrailStatus,
//!   GetEventSelectors): stopped or changed out of band, it is drift.
//! - Destroy deletes the trail (what it delivered stays in the audit
//!   bucket, which keeps its objects) and the access-log bucket only when
//!   it is empty; one holding logs is kept with a warning, as the CDN's
//!   log bucket (nothing is ever emptied).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, LoggingEnabled, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tagging,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::describe::{Check, Component, Default, Guard, Output, Reading, Setting, Verdicts};
use super::keys::KeysState;
use super::storage::{as_list, denies_insecure_transport, policy_with_tls, public_grants};
use super::{aws_error, partition, ComponentError, Ctx};
use crate::protocol::cty::{Type, Value as CtyValue};
use crate::protocol::diag::{Diagnostic, Diagnostics};

pub const COMPONENT: &str = "audit_trail";

/// The id of the lifecycle rule this component owns in the log bucket.
pub const LIFECYCLE_RULE_ID: &str = "idis-expire-access-logs";

pub const DEFAULT_LOG_DAYS: i64 = 365;

/// Where the trail delivers in the audit bucket (CloudTrail adds
/// `/AWSLogs/<account>/...`).
pub const TRAIL_PREFIX: &str = "cloudtrail";

/// The S3 service principal that delivers server access logs.
const LOGGING_SERVICE: &str = "logging.s3.amazonaws.com";

/// `idis-<env>-access-logs-<account>-<region>`.
pub fn log_bucket(ctx: &Ctx) -> String {
    format!(
        "{}-access-logs-{}-{}",
        ctx.prefix(),
        ctx.account_id,
        ctx.region
    )
}

fn log_bucket_arn(ctx: &Ctx) -> String {
    format!("arn:{}:s3:::{}", partition(&ctx.region), log_bucket(ctx))
}

/// `idis-<env>-data-events`.
pub fn trail_name(ctx: &Ctx) -> String {
    format!("{}-data-events", ctx.prefix())
}

/// The ARN the environment's trail has (or will have): the audit bucket's
/// and the platform key's policies name it.
pub fn trail_arn(ctx: &Ctx) -> String {
    format!(
        "arn:{}:cloudtrail:{}:{}:trail/{}",
        partition(&ctx.region),
        ctx.region,
        ctx.account_id,
        trail_name(ctx)
    )
}

/// The buckets whose access is logged: (label, bucket, log prefix).
fn sources(ctx: &Ctx) -> [(&'static str, String, String); 2] {
    [
        (
            "documents",
            super::documents::bucket_name(ctx),
            "documents/".to_string(),
        ),
        (
            "audit",
            super::storage::bucket_name(ctx),
            "audit/".to_string(),
        ),
    ]
}

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditTrailState {
    pub log_bucket: String,
    pub log_bucket_arn: String,
    /// Days after which the provider's rule expires access logs; None while
    /// the rule is missing, off or narrowed.
    pub log_days: Option<i64>,
    /// The trail's ARN; None while there is no trail.
    pub trail_arn: Option<String>,
    #[serde(skip)]
    pub verdicts: Verdicts,
}

/// The `audit_trail` block once planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditTrailSpec {
    pub log_expiration_days: i64,
}

/// The computed attributes of the audit trail.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditTrailOutputs {
    pub access_log_bucket_name: String,
    pub access_log_bucket_arn: String,
    pub audit_trail_arn: Option<String>,
}

/// The environment's audit trail for its data.
pub struct AuditTrail;

impl Component for AuditTrail {
    const NAME: &'static str = COMPONENT;
    const DOC: &'static str = "The audit trail of the data: S3 server access logs of the documents and audit buckets, kept in the bucket `idis-<name>-access-logs-<account>-<region>` (public access blocked, bucket owner enforced, SSE-S3, TLS-only, logs expired after `log_expiration_days`), and the CloudTrail trail `idis-<name>-data-events` (S3 data events of both buckets and management events, KMS key use among them; log file validation on, encrypted with the platform key) delivering to the audit bucket under `cloudtrail/`. On destroy the trail is deleted and the log bucket only when empty.";
    const AFTER: &'static [&'static str] = &[
        super::keys::COMPONENT,
        super::storage::COMPONENT,
        super::documents::COMPONENT,
    ];
    type Spec = AuditTrailSpec;
    type State = AuditTrailState;
    type Outputs = AuditTrailOutputs;

    async fn find(ctx: &Ctx) -> Result<Option<AuditTrailState>, ComponentError> {
        let (seen, platform) = tokio::join!(read(ctx), super::platform_key(ctx, COMPONENT));
        let Some(mut seen) = seen? else {
            return Ok(None);
        };
        seen.platform_key = platform?;
        Ok(Some(state(ctx, &seen)))
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &AuditTrailSpec,
        built: &super::Observed,
    ) -> Result<AuditTrailState, ComponentError> {
        let keys = built.need::<super::keys::TenantKeys>(COMPONENT)?;
        built.need::<super::storage::AuditBucket>(COMPONENT)?;
        built.need::<super::documents::DocumentsBucket>(COMPONENT)?;
        Box::pin(ensure(ctx, spec, keys)).await
    }

    async fn delete(ctx: &Ctx, _spec: &AuditTrailSpec) -> Result<Vec<String>, ComponentError> {
        delete(ctx).await
    }

    fn settings() -> Vec<Setting> {
        vec![Setting::new(
            "log_expiration_days",
            Type::Number,
            Default::Int(DEFAULT_LOG_DAYS),
            format!("Days the S3 server access logs are kept in the access-log bucket before its lifecycle rule expires them, 1 to 36500. Default `{DEFAULT_LOG_DAYS}`."),
        )
        .check(Check::Range(1, 36500))]
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new(
                "access_log_bucket_name",
                Type::String,
                "Name of the bucket holding the S3 server access logs of the documents and audit buckets.",
            ),
            Output::new(
                "access_log_bucket_arn",
                Type::String,
                "ARN of the access-log bucket.",
            ),
            Output::new(
                "audit_trail_arn",
                Type::String,
                "ARN of the CloudTrail trail of the data events (`idis-<name>-data-events`).",
            ),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn on_destroy(prior: &CtyValue) -> Diagnostics {
        match prior.get_attr("access_log_bucket_name").as_str() {
            Some(bucket) => Diagnostic::warning(
                "Access logs are kept",
                format!("audit_trail: the trail is deleted; what it delivered stays in the audit bucket, and the access-log bucket {bucket} is deleted only if it is empty, else kept with its logs."),
            )
            .into(),
            None => Diagnostics::new(),
        }
    }

    fn read(
        state: &AuditTrailState,
        stored: &AuditTrailSpec,
        _prior: &CtyValue,
    ) -> Reading<AuditTrailSpec, AuditTrailOutputs> {
        Reading {
            settings: AuditTrailSpec {
                log_expiration_days: state.log_days.unwrap_or(stored.log_expiration_days),
            },
            outputs: AuditTrailOutputs {
                access_log_bucket_name: state.log_bucket.clone(),
                access_log_bucket_arn: state.log_bucket_arn.clone(),
                audit_trail_arn: state.trail_arn.clone(),
            },
            verdicts: state.verdicts.clone(),
        }
    }
}

const PUBLIC_ACCESS_BLOCK: usize = 0;
const OWNERSHIP: usize = 1;
const ENCRYPTION: usize = 2;
const POLICY: usize = 3;
const LIFECYCLE: usize = 4;
const TAGS: usize = 5;
const ACCESS_LOGGING: usize = 6;
const TRAIL: usize = 7;
const TRAIL_LOGGING: usize = 8;
const EVENT_SELECTORS: usize = 9;

/// What the provider makes without a knob.
const GUARDS: &[Guard] = &[
    Guard::new(
        "log_bucket_public_access_block",
        "all public access blocked",
        "The access-log bucket's public access block has all four settings on.",
    ),
    Guard::new(
        "log_bucket_ownership",
        "bucket owner enforced",
        "The access-log bucket's Object Ownership is `BucketOwnerEnforced`: ACLs are off, the bucket policy alone decides.",
    ),
    Guard::new(
        "log_bucket_encryption",
        "SSE-S3",
        "The access-log bucket's default encryption is SSE-S3 (AES256): S3 does not deliver server access logs to an SSE-KMS bucket.",
    ),
    Guard::new(
        "log_bucket_policy",
        "log delivery allowed, TLS required, nothing public",
        "The access-log bucket's policy lets `logging.s3.amazonaws.com` put objects under `documents/` and `audit/`, each only for its source bucket (`aws:SourceArn`) and this account (`aws:SourceAccount`); it denies every request made without TLS and lets no one else in. Other statements are kept.",
    ),
    Guard::new(
        "log_bucket_lifecycle",
        "access logs expire",
        "The lifecycle rule `idis-expire-access-logs` (whole bucket, enabled) expires access logs after `log_expiration_days`. Rules of others are kept.",
    ),
    Guard::new(
        "log_bucket_tags",
        "ownership and user tags present",
        "The access-log bucket carries `tags`, the provider's `default_tags` and the ownership tags.",
    ),
    Guard::new(
        "access_logging",
        "documents and audit buckets log to the access-log bucket",
        "S3 server access logging of the documents bucket (prefix `documents/`) and the audit bucket (prefix `audit/`) goes to the access-log bucket.",
    ),
    Guard::new(
        "trail",
        "delivers to the audit bucket, encrypted, validated",
        "The trail `idis-<name>-data-events` exists, delivers to the audit bucket under `cloudtrail/`, is encrypted with the platform key, has log file validation on and is single-region.",
    )
    .affects(&["audit_trail_arn"]),
    Guard::new(
        "trail_logging",
        "logging",
        "The trail is logging (GetTrailStatus `IsLogging`).",
    ),
    Guard::new(
        "event_selectors",
        "S3 data events of both buckets and management events",
        "The trail's advanced event selectors: S3 data events of objects in the documents and audit buckets (`resources.ARN` starts with each bucket's ARN and `/`), and all management events (which include KMS key use).",
    ),
];

fn conflict(message: impl Into<String>) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: message.into(),
    }
}

// ---------------------------------------------------------------- policy

/// The statement that lets S3 deliver the access logs of `source` under
/// `prefix` (S3 User Guide, "Enabling Amazon S3 server access logging":
/// `logging.s3.amazonaws.com`, `s3:PutObject`, `aws:SourceArn` and
/// `aws:SourceAccount`).
fn delivery_statement(ctx: &Ctx, label: &str, source: &str, prefix: &str) -> Value {
    json!({
        "Sid": format!("S3ServerAccessLogs-{label}"),
        "Effect": "Allow",
        "Principal": { "Service": LOGGING_SERVICE },
        "Action": "s3:PutObject",
        "Resource": format!("{}/{prefix}*", log_bucket_arn(ctx)),
        "Condition": {
            "ArnLike": { "aws:SourceArn": format!("arn:{}:s3:::{source}", partition(&ctx.region)) },
            "StringEquals": { "aws:SourceAccount": ctx.account_id },
        },
    })
}

fn delivery_statements(ctx: &Ctx) -> Vec<Value> {
    sources(ctx)
        .iter()
        .map(|(label, bucket, prefix)| delivery_statement(ctx, label, bucket, prefix))
        .collect()
}

/// `existing` with `ours` put first (replacing statements of the same
/// Sids), other statements kept after them.
pub(super) fn with_statements(existing: Option<&str>, ours: &[Value]) -> String {
    let sids: Vec<&Value> = ours.iter().map(|s| &s["Sid"]).collect();
    let mut statements = ours.to_vec();
    if let Some(doc) = existing.and_then(|p| serde_json::from_str::<Value>(p).ok()) {
        statements.extend(
            as_list(&doc["Statement"])
                .into_iter()
                .filter(|s| !sids.contains(&&s["Sid"])),
        );
    }
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// True when `policy` holds every statement of `ours` as it is.
pub(super) fn holds_statements(policy: &str, ours: &[Value]) -> bool {
    let statements = serde_json::from_str::<Value>(policy)
        .map(|doc| as_list(&doc["Statement"]))
        .unwrap_or_default();
    ours.iter().all(|s| statements.contains(s))
}

/// The statements of the audit bucket's policy that let CloudTrail deliver
/// this environment's trail, and it alone, under `cloudtrail/`
/// (CloudTrail User Guide, "Amazon S3 bucket policy for CloudTrail":
/// `s3:GetBucketAcl` on the bucket and `s3:PutObject` on
/// `<prefix>/AWSLogs/<account>/*` with `s3:x-amz-acl`
/// `bucket-owner-full-control`, each with `aws:SourceArn` the trail).
pub fn cloudtrail_statements(ctx: &Ctx, audit_bucket_arn: &str) -> Vec<Value> {
    let trail = trail_arn(ctx);
    vec![
        json!({
            "Sid": "AWSCloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": { "Service": "cloudtrail.amazonaws.com" },
            "Action": "s3:GetBucketAcl",
            "Resource": audit_bucket_arn,
            "Condition": { "StringEquals": { "aws:SourceArn": trail } },
        }),
        json!({
            "Sid": "AWSCloudTrailWrite",
            "Effect": "Allow",
            "Principal": { "Service": "cloudtrail.amazonaws.com" },
            "Action": "s3:PutObject",
            "Resource": format!("{audit_bucket_arn}/{TRAIL_PREFIX}/AWSLogs/{}/*", ctx.account_id),
            "Condition": { "StringEquals": {
                "s3:x-amz-acl": "bucket-owner-full-control",
                "aws:SourceArn": trail,
            } },
        }),
    ]
}

/// The log bucket's policy: the delivery statements first (S3 checks
/// them in order), other statements kept, then the TLS statement.
fn wanted_policy(ctx: &Ctx, existing: Option<&str>) -> String {
    let merged = with_statements(existing, &delivery_statements(ctx));
    policy_with_tls(Some(&merged), &log_bucket_arn(ctx))
}

/// What is wrong with the log bucket's policy.
fn policy_problems(ctx: &Ctx, policy: Option<&str>) -> Vec<String> {
    let Some(policy) = policy else {
        return vec!["no bucket policy".to_string()];
    };
    let mut problems = Vec::new();
    let statements = serde_json::from_str::<Value>(policy)
        .map(|doc| as_list(&doc["Statement"]))
        .unwrap_or_default();
    for (want, (label, _, prefix)) in delivery_statements(ctx).iter().zip(sources(ctx)) {
        if !statements.contains(want) {
            problems.push(format!(
                "S3 may not deliver the {label} bucket's access logs under {prefix}"
            ));
        }
    }
    if !denies_insecure_transport(policy, &log_bucket_arn(ctx)) {
        problems.push("no statement denies requests made without TLS".to_string());
    }
    problems.extend(public_grants(policy));
    problems
}

// ---------------------------------------------------------------- selectors

fn field(name: &str, equals: &[&str], starts_with: &[String]) -> AdvancedFieldSelector {
    let mut f = AdvancedFieldSelector::builder().field(name);
    for e in equals {
        f = f.equals(*e);
    }
    for s in starts_with {
        f = f.starts_with(s);
    }
    // `field` is the one required member, always set above.
    f.build().unwrap_or_else(|_| unreachable!("field is set"))
}

/// The trail's advanced event selectors.
fn wanted_selectors(ctx: &Ctx) -> Vec<AdvancedEventSelector> {
    let buckets: Vec<String> = sources(ctx)
        .iter()
        .map(|(_, bucket, _)| format!("arn:{}:s3:::{bucket}/", partition(&ctx.region)))
        .collect();
    let data = AdvancedEventSelector::builder()
        .name("S3 data events of the documents and audit buckets")
        .field_selectors(field("eventCategory", &["Data"], &[]))
        .field_selectors(field("resources.type", &["AWS::S3::Object"], &[]))
        .field_selectors(field("resources.ARN", &[], &buckets));
    let management = AdvancedEventSelector::builder()
        .name("Management events, KMS key use among them")
        .field_selectors(field("eventCategory", &["Management"], &[]));
    [data, management]
        .into_iter()
        .map(|s| {
            s.build()
                .unwrap_or_else(|_| unreachable!("field selectors are set"))
        })
        .collect()
}

/// Selectors in a form that compares by meaning: names and the order of
/// selectors, fields and values do not count.
fn selector_meaning(selectors: &[AdvancedEventSelector]) -> BTreeSet<Vec<String>> {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v.join(",")
    };
    selectors
        .iter()
        .map(|s| {
            let mut fields: Vec<String> = s
                .field_selectors()
                .iter()
                .map(|f| {
                    format!(
                        "{} equals [{}] starts [{}] ends [{}] not [{}] notstarts [{}] notends [{}]",
                        f.field(),
                        sorted(f.equals()),
                        sorted(f.starts_with()),
                        sorted(f.ends_with()),
                        sorted(f.not_equals()),
                        sorted(f.not_starts_with()),
                        sorted(f.not_ends_with()),
                    )
                })
                .collect();
            fields.sort();
            fields
        })
        .collect()
}

// ---------------------------------------------------------------- reading

/// The trail as CloudTrail describes it.
#[derive(Debug, Default)]
struct TrailSeen {
    arn: String,
    bucket: String,
    prefix: Option<String>,
    kms_key: Option<String>,
    validation: bool,
    multi_region: bool,
    logging: bool,
    selectors: Vec<AdvancedEventSelector>,
    /// Basic event selectors in use instead of advanced ones.
    basic_selectors: bool,
}

/// Everything this component reads.
#[derive(Debug, Default)]
struct Seen {
    public_access_block: Option<[(&'static str, bool); 4]>,
    ownership: Option<String>,
    sse_algorithm: Option<String>,
    policy: Option<String>,
    rules: Vec<LifecycleRule>,
    tags: BTreeMap<String, String>,
    /// Per source label: (target bucket, prefix), None when not logging.
    logging: Vec<(&'static str, Option<(String, String)>)>,
    trail: Option<TrailSeen>,
    platform_key: Option<(String, String)>,
}

impl Seen {
    fn log_days(&self) -> Option<i64> {
        self.rules
            .iter()
            .find(|r| r.id() == Some(LIFECYCLE_RULE_ID))
            .filter(|r| {
                r.status() == &ExpirationStatus::Enabled
                    && r.filter().is_none_or(|f| {
                        f.prefix().unwrap_or_default().is_empty()
                            && f.and().is_none()
                            && f.tag().is_none()
                    })
            })
            .and_then(|r| r.expiration())
            .and_then(|e| e.days())
            .map(i64::from)
    }
}

fn s3_absent<E: ProvideErrorMetadata>(e: &E, codes: &[&str]) -> bool {
    e.code().is_some_and(|c| codes.contains(&c))
}

/// Reads the log bucket, the sources' logging and the trail. None when
/// the log bucket does not exist.
async fn read(ctx: &Ctx) -> Result<Option<Seen>, ComponentError> {
    let bucket = log_bucket(ctx);
    let s3 = ctx.aws.s3();
    let what = |w: &str| format!("read the {w} of the access-log bucket {bucket}");
    let (pab, ownership, encryption, policy, lifecycle, tags) = tokio::join!(
        s3.get_public_access_block().bucket(&bucket).send(),
        s3.get_bucket_ownership_controls().bucket(&bucket).send(),
        s3.get_bucket_encryption().bucket(&bucket).send(),
        s3.get_bucket_policy().bucket(&bucket).send(),
        s3.get_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .send(),
        s3.get_bucket_tagging().bucket(&bucket).send(),
    );
    macro_rules! settle {
        ($r:expr, $absent:expr, $what:expr) => {
            match $r {
                Ok(v) => Some(v),
                Err(e) if e.code() == Some("NoSuchBucket") => return Ok(None),
                Err(e) if s3_absent(&e, $absent) => None,
                Err(e) => return Err(aws_error(COMPONENT, what($what), e)),
            }
        };
    }
    let pab = settle!(
        pab,
        &["NoSuchPublicAccessBlockConfiguration"],
        "public access block"
    );
    let ownership = settle!(
        ownership,
        &["OwnershipControlsNotFoundError"],
        "ownership controls"
    );
    let encryption = settle!(
        encryption,
        &["ServerSideEncryptionConfigurationNotFoundError"],
        "default encryption"
    );
    let policy = settle!(policy, &["NoSuchBucketPolicy"], "bucket policy");
    let lifecycle = settle!(
        lifecycle,
        &["NoSuchLifecycleConfiguration"],
        "lifecycle rules"
    );
    let tags = settle!(tags, &["NoSuchTagSet"], "tags");

    let mut seen = Seen {
        public_access_block: pab
            .and_then(|p| p.public_access_block_configuration)
            .map(|c| {
                [
                    ("BlockPublicAcls", c.block_public_acls() == Some(true)),
                    ("IgnorePublicAcls", c.ignore_public_acls() == Some(true)),
                    ("BlockPublicPolicy", c.block_public_policy() == Some(true)),
                    (
                        "RestrictPublicBuckets",
                        c.restrict_public_buckets() == Some(true),
                    ),
                ]
            }),
        ownership: ownership
            .and_then(|o| o.ownership_controls)
            .and_then(|c| c.rules.into_iter().next())
            .map(|r| r.object_ownership().as_str().to_string()),
        sse_algorithm: encryption
            .and_then(|e| e.server_side_encryption_configuration)
            .and_then(|c| c.rules.into_iter().next())
            .and_then(|r| r.apply_server_side_encryption_by_default)
            .map(|d| d.sse_algorithm().as_str().to_string()),
        policy: policy.and_then(|p| p.policy),
        rules: lifecycle.and_then(|l| l.rules).unwrap_or_default(),
        tags: tags
            .map(|t| {
                t.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        ..Seen::default()
    };
    for (label, source, _) in sources(ctx) {
        let target = match s3.get_bucket_logging().bucket(&source).send().await {
            Ok(out) => out
                .logging_enabled()
                .map(|l| (l.target_bucket().to_string(), l.target_prefix().to_string())),
            Err(e) if e.code() == Some("NoSuchBucket") => None,
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("read the access logging of the {label} bucket {source}"),
                    e,
                ))
            }
        };
        seen.logging.push((label, target));
    }
    seen.trail = read_trail(ctx).await?;
    Ok(Some(seen))
}

async fn read_trail(ctx: &Ctx) -> Result<Option<TrailSeen>, ComponentError> {
    let ct = ctx.aws.cloudtrail();
    let name = trail_name(ctx);
    let trail = match ct.get_trail().name(&name).send().await {
        Ok(out) => match out.trail {
            Some(t) => t,
            None => return Ok(None),
        },
        Err(e) if e.code() == Some("TrailNotFoundException") => return Ok(None),
        Err(e) => return Err(aws_error(COMPONENT, format!("read the trail {name}"), e)),
    };
    let (status, selectors) = tokio::join!(
        ct.get_trail_status().name(&name).send(),
        ct.get_event_selectors().trail_name(&name).send(),
    );
    let status = status
        .map_err(|e| aws_error(COMPONENT, format!("read the status of the trail {name}"), e))?;
    let selectors = selectors.map_err(|e| {
        aws_error(
            COMPONENT,
            format!("read the event selectors of the trail {name}"),
            e,
        )
    })?;
    Ok(Some(TrailSeen {
        arn: trail.trail_arn().unwrap_or_default().to_string(),
        bucket: trail.s3_bucket_name().unwrap_or_default().to_string(),
        prefix: trail.s3_key_prefix().map(str::to_string),
        kms_key: trail.kms_key_id().map(str::to_string),
        validation: trail.log_file_validation_enabled() == Some(true),
        multi_region: trail.is_multi_region_trail() == Some(true),
        logging: status.is_logging() == Some(true),
        basic_selectors: !selectors.event_selectors().is_empty(),
        selectors: selectors.advanced_event_selectors().to_vec(),
    }))
}

/// What is wrong with the trail's settings (not its logging or selectors).
fn trail_problems(
    ctx: &Ctx,
    trail: &TrailSeen,
    platform: Option<&(String, String)>,
) -> Vec<String> {
    let mut p = Vec::new();
    let audit = super::storage::bucket_name(ctx);
    if trail.bucket != audit {
        p.push(format!(
            "delivers to {}, not the audit bucket {audit}",
            trail.bucket
        ));
    }
    if trail.prefix.as_deref() != Some(TRAIL_PREFIX) {
        p.push(format!(
            "delivers under {:?}, not {TRAIL_PREFIX}/",
            trail.prefix.as_deref().unwrap_or("")
        ));
    }
    let key = trail.kms_key.as_deref().unwrap_or_default();
    let platform_ok = platform.is_some_and(|(id, arn)| key == id || key == arn);
    if trail.kms_key.is_none() {
        p.push("not encrypted with a KMS key".to_string());
    } else if !platform_ok {
        p.push(format!("encrypted with {key}, not the platform key"));
    }
    if !trail.validation {
        p.push("log file validation is off".to_string());
    }
    if trail.multi_region {
        p.push("multi-region".to_string());
    }
    p
}

fn verdicts(ctx: &Ctx, seen: &Seen) -> Verdicts {
    let mut v = Verdicts::new();
    v.judge(
        &GUARDS[PUBLIC_ACCESS_BLOCK],
        match seen.public_access_block {
            None => vec!["removed".to_string()],
            Some(flags) => flags
                .iter()
                .filter(|(_, on)| !on)
                .map(|(name, _)| format!("{name} off"))
                .collect(),
        },
    );
    v.judge(
        &GUARDS[OWNERSHIP],
        match seen.ownership.as_deref() {
            Some("BucketOwnerEnforced") => None,
            Some(other) => Some(format!("object ownership is {other}")),
            None => Some("no object ownership controls".to_string()),
        },
    );
    v.judge(
        &GUARDS[ENCRYPTION],
        match seen.sse_algorithm.as_deref() {
            Some("AES256") => None,
            Some(other) => Some(format!("default encryption is {other}, not SSE-S3")),
            None => Some("no default encryption".to_string()),
        },
    );
    v.judge(
        &GUARDS[POLICY],
        policy_problems(ctx, seen.policy.as_deref()),
    );
    v.judge(
        &GUARDS[LIFECYCLE],
        seen.log_days()
            .is_none()
            .then(|| format!("the lifecycle rule {LIFECYCLE_RULE_ID} is missing, off or narrowed: access logs are kept forever")),
    );
    v.judge(
        &GUARDS[TAGS],
        super::tag_problems(
            &format!("bucket {}", log_bucket(ctx)),
            &seen.tags,
            &ctx.tags(COMPONENT),
        ),
    );
    let target = log_bucket(ctx);
    v.judge(
        &GUARDS[ACCESS_LOGGING],
        sources(ctx).iter().filter_map(|(label, source, prefix)| {
            match seen
                .logging
                .iter()
                .find(|(l, _)| l == label)
                .and_then(|(_, t)| t.as_ref())
            {
                None => Some(format!(
                    "access logging of the {label} bucket {source} is off"
                )),
                Some((b, p)) if *b == target && p == prefix => None,
                Some((b, p)) => Some(format!(
                    "the {label} bucket logs to {b} under {p:?}, not {target} under {prefix:?}"
                )),
            }
        }),
    );
    match &seen.trail {
        None => {
            let missing = format!("the trail {} is missing", trail_name(ctx));
            v.problem(&GUARDS[TRAIL], missing.clone());
            v.problem(&GUARDS[TRAIL_LOGGING], missing.clone());
            v.problem(&GUARDS[EVENT_SELECTORS], missing);
        }
        Some(trail) => {
            v.judge(
                &GUARDS[TRAIL],
                trail_problems(ctx, trail, seen.platform_key.as_ref()),
            );
            v.judge(
                &GUARDS[TRAIL_LOGGING],
                (!trail.logging).then(|| format!("the trail {} is not logging", trail_name(ctx))),
            );
            let same = !trail.basic_selectors
                && selector_meaning(&trail.selectors) == selector_meaning(&wanted_selectors(ctx));
            v.judge(
                &GUARDS[EVENT_SELECTORS],
                (!same).then(|| {
                    format!(
                        "the trail {} selects other events than the S3 data events of both buckets and the management events",
                        trail_name(ctx)
                    )
                }),
            );
        }
    }
    v
}

fn state(ctx: &Ctx, seen: &Seen) -> AuditTrailState {
    AuditTrailState {
        log_bucket: log_bucket(ctx),
        log_bucket_arn: log_bucket_arn(ctx),
        log_days: seen.log_days(),
        trail_arn: seen.trail.as_ref().map(|t| t.arn.clone()),
        verdicts: verdicts(ctx, seen),
    }
}

// ---------------------------------------------------------------- ensure

pub async fn ensure(
    ctx: &Ctx,
    spec: &AuditTrailSpec,
    keys: &KeysState,
) -> Result<AuditTrailState, ComponentError> {
    let bucket = log_bucket(ctx);
    if bucket.len() > 63 {
        return Err(conflict(format!(
            "the access-log bucket name {bucket} is longer than S3's 63 characters; use a shorter environment name"
        )));
    }
    let days = i32::try_from(spec.log_expiration_days)
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| {
            conflict(format!(
                "log_expiration_days = {} is not a positive number of days",
                spec.log_expiration_days
            ))
        })?;
    let mut seen = match read(ctx).await? {
        Some(seen) => seen,
        None => create_bucket(ctx, &bucket).await?,
    };
    seen.platform_key = Some((keys.platform_key_id.clone(), keys.platform_key_arn.clone()));
    let v = verdicts(ctx, &seen);
    let broken = |i: usize| !v.problems(GUARDS[i].key).unwrap_or_default().is_empty();
    let s3 = ctx.aws.s3();
    let what = |w: &str| format!("{w} of the access-log bucket {bucket}");

    let public_access = async {
        if !broken(PUBLIC_ACCESS_BLOCK) {
            return Ok(());
        }
        s3.put_public_access_block()
            .bucket(&bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, what("block public access"), e))?;
        Ok::<(), ComponentError>(())
    };
    let ownership = async {
        if !broken(OWNERSHIP) {
            return Ok(());
        }
        let rule = OwnershipControlsRule::builder()
            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
            .build()
            .map_err(|e| conflict(format!("could not build the ownership controls: {e}")))?;
        let controls = OwnershipControls::builder()
            .rules(rule)
            .build()
            .map_err(|e| conflict(format!("could not build the ownership controls: {e}")))?;
        s3.put_bucket_ownership_controls()
            .bucket(&bucket)
            .ownership_controls(controls)
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, what("enforce bucket ownership"), e))?;
        Ok::<(), ComponentError>(())
    };
    let encryption = async {
        if !broken(ENCRYPTION) {
            return Ok(());
        }
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::Aes256)
            .build()
            .map_err(|e| conflict(format!("could not build the encryption request: {e}")))?;
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .build(),
            )
            .build()
            .map_err(|e| conflict(format!("could not build the encryption request: {e}")))?;
        s3.put_bucket_encryption()
            .bucket(&bucket)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, what("set SSE-S3 default encryption"), e))?;
        Ok::<(), ComponentError>(())
    };
    let policy = async {
        if !broken(POLICY) {
            return Ok(());
        }
        s3.put_bucket_policy()
            .bucket(&bucket)
            .policy(wanted_policy(ctx, seen.policy.as_deref()))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    what("set the log delivery and TLS-only policy"),
                    e,
                )
            })?;
        Ok::<(), ComponentError>(())
    };
    let lifecycle = async {
        if seen.log_days() == Some(i64::from(days)) {
            return Ok(());
        }
        // PutBucketLifecycleConfiguration replaces every rule: keep the
        // rules of others, put ours in.
        let mut rules: Vec<LifecycleRule> = seen
            .rules
            .iter()
            .filter(|r| r.id() != Some(LIFECYCLE_RULE_ID))
            .cloned()
            .collect();
        rules.push(
            LifecycleRule::builder()
                .id(LIFECYCLE_RULE_ID)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("").build())
                .expiration(LifecycleExpiration::builder().days(days).build())
                .build()
                .map_err(|e| conflict(format!("could not build the lifecycle rule: {e}")))?,
        );
        let config = BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| conflict(format!("could not build the lifecycle rules: {e}")))?;
        s3.put_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    what(&format!(
                        "expire access logs after {days} days (rule {LIFECYCLE_RULE_ID}) on"
                    )),
                    e,
                )
            })?;
        Ok::<(), ComponentError>(())
    };
    let tags = async {
        if !broken(TAGS) {
            return Ok(());
        }
        // PutBucketTagging replaces the whole set: keep tags others added.
        let mut all = seen.tags.clone();
        all.extend(ctx.tags(COMPONENT));
        let mut tagging = Tagging::builder();
        for (k, v) in &all {
            tagging = tagging.tag_set(
                aws_sdk_s3::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| conflict(format!("invalid tag {k:?}: {e}")))?,
            );
        }
        let tagging = tagging
            .build()
            .map_err(|e| conflict(format!("could not build the tagging request: {e}")))?;
        s3.put_bucket_tagging()
            .bucket(&bucket)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, what("tag"), e))?;
        Ok::<(), ComponentError>(())
    };
    tokio::try_join!(
        public_access,
        ownership,
        encryption,
        policy,
        lifecycle,
        tags
    )?;

    // The sources log into it once its policy lets S3 deliver.
    if broken(ACCESS_LOGGING) {
        for (label, source, prefix) in sources(ctx) {
            let enabled = LoggingEnabled::builder()
                .target_bucket(&bucket)
                .target_prefix(&prefix)
                .build()
                .map_err(|e| conflict(format!("could not build the logging request: {e}")))?;
            s3.put_bucket_logging()
                .bucket(&source)
                .bucket_logging_status(
                    BucketLoggingStatus::builder()
                        .logging_enabled(enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!(
                            "turn on access logging of the {label} bucket {source} into {bucket}"
                        ),
                        e,
                    )
                })?;
        }
    }

    ensure_trail(ctx, &seen, keys).await?;
    let mut seen = read(ctx).await?.ok_or_else(|| {
        conflict(format!(
            "the access-log bucket {bucket} disappeared while it was configured"
        ))
    })?;
    seen.platform_key = Some((keys.platform_key_id.clone(), keys.platform_key_arn.clone()));
    Ok(state(ctx, &seen))
}

/// Creates or repairs the trail, its selectors and its logging.
async fn ensure_trail(ctx: &Ctx, seen: &Seen, keys: &KeysState) -> Result<(), ComponentError> {
    let ct = ctx.aws.cloudtrail();
    let name = trail_name(ctx);
    let audit = super::storage::bucket_name(ctx);
    let platform = (keys.platform_key_id.clone(), keys.platform_key_arn.clone());
    match &seen.trail {
        None => {
            let create = ct
                .create_trail()
                .name(&name)
                .s3_bucket_name(&audit)
                .s3_key_prefix(TRAIL_PREFIX)
                .kms_key_id(&keys.platform_key_arn)
                .enable_log_file_validation(true)
                .is_multi_region_trail(false)
                .include_global_service_events(true);
            match create.send().await {
                Ok(_) => {}
                // A create whose answer was lost: the trail is ours by name.
                Err(e) if e.code() == Some("TrailAlreadyExistsException") => {
                    update_trail(ctx, &name, &audit, keys).await?;
                }
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!("create the trail {name} delivering to {audit}/{TRAIL_PREFIX}/"),
                        e,
                    ))
                }
            }
        }
        Some(trail) if !trail_problems(ctx, trail, Some(&platform)).is_empty() => {
            update_trail(ctx, &name, &audit, keys).await?;
        }
        Some(_) => {}
    }
    if seen.trail.is_none() {
        // Tagged once made (AddTags; tags given to CreateTrail need the same
        // permission). Tags are not read back: see the README.
        let mut tags = Vec::new();
        for (k, v) in ctx.tags(COMPONENT) {
            tags.push(
                aws_sdk_cloudtrail::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| conflict(format!("invalid tag: {e}")))?,
            );
        }
        ct.add_tags()
            .resource_id(trail_arn(ctx))
            .set_tags_list(Some(tags))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("tag the trail {name}"), e))?;
    }
    let selectors_ok = seen.trail.as_ref().is_some_and(|t| {
        !t.basic_selectors
            && selector_meaning(&t.selectors) == selector_meaning(&wanted_selectors(ctx))
    });
    if !selectors_ok {
        ct.put_event_selectors()
            .trail_name(&name)
            .set_advanced_event_selectors(Some(wanted_selectors(ctx)))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("set the event selectors of the trail {name}"),
                    e,
                )
            })?;
    }
    if !seen.trail.as_ref().is_some_and(|t| t.logging) {
        ct.start_logging()
            .name(&name)
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("start logging of the trail {name}"), e))?;
    }
    Ok(())
}

async fn update_trail(
    ctx: &Ctx,
    name: &str,
    audit: &str,
    keys: &KeysState,
) -> Result<(), ComponentError> {
    ctx.aws
        .cloudtrail()
        .update_trail()
        .name(name)
        .s3_bucket_name(audit)
        .s3_key_prefix(TRAIL_PREFIX)
        .kms_key_id(&keys.platform_key_arn)
        .enable_log_file_validation(true)
        .is_multi_region_trail(false)
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("repair the trail {name}"), e))?;
    Ok(())
}

/// Creates the log bucket with ACLs off and waits until S3 answers for it.
async fn create_bucket(ctx: &Ctx, bucket: &str) -> Result<Seen, ComponentError> {
    let mut create = ctx
        .aws
        .s3()
        .create_bucket()
        .bucket(bucket)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced);
    if ctx.region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(ctx.region.as_str()))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {}
        Err(e) if e.code() == Some("BucketAlreadyExists") => {
            return Err(conflict(format!(
                "the bucket name {bucket} is taken by another AWS account; S3 names are global, so this environment cannot have its access-log bucket"
            )))
        }
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("create the access-log bucket {bucket}"),
                e,
            ))
        }
    }
    ctx.wait_for(
        COMPONENT,
        &format!("the access-log bucket {bucket} to exist"),
        || read(ctx),
    )
    .await
}

// ---------------------------------------------------------------- delete

/// Deletes the trail (its logs stay in the audit bucket), turns the
/// sources' access logging off, and deletes the log bucket when it is
/// empty; one holding logs is kept, with a warning.
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    let name = trail_name(ctx);
    match ctx.aws.cloudtrail().delete_trail().name(&name).send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("TrailNotFoundException") => {}
        Err(e) => return Err(aws_error(COMPONENT, format!("delete the trail {name}"), e)),
    }
    let bucket = log_bucket(ctx);
    let s3 = ctx.aws.s3();
    // Kept buckets (documents, audit) must not go on logging into a bucket
    // that is about to go.
    for (label, source, _) in sources(ctx) {
        match s3
            .put_bucket_logging()
            .bucket(&source)
            .bucket_logging_status(BucketLoggingStatus::builder().build())
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("NoSuchBucket") => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("turn off access logging of the {label} bucket {source}"),
                    e,
                ))
            }
        }
    }
    let listed = match s3
        .list_object_versions()
        .bucket(&bucket)
        .max_keys(1)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(Vec::new()),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("list the access-log bucket {bucket}"),
                e,
            ))
        }
    };
    if !listed.versions().is_empty() || !listed.delete_markers().is_empty() {
        return Ok(vec![format!(
            "audit_trail: the access-log bucket {bucket} holds access logs and was kept; empty and delete it yourself when they are no longer needed"
        )]);
    }
    match s3.delete_bucket().bucket(&bucket).send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("NoSuchBucket") => {}
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("delete the access-log bucket {bucket}"),
                e,
            ))
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(name: &str, fields: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
        AdvancedEventSelector::builder()
            .name(name)
            .set_field_selectors(Some(fields))
            .build()
            .unwrap()
    }

    #[test]
    fn selectors_compare_by_meaning_not_by_name_or_order() {
        let a = vec![
            selector(
                "one",
                vec![
                    field("eventCategory", &["Data"], &[]),
                    field("resources.ARN", &[], &["b/".into(), "a/".into()]),
                ],
            ),
            selector("two", vec![field("eventCategory", &["Management"], &[])]),
        ];
        let b = vec![
            selector("mgmt", vec![field("eventCategory", &["Management"], &[])]),
            selector(
                "data",
                vec![
                    field("resources.ARN", &[], &["a/".into(), "b/".into()]),
                    field("eventCategory", &["Data"], &[]),
                ],
            ),
        ];
        assert_eq!(selector_meaning(&a), selector_meaning(&b));
        // One bucket fewer is another meaning.
        let c = vec![
            selector("mgmt", vec![field("eventCategory", &["Management"], &[])]),
            selector(
                "data",
                vec![
                    field("resources.ARN", &[], &["a/".into()]),
                    field("eventCategory", &["Data"], &[]),
                ],
            ),
        ];
        assert_ne!(selector_meaning(&a), selector_meaning(&c));
    }
}
