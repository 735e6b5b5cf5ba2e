//! documents_storage: The documents bucket the application reads and writes (`IDIS_S3_BUCKET`): versioning, SSE-KMS with the platform key, public access blocked, TLS-only policy, noncurrent versions expired by a lifecycle rule; kept on destroy by default.
//!
//! The audit bucket is WORM: under COMPLIANCE retention the application
//! could never delete or overwrite a document there. Documents go to a
//! bucket of their own, `idis-<env>-documents-<account>-<region>` (S3
//! names are global: the account and region make the name deterministic
//! and still this environment's alone, as for the audit bucket), so a
//! re-run adopts the bucket a killed apply created.
//!
//! Versioning keeps what the application overwrites or deletes for
//! `noncurrent_version_expiration_days`, then a lifecycle rule of the
//! provider's expires it (S3 User Guide, "Managing your storage
//! lifecycle"). The bucket holds the application's documents: `delete`
//! keeps it when `retain_on_destroy` (the default) and otherwise deletes
//! it only when it holds no object version at all.

use std::collections::BTreeMap;

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tagging, VersioningConfiguration,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use super::describe::{Check, Component, Default, Guard, Output, Reading, Setting, Verdicts};
use super::keys::KeysState;
use super::storage::{
    denies_insecure_transport, misrooted_versioning, policy_with_tls, public_grants,
};
use super::{aws_error, partition, user_visible_tags, ComponentError, Ctx};
use crate::protocol::cty::{Type, Value as CtyValue};
use crate::protocol::diag::{Diagnostic, Diagnostics};

pub const COMPONENT: &str = "documents_storage";

/// The id of the lifecycle rule this component owns; rules of others
/// (with other ids) are kept.
pub const LIFECYCLE_RULE_ID: &str = "idis-expire-noncurrent-versions";

pub const DEFAULT_NONCURRENT_DAYS: i64 = 90;

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DocumentsState {
    pub bucket: String,
    pub arn: String,
    /// Days after which the provider's lifecycle rule expires noncurrent
    /// versions; None while the rule is missing or off.
    pub noncurrent_days: Option<i64>,
    /// The bucket's user-visible tags (no ownership or aws:* tags).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The guards of the bucket, as read.
    #[serde(skip)]
    pub verdicts: Verdicts,
}

/// The `documents_storage` block once planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DocumentsSpec {
    pub noncurrent_version_expiration_days: i64,
    /// Keep the bucket when the environment is destroyed.
    pub retain_on_destroy: bool,
}

/// The computed attributes of the documents bucket.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DocumentsOutputs {
    pub documents_bucket_arn: String,
    pub documents_bucket_name: String,
}

/// The application's documents bucket.
pub struct DocumentsBucket;

