//! audit_storage: The audit bucket: created with Object Lock, versioning, default retention, SSE-KMS with a bucket key, public access blocked, TLS-only policy; kept on destroy by default.
//!
//! The bucket is `idis-<env>-audit-<account>-<region>`: the account and
//! region make the globally unique name deterministic, so a re-run adopts
//! the bucket a killed apply created.
//!
//! Audit records are never deleted by the provider: `delete` keeps the
//! bucket when `retain_on_destroy` is set, and otherwise deletes it only
//! when it holds no object versions at all. Versioning is never suspended
//! on a bucket with Object Lock (S3 refuses it too), and Object Lock, once
//! on, cannot be turned off.

use std::collections::BTreeMap;

use aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningError;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, DefaultRetention,
    ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tagging, VersioningConfiguration,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::describe::{
    Check, Component, Default, Guard, Output, Problem, Reading, Setting, Verdicts, When,
};
use super::keys::KeysState;
use super::{aws_error, partition, user_visible_tags, ComponentError, Ctx};
use crate::protocol::cty::{Path, Type, Value as CtyValue};
use crate::protocol::diag::{Diagnostic, Diagnostics};

pub const COMPONENT: &str = "audit_storage";

/// `Sid` of the statement this component owns in the bucket policy.
const TLS_SID: &str = "DenyInsecureTransport";

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditStorageState {
    pub bucket: String,
    pub arn: String,
    pub versioning: bool,
    pub worm: bool,
    pub retention_mode: Option<String>,
    pub retention_days: Option<i64>,
    pub kms_key_arn: Option<String>,
    pub public_access_blocked: bool,
    /// SSE-KMS uses an S3 bucket key (fewer KMS calls).
    #[serde(default)]
    pub bucket_key_enabled: bool,
    /// The bucket policy denies every request not made over TLS.
    #[serde(default)]
    pub tls_only: bool,
    /// The bucket's user-visible tags (no ownership or aws:* tags).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The guards of the bucket, as read.
    #[serde(skip)]
    pub verdicts: Verdicts,
}

// ---------------------------------------------------------------- description

/// The `audit_storage` block once planned.
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

/// The computed attributes of the audit bucket.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditStorageOutputs {
    pub audit_bucket_arn: String,
    pub audit_bucket_name: String,
}

pub const DEFAULT_RETENTION_MODE: &str = "COMPLIANCE";
pub const DEFAULT_RETENTION_DAYS: i64 = 365;

/// The WORM audit bucket of an environment.
pub struct AuditBucket;

