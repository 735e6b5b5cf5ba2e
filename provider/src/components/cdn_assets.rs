//! What the CloudFront distribution serves the UI's static build from,
//! with `edge.cdn`: a private S3 bucket behind an Origin Access Control,
//! and the bucket its standard access logs go to.
//!
//! - The assets bucket `idis-<env>-assets-<account>-<region>` (the
//!   documents bucket's naming: S3 names are global) blocks all public
//!   access, is encrypted (SSE-S3) and versioned (a bad deploy can be
//!   rolled back), and its policy lets exactly one principal read it:
//!   `cloudfront.amazonaws.com` with `AWS:SourceArn` the environment's
//!   distribution ("Restrict access to an Amazon S3 origin", CloudFront
//!   Developer Guide), besides refusing every request without TLS.
//! - The Origin Access Control `idis-<env>-assets` signs CloudFront's
//!   requests to it (SigV4, always).
//! - The log bucket `idis-<env>-cdn-logs-<account>-<region>`: CloudFront
//!   standard logs are written with an ACL grant to the `awslogsdelivery`
//!   account, so the bucket must have ACLs enabled (object ownership
//!   `BucketOwnerPreferred`, not `BucketOwnerEnforced`), and they cannot
//!   go to an SSE-KMS bucket: SSE-S3 ("Configure standard logging
//!   (legacy)", CloudFront Developer Guide). Public access stays blocked
//!   (that grant is not public).
//! - On destroy each bucket is deleted when empty and kept (with a
//!   warning) when it holds objects: nothing is ever emptied.

use std::collections::BTreeMap;

use aws_sdk_cloudfront::types::{
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, ObjectOwnership,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tagging, VersioningConfiguration,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{json, Value};

use super::storage::{as_list, denies_insecure_transport, public_grants};
use super::{aws_error, is_not_found, partition, ComponentError, Ctx};

const COMPONENT: &str = "edge";

/// The path prefix of the distribution's access logs in the log bucket.
pub const LOG_PREFIX: &str = "cloudfront/";

/// `idis-<env>-assets-<account>-<region>`.
pub fn assets_bucket(ctx: &Ctx) -> String {
    format!("{}-assets-{}-{}", ctx.prefix(), ctx.account_id, ctx.region)
}

/// `idis-<env>-cdn-logs-<account>-<region>`.
pub fn logs_bucket(ctx: &Ctx) -> String {
    format!(
        "{}-cdn-logs-{}-{}",
        ctx.prefix(),
        ctx.account_id,
        ctx.region
    )
}

/// The assets bucket as a CloudFront S3 origin (its regional domain).
pub fn origin_domain(ctx: &Ctx) -> String {
    format!("{}.s3.{}.amazonaws.com", assets_bucket(ctx), ctx.region)
}

/// The log bucket as CloudFront's `Logging.Bucket` names it.
pub fn logs_domain(ctx: &Ctx) -> String {
    format!("{}.s3.amazonaws.com", logs_bucket(ctx))
}

/// The name of the Origin Access Control.
pub fn oac_name(ctx: &Ctx) -> String {
    format!("{}-assets", ctx.prefix())
}

fn conflict(message: impl Into<String>) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: message.into(),
    }
}

/// The bucket policy the provider makes: CloudFront may get objects for
/// the distribution `distribution_arn` only; no request without TLS.
pub fn policy(bucket_arn: &str, distribution_arn: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CloudFrontReadsForTheDistribution",
                "Effect": "Allow",
                "Principal": { "Service": "cloudfront.amazonaws.com" },
                "Action": "s3:GetObject",
                "Resource": format!("{bucket_arn}/*"),
                "Condition": { "StringEquals": { "AWS:SourceArn": distribution_arn } },
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, format!("{bucket_arn}/*")],
                "Condition": { "Bool": { "aws:SecureTransport": "false" } },
            },
        ],
    })
    .to_string()
}