impl Component for DocumentsBucket {
    const NAME: &'static str = COMPONENT;
    const DOC: &'static str = "The documents bucket the application reads and writes (`IDIS_S3_BUCKET`): versioning, SSE-KMS with the platform key, public access blocked, TLS-only policy, noncurrent versions expired by a lifecycle rule. Kept on destroy by default.";
    const AFTER: &'static [&'static str] = &[super::keys::COMPONENT];
    type Spec = DocumentsSpec;
    type State = DocumentsState;
    type Outputs = DocumentsOutputs;

    async fn find(ctx: &Ctx) -> Result<Option<DocumentsState>, ComponentError> {
        let bucket = bucket_name(ctx);
        Ok(read(ctx, &bucket)
            .await?
            .map(|seen| state(ctx, &bucket, &seen)))
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &DocumentsSpec,
        built: &super::Observed,
    ) -> Result<DocumentsState, ComponentError> {
        let keys = built.need::<super::keys::TenantKeys>(COMPONENT)?;
        Box::pin(ensure(ctx, spec, keys)).await
    }

    async fn delete(ctx: &Ctx, spec: &DocumentsSpec) -> Result<Vec<String>, ComponentError> {
        delete(ctx, spec).await
    }

    fn settings() -> Vec<Setting> {
        vec![
            Setting::new(
                "noncurrent_version_expiration_days",
                Type::Number,
                Default::Int(DEFAULT_NONCURRENT_DAYS),
                format!("Days a version the application overwrote or deleted is kept before the lifecycle rule expires it, 1 to 36500. Default `{DEFAULT_NONCURRENT_DAYS}`."),
            )
            .check(Check::Range(1, 36500)),
            Setting::new(
                "retain_on_destroy",
                Type::Bool,
                Default::Bool(true),
                "Keep the bucket when the environment is destroyed. Default `true`; when false, destroy deletes the bucket only if it holds no object version, and refuses otherwise.".into(),
            )
            .not_recorded(),
        ]
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new(
                "documents_bucket_arn",
                Type::String,
                "Documents bucket ARN.",
            ),
            Output::new(
                "documents_bucket_name",
                Type::String,
                "Documents bucket name (`IDIS_S3_BUCKET`).",
            ),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn judge(prior: &CtyValue, planned: &CtyValue) -> Diagnostics {
        let days = |v: &CtyValue| {
            v.get_attr(COMPONENT)
                .get_attr("noncurrent_version_expiration_days")
                .as_i64()
        };
        match (days(prior), days(planned)) {
            (Some(old), Some(new)) if new < old => Diagnostic::warning(
                "Noncurrent document versions kept for less time",
                format!("documents_storage: versions the application overwrote or deleted are expired after {new} days instead of {old}; S3 expires those already older than {new} days soon after the apply, and they cannot be restored."),
            )
            .into(),
            _ => Diagnostics::new(),
        }
    }

    fn on_destroy(prior: &CtyValue) -> Diagnostics {
        let keep = prior
            .get_attr(COMPONENT)
            .get_attr("retain_on_destroy")
            .as_bool()
            != Some(false);
        match prior.get_attr("documents_bucket_name").as_str() {
            Some(bucket) if keep => Diagnostic::warning(
                "Documents bucket will be kept",
                format!("documents_storage: bucket {bucket} stays (retain_on_destroy = true) with the application's documents; delete it yourself when they are no longer needed."),
            )
            .into(),
            _ => Diagnostics::new(),
        }
    }

    fn read(
        state: &DocumentsState,
        stored: &DocumentsSpec,
        _prior: &CtyValue,
    ) -> Reading<DocumentsSpec, DocumentsOutputs> {
        Reading {
            settings: DocumentsSpec {
                noncurrent_version_expiration_days: state
                    .noncurrent_days
                    .unwrap_or(stored.noncurrent_version_expiration_days),
                retain_on_destroy: stored.retain_on_destroy,
            },
            outputs: DocumentsOutputs {
                documents_bucket_arn: state.arn.clone(),
                documents_bucket_name: state.bucket.clone(),
            },
            verdicts: state.verdicts.clone(),
        }
    }
}

const VERSIONING: usize = 0;
const PUBLIC_ACCESS_BLOCK: usize = 1;
const BUCKET_POLICY: usize = 2;
const DEFAULT_ENCRYPTION: usize = 3;
const LIFECYCLE: usize = 4;
const TAGS: usize = 5;

/// What the provider makes of the bucket without a knob.
const GUARDS: &[Guard] = &[
    Guard::new(
        "versioning",
        "versioning enabled",
        "Versioning is on, so a document overwritten or deleted can be restored until the lifecycle rule expires it.",
    ),
    Guard::new(
        "public_access_block",
        "all public access blocked",
        "The bucket's public access block has BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy and RestrictPublicBuckets on.",
    ),
    Guard::new(
        "bucket_policy",
        "TLS required, nothing public",
        "The bucket policy denies every request made without TLS, and no statement allows everyone (`*`) in. Other statements are kept.",
    ),
    Guard::new(
        "default_encryption",
        "SSE-KMS with the platform key, bucket key on",
        "New objects are encrypted with the environment's platform KMS key, through an S3 bucket key.",
    ),
    Guard::new(
        "lifecycle",
        "noncurrent versions expire",
        "The lifecycle rule `idis-expire-noncurrent-versions` (whole bucket, enabled) expires noncurrent versions after `noncurrent_version_expiration_days`. Rules of others are kept.",
    ),
    Guard::new(
        "tags",
        "ownership and user tags present",
        "The bucket carries `tags`, the provider's `default_tags` and the ownership tags. Tags others add are left alone.",
    ),
];

/// `idis-<env>-documents-<account>-<region>`.
pub fn bucket_name(ctx: &Ctx) -> String {
    format!(
        "{}-documents-{}-{}",
        ctx.prefix(),
        ctx.account_id,
        ctx.region
    )
}

