//! `action "idis_restore_check"`: proves the database's backups restore.
//!
//! RestoreDBInstanceToPointInTime with `UseLatestRestorableTime` into a
//! temporary instance `idis-<env>-restore-check-<unix seconds>` (tagged
//! `idis:drill = restore-check` and with the environment's ownership tags,
//! so a tagging sweep finds it), in the source's subnet group and security
//! groups, single-AZ, no deletion protection. Once it is available its
//! engine, engine version, allocated storage, storage encryption and KMS
//! key must match the source's. Then the temporary instance is deleted
//! (no final snapshot) — also when the check fails, is stopped or
//! Terraform goes away. The delete is guarded twice: the identifier must
//! carry the restore-check prefix and the instance the drill tag, so the
//! source can never be the one deleted.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_rds::types::{DbInstance, PendingModifiedValues, Tag};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{arguments, invalid, seconds, smithy_rfc3339, Drill, Outcome};
use crate::components::{aws_error, database, ComponentError, Ctx};
use crate::protocol::cty::{Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{Attribute, Schema};

pub const TYPE_NAME: &str = "idis_restore_check";
const COMPONENT: &str = "restore check";
/// The tag that marks an instance as this drill's, and its value.
pub const DRILL_TAG: &str = "idis:drill";
const DRILL: &str = "restore-check";
/// How long a restore check may take in all (a restore of a large
/// database takes hours).
pub const LIMIT: Duration = Duration::from_secs(4 * 3600);
/// How long the cleanup after a stop may take: one DeleteDBInstance.
const CLEANUP_LIMIT: Duration = Duration::from_secs(60);
/// How long deleting the temporary instance may take after a check that
/// ran to its end (RDS takes minutes to delete an instance).
const DELETE_LIMIT: Duration = Duration::from_secs(3600);

pub fn schema() -> Schema {
    Schema::new(
        0,
        arguments("Restores the environment's database to its latest restorable time into a temporary instance `idis-<environment>-restore-check-<unix seconds>`, waits until it is available, checks that engine, engine version, allocated storage, storage encryption and KMS key match the source, reports the restore time and the restore point, and deletes the temporary instance (also on failure or interrupt). Refuses to run unless the database is `available` with no pending modifications and keeps automated backups. Ends with one line for a scheduled job: `restore_check env=... ok=true restore_seconds=... restore_point=...`.")
            .attr(Attribute::optional("instance_class", Type::String, "Instance class of the temporary instance (e.g. `db.t4g.medium`, cheaper than the source's). Default: the source's class.")),
    )
}

pub fn validate(config: &Value) -> Diagnostics {
    let class = config.get_attr("instance_class");
    match class.as_str() {
        Some(c) if !is_instance_class(c) => invalid(
            "instance_class",
            class,
            "use an RDS instance class such as \"db.t4g.medium\" (db.<family>.<size>)",
        )
        .into(),
        _ => Diagnostics::new(),
    }
}

fn is_instance_class(c: &str) -> bool {
    let parts: Vec<&str> = c.split('.').collect();
    parts.len() == 3
        && parts[0] == "db"
        && parts[1..].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// `idis-<env>-restore-check-`: every temporary instance's identifier
/// starts so; the source (`idis-<env>-db`) never does.
pub fn prefix(ctx: &Ctx) -> String {
    format!("{}-restore-check-", ctx.prefix())
}

fn status(db: &DbInstance) -> &str {
    db.db_instance_status().unwrap_or("unknown")
}

/// What RDS still has to apply, by name (empty when nothing).
fn pending(db: &DbInstance) -> Vec<&'static str> {
    let Some(p) = db.pending_modified_values() else {
        return Vec::new();
    };
    if *p == PendingModifiedValues::builder().build() {
        return Vec::new();
    }
    let named = [
        ("instance class", p.db_instance_class().is_some()),
        ("allocated storage", p.allocated_storage().is_some()),
        ("multi-AZ", p.multi_az().is_some()),
        ("engine version", p.engine_version().is_some()),
        ("backup retention", p.backup_retention_period().is_some()),
        ("storage type", p.storage_type().is_some()),
        ("master password", p.master_user_password().is_some()),
    ];
    let list: Vec<&'static str> = named.iter().filter(|n| n.1).map(|n| n.0).collect();
    if list.is_empty() {
        vec!["other settings"]
    } else {
        list
    }
}

async fn describe(ctx: &Ctx, id: &str) -> Result<Option<DbInstance>, ComponentError> {
    match ctx
        .aws
        .rds()
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("describe DB instance {id}"),
            e,
        )),
    }
}