/// What is wrong with the assets bucket's policy: any Allow other than
/// CloudFront's read for `distribution_arn`, a public statement, the TLS
/// statement missing.
pub fn policy_problems(
    policy: Option<&str>,
    bucket_arn: &str,
    distribution_arn: Option<&str>,
) -> Vec<String> {
    let Some(policy) = policy else {
        return vec!["the bucket policy is missing".to_string()];
    };
    let mut problems = public_grants(policy);
    let doc: Value = serde_json::from_str(policy).unwrap_or(Value::Null);
    let mut reads_for_us = false;
    for s in as_list(&doc["Statement"]) {
        if s["Effect"] != "Allow" {
            continue;
        }
        let service = as_list(&s["Principal"]["Service"]);
        let only_cloudfront = s["Principal"].get("AWS").is_none()
            && s["Principal"] != "*"
            && service.len() == 1
            && service[0] == "cloudfront.amazonaws.com";
        let source = &s["Condition"]["StringEquals"]["AWS:SourceArn"];
        let for_us = distribution_arn.is_some_and(|d| source == d);
        let actions = as_list(&s["Action"]);
        let read_only = actions.len() == 1 && actions[0] == "s3:GetObject";
        if only_cloudfront && for_us && read_only {
            reads_for_us = true;
        } else if !public_grants(&json!({ "Statement": [s.clone()] }).to_string()).is_empty() {
            // Already named as public.
        } else {
            let sid = s["Sid"].as_str().unwrap_or("(no Sid)");
            problems.push(format!(
                "statement {sid} allows {} to someone else than the distribution",
                actions
                    .iter()
                    .map(|a| a.as_str().unwrap_or("?").to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if !reads_for_us {
        problems.push(
            "the distribution may not read the bucket (no statement for its AWS:SourceArn)"
                .to_string(),
        );
    }
    if !denies_insecure_transport(policy, bucket_arn) {
        problems.push("requests without TLS are not denied".to_string());
    }
    problems
}

/// One bucket as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BucketSeen {
    pub public_access_blocked: bool,
    pub sse: Option<String>,
    pub versioning: Option<String>,
    pub ownership: Option<String>,
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Reads one bucket; None when it does not exist.
pub async fn read_bucket(ctx: &Ctx, bucket: &str) -> Result<Option<BucketSeen>, ComponentError> {
    let s3 = ctx.aws.s3();
    let (pab, encryption, versioning, ownership, policy, tags) = tokio::join!(
        s3.get_public_access_block().bucket(bucket).send(),
        s3.get_bucket_encryption().bucket(bucket).send(),
        s3.get_bucket_versioning().bucket(bucket).send(),
        s3.get_bucket_ownership_controls().bucket(bucket).send(),
        s3.get_bucket_policy().bucket(bucket).send(),
        s3.get_bucket_tagging().bucket(bucket).send(),
    );
    let what = |w: &str| format!("read the {w} of the bucket {bucket}");
    macro_rules! settle {
        ($r:expr, $absent:expr, $w:expr) => {
            match $r {
                Ok(v) => Some(v),
                Err(e) if e.code() == Some("NoSuchBucket") => return Ok(None),
                Err(e) if $absent.contains(&e.code().unwrap_or_default()) => None,
                Err(e) => return Err(aws_error(COMPONENT, what($w), e)),
            }
        };
    }
    let pab = settle!(
        pab,
        ["NoSuchPublicAccessBlockConfiguration"],
        "public access block"
    );
    let encryption = settle!(
        encryption,
        ["ServerSideEncryptionConfigurationNotFoundError"],
        "default encryption"
    );
    let versioning = match versioning {
        Ok(out) => out.status().map(|s| s.as_str().to_string()),
        Err(e) => match super::storage::misrooted_versioning(&e) {
            Some(status) => status.map(|s| s.as_str().to_string()),
            None if e.code() == Some("NoSuchBucket") => return Ok(None),
            None => return Err(aws_error(COMPONENT, what("versioning"), e)),
        },
    };
    let ownership = settle!(
        ownership,
        ["OwnershipControlsNotFoundError"],
        "object ownership"
    );
    let policy = settle!(policy, ["NoSuchBucketPolicy"], "bucket policy");
    let tags = settle!(tags, ["NoSuchTagSet"], "tags");
    Ok(Some(BucketSeen {
        public_access_blocked: pab
            .and_then(|p| p.public_access_block_configuration)
            .is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            }),
        sse: encryption
            .and_then(|e| e.server_side_encryption_configuration)
            .and_then(|c| c.rules.into_iter().next())
            .and_then(|r| r.apply_server_side_encryption_by_default)
            .map(|d| d.sse_algorithm().as_str().to_string()),
        versioning,
        ownership: ownership
            .and_then(|o| o.ownership_controls)
            .and_then(|c| c.rules.into_iter().next())
            .map(|r| r.object_ownership().as_str().to_string()),
        policy: policy.and_then(|p| p.policy),
        tags: tags
            .map(|t| {
                t.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
    }))
}

/// What the CDN's buckets and OAC are, as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    pub assets: Option<BucketSeen>,
    pub logs: Option<BucketSeen>,
    pub oac_id: Option<String>,
}

pub async fn read(ctx: &Ctx) -> Result<Seen, ComponentError> {
    let (assets_name, logs_name) = (assets_bucket(ctx), logs_bucket(ctx));
    let (assets, logs, oac) = tokio::try_join!(
        read_bucket(ctx, &assets_name),
        read_bucket(ctx, &logs_name),
        find_oac(ctx),
    )?;
    Ok(Seen {
        assets,
        logs,
        oac_id: oac,
    })
}

/// What is wrong with the assets and log buckets against what the
/// provider makes (`distribution_arn`: the distribution that may read).
pub fn problems(
    ctx_names: (&str, &str),
    partition: &str,
    seen: &Seen,
    distribution_arn: Option<&str>,
    want_tags: &BTreeMap<String, String>,
) -> Vec<String> {
    let (assets, logs) = ctx_names;
    let mut problems = Vec::new();
    match &seen.assets {
        None => problems.push(format!("the assets bucket {assets} is missing")),
        Some(b) => {
            if !b.public_access_blocked {
                problems.push(format!("{assets}: public access is not all blocked"));
            }
            if b.sse.is_none() {
                problems.push(format!("{assets}: default encryption is off"));
            }
            if b.versioning.as_deref() != Some("Enabled") {
                problems.push(format!("{assets}: versioning is off"));
            }
            let arn = format!("arn:{partition}:s3:::{assets}");
            problems.extend(
                policy_problems(b.policy.as_deref(), &arn, distribution_arn)
                    .into_iter()
                    .map(|p| format!("{assets}: {p}")),
            );
            problems.extend(super::tag_problems(assets, &b.tags, want_tags));
        }
    }
    match &seen.logs {
        None => problems.push(format!("the log bucket {logs} is missing")),
        Some(b) => {
            if !b.public_access_blocked {
                problems.push(format!("{logs}: public access is not all blocked"));
            }
            if b.sse.as_deref() != Some("AES256") {
                problems.push(format!(
                    "{logs}: default encryption is {}, not SSE-S3 (CloudFront standard logs cannot be written with SSE-KMS)",
                    b.sse.as_deref().unwrap_or("off")
                ));
            }
            if b.ownership.as_deref() != Some("BucketOwnerPreferred") {
                problems.push(format!(
                    "{logs}: object ownership is {}, so CloudFront cannot write its logs (they need ACLs: BucketOwnerPreferred)",
                    b.ownership.as_deref().unwrap_or("not set")
                ));
            }
            problems.extend(super::tag_problems(logs, &b.tags, want_tags));
        }
    }
    if seen.oac_id.is_none() {
        problems.push("the origin access control is missing".to_string());
    }
    problems
}

async fn create_bucket(
    ctx: &Ctx,
    bucket: &str,
    ownership: ObjectOwnership,
) -> Result<(), ComponentError> {
    let mut create = ctx
        .aws
        .s3()
        .create_bucket()
        .bucket(bucket)
        .object_ownership(ownership);
    if ctx.region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(ctx.region.as_str()))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(e) if e.code() == Some("BucketAlreadyExists") => Err(conflict(format!(
            "the bucket name {bucket} is taken by another AWS account; S3 names are global"
        ))),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("create the bucket {bucket}"),
            e,
        )),
    }
}