/// The ARN of the documents bucket of the environment of `ctx`.
pub fn bucket_arn(ctx: &Ctx) -> String {
    format!("arn:{}:s3:::{}", partition(&ctx.region), bucket_name(ctx))
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

/// One SDK answer as: the value, None when the bucket has no such
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
struct Seen {
    versioning: Option<BucketVersioningStatus>,
    sse_algorithm: Option<String>,
    kms_key: Option<String>,
    bucket_key: bool,
    public_access_block: Option<[(&'static str, bool); 4]>,
    policy: Option<String>,
    tls_only: bool,
    public_grants: Vec<String>,
    /// Every lifecycle rule of the bucket (those of others are kept).
    rules: Vec<LifecycleRule>,
    tags: BTreeMap<String, String>,
    platform_key: Option<(String, String)>,
}

impl Seen {
    fn public_access_blocked(&self) -> bool {
        self.public_access_block
            .is_some_and(|flags| flags.iter().all(|(_, on)| *on))
    }

    fn kms_ok(&self) -> bool {
        let key = self.kms_key.as_deref().unwrap_or_default();
        self.sse_algorithm.as_deref() == Some("aws:kms")
            && self
                .platform_key
                .as_ref()
                .is_some_and(|(id, arn)| key == id || key == arn)
            && self.bucket_key
    }

    /// The days of the provider's rule, when it is there and enabled for
    /// the whole bucket.
    fn noncurrent_days(&self) -> Option<i64> {
        self.rules
            .iter()
            .find(|r| r.id() == Some(LIFECYCLE_RULE_ID))
            .filter(|r| r.status() == &ExpirationStatus::Enabled && whole_bucket(r))
            .and_then(|r| r.noncurrent_version_expiration())
            .and_then(|e| e.noncurrent_days())
            .map(i64::from)
    }
}

/// A rule with no filter, or a filter that selects every object.
fn whole_bucket(rule: &LifecycleRule) -> bool {
    #[allow(deprecated)]
    let legacy_prefix = rule.prefix().unwrap_or_default();
    let filter_ok = rule.filter().is_none_or(|f| {
        f.prefix().unwrap_or_default().is_empty()
            && f.tag().is_none()
            && f.and().is_none()
            && f.object_size_greater_than().is_none()
            && f.object_size_less_than().is_none()
    });
    legacy_prefix.is_empty() && filter_ok
}

/// Reads the bucket's whole configuration with concurrent calls. None when
/// the bucket does not exist.
async fn read(ctx: &Ctx, bucket: &str) -> Result<Option<Seen>, ComponentError> {
    let s3 = ctx.aws.s3();
    let (versioning, encryption, pab, policy, tags, lifecycle, platform) = tokio::join!(
        s3.get_bucket_versioning().bucket(bucket).send(),
        s3.get_bucket_encryption().bucket(bucket).send(),
        s3.get_public_access_block().bucket(bucket).send(),
        s3.get_bucket_policy().bucket(bucket).send(),
        s3.get_bucket_tagging().bucket(bucket).send(),
        s3.get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send(),
        super::platform_key(ctx, COMPONENT),
    );
    let platform_key = platform?;
    let what = |w: &str| format!("read the {w} of the documents bucket {bucket}");
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
            settle(
                lifecycle,
                "NoSuchLifecycleConfiguration",
                what("lifecycle rules"),
            )?,
        ))
    })();
    let (versioning, encryption, pab, policy, tags, lifecycle) = match settled {
        Ok(all) => all,
        Err(ReadError::NoBucket) => return Ok(None),
        Err(ReadError::Failed(e)) => return Err(e),
    };
    let mut seen = Seen {
        versioning: versioning.flatten(),
        platform_key,
        ..Seen::default()
    };
    if let Some(rule) = encryption
        .and_then(|e| e.server_side_encryption_configuration)
        .and_then(|c| c.rules.into_iter().next())
    {
        seen.bucket_key = rule.bucket_key_enabled().unwrap_or(false);
        if let Some(default) = rule.apply_server_side_encryption_by_default() {
            seen.sse_algorithm = Some(default.sse_algorithm().as_str().to_string());
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
    seen.policy = policy.and_then(|p| p.policy);
    let arn = format!("arn:{}:s3:::{bucket}", partition(&ctx.region));
    seen.public_grants = seen
        .policy
        .as_deref()
        .map(public_grants)
        .unwrap_or_default();
    seen.tls_only = seen
        .policy
        .as_deref()
        .is_some_and(|p| denies_insecure_transport(p, &arn));
    seen.rules = lifecycle.and_then(|l| l.rules).unwrap_or_default();
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
fn verdicts(ctx: &Ctx, bucket: &str, seen: &Seen) -> Verdicts {
    let mut v = Verdicts::new();
    v.judge(
        &GUARDS[VERSIONING],
        match &seen.versioning {
            Some(BucketVersioningStatus::Enabled) => None,
            Some(other) => Some(format!("versioning is {}", other.as_str())),
            None => Some("versioning was never turned on".to_string()),
        },
    );
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
    v.judge(
        &GUARDS[LIFECYCLE],
        seen.noncurrent_days().is_none().then(|| {
            match seen.rules.iter().find(|r| r.id() == Some(LIFECYCLE_RULE_ID)) {
                None => format!("the lifecycle rule {LIFECYCLE_RULE_ID} is missing: noncurrent versions are kept forever"),
                Some(r) if r.status() != &ExpirationStatus::Enabled => {
                    format!("the lifecycle rule {LIFECYCLE_RULE_ID} is disabled")
                }
                Some(_) => format!(
                    "the lifecycle rule {LIFECYCLE_RULE_ID} no longer expires every noncurrent version"
                ),
            }
        }),
    );
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

fn state(ctx: &Ctx, bucket: &str, seen: &Seen) -> DocumentsState {
    DocumentsState {
        bucket: bucket.to_string(),
        arn: format!("arn:{}:s3:::{bucket}", partition(&ctx.region)),
        noncurrent_days: seen.noncurrent_days(),
        tags: user_visible_tags(seen.tags.clone()),
        verdicts: verdicts(ctx, bucket, seen),
    }
}

// ---------------------------------------------------------------- ensure

pub async fn ensure(
    ctx: &Ctx,
    spec: &DocumentsSpec,
    keys: &KeysState,
) -> Result<DocumentsState, ComponentError> {
    let bucket = bucket_name(ctx);
    if bucket.len() > 63 {
        return Err(conflict(format!(
            "the documents bucket name {bucket} is longer than S3's 63 characters; use a shorter environment name"
        )));
    }
    let days = i32::try_from(spec.noncurrent_version_expiration_days)
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| {
            conflict(format!(
                "noncurrent_version_expiration_days = {} is not a positive number of days",
                spec.noncurrent_version_expiration_days
            ))
        })?;
    let mut seen = match read(ctx, &bucket).await? {
        Some(seen) => seen,
        None => create_bucket(ctx, &bucket).await?,
    };
    // The bucket's key must be the platform key the apply just ensured.
    seen.platform_key = Some((keys.platform_key_id.clone(), keys.platform_key_arn.clone()));
    let s3 = ctx.aws.s3();
    let what = |w: &str| format!("{w} of the documents bucket {bucket}");

    let versioning = async {
        if seen.versioning == Some(BucketVersioningStatus::Enabled) {
            return Ok(false);
        }
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, what("turn on versioning"), e))?;
        Ok::<bool, ComponentError>(true)
    };

    let encryption = async {
        if seen.kms_ok() {
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
            .map_err(|e| aws_error(COMPONENT, what("set SSE-KMS default encryption"), e))?;
        Ok::<bool, ComponentError>(true)
    };

    let public_access = async {
        if seen.public_access_blocked() {
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
            .map_err(|e| aws_error(COMPONENT, what("block public access"), e))?;
        Ok::<bool, ComponentError>(true)
    };

    let policy = async {
        if seen.tls_only && seen.public_grants.is_empty() {
            return Ok(false);
        }
        s3.put_bucket_policy()
            .bucket(&bucket)
            .policy(policy_with_tls(seen.policy.as_deref(), &bucket_arn(ctx)))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, what("set the TLS-only bucket policy"), e))?;
        Ok::<bool, ComponentError>(true)
    };

    let lifecycle = async {
        if seen.noncurrent_days() == Some(i64::from(days)) {
            return Ok(false);
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
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(days)
                        .build(),
                )
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
                        "expire noncurrent versions after {days} days (lifecycle rule {LIFECYCLE_RULE_ID})"
                    )),
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
            .map_err(|e| aws_error(COMPONENT, what("tag"), e))?;
        Ok::<bool, ComponentError>(true)
    };

    // Versioning first: a lifecycle rule for noncurrent versions is only
    // meaningful on a versioned bucket.
    let versioned = versioning.await?;
    let (a, b, c, d, e) = tokio::try_join!(encryption, public_access, policy, lifecycle, tags)?;
    if !(versioned || a || b || c || d || e) {
        return Ok(state(ctx, &bucket, &seen));
    }
    let seen = read(ctx, &bucket).await?.ok_or_else(|| {
        conflict(format!(
            "the documents bucket {bucket} disappeared while it was configured"
        ))
    })?;
    Ok(state(ctx, &bucket, &seen))
}