impl Component for AuditBucket {
    const NAME: &'static str = COMPONENT;
    const AFTER: &'static [&'static str] = &[super::keys::COMPONENT];

    async fn find(ctx: &Ctx) -> Result<Option<AuditStorageState>, ComponentError> {
        find(ctx).await
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &AuditStorageSpec,
        built: &super::Observed,
    ) -> Result<AuditStorageState, ComponentError> {
        let keys = built.need::<super::keys::TenantKeys>(COMPONENT)?;
        Box::pin(ensure(ctx, spec, keys)).await
    }

    async fn delete(ctx: &Ctx, spec: &AuditStorageSpec) -> Result<Vec<String>, ComponentError> {
        delete(ctx, spec).await
    }
    const DOC: &'static str = "The audit bucket: S3 Object Lock (WORM), versioning, default retention, SSE-KMS with the platform key, public access blocked, TLS-only policy.";
    type Spec = AuditStorageSpec;
    type State = AuditStorageState;
    type Outputs = AuditStorageOutputs;

    fn settings() -> Vec<Setting> {
        vec![
            Setting::new(
                "versioning",
                Type::Bool,
                Default::Bool(true),
                "Bucket versioning; required by WORM. Default `true`.".into(),
            ),
            Setting::new(
                "worm",
                Type::Bool,
                Default::Bool(true),
                "S3 Object Lock. Default `true`. Cannot be turned off once on.".into(),
            ),
            Setting::new(
                "retention_mode",
                Type::String,
                Default::Str(DEFAULT_RETENTION_MODE),
                format!("Default retention mode of new objects: `COMPLIANCE` (nobody can delete before expiry) or `GOVERNANCE`. Default `{DEFAULT_RETENTION_MODE}`."),
            )
            .check(Check::Text(
                |v| v == "COMPLIANCE" || v == "GOVERNANCE",
                "use \"COMPLIANCE\" or \"GOVERNANCE\"",
            )),
            Setting::new(
                "retention_days",
                Type::Number,
                Default::Int(DEFAULT_RETENTION_DAYS),
                format!("Default retention of new objects in days, 1 to 36500. Default `{DEFAULT_RETENTION_DAYS}`."),
            )
            .check(Check::Range(1, 36500)),
            Setting::new(
                "retain_on_destroy",
                Type::Bool,
                Default::Bool(true),
                "Keep the bucket when the environment is destroyed. Default `true`; when false, destroy deletes the bucket only if it is empty.".into(),
            )
            .not_recorded(),
        ]
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new("audit_bucket_arn", Type::String, "Audit bucket ARN."),
            Output::new("audit_bucket_name", Type::String, "Audit bucket name."),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn check(config: &CtyValue) -> Vec<Problem> {
        let block = config.get_attr(COMPONENT);
        let versioning = block.get_attr("versioning");
        match (block.get_attr("worm").as_bool(), versioning.as_bool()) {
            (Some(true), Some(false)) => vec![Problem::at(
                "versioning",
                versioning,
                "WORM (Object Lock) requires versioning: set audit_storage.versioning = true, or worm = false",
            )],
            _ => Vec::new(),
        }
    }

    fn judge(prior: &CtyValue, planned: &CtyValue) -> Diagnostics {
        let mut d = Diagnostics::new();
        let was = |a: &str| prior.get_attr(COMPONENT).get_attr(a).clone();
        let now = |a: &str| planned.get_attr(COMPONENT).get_attr(a).clone();
        if was("worm").as_bool() == Some(true) && now("worm").as_bool() == Some(false) {
            d.push(
                Diagnostic::error(
                    "Object Lock cannot be turned off",
                    "audit_storage.worm: S3 Object Lock stays on for the life of a bucket, and turning it off would mean deleting the audit trail. \
                     To stop locking new objects, lower audit_storage.retention_days; to start over, create a new environment.",
                )
                .at(Path::root().attr(COMPONENT).attr("worm")),
            );
        }
        if let (Some(old), Some(new)) = (
            was("retention_days").as_i64(),
            now("retention_days").as_i64(),
        ) {
            if new < old {
                d.push(Diagnostic::warning(
                    "Audit retention shortened",
                    format!("audit_storage: new objects are locked for {new} days instead of {old}; objects already written keep their retention."),
                ));
            }
        }
        d
    }

    fn on_destroy(prior: &CtyValue) -> Diagnostics {
        let keep = prior
            .get_attr(COMPONENT)
            .get_attr("retain_on_destroy")
            .as_bool()
            != Some(false);
        match prior.get_attr("audit_bucket_name").as_str() {
            Some(bucket) if keep => Diagnostic::warning(
                "Audit bucket will be kept",
                format!("audit_storage: bucket {bucket} stays (retain_on_destroy = true) with its locked objects; delete it yourself once retention allows."),
            )
            .into(),
            _ => Diagnostics::new(),
        }
    }

    fn read(
        state: &AuditStorageState,
        stored: &AuditStorageSpec,
        _prior: &CtyValue,
    ) -> Reading<AuditStorageSpec, AuditStorageOutputs> {
        Reading {
            settings: AuditStorageSpec {
                versioning: state.versioning,
                worm: state.worm,
                retention_mode: state
                    .retention_mode
                    .clone()
                    .unwrap_or_else(|| stored.retention_mode.clone()),
                retention_days: state.retention_days.unwrap_or(stored.retention_days),
                retain_on_destroy: stored.retain_on_destroy,
            },
            outputs: AuditStorageOutputs {
                audit_bucket_arn: state.arn.clone(),
                audit_bucket_name: state.bucket.clone(),
            },
            verdicts: state.verdicts.clone(),
        }
    }
}

const PUBLIC_ACCESS_BLOCK: usize = 0;
const BUCKET_POLICY: usize = 1;
const DEFAULT_ENCRYPTION: usize = 2;
const DEFAULT_RETENTION: usize = 3;
const TAGS: usize = 4;