/// Makes both buckets as the provider makes them (the assets bucket's
/// policy comes once the distribution exists: [`ensure_policy`]).
pub async fn ensure_buckets(ctx: &Ctx, seen: &Seen) -> Result<(), ComponentError> {
    let tags = ctx.tags(COMPONENT);
    let one = |bucket: String, current: Option<BucketSeen>, logs: bool| {
        let tags = tags.clone();
        async move {
            let s3 = ctx.aws.s3();
            let ownership = if logs {
                ObjectOwnership::BucketOwnerPreferred
            } else {
                ObjectOwnership::BucketOwnerEnforced
            };
            let current = match current {
                Some(c) => c,
                None => {
                    create_bucket(ctx, &bucket, ownership.clone()).await?;
                    BucketSeen::default()
                }
            };
            if !current.public_access_blocked {
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
                            format!("set the public access block of the bucket {bucket}"),
                            e,
                        )
                    })?;
            }
            if current.sse.as_deref() != Some("AES256") {
                let rule = ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(
                        ServerSideEncryptionByDefault::builder()
                            .sse_algorithm(ServerSideEncryption::Aes256)
                            .build()
                            .map_err(|e| conflict(format!("encryption request: {e}")))?,
                    )
                    .build();
                s3.put_bucket_encryption()
                    .bucket(&bucket)
                    .server_side_encryption_configuration(
                        ServerSideEncryptionConfiguration::builder()
                            .rules(rule)
                            .build()
                            .map_err(|e| conflict(format!("encryption request: {e}")))?,
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            COMPONENT,
                            format!("set the default encryption of the bucket {bucket}"),
                            e,
                        )
                    })?;
            }
            if !logs && current.versioning.as_deref() != Some("Enabled") {
                s3.put_bucket_versioning()
                    .bucket(&bucket)
                    .versioning_configuration(
                        VersioningConfiguration::builder()
                            .status(BucketVersioningStatus::Enabled)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            COMPONENT,
                            format!("turn on the versioning of the bucket {bucket}"),
                            e,
                        )
                    })?;
            }
            if current.ownership.as_deref() != Some(ownership.as_str()) {
                s3.put_bucket_ownership_controls()
                    .bucket(&bucket)
                    .ownership_controls(
                        aws_sdk_s3::types::OwnershipControls::builder()
                            .rules(
                                aws_sdk_s3::types::OwnershipControlsRule::builder()
                                    .object_ownership(ownership)
                                    .build()
                                    .map_err(|e| conflict(format!("ownership request: {e}")))?,
                            )
                            .build()
                            .map_err(|e| conflict(format!("ownership request: {e}")))?,
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            COMPONENT,
                            format!("set the object ownership of the bucket {bucket}"),
                            e,
                        )
                    })?;
            }
            if !super::tag_problems(&bucket, &current.tags, &tags).is_empty() {
                let mut all = current.tags.clone();
                all.extend(tags.clone());
                let set: Result<Vec<_>, _> = all
                    .iter()
                    .map(|(k, v)| aws_sdk_s3::types::Tag::builder().key(k).value(v).build())
                    .collect();
                s3.put_bucket_tagging()
                    .bucket(&bucket)
                    .tagging(
                        Tagging::builder()
                            .set_tag_set(Some(
                                set.map_err(|e| conflict(format!("tag request: {e}")))?,
                            ))
                            .build()
                            .map_err(|e| conflict(format!("tag request: {e}")))?,
                    )
                    .send()
                    .await
                    .map_err(|e| aws_error(COMPONENT, format!("tag of the bucket {bucket}"), e))?;
            }
            Ok::<(), ComponentError>(())
        }
    };
    tokio::try_join!(
        one(assets_bucket(ctx), seen.assets.clone(), false),
        one(logs_bucket(ctx), seen.logs.clone(), true),
    )?;
    Ok(())
}