/// Creates the bucket and waits until S3 answers for it.
async fn create_bucket(ctx: &Ctx, bucket: &str) -> Result<Seen, ComponentError> {
    let mut create = ctx.aws.s3().create_bucket().bucket(bucket);
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
                "the bucket name {bucket} is taken by another AWS account; S3 names are global, so this environment cannot have its documents bucket"
            )))
        }
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("create the documents bucket {bucket}"),
                e,
            ))
        }
    }
    ctx.wait_for(
        COMPONENT,
        &format!("the documents bucket {bucket} to exist"),
        || read(ctx, bucket),
    )
    .await
}

// ---------------------------------------------------------------- delete

async fn bucket_exists(ctx: &Ctx, bucket: &str) -> Result<bool, ComponentError> {
    match ctx.aws.s3().head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.code(), Some("NotFound" | "NoSuchBucket")) => Ok(false),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("look up the documents bucket {bucket}"),
            e,
        )),
    }
}

/// Keeps the bucket when `retain_on_destroy`; otherwise deletes it only
/// when it holds no object version (delete markers alone are removed),
/// and refuses, keeping it, when it holds documents.
pub async fn delete(ctx: &Ctx, spec: &DocumentsSpec) -> Result<Vec<String>, ComponentError> {
    let bucket = bucket_name(ctx);
    let s3 = ctx.aws.s3();
    if spec.retain_on_destroy {
        return Ok(if bucket_exists(ctx, &bucket).await? {
            vec![format!(
                "documents bucket {bucket} kept (retain_on_destroy) with the application's documents"
            )]
        } else {
            Vec::new()
        });
    }
    let mut versions = 0usize;
    let mut markers: Vec<(String, String)> = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let page = match s3
            .list_object_versions()
            .bucket(&bucket)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
        {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchBucket") => return Ok(Vec::new()),
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("list the object versions of the documents bucket {bucket}"),
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
        match (page.is_truncated(), page.next_key_marker()) {
            (Some(true), Some(next)) => {
                key_marker = Some(next.to_string());
                version_marker = page.next_version_id_marker().map(str::to_string);
            }
            _ => break,
        }
    }
    if versions > 0 {
        return Err(conflict(format!(
            "the documents bucket {bucket} holds {versions} object versions and was kept; the provider never deletes the application's documents. Set documents_storage.retain_on_destroy = true to keep it on purpose, or empty it yourself and destroy again"
        )));
    }
    for (key, version) in &markers {
        s3.delete_object()
            .bucket(&bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("remove the delete marker of {key} in the documents bucket {bucket}"),
                    e,
                )
            })?;
    }
    match s3.delete_bucket().bucket(&bucket).send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(Vec::new()),
        Err(e) if e.code() == Some("BucketNotEmpty") => {
            return Err(conflict(format!(
                "the documents bucket {bucket} received new objects while it was being deleted and was kept"
            )))
        }
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("delete the documents bucket {bucket}"),
                e,
            ))
        }
    }
    ctx.wait_for(
        COMPONENT,
        &format!("the documents bucket {bucket} to be deleted"),
        || async { Ok((!bucket_exists(ctx, &bucket).await?).then_some(())) },
    )
    .await?;
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, days: i32, status: ExpirationStatus, prefix: &str) -> LifecycleRule {
        LifecycleRule::builder()
            .id(id)
            .status(status)
            .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(days)
                    .build(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn only_our_enabled_whole_bucket_rule_sets_the_noncurrent_days() {
        let mut seen = Seen::default();
        assert_eq!(seen.noncurrent_days(), None);
        seen.rules = vec![rule("theirs", 5, ExpirationStatus::Enabled, "")];
        assert_eq!(seen.noncurrent_days(), None);
        seen.rules.push(rule(
            LIFECYCLE_RULE_ID,
            30,
            ExpirationStatus::Enabled,
            "tmp/",
        ));
        assert_eq!(seen.noncurrent_days(), None, "a prefix narrows it");
        seen.rules[1] = rule(LIFECYCLE_RULE_ID, 30, ExpirationStatus::Disabled, "");
        assert_eq!(seen.noncurrent_days(), None, "disabled");
        seen.rules[1] = rule(LIFECYCLE_RULE_ID, 30, ExpirationStatus::Enabled, "");
        assert_eq!(seen.noncurrent_days(), Some(30));
    }
}