/// What the provider makes of the bucket without a knob.
const GUARDS: &[Guard] = &[
    Guard::new(
        "public_access_block",
        "all public access blocked",
        "The bucket's public access block has BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy and RestrictPublicBuckets on.",
    ),
    Guard::new(
        "bucket_policy",
        "TLS required, nothing public",
        "The bucket policy denies every request made without TLS, no statement allows everyone (`*`) in, and CloudTrail may deliver the environment's trail (`aws:SourceArn`) under `cloudtrail/` (`s3:GetBucketAcl`, `s3:PutObject`). Other statements are kept.",
    ),
    Guard::new(
        "default_encryption",
        "SSE-KMS with the platform key, bucket key on",
        "New objects are encrypted with the environment's platform KMS key, through an S3 bucket key.",
    ),
    Guard::new(
        "default_retention",
        "new objects locked by default",
        "The Object Lock rule locks every new object for `retention_days` days in `retention_mode`.",
    )
    .when(When::On("worm")),
    Guard::new(
        "tags",
        "ownership and user tags present",
        "The bucket carries `tags`, the provider's `default_tags` and the ownership tags. Tags others add are left alone.",
    ),
];

/// `idis-<env>-audit-<account>-<region>`.
pub fn bucket_name(ctx: &Ctx) -> String {
    format!("{}-audit-{}-{}", ctx.prefix(), ctx.account_id, ctx.region)
}

fn bucket_arn(ctx: &Ctx, bucket: &str) -> String {
    format!("arn:{}:s3:::{bucket}", partition(&ctx.region))
}

fn conflict(message: impl Into<String>) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: message.into(),
    }
}

// ---------------------------------------------------------------- reading

/// Why one read of the bucket gave nothing.
enum ReadError {
    NoBucket,
    Failed(ComponentError),
}

/// Turns one SDK answer into: the value, `None` when the bucket has no such
/// configuration (`absent_code`), `NoBucket`, or an error.
fn settle<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    absent_code: &str,
    action: String,
) -> Result<Option<T>, ReadError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + super::HttpStatus + 'static,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code() == Some("NoSuchBucket") => Err(ReadError::NoBucket),
        Err(e) if e.code() == Some(absent_code) => Ok(None),
        Err(e) => Err(ReadError::Failed(aws_error(COMPONENT, action, e))),
    }
}