/// Puts the assets bucket's policy for `distribution_arn` when it is not
/// already right.
pub async fn ensure_policy(
    ctx: &Ctx,
    current: Option<&str>,
    distribution_arn: &str,
) -> Result<(), ComponentError> {
    let bucket = assets_bucket(ctx);
    let arn = format!("arn:{}:s3:::{bucket}", partition(&ctx.region));
    if policy_problems(current, &arn, Some(distribution_arn)).is_empty() {
        return Ok(());
    }
    ctx.aws
        .s3()
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(policy(&arn, distribution_arn))
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!("set the policy of the assets bucket {bucket}"),
                e,
            )
        })?;
    Ok(())
}

/// The id of the Origin Access Control named for the environment.
pub async fn find_oac(ctx: &Ctx) -> Result<Option<String>, ComponentError> {
    let name = oac_name(ctx);
    let mut marker: Option<String> = None;
    loop {
        let page = ctx
            .aws
            .cloudfront()
            .list_origin_access_controls()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, "list the CloudFront origin access controls", e))?;
        let Some(list) = page.origin_access_control_list else {
            return Ok(None);
        };
        if let Some(found) = list.items().iter().find(|o| o.name() == name) {
            return Ok(Some(found.id().to_string()));
        }
        match list.next_marker() {
            Some(next) if list.is_truncated() => marker = Some(next.to_string()),
            _ => return Ok(None),
        }
    }
}