fn refused(ctx: &Ctx, why: String) -> Diagnostics {
    Diagnostic::error(
        format!("{TYPE_NAME}: environment {:?} is not ready for a restore check", ctx.env),
        format!("{why} The restore check runs only against a steady environment: the database `available`, no modification pending, automated backups on. Let the change finish (terraform apply) and invoke it again."),
    )
    .into()
}

/// Why a drill may not start: a reason in words, or a failed read.
pub enum NotSteady {
    Because(String),
    Failed(Diagnostics),
}

/// The environment's primary when it is steady: `available`, nothing
/// pending (the rule both drills share).
pub async fn steady_database(ctx: &Ctx) -> Result<DbInstance, NotSteady> {
    let id = database::identifier(ctx);
    let source = match describe(ctx, &id).await {
        Ok(Some(db)) => db,
        Ok(None) => {
            return Err(NotSteady::Because(format!(
                "There is no database {id} in {}.",
                ctx.region
            )))
        }
        Err(e) => return Err(NotSteady::Failed(e.to_diagnostic().into())),
    };
    if status(&source) != "available" {
        return Err(NotSteady::Because(format!(
            "Database {id} is {:?}, not \"available\".",
            status(&source)
        )));
    }
    let pending = pending(&source);
    if !pending.is_empty() {
        return Err(NotSteady::Because(format!(
            "Database {id} has modifications pending: {}.",
            pending.join(", ")
        )));
    }
    Ok(source)
}

/// The source, when it can be restored from now; else why not.
pub async fn ready(ctx: &Ctx) -> Result<DbInstance, Diagnostics> {
    let id = database::identifier(ctx);
    let source = match steady_database(ctx).await {
        Ok(db) => db,
        Err(NotSteady::Because(why)) => return Err(refused(ctx, why)),
        Err(NotSteady::Failed(d)) => return Err(d),
    };
    if source.backup_retention_period().unwrap_or(0) < 1 {
        return Err(refused(ctx, format!("Database {id} keeps no automated backups (backup retention 0), so it has no point in time to restore to.")));
    }
    if source.latest_restorable_time().is_none() {
        return Err(refused(ctx, format!("Database {id} has no latest restorable time yet (its first backup is still being taken).")));
    }
    Ok(source)
}

/// What differs between the restored instance and its source.
pub fn mismatches(source: &DbInstance, restored: &DbInstance) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, want: String, have: String| {
        if want != have {
            out.push(format!("{what}: source {want}, restored {have}"));
        }
    };
    check(
        "engine",
        format!("{:?}", source.engine()),
        format!("{:?}", restored.engine()),
    );
    check(
        "engine version",
        format!("{:?}", source.engine_version()),
        format!("{:?}", restored.engine_version()),
    );
    check(
        "allocated storage (GiB)",
        format!("{:?}", source.allocated_storage()),
        format!("{:?}", restored.allocated_storage()),
    );
    check(
        "storage encrypted",
        format!("{:?}", source.storage_encrypted()),
        format!("{:?}", restored.storage_encrypted()),
    );
    check(
        "KMS key",
        format!("{:?}", source.kms_key_id()),
        format!("{:?}", restored.kms_key_id()),
    );
    out
}

/// The result line a scheduled job keeps.
pub fn result_line(
    env: &str,
    region: &str,
    ok: bool,
    restore: Option<Duration>,
    point: Option<&str>,
    instance: &str,
) -> String {
    format!(
        "restore_check env={env} region={region} ok={ok} restore_seconds={} restore_point={} instance={instance}",
        restore.map(seconds).unwrap_or_else(|| "none".into()),
        point.unwrap_or("none"),
    )
}

