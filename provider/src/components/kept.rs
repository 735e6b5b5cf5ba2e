//! What a destroy leaves behind on purpose that the environment's keys
//! encrypt: the buckets it keeps (the audit bucket, the documents bucket,
//! the CDN assets and the DR copies, in any region) and the database's
//! final snapshots. While any of it is left the keys are kept
//! (`keys::delete`): a key scheduled for deletion takes the data with it
//! once the window ends, and COMPLIANCE-locked audit records outlive any
//! window KMS offers (7 to 30 days).
//!
//! The retained automated backups are not counted: they expire with their
//! retention period (at most 35 days) as the keys' window runs (at most
//! 30), and within it `CancelKeyDeletion` makes them restorable again.

use super::{aws_error, database, ComponentError, Ctx};

/// The environment's buckets that hold data encrypted with its keys, by
/// the kind in their name (`idis-<env>-<kind>-<account>-<region>`); the
/// access-log buckets use SSE-S3.
const ENCRYPTED_BUCKETS: [&str; 3] = ["audit", "documents", "assets"];

/// Whether `bucket` is one of the environment's encrypted buckets in any
/// region (`idis-prod-eu-…` is not `idis-prod`'s).
fn is_encrypted_bucket(prefix: &str, account: &str, bucket: &str) -> bool {
    ENCRYPTED_BUCKETS.iter().any(|kind| {
        bucket
            .strip_prefix(&format!("{prefix}-{kind}-{account}-"))
            // The rest is the region alone: an environment named
            // `<env>-audit-<account>-…` names a bucket of its own.
            .is_some_and(|rest| super::is_region_name(rest) && !rest.contains(account))
    })
}

/// What is left that the keys encrypt, in words ("bucket X", "final
/// snapshot Y", ...); empty when nothing is.
pub async fn encrypted_data_left(
    ctx: &Ctx,
    component: &'static str,
) -> Result<Vec<String>, ComponentError> {
    let mut left = Vec::new();
    // ListBuckets is global: the DR copies are found with the rest.
    let s3 = ctx.aws.s3();
    let mut token: Option<String> = None;
    loop {
        let out = s3
            .list_buckets()
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| aws_error(component, "list the buckets left", e))?;
        left.extend(
            out.buckets()
                .iter()
                .filter_map(|b| b.name())
                .filter(|name| is_encrypted_bucket(&ctx.prefix(), &ctx.account_id, name))
                .map(|name| format!("bucket {name}")),
        );
        match out.continuation_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }

    let rds = ctx.aws.rds();
    let id = database::identifier(ctx);
    let snapshots = rds
        .describe_db_snapshots()
        .db_instance_identifier(&id)
        .snapshot_type("manual")
        .send()
        .await
        .map_err(|e| aws_error(component, format!("list the snapshots of {id}"), e))?;
    left.extend(
        snapshots
            .db_snapshots()
            .iter()
            .filter_map(|s| s.db_snapshot_identifier())
            .map(|s| format!("snapshot {s}")),
    );
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_environments_own_encrypted_buckets_count() {
        let ours = |bucket: &str| is_encrypted_bucket("idis-prod", "123456789012", bucket);
        assert!(ours("idis-prod-audit-123456789012-us-east-1"));
        assert!(ours("idis-prod-documents-123456789012-us-west-2"));
        assert!(!ours("idis-prod-access-logs-123456789012-us-east-1"));
        assert!(!ours("idis-prod-eu-audit-123456789012-us-east-1"));
        assert!(!ours("idis-prod-audit-210987654321-us-east-1"));
        assert!(!ours("idis-prod-audit-123456789012-not-a-region!"));
        // The audit bucket of environment `prod-audit-123456789012-us`.
        assert!(!ours(
            "idis-prod-audit-123456789012-us-audit-123456789012-us-east-1"
        ));
    }
}