/// Everything the bucket's configuration says, as read from S3.
#[derive(Debug, Default)]
struct Observed {
    versioning: Option<BucketVersioningStatus>,
    lock_enabled: bool,
    retention_mode: Option<String>,
    retention_days: Option<i64>,
    sse_kms: bool,
    kms_key: Option<String>,
    bucket_key: bool,
    public_access_blocked: bool,
    /// The four settings of the public access block; None without one.
    public_access_block: Option<[(&'static str, bool); 4]>,
    /// The default encryption's algorithm; None without default encryption.
    sse_algorithm: Option<String>,
    /// A default retention given in years (this provider sets days).
    retention_years: Option<i32>,
    policy: Option<String>,
    tls_only: bool,
    /// The policy lets CloudTrail deliver the environment's trail.
    cloudtrail_delivery: bool,
    /// Statements of the policy that let everyone in, described.
    public_grants: Vec<String>,
    tags: BTreeMap<String, String>,
    /// The platform key (id and ARN), resolved from its alias.
    platform_key: Option<(String, String)>,
}

/// Reads the bucket's whole configuration with concurrent calls. `None`
/// when the bucket does not exist.
async fn read(ctx: &Ctx, bucket: &str) -> Result<Option<Observed>, ComponentError> {
    let s3 = ctx.aws.s3();
    let kms = ctx.aws.kms();
    let platform_alias = format!("alias/idis/{}/{}", ctx.env, super::keys::PLATFORM);
    let (versioning, lock, encryption, pab, policy, tags, platform) = tokio::join!(
        s3.get_bucket_versioning().bucket(bucket).send(),
        s3.get_object_lock_configuration().bucket(bucket).send(),
        s3.get_bucket_encryption().bucket(bucket).send(),
        s3.get_public_access_block().bucket(bucket).send(),
        s3.get_bucket_policy().bucket(bucket).send(),
        s3.get_bucket_tagging().bucket(bucket).send(),
        kms.describe_key().key_id(&platform_alias).send(),
    );
    // The key the bucket must be encrypted with; none when it is missing.
    let platform_key = match platform {
        Ok(out) => out.key_metadata().map(|m| {
            (
                m.key_id().to_string(),
                m.arn().unwrap_or_default().to_string(),
            )
        }),
        Err(e) if super::is_not_found(&e) => None,
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("describe the platform key {platform_alias}"),
                e,
            ))
        }
    };
    let what = |w: &str| format!("read the {w} of the audit bucket {bucket}");
    let versioning = match versioning {
        Err(e) => match misrooted_versioning(&e) {
            Some(status) => Ok(status),
            None => Err(e),
        },
        Ok(out) => Ok(out.status().cloned()),
    };
    let settled = (|| -> Result<_, ReadError> {
        Ok((
            settle(versioning, "", what("versioning"))?,
            settle(
                lock,
                "ObjectLockConfigurationNotFoundError",
                what("Object Lock configuration"),
            )?,
            settle(
                encryption,
                "ServerSideEncryptionConfigurationNotFoundError",
                what("default encryption"),
            )?,
            settle(
                pab,
                "NoSuchPublicAccessBlockConfiguration",
                what("public access block"),
            )?,
            settle(policy, "NoSuchBucketPolicy", what("bucket policy"))?,
            settle(tags, "NoSuchTagSet", what("tags"))?,
        ))
    })();
    let (versioning, lock, encryption, pab, policy, tags) = match settled {
        Ok(all) => all,
        Err(ReadError::NoBucket) => return Ok(None),
        Err(ReadError::Failed(e)) => return Err(e),
    };

    let mut seen = Observed {
        versioning: versioning.flatten(),
        platform_key,
        ..Observed::default()
    };
    if let Some(lock) = lock.and_then(|l| l.object_lock_configuration) {
        seen.lock_enabled = lock.object_lock_enabled() == Some(&ObjectLockEnabled::Enabled);
        if let Some(retention) = lock.rule().and_then(|r| r.default_retention()) {
            seen.retention_mode = retention.mode().map(|m| m.as_str().to_string());
            // A retention in years is not what this provider sets: it shows
            // as an absent day count, which ensure repairs.
            seen.retention_days = match (retention.days(), retention.years()) {
                (Some(d), None | Some(0)) if d > 0 => Some(d.into()),
                _ => None,
            };
            seen.retention_years = retention.years().filter(|y| *y > 0);
        }
    }
    if let Some(rule) = encryption
        .and_then(|e| e.server_side_encryption_configuration)
        .and_then(|c| c.rules.into_iter().next())
    {
        seen.bucket_key = rule.bucket_key_enabled().unwrap_or(false);
        if let Some(default) = rule.apply_server_side_encryption_by_default() {
            seen.sse_algorithm = Some(default.sse_algorithm().as_str().to_string());
            seen.sse_kms = default.sse_algorithm() == &ServerSideEncryption::AwsKms;
            seen.kms_key = default.kms_master_key_id().map(str::to_string);
        }
    }
    seen.public_access_block = pab
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
        });
    seen.public_access_blocked = seen
        .public_access_block
        .is_some_and(|flags| flags.iter().all(|(_, on)| *on));
    seen.policy = policy.and_then(|p| p.policy);
    seen.public_grants = seen
        .policy
        .as_deref()
        .map(public_grants)
        .unwrap_or_default();
    seen.tls_only = seen
        .policy
        .as_deref()
        .is_some_and(|p| denies_insecure_transport(p, &bucket_arn(ctx, bucket)));
    seen.cloudtrail_delivery = seen.policy.as_deref().is_some_and(|p| {
        super::audit_trail::holds_statements(
            p,
            &super::audit_trail::cloudtrail_statements(ctx, &bucket_arn(ctx, bucket)),
        )
    });
    seen.tags = tags
        .map(|t| {
            t.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(seen))
}