pub async fn run(drill: &Drill, instance_class: Option<&str>) -> Outcome {
    let ctx = &drill.ctx;
    drill
        .say(format!(
            "checking that database {} of {:?} is steady",
            database::identifier(ctx),
            ctx.env
        ))
        .await;
    let source = match ready(ctx).await {
        Ok(s) => s,
        Err(d) => return Outcome::refused(d),
    };
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let target = format!("{}{unix}", prefix(ctx));
    let outcome = restore_and_check(drill, &source, &target, instance_class).await;
    // Cleanup is not cancellable: a stop or a vanished Terraform is what
    // it is for. Its own limit keeps it bounded.
    let cancelled = ctx.cancel.is_cancelled();
    let cleanup_ctx = Ctx {
        cancel: CancellationToken::new(),
        deadline: Instant::now()
            + if cancelled {
                CLEANUP_LIMIT
            } else {
                DELETE_LIMIT
            },
        ..ctx.clone()
    };
    let cleanup = delete_temporary(drill, &cleanup_ctx, &target, !cancelled).await;
    let mut d = Diagnostics::new();
    let (ok, restore, point) = match outcome {
        Ok(Checked {
            restore,
            point,
            problems,
        }) => {
            if !problems.is_empty() {
                d.push(Diagnostic::error(
                    format!("{TYPE_NAME}: the restored database differs from its source"),
                    format!(
                        "Restored {target} from {}: {}.",
                        database::identifier(ctx),
                        problems.join("; ")
                    ),
                ));
            }
            (problems.is_empty(), Some(restore), Some(point))
        }
        Err(ComponentError::Cancelled { what, .. }) => {
            d.push(Diagnostic::error(
                format!("{TYPE_NAME}: stopped"),
                format!("Stopped while waiting for {what}: no restore result. The temporary instance {target} was deleted (see below if that failed); invoke the action again for a result."),
            ));
            (false, None, None)
        }
        Err(e) => {
            d.push(Diagnostic::error(
                format!("{TYPE_NAME}: the restore check did not complete"),
                e.to_string(),
            ));
            (false, None, None)
        }
    };
    if let Err(e) = cleanup {
        d.push(Diagnostic::error(
            format!("{TYPE_NAME}: the temporary instance {target} may still exist"),
            format!("{e}. Delete it by hand: aws rds delete-db-instance --db-instance-identifier {target} --skip-final-snapshot (it carries the tag {DRILL_TAG} = {DRILL})."),
        ));
    }
    let ok = ok && !d.has_errors();
    Outcome {
        line: Some(result_line(
            &ctx.env,
            &ctx.region,
            ok,
            restore,
            point.as_deref(),
            &target,
        )),
        diagnostics: d,
    }
}

struct Checked {
    restore: Duration,
    point: String,
    problems: Vec<String>,
}

async fn restore_and_check(
    drill: &Drill,
    source: &DbInstance,
    target: &str,
    instance_class: Option<&str>,
) -> Result<Checked, ComponentError> {
    let ctx = &drill.ctx;
    let source_id = database::identifier(ctx);
    let point = source
        .latest_restorable_time()
        .map(smithy_rfc3339)
        .unwrap_or_default();
    let class = instance_class
        .map(str::to_string)
        .or_else(|| source.db_instance_class().map(str::to_string))
        .unwrap_or_default();
    drill
        .say(format!(
            "restoring {source_id} to its latest restorable time ({point}) into {target} ({class})"
        ))
        .await;
    let mut tags: Vec<Tag> = ctx
        .tags(COMPONENT_TAG)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    tags.push(Tag::builder().key(DRILL_TAG).value(DRILL).build());
    let started = Instant::now();
    let mut request = ctx
        .aws
        .rds()
        .restore_db_instance_to_point_in_time()
        .source_db_instance_identifier(&source_id)
        .target_db_instance_identifier(target)
        .use_latest_restorable_time(true)
        .db_instance_class(&class)
        .multi_az(false)
        .publicly_accessible(false)
        .deletion_protection(false)
        .set_tags(Some(tags));
    if let Some(group) = source
        .db_subnet_group()
        .and_then(|g| g.db_subnet_group_name())
    {
        request = request.db_subnet_group_name(group);
    }
    for sg in source.vpc_security_groups() {
        if let Some(id) = sg.vpc_security_group_id() {
            request = request.vpc_security_group_ids(id);
        }
    }
    let sent = tokio::select! {
        r = request.send() => r,
        _ = ctx.cancel.cancelled() => return Err(ComponentError::Cancelled { component: COMPONENT, what: format!("restoring into {target}") }),
    };
    sent.map_err(|e| {
        aws_error(
            COMPONENT,
            format!("restore {source_id} to a point in time into {target}"),
            e,
        )
    })?;
    let last = Mutex::new(String::new());
    let restored = ctx
        .wait_for(COMPONENT, &format!("{target} to be available"), || async {
            let db = describe(ctx, target).await?;
            let now = db
                .as_ref()
                .map(status)
                .unwrap_or("not visible yet")
                .to_string();
            let mut last = last.lock().await;
            if *last != now {
                drill
                    .say(format!(
                        "{target}: {now} after {} s",
                        seconds(started.elapsed())
                    ))
                    .await;
                *last = now;
            }
            Ok(db.filter(|d| status(d) == "available"))
        })
        .await?;
    let restore = started.elapsed();
    let problems = mismatches(source, &restored);
    drill
        .say(format!(
            "{target} available after {} s; {}",
            seconds(restore),
            if problems.is_empty() {
                "engine, version, storage, encryption and KMS key match the source".to_string()
            } else {
                format!("differs: {}", problems.join("; "))
            }
        ))
        .await;
    Ok(Checked {
        restore,
        point,
        problems,
    })
}

