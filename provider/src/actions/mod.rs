//! Actions (Terraform 1.14+: `action` blocks, `terraform apply
//! -invoke=action.<type>.<name>`): drills that prove an environment can
//! recover, run on demand or by a scheduled job, never part of a plan.
//!
//! - `idis_restore_check` restores the database to its latest restorable
//!   time into a temporary instance, checks it and deletes it.
//! - `idis_failover_drill` forces a Multi-AZ failover of the database and
//!   of the cache and measures how long each took to serve again.
//! - `idis_dr_promote` promotes the DR site's database asking only the DR
//!   region: the promotion for when the primary region does not answer.
//!
//! An action cannot see Terraform's plan, so "no pending changes" is
//! judged from AWS: each refuses to start unless what it drills is
//! `available` with nothing pending (see [`steady`]). Each streams
//! progress and ends with one line a scheduled job can keep
//! (`restore_check env=... ok=true ...`).
//!
//! Terraform 1.11 has no actions: `terraform-provider-idis drill
//! restore-check|failover --environment NAME` runs the same code (see
//! [`cli`]).

pub mod cli;
pub mod dr_promote;
pub mod failover_drill;
pub mod restore_check;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::components::Ctx;
use crate::environment::{orchestrate, validate};
use crate::protocol::cty::{Path, Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Schema};
use crate::protocol::server::{unknown_type, ActionProgress};
use crate::provider::config::Aws;

/// The arguments every drill takes.
fn arguments(description: &str) -> Block {
    Block::new(description)
        .attr(Attribute::required("environment", Type::String, "Name of the environment to drill: the `name` of its `idis_environment` (the module's `environment` input)."))
        .attr(Attribute::optional("region", Type::String, "Region the environment is in. Default: the provider's region."))
}

pub fn schemas() -> BTreeMap<String, Schema> {
    BTreeMap::from([
        (
            restore_check::TYPE_NAME.to_string(),
            restore_check::schema(),
        ),
        (
            failover_drill::TYPE_NAME.to_string(),
            failover_drill::schema(),
        ),
        (dr_promote::TYPE_NAME.to_string(), dr_promote::schema()),
    ])
}

/// `environment` and `region` as the resource checks `name` and `region`,
/// reported at this action's own attribute names.
pub fn validate(type_name: &str, config: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    let env = config.get_attr("environment");
    if let Some(name) = env.as_str() {
        if !validate::is_env_name(name) {
            d.push(invalid("environment", env, "use the name of an idis_environment: 1 to 23 lowercase letters, digits and single dashes, starting with a letter"));
        }
    }
    let region = config.get_attr("region");
    if region.as_str().is_some_and(|r| !validate::is_region(r)) {
        d.push(invalid(
            "region",
            region,
            "use an AWS region name such as \"us-east-1\"",
        ));
    }
    if type_name == restore_check::TYPE_NAME {
        d.extend(restore_check::validate(config));
    }
    if type_name == dr_promote::TYPE_NAME {
        d.extend(dr_promote::validate(config));
    }
    d
}

fn invalid(attr: &str, value: &Value, allowed: &str) -> Diagnostic {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        _ => "null".into(),
    };
    Diagnostic::error(
        format!("Invalid {attr}"),
        format!("{attr} = {shown} is not allowed: {allowed}."),
    )
    .at(Path::root().attr(attr))
}

/// What a drill needs: the environment's context, with its own deadline
/// and cancellation, and a note of where it runs.
pub struct Drill {
    pub ctx: Ctx,
    pub progress: ActionProgress,
}

impl Drill {
    pub async fn say(&self, message: impl Into<String>) {
        self.progress.send(message).await;
    }
}

/// How a drill ended: its diagnostics, and the result line a scheduled
/// job keeps (none when it refused to start).
pub struct Outcome {
    pub line: Option<String>,
    pub diagnostics: Diagnostics,
}

impl Outcome {
    fn refused(diagnostics: Diagnostics) -> Self {
        Outcome {
            line: None,
            diagnostics,
        }
    }
}

/// The context of the environment `config` names, bounded by `limit` and
/// cancelled by `cancel`.
async fn context(
    aws: &Arc<Aws>,
    config: &Value,
    cancel: &CancellationToken,
    limit: Duration,
) -> Result<Ctx, Diagnostics> {
    let name = config.get_attr("environment").as_str().unwrap_or_default();
    let region = config
        .get_attr("region")
        .as_str()
        .unwrap_or(&aws.region)
        .to_string();
    let mut ctx = orchestrate::context_of(aws, name, &region, cancel).await?;
    ctx.deadline = Instant::now() + limit;
    ctx.cancel = cancel.clone();
    Ok(ctx)
}