/// Judges what the provider makes of the bucket without a knob.
fn verdicts(ctx: &Ctx, bucket: &str, seen: &Observed) -> Verdicts {
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
    let mut policy = Vec::new();
    match &seen.policy {
        None => policy.push("no bucket policy".to_string()),
        Some(_) if !seen.tls_only => {
            policy.push("no statement denies requests made without TLS".to_string())
        }
        Some(_) => {}
    }
    if seen.policy.is_some() && !seen.cloudtrail_delivery {
        policy.push(format!(
            "CloudTrail may not deliver the trail {} under {}/",
            super::audit_trail::trail_name(ctx),
            super::audit_trail::TRAIL_PREFIX
        ));
    }
    policy.extend(seen.public_grants.iter().cloned());
    v.judge(&GUARDS[BUCKET_POLICY], policy);
    let mut encryption = Vec::new();
    match seen.sse_algorithm.as_deref() {
        None => encryption.push("no default encryption".to_string()),
        Some("aws:kms") => {
            let key = seen.kms_key.as_deref().unwrap_or_default();
            let platform = seen
                .platform_key
                .as_ref()
                .is_some_and(|(id, arn)| key == id || key == arn);
            if !platform {
                encryption.push(format!("KMS key {key:?}, not the platform key"));
            }
        }
        Some("AES256") => encryption.push("SSE-S3 (AES256), not SSE-KMS".to_string()),
        Some(other) => encryption.push(format!("{other}, not SSE-KMS")),
    }
    if seen.sse_algorithm.is_some() && !seen.bucket_key {
        encryption.push("bucket key off".to_string());
    }
    v.judge(&GUARDS[DEFAULT_ENCRYPTION], encryption);
    if seen.lock_enabled {
        let retention = match (
            seen.retention_mode.as_deref(),
            seen.retention_days,
            seen.retention_years,
        ) {
            (_, _, Some(years)) => vec![format!(
                "default retention given in years ({years}), not days"
            )],
            (Some(_), Some(_), None) => Vec::new(),
            _ => vec!["no default retention rule: new objects are not locked".to_string()],
        };
        v.judge(&GUARDS[DEFAULT_RETENTION], retention);
    }
    v.judge(
        &GUARDS[TAGS],
        super::tag_problems(
            &format!("bucket {bucket}"),
            &seen.tags,
            &ctx.tags(COMPONENT),
        ),
    );
    v
}

fn state(ctx: &Ctx, bucket: &str, seen: &Observed) -> AuditStorageState {
    AuditStorageState {
        bucket: bucket.to_string(),
        arn: bucket_arn(ctx, bucket),
        versioning: seen.versioning == Some(BucketVersioningStatus::Enabled),
        worm: seen.lock_enabled,
        retention_mode: seen.retention_mode.clone(),
        retention_days: seen.retention_days,
        kms_key_arn: seen.kms_key.clone().filter(|_| seen.sse_kms),
        public_access_blocked: seen.public_access_blocked,
        bucket_key_enabled: seen.bucket_key,
        tls_only: seen.tls_only,
        tags: user_visible_tags(seen.tags.clone()),
        verdicts: verdicts(ctx, bucket, seen),
    }
}

/// moto 5.2.5 answers GetBucketVersioning with the root element
/// `GetBucketVersioningResponse` instead of `VersioningConfiguration` (its
/// S3 model extras lack that result wrapper), which the SDK refuses to
/// parse. The rest of the document is right, so the status is read from
/// it. Real S3 never takes this path: any other failure stays an error.
pub(super) fn misrooted_versioning(
    err: &SdkError<GetBucketVersioningError, HttpResponse>,
) -> Option<Option<BucketVersioningStatus>> {
    // The SDK reports the failed parse as an unmodeled service error.
    let raw = match err {
        SdkError::ServiceError(failure) => failure.raw(),
        SdkError::ResponseError(failure) => failure.raw(),
        _ => return None,
    };
    let body = std::str::from_utf8(raw.body().bytes()?).ok()?;
    if raw.status().as_u16() != 200 || !body.contains("<GetBucketVersioningResponse") {
        return None;
    }
    Some(
        body.split("<Status>")
            .nth(1)
            .and_then(|rest| rest.split("</Status>").next())
            .map(|status| BucketVersioningStatus::from(status.trim())),
    )
}

/// HeadBucket: does the bucket exist (and is it ours to see)?
async fn bucket_exists(ctx: &Ctx, bucket: &str) -> Result<bool, ComponentError> {
    match ctx.aws.s3().head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.code(), Some("NotFound" | "NoSuchBucket")) => Ok(false),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("look up the audit bucket {bucket}"),
            e,
        )),
    }
}

// ---------------------------------------------------------------- policy

