//! `action "idis_failover_drill"`: exercises the failovers an outage
//! would trigger, and measures them.
//!
//! The database: RebootDBInstance with `ForceFailover` (the standby takes
//! over; RDS accepts it only for a Multi-AZ instance). The cache:
//! ElastiCache TestFailover on the replication group's node group (only
//! with automatic failover on). Each is timed from the call until the
//! database (or replication group and node group) is `available` again.
//! The two run one after the other, so each measurement is its own.

use std::time::{Duration, Instant};

use aws_sdk_elasticache::types::{AutomaticFailoverStatus, ReplicationGroup};
use aws_sdk_rds::types::DbInstance;
use tokio::sync::Mutex;

use super::restore_check::{self, NotSteady};
use super::{arguments, seconds, Drill, Outcome};
use crate::components::{aws_error, cache, database, ComponentError, Ctx};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::Schema;

pub const TYPE_NAME: &str = "idis_failover_drill";
const COMPONENT: &str = "failover drill";
/// How long the drill may take in all.
pub const LIMIT: Duration = Duration::from_secs(3600);

pub fn schema() -> Schema {
    Schema::new(
        0,
        arguments("Forces a Multi-AZ failover of the environment's database (RebootDBInstance with ForceFailover) and then of its cache (ElastiCache TestFailover on the replication group's node group), waits until each serves again and reports each measured failover time. Refuses to run unless the database is Multi-AZ and `available` with no pending modifications, and the cache is `available` with automatic failover on. Ends with one line for a scheduled job: `failover_drill env=... ok=true database_failover_seconds=... cache_failover_seconds=...`."),
    )
}

fn refused(ctx: &Ctx, why: String) -> Diagnostics {
    Diagnostic::error(
        format!("{TYPE_NAME}: environment {:?} is not ready for a failover drill", ctx.env),
        format!("{why} The failover drill runs only against a steady environment: a Multi-AZ database `available` with no modification pending, and a cache `available` with automatic failover on."),
    )
    .into()
}

fn group_status(g: &ReplicationGroup) -> &str {
    g.status().unwrap_or("unknown")
}

async fn describe_group(ctx: &Ctx, id: &str) -> Result<Option<ReplicationGroup>, ComponentError> {
    match ctx
        .aws
        .elasticache()
        .describe_replication_groups()
        .replication_group_id(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.replication_groups().first().cloned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_replication_group_not_found_fault()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("describe replication group {id}"),
            e,
        )),
    }
}

/// The database and the replication group, when both can fail over now.
pub async fn ready(ctx: &Ctx) -> Result<(DbInstance, ReplicationGroup), Diagnostics> {
    let db = match restore_check::steady_database(ctx).await {
        Ok(db) => db,
        Err(NotSteady::Because(why)) => return Err(refused(ctx, why)),
        Err(NotSteady::Failed(d)) => return Err(d),
    };
    if db.multi_az() != Some(true) {
        return Err(refused(
            ctx,
            format!("Database {} is not Multi-AZ (database.multi_az = false): it has no standby to fail over to.", database::identifier(ctx)),
        ));
    }
    let id = cache::replication_group_id(ctx);
    let group = match describe_group(ctx, &id).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            return Err(refused(
                ctx,
                format!("There is no replication group {id} in {}.", ctx.region),
            ))
        }
        Err(e) => return Err(e.to_diagnostic().into()),
    };
    if group_status(&group) != "available" {
        return Err(refused(
            ctx,
            format!(
                "Replication group {id} is {:?}, not \"available\".",
                group_status(&group)
            ),
        ));
    }
    if group.automatic_failover() != Some(&AutomaticFailoverStatus::Enabled) {
        return Err(refused(
            ctx,
            format!("Replication group {id} has automatic failover off (cache.multi_az = false or one node): TestFailover needs it on."),
        ));
    }
    if group.node_groups().is_empty() {
        return Err(refused(
            ctx,
            format!("Replication group {id} reports no node group."),
        ));
    }
    Ok((db, group))
}

/// The result line a scheduled job keeps.
pub fn result_line(
    env: &str,
    region: &str,
    ok: bool,
    database: Option<Duration>,
    cache: Option<Duration>,
) -> String {
    let show = |d: Option<Duration>| d.map(seconds).unwrap_or_else(|| "none".into());
    format!(
        "failover_drill env={env} region={region} ok={ok} database_failover_seconds={} cache_failover_seconds={}",
        show(database),
        show(cache)
    )
}

