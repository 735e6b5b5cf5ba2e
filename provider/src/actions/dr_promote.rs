//! `action "idis_dr_promote"`: promotes the DR site's database when the
//! primary region does not answer.
//!
//! `dr.promote = true` in an apply does the whole promotion, but an apply
//! reads and converges every component, the primary region's first: with
//! that region down it fails before promoting. This action asks the DR
//! region alone (`region`, the DR region; run it from a configuration
//! whose provider is there too, so not even the account lookup goes to the
//! primary region): it promotes the cross-Region replica `idis-<env>-db`
//! to a standalone instance with `backup_retention_days` of automated
//! backups, and has RDS keep the master password in a secret of the DR
//! region encrypted with the platform key's replica there
//! (`dr::promote_database`, the same code the apply runs). Once the
//! primary region answers, `dr_promote = true` and an apply find the
//! database promoted and build the rest of the DR site (NAT gateways,
//! cache, cluster) and switch `app_config`.
//!
//! It refuses when there is no DR database, and reports a database that
//! already stands alone as promoted before (`promoted_now=false`).

use std::time::{Duration, Instant};

use super::{arguments, invalid, seconds, Drill, Outcome};
use crate::components::{database, dr, keys, ComponentError, Ctx};
use crate::protocol::cty::{Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{Attribute, Schema};

pub const TYPE_NAME: &str = "idis_dr_promote";
/// How long the promotion may take in all (RDS takes minutes; a replica
/// still catching up waits for `available` first).
pub const LIMIT: Duration = Duration::from_secs(3600);
/// REQ-T236: point-in-time recovery for 7 days.
pub const DEFAULT_BACKUP_RETENTION_DAYS: i64 = 7;

pub fn schema() -> Schema {
    Schema::new(
        0,
        arguments("Promotes the environment's DR database in `region` (the DR region) to a standalone instance and has RDS keep its master password in a secret of that region, asking nothing of the primary region: the promotion for when the primary region does not answer. One way: RDS cannot make the instance a replica again. Once the primary region answers, set `dr_promote = true` and apply to build the rest of the DR site. Ends with one line: `dr_promote env=... region=... ok=true promoted_now=true promote_seconds=...`.")
            .attr(Attribute::optional("backup_retention_days", Type::Number, "Days of automated backups the promoted database keeps, 1 to 35 (its point-in-time window). Default 7 (REQ-T236); the next apply with `dr_promote = true` sets the database block's.")),
    )
}

pub fn validate(config: &Value) -> Diagnostics {
    let days = config.get_attr("backup_retention_days");
    match days.as_i64() {
        Some(d) if !(1..=35).contains(&d) => invalid(
            "backup_retention_days",
            &Value::int(d),
            "from 1 to 35 (RDS keeps automated backups 1 to 35 days)",
        )
        .into(),
        _ => Diagnostics::new(),
    }
}

fn refused(ctx: &Ctx, why: String) -> Diagnostics {
    Diagnostic::error(
        format!(
            "{TYPE_NAME}: environment {:?} has no DR database to promote in {}",
            ctx.env, ctx.region
        ),
        format!("{why} Set `region` to the environment's DR region (its `dr.region`)."),
    )
    .into()
}

/// The platform key's replica in the DR region, by its alias there.
async fn replica_key(ctx: &Ctx) -> Result<Option<String>, ComponentError> {
    let alias = keys::alias_name(ctx, keys::PLATFORM);
    match ctx.aws.kms().describe_key().key_id(&alias).send().await {
        Ok(out) => Ok(out.key_metadata().and_then(|m| m.arn()).map(str::to_string)),
        Err(e) if crate::components::is_not_found(&e) => Ok(None),
        Err(e) => Err(crate::components::aws_error(
            TYPE_NAME,
            format!("describe the key {alias}"),
            e,
        )),
    }
}

/// The DR database and the key its secret goes under, when there is a DR
/// site in `ctx`'s region to promote.
pub async fn ready(ctx: &Ctx) -> Result<String, Diagnostics> {
    let id = database::identifier(ctx);
    match database::describe_instance(&ctx.aws.rds(), &id, TYPE_NAME).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(refused(
                ctx,
                format!("There is no database {id} in {}.", ctx.region),
            ))
        }
        Err(e) => return Err(e.to_diagnostic().into()),
    }
    match replica_key(ctx).await {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(refused(
            ctx,
            format!(
                "The platform key has no replica aliased {} in {}: this is not the environment's DR region.",
                keys::alias_name(ctx, keys::PLATFORM),
                ctx.region
            ),
        )),
        Err(e) => Err(e.to_diagnostic().into()),
    }
}

/// The result line a scheduled job or a runbook keeps.
pub fn result_line(
    env: &str,
    region: &str,
    ok: bool,
    promoted_now: bool,
    took: Duration,
) -> String {
    format!(
        "dr_promote env={env} region={region} ok={ok} promoted_now={promoted_now} promote_seconds={}",
        seconds(took)
    )
}

pub async fn run(drill: &Drill, backup_retention_days: Option<i64>) -> Outcome {
    let ctx = &drill.ctx;
    let key = match ready(ctx).await {
        Ok(key) => key,
        Err(d) => return Outcome::refused(d),
    };
    let id = database::identifier(ctx);
    drill
        .say(format!(
            "promoting {id} in {} to a standalone database (one way)",
            ctx.region
        ))
        .await;
    let started = Instant::now();
    let retention = backup_retention_days.unwrap_or(DEFAULT_BACKUP_RETENTION_DAYS);
    match dr::promote_database(ctx, retention, &key).await {
        Ok(promoted_now) => {
            if !promoted_now {
                drill
                    .say(format!("{id} stood alone already: promoted before"))
                    .await;
            }
            Outcome {
                line: Some(result_line(
                    &ctx.env,
                    &ctx.region,
                    true,
                    promoted_now,
                    started.elapsed(),
                )),
                diagnostics: Diagnostics::new(),
            }
        }
        Err(e) => Outcome {
            line: Some(result_line(
                &ctx.env,
                &ctx.region,
                false,
                false,
                started.elapsed(),
            )),
            diagnostics: e.to_diagnostic().into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retention_outside_what_rds_keeps_is_named() {
        let mut config = Value::Null;
        config.set_attr("backup_retention_days", Value::int(0));
        let d = validate(&config);
        assert!(d.has_errors());
        assert!(format!("{:?}", d.0[0].detail).contains("backup_retention_days = 0 is not allowed"));
        config.set_attr("backup_retention_days", Value::int(7));
        assert!(!validate(&config).has_errors());
    }

    #[test]
    fn the_result_line_says_whether_it_promoted_now() {
        assert_eq!(
            result_line("p", "us-west-2", true, true, Duration::from_millis(4_250)),
            "dr_promote env=p region=us-west-2 ok=true promoted_now=true promote_seconds=4.2"
        );
    }
}