/// The statement that refuses any request made without TLS.
fn tls_statement(arn: &str) -> Value {
    json!({
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, format!("{arn}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
    })
}

pub(super) fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// True when some statement denies every principal every S3 action on the
/// bucket and its objects unless the request uses TLS.
pub(super) fn denies_insecure_transport(policy: &str, arn: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let objects = format!("{arn}/*");
    as_list(&doc["Statement"]).iter().any(|s| {
        let principal_all = s["Principal"] == "*" || s["Principal"]["AWS"] == "*";
        let actions = as_list(&s["Action"]);
        let resources = as_list(&s["Resource"]);
        let insecure = &s["Condition"]["Bool"]["aws:SecureTransport"];
        s["Effect"] == "Deny"
            && principal_all
            && actions.iter().any(|a| a == "s3:*")
            && resources.iter().any(|r| r == arn)
            && resources.iter().any(|r| *r == objects)
            && (*insecure == "false" || *insecure == false)
    })
}

/// True for a statement that lets everyone in: Allow to the principal
/// `*` (or `{"AWS": "*"}`) with no condition narrowing it.
fn grants_everyone(s: &Value) -> bool {
    let everyone = s["Principal"] == "*"
        || s["Principal"]["AWS"] == "*"
        || as_list(&s["Principal"]["AWS"]).iter().any(|p| p == "*");
    s["Effect"] == "Allow" && everyone && s["Condition"].is_null()
}

/// The statements of a policy that let everyone in, as words.
pub(super) fn public_grants(policy: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return vec!["the bucket policy is not JSON".to_string()];
    };
    as_list(&doc["Statement"])
        .iter()
        .filter(|s| grants_everyone(s))
        .map(|s| {
            let actions: Vec<String> = as_list(&s["Action"])
                .iter()
                .map(|a| a.as_str().unwrap_or("?").to_string())
                .collect();
            match s["Sid"].as_str() {
                Some(sid) => format!("statement {sid} allows {} to everyone", actions.join(", ")),
                None => format!("a statement allows {} to everyone", actions.join(", ")),
            }
        })
        .collect()
}