pub async fn run(drill: &Drill) -> Outcome {
    let ctx = &drill.ctx;
    drill
        .say(format!(
            "checking that the database and cache of {:?} are steady",
            ctx.env
        ))
        .await;
    let (_, group) = match ready(ctx).await {
        Ok(found) => found,
        Err(d) => return Outcome::refused(d),
    };
    let mut d = Diagnostics::new();
    let database = match fail_over_database(drill).await {
        Ok(t) => Some(t),
        Err(e) => {
            d.push(failed(e));
            None
        }
    };
    let cache = if database.is_some() {
        match fail_over_cache(drill, &group).await {
            Ok(t) => Some(t),
            Err(e) => {
                d.push(failed(e));
                None
            }
        }
    } else {
        None
    };
    let ok = !d.has_errors();
    Outcome {
        line: Some(result_line(&ctx.env, &ctx.region, ok, database, cache)),
        diagnostics: d,
    }
}

async fn fail_over_database(drill: &Drill) -> Result<Duration, ComponentError> {
    let ctx = &drill.ctx;
    let id = database::identifier(ctx);
    drill
        .say(format!("database: rebooting {id} with ForceFailover"))
        .await;
    let started = Instant::now();
    ctx.aws
        .rds()
        .reboot_db_instance()
        .db_instance_identifier(&id)
        .force_failover(true)
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("reboot {id} with failover"), e))?;
    let last = Mutex::new(String::new());
    ctx.wait_for(
        COMPONENT,
        &format!("{id} to be available after failover"),
        || async {
            let db = ctx
                .aws
                .rds()
                .describe_db_instances()
                .db_instance_identifier(&id)
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, format!("describe DB instance {id}"), e))?;
            let status = db
                .db_instances()
                .first()
                .and_then(|d| d.db_instance_status())
                .unwrap_or("unknown")
                .to_string();
            note(drill, &last, &format!("database: {id} {status}"), started).await;
            Ok((status == "available").then_some(()))
        },
    )
    .await?;
    let took = started.elapsed();
    drill
        .say(format!(
            "database: {id} serves again after {} s",
            seconds(took)
        ))
        .await;
    Ok(took)
}

async fn fail_over_cache(
    drill: &Drill,
    group: &ReplicationGroup,
) -> Result<Duration, ComponentError> {
    let ctx = &drill.ctx;
    let id = cache::replication_group_id(ctx);
    let node_group = group.node_groups()[0]
        .node_group_id()
        .unwrap_or("0001")
        .to_string();
    drill
        .say(format!(
            "cache: TestFailover on {id} node group {node_group}"
        ))
        .await;
    let started = Instant::now();
    ctx.aws
        .elasticache()
        .test_failover()
        .replication_group_id(&id)
        .node_group_id(&node_group)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!("test failover of {id} node group {node_group}"),
                e,
            )
        })?;
    let last = Mutex::new(String::new());
    ctx.wait_for(
        COMPONENT,
        &format!("{id} to be available after failover"),
        || async {
            let Some(g) = describe_group(ctx, &id).await? else {
                return Err(ComponentError::Conflict {
                    component: COMPONENT,
                    message: format!("replication group {id} disappeared during the failover"),
                });
            };
            let members = g
                .node_groups()
                .iter()
                .find(|n| n.node_group_id() == Some(node_group.as_str()));
            let node_status = members.and_then(|n| n.status()).unwrap_or("unknown");
            let serving = members.is_some_and(|n| n.primary_endpoint().is_some());
            note(
                drill,
                &last,
                &format!("cache: {id} {}, node group {node_status}", group_status(&g)),
                started,
            )
            .await;
            Ok(
                (group_status(&g) == "available" && node_status == "available" && serving)
                    .then_some(()),
            )
        },
    )
    .await?;
    let took = started.elapsed();
    drill
        .say(format!(
            "cache: {id} serves again after {} s",
            seconds(took)
        ))
        .await;
    Ok(took)
}

/// A failover that did not finish, as the run reports it.
fn failed(e: ComponentError) -> Diagnostic {
    match e {
        ComponentError::Cancelled { what, .. } => Diagnostic::error(
            format!("{TYPE_NAME}: stopped"),
            format!("Stopped while waiting for {what}: no failover time measured. A failover AWS has begun goes on; check the status before invoking the drill again."),
        ),
        e => e.to_diagnostic(),
    }
}

/// Streams a status when it changes.
async fn note(drill: &Drill, last: &Mutex<String>, now: &str, started: Instant) {
    let mut last = last.lock().await;
    if *last != now {
        drill
            .say(format!("{now} after {} s", seconds(started.elapsed())))
            .await;
        *last = now.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_line_says_none_for_what_did_not_run() {
        assert_eq!(
            result_line("staging", "eu-west-1", false, Some(Duration::from_millis(2500)), None),
            "failover_drill env=staging region=eu-west-1 ok=false database_failover_seconds=2.5 cache_failover_seconds=none"
        );
    }
}