/// The ownership tag `idis:component` of a temporary instance.
const COMPONENT_TAG: &str = "restore-check";

/// Deletes the temporary instance if it exists and is this drill's; with
/// `wait`, until AWS no longer lists it (else the delete request is
/// enough: a stopped run must not hold Terraform up).
async fn delete_temporary(
    drill: &Drill,
    ctx: &Ctx,
    target: &str,
    wait: bool,
) -> Result<(), ComponentError> {
    if !target.starts_with(&prefix(ctx)) || target == database::identifier(ctx) {
        return Err(ComponentError::Conflict {
            component: COMPONENT,
            message: format!("refusing to delete {target}: not a restore-check instance"),
        });
    }
    let Some(db) = describe(ctx, target).await? else {
        return Ok(());
    };
    let ours = db
        .tag_list()
        .iter()
        .any(|t| t.key() == Some(DRILL_TAG) && t.value() == Some(DRILL));
    if !ours {
        return Err(ComponentError::Conflict {
            component: COMPONENT,
            message: format!("refusing to delete {target}: it lacks the tag {DRILL_TAG} = {DRILL}"),
        });
    }
    if status(&db) != "deleting" {
        drill.say(format!("deleting {target}")).await;
        let deleted = ctx
            .aws
            .rds()
            .delete_db_instance()
            .db_instance_identifier(target)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await;
        match deleted {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
            {
                return Ok(())
            }
            Err(e) => return Err(aws_error(COMPONENT, format!("delete {target}"), e)),
        }
    }
    if wait {
        ctx.wait_for(COMPONENT, &format!("{target} to be deleted"), || async {
            Ok(describe(ctx, target).await?.is_none().then_some(()))
        })
        .await?;
        drill.say(format!("{target} deleted")).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(engine_version: &str, storage: i32, kms: &str) -> DbInstance {
        DbInstance::builder()
            .engine("postgres")
            .engine_version(engine_version)
            .allocated_storage(storage)
            .storage_encrypted(true)
            .kms_key_id(kms)
            .build()
    }

    #[test]
    fn a_restore_that_matches_its_source_has_no_mismatch() {
        assert!(mismatches(&db("16.4", 100, "k"), &db("16.4", 100, "k")).is_empty());
    }

    #[test]
    fn each_difference_is_named_with_both_values() {
        let m = mismatches(&db("16.4", 100, "k1"), &db("16.3", 200, "k2"));
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(
            m[0].starts_with("engine version: source Some(\"16.4\")"),
            "{m:?}"
        );
        assert!(m.iter().any(|x| x.starts_with("KMS key")), "{m:?}");
    }

    #[test]
    fn pending_modifications_are_named() {
        let none = DbInstance::builder()
            .pending_modified_values(PendingModifiedValues::builder().build())
            .build();
        assert!(pending(&none).is_empty());
        let some = DbInstance::builder()
            .pending_modified_values(
                PendingModifiedValues::builder()
                    .db_instance_class("db.r6g.2xlarge")
                    .build(),
            )
            .build();
        assert_eq!(pending(&some), vec!["instance class"]);
    }

    #[test]
    fn the_result_line_is_one_line_of_key_value_pairs() {
        let line = result_line(
            "production",
            "us-east-1",
            true,
            Some(Duration::from_millis(61_250)),
            Some("2026-12-02T16:00:00Z"),
            "idis-production-restore-check-1",
        );
        assert_eq!(line, "restore_check env=production region=us-east-1 ok=true restore_seconds=61.2 restore_point=2026-12-02T16:00:00Z instance=idis-production-restore-check-1");
        assert!(result_line("p", "r", false, None, None, "i")
            .contains("ok=false restore_seconds=none restore_point=none"));
    }

    #[test]
    fn instance_classes_are_checked() {
        assert!(is_instance_class("db.t4g.medium"));
        assert!(!is_instance_class("t4g.medium"));
        assert!(!is_instance_class("db.T4g.medium"));
    }
}