/// The bucket policy with our TLS statement put in (replacing an older
/// copy of it), keeping any other statements but those that let everyone
/// in.
pub(super) fn policy_with_tls(existing: Option<&str>, arn: &str) -> String {
    let mut statements: Vec<Value> = existing
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .map(|doc| as_list(&doc["Statement"]))
        .unwrap_or_default();
    statements.retain(|s| s["Sid"] != TLS_SID && !grants_everyone(s));
    statements.push(tls_statement(arn));
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

// ---------------------------------------------------------------- find

pub async fn find(ctx: &Ctx) -> Result<Option<AuditStorageState>, ComponentError> {
    let bucket = bucket_name(ctx);
    Ok(read(ctx, &bucket)
        .await?
        .map(|seen| state(ctx, &bucket, &seen)))
}

// ---------------------------------------------------------------- ensure

pub async fn ensure(
    ctx: &Ctx,
    spec: &AuditStorageSpec,
    keys: &KeysState,
) -> Result<AuditStorageState, ComponentError> {
    let bucket = bucket_name(ctx);
    if bucket.len() > 63 {
        return Err(conflict(format!(
            "the audit bucket name {bucket} is longer than S3's 63 characters; use a shorter environment name"
        )));
    }
    let mode = ObjectLockRetentionMode::from(spec.retention_mode.as_str());
    if spec.worm
        && !matches!(
            mode,
            ObjectLockRetentionMode::Compliance | ObjectLockRetentionMode::Governance
        )
    {
        return Err(conflict(format!(
            "retention_mode = {:?} is not COMPLIANCE or GOVERNANCE",
            spec.retention_mode
        )));
    }
    let days = match spec.worm {
        false => None,
        true => Some(
            i32::try_from(spec.retention_days)
                .ok()
                .filter(|d| *d > 0)
                .ok_or_else(|| {
                    conflict(format!(
                        "retention_days = {} is not a positive number of days",
                        spec.retention_days
                    ))
                })?,
        ),
    };

    let seen = match read(ctx, &bucket).await? {
        Some(seen) => seen,
        None => create_bucket(ctx, &bucket, spec.worm).await?,
    };

    // Object Lock and versioning, in the order S3 needs them.
    if seen.lock_enabled && !spec.worm {
        return Err(conflict(format!(
            "the audit bucket {bucket} has S3 Object Lock, which can never be turned off; keep worm = true (or keep the bucket and use a new environment)"
        )));
    }
    let want_versioning = spec.versioning || spec.worm;
    let versioning_enabled = seen.versioning == Some(BucketVersioningStatus::Enabled);
    if !want_versioning && seen.lock_enabled {
        return Err(conflict(format!(
            "the audit bucket {bucket} has S3 Object Lock, and versioning cannot be suspended on it; set versioning = true"
        )));
    }
    let s3 = ctx.aws.s3();
    let lock_and_versioning = async {
        let mut changed = false;
        if want_versioning && !versioning_enabled {
            put_versioning(ctx, &bucket, BucketVersioningStatus::Enabled).await?;
            changed = true;
        } else if !want_versioning && versioning_enabled {
            put_versioning(ctx, &bucket, BucketVersioningStatus::Suspended).await?;
            changed = true;
        }
        if let Some(days) = days {
            let retention_ok = seen.lock_enabled
                && seen.retention_mode.as_deref() == Some(mode.as_str())
                && seen.retention_days == Some(days.into());
            if !retention_ok {
                // Also turns Object Lock on for an existing bucket (S3
                // allows that on versioned buckets).
                s3.put_object_lock_configuration()
                    .bucket(&bucket)
                    .object_lock_configuration(
                        ObjectLockConfiguration::builder()
                            .object_lock_enabled(ObjectLockEnabled::Enabled)
                            .rule(
                                ObjectLockRule::builder()
                                    .default_retention(
                                        DefaultRetention::builder()
                                            .mode(mode.clone())
                                            .days(days)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            COMPONENT,
                            format!(
                                "set the default retention ({} days {}) of the audit bucket {bucket}",
                                days,
                                mode.as_str()
                            ),
                            e,
                        )
                    })?;
                changed = true;
            }
        }
        Ok::<bool, ComponentError>(changed)
    };

    let encryption = async {
        let key_ok = seen
            .kms_key
            .as_deref()
            .is_some_and(|k| k == keys.platform_key_arn || k == keys.platform_key_id);
        if seen.sse_kms && key_ok && seen.bucket_key {
            return Ok(false);
        }
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(&keys.platform_key_arn)
            .build()
            .map_err(|e| conflict(format!("could not build the encryption request: {e}")))?;
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .bucket_key_enabled(true)
                    .build(),
            )
            .build()
            .map_err(|e| conflict(format!("could not build the encryption request: {e}")))?;
        s3.put_bucket_encryption()
            .bucket(&bucket)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("set SSE-KMS default encryption on the audit bucket {bucket}"),
                    e,
                )
            })?;
        Ok::<bool, ComponentError>(true)
    };

    let public_access = async {
        if seen.public_access_blocked {
            return Ok(false);
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
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("block public access to the audit bucket {bucket}"),
                    e,
                )
            })?;
        Ok::<bool, ComponentError>(true)
    };

    let policy = async {
        if seen.tls_only && seen.public_grants.is_empty() && seen.cloudtrail_delivery {
            return Ok(false);
        }
        let arn = bucket_arn(ctx, &bucket);
        let with_trail = super::audit_trail::with_statements(
            seen.policy.as_deref(),
            &super::audit_trail::cloudtrail_statements(ctx, &arn),
        );
        s3.put_bucket_policy()
            .bucket(&bucket)
            .policy(policy_with_tls(Some(&with_trail), &arn))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("set the TLS-only bucket policy of the audit bucket {bucket}"),
                    e,
                )
            })?;
        Ok::<bool, ComponentError>(true)
    };

    let tags = async {
        let wanted = ctx.tags(COMPONENT);
        if wanted.iter().all(|(k, v)| seen.tags.get(k) == Some(v)) {
            return Ok(false);
        }
        // PutBucketTagging replaces the whole set: keep tags others added.
        let mut all = seen.tags.clone();
        all.extend(wanted);
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
            .map_err(|e| aws_error(COMPONENT, format!("tag the audit bucket {bucket}"), e))?;
        Ok::<bool, ComponentError>(true)
    };

    let (a, b, c, d, e) =
        tokio::try_join!(lock_and_versioning, encryption, public_access, policy, tags)?;
    if !(a || b || c || d || e) {
        return Ok(state(ctx, &bucket, &seen));
    }
    let seen = read(ctx, &bucket).await?.ok_or_else(|| {
        conflict(format!(
            "the audit bucket {bucket} disappeared while it was configured"
        ))
    })?;
    Ok(state(ctx, &bucket, &seen))
}

async fn put_versioning(
    ctx: &Ctx,
    bucket: &str,
    status: BucketVersioningStatus,
) -> Result<(), ComponentError> {
    let action = format!(
        "set versioning to {} on the audit bucket {bucket}",
        status.as_str()
    );
    ctx.aws
        .s3()
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_error(COMPONENT, action, e))
}