/// Checks the action can run: config known and valid, environment found
/// and steady. PlanAction runs it, and InvokeAction again right before
/// the drill (the environment may have changed in between).
pub async fn plan(
    aws: &Arc<Aws>,
    type_name: &str,
    config: &Value,
    cancel: &CancellationToken,
) -> Diagnostics {
    let mut d = validate(type_name, config);
    if d.has_errors() || !config.is_wholly_known() {
        return d;
    }
    let ctx = match context(aws, config, cancel, Duration::from_secs(120)).await {
        Ok(ctx) => ctx,
        Err(e) => return e,
    };
    let refusal = match type_name {
        restore_check::TYPE_NAME => restore_check::ready(&ctx).await.err(),
        failover_drill::TYPE_NAME => failover_drill::ready(&ctx).await.err(),
        dr_promote::TYPE_NAME => dr_promote::ready(&ctx).await.err(),
        other => Some(unknown_type("action", other).into()),
    };
    d.extend(refusal.unwrap_or_default());
    d
}

/// Runs an action to its end. Its own cancellation follows the provider's
/// StopProvider and Terraform going away; cleanup runs either way, and
/// [`settle`] waits for it.
pub async fn invoke(
    aws: &Arc<Aws>,
    type_name: &str,
    config: Value,
    progress: ActionProgress,
    stop: &CancellationToken,
) -> Diagnostics {
    let outcome = drill(aws, type_name, &config, progress, stop).await;
    outcome.diagnostics
}

/// Runs the drill `type_name` on the environment `config` names, to its
/// end; the result line is the last progress message. Its cancellation
/// follows `stop` and Terraform going away (the progress stream closing);
/// cleanup runs either way, and [`settle`] waits for it.
pub async fn drill(
    aws: &Arc<Aws>,
    type_name: &str,
    config: &Value,
    progress: ActionProgress,
    stop: &CancellationToken,
) -> Outcome {
    let _running = InFlight::enter();
    let cancel = stop.child_token();
    let limit = match type_name {
        restore_check::TYPE_NAME => restore_check::LIMIT,
        dr_promote::TYPE_NAME => dr_promote::LIMIT,
        _ => failover_drill::LIMIT,
    };
    let ctx = match context(aws, config, &cancel, limit).await {
        Ok(ctx) => ctx,
        Err(e) => return Outcome::refused(e),
    };
    let drill = Drill { ctx, progress };
    let run = async {
        let outcome = match type_name {
            restore_check::TYPE_NAME => {
                restore_check::run(&drill, config.get_attr("instance_class").as_str()).await
            }
            failover_drill::TYPE_NAME => failover_drill::run(&drill).await,
            dr_promote::TYPE_NAME => {
                dr_promote::run(&drill, config.get_attr("backup_retention_days").as_i64()).await
            }
            other => Outcome::refused(unknown_type("action", other).into()),
        };
        if let Some(line) = &outcome.line {
            drill.say(line.clone()).await;
        }
        outcome
    };
    // Terraform dropping the stream (Ctrl-C, a crash) cancels the drill as
    // StopProvider does; the drill then cleans up and returns.
    let gone = async {
        drill.progress.closed().await;
        cancel.cancel();
        std::future::pending::<()>().await;
    };
    tokio::select! {
        outcome = run => outcome,
        _ = gone => unreachable!(),
    }
}

/// Drills running now; [`settle`] waits for none.
fn in_flight() -> &'static watch::Sender<usize> {
    static IN_FLIGHT: OnceLock<watch::Sender<usize>> = OnceLock::new();
    IN_FLIGHT.get_or_init(|| watch::channel(0).0)
}

struct InFlight;

impl InFlight {
    fn enter() -> InFlight {
        in_flight().send_modify(|n| *n += 1);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        in_flight().send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Waits up to `limit` until no drill runs (so a stopped drill has
/// deleted what it made before the process may exit). True when none is
/// left.
pub async fn settle(limit: Duration) -> bool {
    let mut rx = in_flight().subscribe();
    tokio::time::timeout(limit, rx.wait_for(|n| *n == 0))
        .await
        .is_ok_and(|r| r.is_ok())
}

fn smithy_rfc3339(t: &aws_smithy_types::DateTime) -> String {
    t.fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// Seconds with one decimal, as the result lines give them.
fn seconds(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(env: &str, region: Option<&str>) -> Value {
        let mut c = Value::Object(BTreeMap::new());
        c.set_attr("environment", Value::string(env));
        c.set_attr("region", region.map(Value::string).unwrap_or(Value::Null));
        c.set_attr("instance_class", Value::Null);
        c
    }

    #[test]
    fn a_bad_environment_or_region_is_named_with_its_value() {
        let d = validate(restore_check::TYPE_NAME, &config("Prod_1", Some("mars-1")));
        let text: String = d.0.iter().map(|x| x.detail.clone()).collect();
        assert!(d.has_errors());
        assert!(text.contains("environment = \"Prod_1\""), "{text}");
        assert!(text.contains("region = \"mars-1\""), "{text}");
        assert!(!validate(failover_drill::TYPE_NAME, &config("production", None)).has_errors());
    }

    #[tokio::test]
    async fn settle_waits_for_running_drills_only() {
        assert!(settle(Duration::from_millis(10)).await);
        let running = InFlight::enter();
        assert!(!settle(Duration::from_millis(20)).await);
        drop(running);
        assert!(settle(Duration::from_millis(10)).await);
    }

    #[test]
    fn seconds_have_one_decimal() {
        assert_eq!(seconds(Duration::from_millis(12_345)), "12.3");
    }
}