/// The Origin Access Control of the assets bucket: SigV4, always signed.
pub async fn ensure_oac(ctx: &Ctx, existing: Option<String>) -> Result<String, ComponentError> {
    if let Some(id) = existing {
        return Ok(id);
    }
    let name = oac_name(ctx);
    let config = OriginAccessControlConfig::builder()
        .name(&name)
        .description(format!("IDIS environment {}: the assets bucket", ctx.env))
        .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
        .signing_behavior(OriginAccessControlSigningBehaviors::Always)
        .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
        .build()
        .map_err(|e| conflict(format!("origin access control request: {e}")))?;
    match ctx
        .aws
        .cloudfront()
        .create_origin_access_control()
        .origin_access_control_config(config)
        .send()
        .await
    {
        Ok(out) => out
            .origin_access_control()
            .map(|o| o.id().to_string())
            .ok_or_else(|| conflict("CloudFront answered without an origin access control")),
        Err(e) if e.code() == Some("OriginAccessControlAlreadyExists") => {
            find_oac(ctx).await?.ok_or_else(|| {
                conflict(format!(
                    "origin access control {name} exists but is not listed"
                ))
            })
        }
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("create the origin access control {name}"),
            e,
        )),
    }
}

/// Deletes the Origin Access Control (after the distribution), and each
/// bucket when it is empty; a bucket holding objects is kept, with a
/// warning.
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    let mut warnings = Vec::new();
    if let Some(id) = find_oac(ctx).await? {
        let cf = ctx.aws.cloudfront();
        let etag = cf
            .get_origin_access_control()
            .id(&id)
            .send()
            .await
            .ok()
            .and_then(|o| o.e_tag().map(str::to_string));
        match cf
            .delete_origin_access_control()
            .id(&id)
            .set_if_match(etag)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || e.code() == Some("NoSuchOriginAccessControl") => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("delete the origin access control {}", oac_name(ctx)),
                    e,
                ))
            }
        }
    }
    for bucket in [assets_bucket(ctx), logs_bucket(ctx)] {
        let s3 = ctx.aws.s3();
        let listed = match s3
            .list_object_versions()
            .bucket(&bucket)
            .max_keys(1)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("NoSuchBucket") => continue,
            Err(e) => return Err(aws_error(COMPONENT, format!("list the bucket {bucket}"), e)),
        };
        if !listed.versions().is_empty() || !listed.delete_markers().is_empty() {
            warnings.push(format!(
                "edge: the bucket {bucket} holds objects and was kept; empty and delete it yourself if it is no longer needed"
            ));
            continue;
        }
        match s3.delete_bucket().bucket(&bucket).send().await {
            Ok(_) => {}
            Err(e) if e.code() == Some("NoSuchBucket") => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("delete the bucket {bucket}"),
                    e,
                ))
            }
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: &str = "arn:aws:s3:::idis-p-assets-1-us-east-1";
    const DIST: &str = "arn:aws:cloudfront::1:distribution/E1";

    #[test]
    fn only_the_distribution_may_read_the_assets() {
        assert!(policy_problems(Some(&policy(BUCKET, DIST)), BUCKET, Some(DIST)).is_empty());
        // Another distribution's policy does not let ours read.
        let other = policy(BUCKET, "arn:aws:cloudfront::1:distribution/E2");
        let p = policy_problems(Some(&other), BUCKET, Some(DIST));
        assert!(p.iter().any(|p| p.contains("someone else")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("may not read")), "{p:?}");
        // A public read beside it.
        let mut doc: Value = serde_json::from_str(&policy(BUCKET, DIST)).unwrap();
        doc["Statement"].as_array_mut().unwrap().push(json!({
            "Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": format!("{BUCKET}/*")}));
        let p = policy_problems(Some(&doc.to_string()), BUCKET, Some(DIST));
        assert_eq!(p, ["statement Public allows s3:GetObject to everyone"]);
        assert_eq!(
            policy_problems(None, BUCKET, Some(DIST)),
            ["the bucket policy is missing"]
        );
    }
}