/// Creates the bucket (with Object Lock when `worm`: only creation sets it
/// in one step) and waits until S3 answers for it. Returns what it reads.
async fn create_bucket(ctx: &Ctx, bucket: &str, worm: bool) -> Result<Observed, ComponentError> {
    let mut create = ctx
        .aws
        .s3()
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(worm);
    if ctx.region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(ctx.region.as_str()))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => {}
        // Ours already (a killed apply, or us-east-1's idempotent create).
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {}
        Err(e) if e.code() == Some("BucketAlreadyExists") => {
            return Err(conflict(format!(
                "the bucket name {bucket} is taken by another AWS account; S3 names are global, so this environment cannot have its audit bucket"
            )))
        }
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("create the audit bucket {bucket}"),
                e,
            ))
        }
    }
    ctx.wait_for(
        COMPONENT,
        &format!("the audit bucket {bucket} to exist"),
        || read(ctx, bucket),
    )
    .await
}

// ---------------------------------------------------------------- delete

/// Keeps the bucket when `retain_on_destroy`; otherwise deletes it only
/// when it holds no object versions (delete markers alone are removed).
pub async fn delete(ctx: &Ctx, spec: &AuditStorageSpec) -> Result<Vec<String>, ComponentError> {
    let bucket = bucket_name(ctx);
    let s3 = ctx.aws.s3();
    if spec.retain_on_destroy {
        return Ok(if bucket_exists(ctx, &bucket).await? {
            vec![format!("audit bucket {bucket} kept (retain_on_destroy)")]
        } else {
            Vec::new()
        });
    }

    // Count what the bucket holds.
    let mut versions = 0usize;
    let mut markers: Vec<(String, String)> = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(&bucket)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchBucket") => return Ok(Vec::new()),
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("list the object versions of the audit bucket {bucket}"),
                    e,
                ))
            }
        };
        versions += page.versions().len();
        markers.extend(
            page.delete_markers()
                .iter()
                .filter_map(|m| Some((m.key()?.to_string(), m.version_id()?.to_string()))),
        );
        if page.is_truncated() == Some(true) {
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        } else {
            break;
        }
    }
    if versions > 0 {
        let locked = s3
            .get_object_lock_configuration()
            .bucket(&bucket)
            .send()
            .await
            .is_ok_and(|l| {
                l.object_lock_configuration()
                    .and_then(|c| c.object_lock_enabled())
                    == Some(&ObjectLockEnabled::Enabled)
            });
        let why = if locked {
            "under S3 Object Lock retention"
        } else {
            "of audit records"
        };
        return Err(conflict(format!(
            "the audit bucket {bucket} holds {versions} object versions {why} and was kept; the provider never deletes audit records. Set audit_storage.retain_on_destroy = true to keep it on purpose, or empty it once retention allows"
        )));
    }

    // Delete markers hide nothing: remove them so the bucket is empty.
    futures_util::future::try_join_all(markers.iter().map(|(key, version)| {
        let s3 = s3.clone();
        let bucket = &bucket;
        async move {
            s3.delete_object()
                .bucket(bucket)
                .key(key)
                .version_id(version)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("remove the delete marker of {key} in the audit bucket {bucket}"),
                        e,
                    )
                })
        }
    }))
    .await?;

    match s3.delete_bucket().bucket(&bucket).send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(Vec::new()),
        Err(e) if e.code() == Some("BucketNotEmpty") => {
            return Err(conflict(format!(
                "the audit bucket {bucket} received new objects while it was being deleted and was kept"
            )))
        }
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("delete the audit bucket {bucket}"),
                e,
            ))
        }
    }
    ctx.wait_for(
        COMPONENT,
        &format!("the audit bucket {bucket} to be deleted"),
        || async { Ok((!bucket_exists(ctx, &bucket).await?).then_some(())) },
    )
    .await?;
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:s3:::idis-x-audit-1-us-east-1";

    #[test]
    fn our_tls_statement_is_recognised() {
        let policy = policy_with_tls(None, ARN);
        assert!(denies_insecure_transport(&policy, ARN));
        assert!(!denies_insecure_transport(&policy, "arn:aws:s3:::other"));
        assert!(!denies_insecure_transport("{}", ARN));
        assert!(!denies_insecure_transport("not json", ARN));
    }

    #[test]
    fn other_statements_survive_the_tls_repair() {
        let existing = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "LogDelivery", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject", "Resource": format!("{ARN}/*")},
                {"Sid": TLS_SID, "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ARN},
            ]
        })
        .to_string();
        let repaired: Value = serde_json::from_str(&policy_with_tls(Some(&existing), ARN)).unwrap();
        let statements = as_list(&repaired["Statement"]);
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Sid"], "LogDelivery");
        assert!(denies_insecure_transport(&repaired.to_string(), ARN));
    }
}
