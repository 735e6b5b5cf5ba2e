//! Apply, refresh, import and destroy of a whole environment.
//!
//! The order is the components' own: each names the components it needs
//! (`Component::AFTER`), and starts as soon as they are built, so
//! independent components are built at the same time (keys and network
//! first; then cluster, database, cache and audit storage; the edge
//! last). Destroy runs the same graph backwards. Refresh reads every
//! component concurrently. A failure stops only what depends on the
//! failed component; the state returned says what exists, so the next
//! apply resumes instead of duplicating. Nothing here names a component.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use super::observe::{self, Mode};
use super::plan;
use super::schema::{DEFAULT_TIMEOUT, TIMEOUTS};
use super::validate::parse_duration;
use crate::components::describe::{Component, Visit};
use crate::components::{self as all, ComponentError, Ctx, Found, Observed};
use crate::logging;
use crate::protocol::cty::{self, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::provider::config::Aws;

/// The first poll interval of waits. Real AWS components take minutes, so
/// polls start at 5 s; `IDIS_POLL_INTERVAL_MS` shortens it for tests and
/// benchmarks against an emulator.
fn poll_interval() -> Duration {
    std::env::var("IDIS_POLL_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(5))
}

/// The `timeouts` setting that bounds an operation, as the user wrote it
/// (or the default): its duration, and how to name it in a message
/// (`timeouts.create = "20s"`).
fn limit_of(state: &Value, op: &str) -> (Duration, String) {
    let text = state
        .get_attr(TIMEOUTS)
        .get_attr(op)
        .as_str()
        .unwrap_or(DEFAULT_TIMEOUT)
        .to_string();
    let seconds = parse_duration(&text)
        .or_else(|| parse_duration(DEFAULT_TIMEOUT))
        .unwrap_or(5400);
    (
        Duration::from_secs(seconds),
        format!("{TIMEOUTS}.{op} = {text:?}"),
    )
}

/// Builds the component context for the environment described by `state`.
pub(super) async fn context(
    aws: &Arc<Aws>,
    state: &Value,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Ctx, Diagnostics> {
    let name = state
        .get_attr("name")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let region = state
        .get_attr("region")
        .as_str()
        .unwrap_or(&aws.region)
        .to_string();
    let aws = if region == aws.region {
        aws.clone()
    } else {
        Arc::new(aws.with_region(&region))
    };
    let account_id = aws.account_id().await.map_err(Diagnostics::from)?;
    let mut user_tags = aws.default_tags.clone();
    user_tags.extend(state.get_attr("tags").as_string_map().unwrap_or_default());
    Ok(Ctx {
        aws,
        env: name,
        account_id,
        region,
        user_tags,
        cancel: cancel.clone(),
        deadline: Instant::now() + timeout,
        poll_interval: poll_interval(),
        dr_site: false,
    })
}

/// A component's failure, naming the `timeouts` setting when it ran out.
fn failed(e: &ComponentError, limit: &str) -> Diagnostic {
    match e {
        ComponentError::Timeout { .. } => Diagnostic::error(
            format!("{}: timed out ({limit})", e.component()),
            format!("{e}. The limit is {limit}; what was made so far is kept in the state."),
        ),
        _ => e.to_diagnostic(),
    }
}

/// The per-apply summary of AWS retries, for the log.
fn retries_note(ctx: &Ctx) -> String {
    format!(
        "AWS calls retried in this provider run: {}",
        ctx.aws.retries.summary()
    )
}

/// A component's planned block as its typed Spec: where values cross
/// from Terraform's dynamic values into the components.
fn spec<C: Component>(planned: &Value) -> Result<C::Spec, Diagnostics> {
    let mut block = planned.get_attr(C::NAME).clone();
    // The map of settings without a knob is the plan's, not an argument.
    if let Value::Object(attrs) = &mut block {
        attrs.remove(crate::components::describe::ENFORCED);
    }
    cty::from_value(&block).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            format!("Invalid {} settings", C::NAME),
            format!("The planned {} block could not be read: {e}. This is a bug in terraform-provider-idis.", C::NAME),
        ))
    })
}

type Run<'a, T> = Pin<Box<dyn Future<Output = Result<T, ComponentError>> + Send + 'a>>;

/// One piece of work on a component, and the pieces it waits for.
struct Step<'a, T> {
    /// The component it works on.
    component: &'static str,
    /// What it does, for the log; its name among the steps.
    name: String,
    /// Names of the steps that must have succeeded before it starts.
    after: Vec<String>,
    /// Starts it, given what has been built so far.
    start: Box<dyn FnOnce(Observed) -> Run<'a, T> + Send + 'a>,
}

/// Runs `steps` as their `after` lists allow: every step starts as soon as
/// all it waits for succeeded, so independent components are built at the
/// same time; a step whose predecessor failed (or was skipped) is skipped.
/// `done` takes each success; the errors are returned. Returns the names
/// of the steps that succeeded.
///
/// Once `cancel` fires (Terraform's StopProvider, on Ctrl-C) nothing more
/// starts, and a running step that has not ended by itself within
/// [`STOP_GRACE`] is dropped where it stands, as `Cancelled`: a component
/// in the middle of a chain of AWS calls would otherwise hold up the
/// stop until its next wait. What a dropped call made is found by name
/// and tags on the next run, like a call whose answer was lost.
async fn run_steps<'a, T>(
    env: &str,
    cancel: &CancellationToken,
    mut waiting: Vec<Step<'a, T>>,
    built: &mut Observed,
    mut done: impl FnMut(&mut Observed, T),
    errors: &mut Vec<ComponentError>,
) -> BTreeSet<String> {
    let started = Instant::now();
    let mut succeeded = BTreeSet::new();
    let mut broken = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    loop {
        // Skip what waits on a failure, until nothing more is skipped.
        loop {
            let (skip, keep): (Vec<_>, Vec<_>) = waiting
                .into_iter()
                .partition(|s| s.after.iter().any(|a| broken.contains(a)));
            waiting = keep;
            if skip.is_empty() {
                break;
            }
            for s in skip {
                logging::info(&format!("{env}: {} skipped", s.name));
                broken.insert(s.name);
            }
        }
        let (ready, rest): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .partition(|s| s.after.iter().all(|a| succeeded.contains(a)));
        waiting = rest;
        for step in ready {
            if cancel.is_cancelled() {
                logging::info(&format!("{env}: {} not started: stopped", step.name));
                continue;
            }
            let (component, name) = (step.component, step.name);
            let run = (step.start)(built.clone());
            let stop = cancel.clone();
            running.push(async move {
                let dropped = async {
                    stop.cancelled().await;
                    tokio::time::sleep(STOP_GRACE).await;
                };
                let result = tokio::select! {
                    result = run => result,
                    _ = dropped => Err(ComponentError::Cancelled {
                        component,
                        what: format!("{name} was under way"),
                    }),
                };
                (name, result)
            });
        }
        let Some((name, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(value) => {
                logging::info(&format!("{env}: {name} done after {:?}", started.elapsed()));
                done(built, value);
                succeeded.insert(name);
            }
            Err(e) => {
                errors.push(e);
                broken.insert(name);
            }
        }
    }
    succeeded
}

/// The steps of an apply: every component's `ensure`, after the
/// components it depends on, and its follow-up where it has one.
struct EnsureSteps<'a, 'p> {
    ctx: &'a Ctx,
    planned: &'p Value,
    steps: Vec<Step<'a, Found>>,
    /// Every component's planned Spec, handed to every step.
    specs: Observed,
    problems: Diagnostics,
}

impl<'a> Visit for EnsureSteps<'a, '_> {
    fn visit<C: Component>(&mut self) {
        let spec = match spec::<C>(self.planned) {
            Ok(spec) => spec,
            Err(d) => {
                self.problems.extend(d);
                return;
            }
        };
        self.specs.put_spec::<C>(spec.clone());
        let ctx = self.ctx;
        self.steps.push(Step {
            component: C::NAME,
            name: C::NAME.to_string(),
            after: C::AFTER.iter().map(|a| a.to_string()).collect(),
            start: Box::new(move |built| {
                Box::pin(async move { C::ensure(ctx, &spec, &built).await.map(Found::of::<C>) })
            }),
        });
        if !C::FOLLOW_UP_AFTER.is_empty() {
            let mut after = vec![C::NAME.to_string()];
            after.extend(C::FOLLOW_UP_AFTER.iter().map(|a| a.to_string()));
            self.steps.push(Step {
                component: C::NAME,
                name: format!("{} after {}", C::NAME, C::FOLLOW_UP_AFTER.join(", ")),
                after,
                start: Box::new(move |built| {
                    Box::pin(async move {
                        Ok(match C::follow_up(ctx, &built).await? {
                            Some(state) => Found::of::<C>(state),
                            // Nothing new: what was built stands.
                            None => Found::of::<C>(built.need::<C>(C::NAME)?.clone()),
                        })
                    })
                }),
            });
        }
    }
}

/// How long a running step has, once Terraform asked the provider to
/// stop, to end by itself (its waits end at once, naming what they
/// waited for) before it is dropped.
const STOP_GRACE: Duration = Duration::from_millis(200);

/// How long an apply that was stopped reads what its stopped components
/// made before it answers.
const READ_AFTER_STOP: Duration = Duration::from_millis(500);

/// Every component's name.
struct AllNames(BTreeSet<&'static str>);

impl Visit for AllNames {
    fn visit<C: Component>(&mut self) {
        self.0.insert(C::NAME);
    }
}

/// Finds every component not in `built` yet and not in `unread`,
/// concurrently.
async fn find_missing(
    ctx: &Ctx,
    built: &mut Observed,
    unread: &BTreeSet<&'static str>,
) -> Vec<ComponentError> {
    struct Finds<'a> {
        ctx: &'a Ctx,
        skip: BTreeSet<&'static str>,
        finds: Vec<Run<'a, Option<Found>>>,
    }
    impl<'a> Visit for Finds<'a> {
        fn visit<C: Component>(&mut self) {
            if self.skip.contains(C::NAME) {
                return;
            }
            let ctx = self.ctx;
            self.finds.push(Box::pin(async move {
                Ok(C::find(ctx).await?.map(Found::of::<C>))
            }));
        }
    }
    let mut skip = built.names();
    skip.extend(unread.iter().copied());
    let mut finds = Finds {
        ctx,
        skip,
        finds: Vec::new(),
    };
    all::each(&mut finds);
    let results = join_all(finds.finds).await;
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(Some(found)) => built.insert(found),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    errors
}

/// The first three available zones of the region, for a network whose
/// zones were left to the provider.
async fn choose_zones(ctx: &Ctx) -> Result<Vec<String>, Diagnostics> {
    let mut names = crate::components::network::available_zones(ctx)
        .await
        .map_err(|e| Diagnostics::from(ctx.aws.explain("ec2", "list availability zones", &e)))?;
    if names.len() < 3 {
        return Err(Diagnostic::error(
            "Not enough availability zones",
            format!(
                "network: region {} offers {} available zones; an environment needs three.",
                ctx.region,
                names.len()
            ),
        )
        .into());
    }
    names.truncate(3);
    Ok(names)
}

pub struct Applied {
    pub state: Value,
    pub diagnostics: Diagnostics,
}

/// Create or update: converge every component on the planned values.
pub async fn converge(
    aws: &Arc<Aws>,
    prior: &Value,
    planned: &Value,
    cancel: &CancellationToken,
) -> Applied {
    let op = if prior.is_null() { "create" } else { "update" };
    let mut planned = planned.clone();
    // A replacing attribute unknown at plan time is not planned as a
    // replacement: if it turns out changed, nothing is done.
    let replaced = plan::changed_replacing(prior, &planned);
    if !prior.is_null() && !replaced.is_empty() {
        let what: Vec<String> = replaced.iter().map(|p| p.to_string()).collect();
        return Applied {
            state: prior_or_null(prior),
            diagnostics: Diagnostic::error(
                "Change would replace the environment",
                format!(
                    "{} became known only during apply, and differs from the state: changing it replaces the whole environment, which this plan did not include. Nothing was changed; run terraform plan again, now that the value is known, to see the replacement.",
                    what.join(", ")
                ),
            )
            .at(replaced[0].clone())
            .into(),
        };
    }
    let (timeout, limit) = limit_of(&planned, op);
    let ctx = match context(aws, &planned, timeout, cancel).await {
        Ok(ctx) => ctx,
        Err(diagnostics) => {
            return Applied {
                state: prior_or_null(prior),
                diagnostics,
            }
        }
    };
    if !planned
        .get_attr("network")
        .get_attr("availability_zones")
        .is_known()
    {
        match choose_zones(&ctx).await {
            Ok(zones) => planned
                .attr_mut("network")
                .set_attr("availability_zones", Value::strings(zones)),
            Err(diagnostics) => {
                return Applied {
                    state: prior_or_null(prior),
                    diagnostics,
                }
            }
        }
    }
    let started = Instant::now();
    let mut steps = EnsureSteps {
        ctx: &ctx,
        planned: &planned,
        steps: Vec::new(),
        specs: Observed::default(),
        problems: Diagnostics::new(),
    };
    all::each(&mut steps);
    if steps.problems.has_errors() {
        return Applied {
            state: prior_or_null(prior),
            diagnostics: steps.problems,
        };
    }
    let mut observed = steps.specs;
    let mut errors = Vec::new();
    run_steps(
        &ctx.env,
        &ctx.cancel,
        steps.steps,
        &mut observed,
        |built, found| built.insert(found),
        &mut errors,
    )
    .await;
    let mut diagnostics = Diagnostics(errors.iter().map(|e| failed(e, &limit)).collect());
    if !errors.is_empty() {
        // What exists of the components that failed or were never
        // reached, best effort: the state must say what exists. On a
        // create (no prior state) a component this run never started
        // made nothing in it and the state had nothing of it: it stays
        // absent (the next apply adopts anything of an earlier killed
        // run), and reading it would only keep a stopped apply waiting.
        let unread: BTreeSet<&'static str> = if prior.is_null() {
            let started: BTreeSet<&'static str> = errors.iter().map(|e| e.component()).collect();
            let mut all_names = AllNames(BTreeSet::new());
            all::each(&mut all_names);
            all_names
                .0
                .into_iter()
                .filter(|name| !started.contains(name))
                .collect()
        } else {
            BTreeSet::new()
        };
        if cancel.is_cancelled() {
            // Stopped (Ctrl-C): Terraform waits for this answer before it
            // exits, so what the stopped components made is read for a
            // moment only; the next refresh or apply finds the rest by
            // name and tags.
            let _ =
                tokio::time::timeout(READ_AFTER_STOP, find_missing(&ctx, &mut observed, &unread))
                    .await;
        } else {
            find_missing(&ctx, &mut observed, &unread).await;
        }
    }
    logging::info(&format!(
        "{}: apply finished after {:?}; {}",
        ctx.env,
        started.elapsed(),
        retries_note(&ctx)
    ));

    let mode = if diagnostics.has_errors() {
        Mode::Refresh
    } else {
        Mode::AfterApply
    };
    let mut state = planned;
    diagnostics.extend(observe::write(
        &mut state,
        &observed,
        &ctx.aws.default_tags,
        mode,
    ));
    observe::resolve_unknowns(&mut state);
    if diagnostics.has_errors() && observed.is_empty() && prior.is_null() {
        state = Value::Null;
    }
    Applied { state, diagnostics }
}

fn prior_or_null(prior: &Value) -> Value {
    prior.clone()
}

/// Reads every component concurrently.
async fn observe_all(ctx: &Ctx) -> Result<Observed, Vec<ComponentError>> {
    let mut observed = Observed::default();
    let errors = find_missing(ctx, &mut observed, &BTreeSet::new()).await;
    if errors.is_empty() {
        Ok(observed)
    } else {
        Err(errors)
    }
}

/// A refreshed state, and warnings about what changed outside Terraform.
pub struct Refreshed {
    pub state: Value,
    pub diagnostics: Diagnostics,
}

/// Refresh: the state as AWS has it; null when nothing of it is left.
pub async fn refresh(
    aws: &Arc<Aws>,
    prior: &Value,
    cancel: &CancellationToken,
) -> Result<Refreshed, Diagnostics> {
    let ctx = context(aws, prior, Duration::from_secs(300), cancel).await?;
    let observed = observe_all(&ctx)
        .await
        .map_err(|errors| Diagnostics(errors.iter().map(|e| e.to_diagnostic()).collect()))?;
    logging::info(&format!(
        "{}: refresh finished; {}",
        ctx.env,
        retries_note(&ctx)
    ));
    if observed.is_empty() {
        logging::info(&format!(
            "{}: no component found; the environment is gone",
            ctx.env
        ));
        return Ok(Refreshed {
            state: Value::Null,
            diagnostics: Diagnostics::new(),
        });
    }
    let mut state = prior.clone();
    let diagnostics = observe::write(&mut state, &observed, &ctx.aws.default_tags, Mode::Refresh);
    observe::resolve_unknowns(&mut state);
    Ok(Refreshed { state, diagnostics })
}

/// Import by name: the state of a configuration that sets only `name`
/// (every default), then refreshed from AWS. Settings AWS does not record
/// (deletion window, final snapshot, retain on destroy, timeouts) take
/// their defaults.
pub async fn import(
    aws: &Arc<Aws>,
    id: &str,
    cancel: &CancellationToken,
) -> Result<Value, Diagnostics> {
    let (region, name) = super::validate::parse_import_id(id, &aws.region)?;
    lookup(aws, &name, &region, cancel).await?.ok_or_else(|| {
        Diagnostic::error(
            "Environment not found",
            format!("No component of environment {name:?} was found in {region} (looked for resources tagged idis:environment = {name:?} and the deterministic names idis-{name}-*)."),
        )
        .into()
    })
}

/// Import by identity (Terraform 1.12+): `{ name, region }`, region
/// defaulting to the provider's.
pub async fn import_identity(
    aws: &Arc<Aws>,
    identity: &Value,
    cancel: &CancellationToken,
) -> Result<Value, Diagnostics> {
    let (region, name) = super::validate::parse_import_identity(identity, &aws.region)?;
    import(aws, &format!("{region}/{name}"), cancel).await
}

/// A component context for environment `name` in `region`, for the
/// ephemeral resources (which read, never wait).
pub async fn context_of(
    aws: &Arc<Aws>,
    name: &str,
    region: &str,
    cancel: &CancellationToken,
) -> Result<Ctx, Diagnostics> {
    let mut key = Value::Object(BTreeMap::new());
    key.set_attr("name", Value::string(name));
    key.set_attr("region", Value::string(region));
    context(aws, &key, Duration::from_secs(120), cancel).await
}

/// The state of environment `name` in `region` as AWS has it, for import
/// and `data "idis_environment"`: a configuration that sets only `name`
/// (every default), refreshed. None when no regional component exists.
pub async fn lookup(
    aws: &Arc<Aws>,
    name: &str,
    region: &str,
    cancel: &CancellationToken,
) -> Result<Option<Value>, Diagnostics> {
    let mut config = Value::Object(BTreeMap::new());
    config.set_attr("name", Value::string(name));
    config.set_attr("region", Value::string(region));
    let base = plan::plan(&Value::Null, &config, &config, region).planned;
    let state = refresh(aws, &base, cancel).await?.state;
    Ok(exists_in_region(&state).then_some(state))
}

/// Whether any regional component was found. The edge alone does not
/// count: Shield protections are global (named `idis-<name>`), so the
/// protection of an environment of the same name in another region is
/// found from every region.
pub fn exists_in_region(state: &Value) -> bool {
    struct Regional<'a>(&'a Value, bool);
    impl Visit for Regional<'_> {
        fn visit<C: Component>(&mut self) {
            let marker = C::outputs().first().map(|o| o.name);
            if C::REGIONAL && marker.is_some_and(|m| !self.0.get_attr(m).is_null()) {
                self.1 = true;
            }
        }
    }
    let mut found = Regional(state, false);
    all::each(&mut found);
    found.1
}

/// Destroy, backwards: a component goes once every component that
/// depends on it is gone (the edge first; the cluster, database, cache
/// and bucket concurrently; the network and keys last). Refused before
/// anything is deleted when a component says AWS would stop the destroy
/// half-way (the database's deletion protection, a load balancer with
/// deletion protection that the cluster left in the VPC).
pub async fn destroy(aws: &Arc<Aws>, prior: &Value, cancel: &CancellationToken) -> Applied {
    let keep = |diagnostics: Diagnostics| Applied {
        state: prior.clone(),
        diagnostics,
    };
    let (timeout, limit) = limit_of(prior, "delete");
    let ctx = match context(aws, prior, timeout, cancel).await {
        Ok(ctx) => ctx,
        Err(d) => return keep(d),
    };

    struct Refusals<'a> {
        ctx: &'a Ctx,
        checks: Vec<Pin<Box<dyn Future<Output = Option<Diagnostic>> + Send + 'a>>>,
    }
    impl<'a> Visit for Refusals<'a> {
        fn visit<C: Component>(&mut self) {
            self.checks.push(Box::pin(C::refuse_destroy(self.ctx)));
        }
    }
    let mut refusals = Refusals {
        ctx: &ctx,
        checks: Vec::new(),
    };
    all::each(&mut refusals);
    if let Some(refusal) = join_all(refusals.checks).await.into_iter().flatten().next() {
        return keep(refusal.into());
    }

    struct DeleteSteps<'a> {
        ctx: &'a Ctx,
        prior: &'a Value,
        steps: Vec<Step<'a, Vec<String>>>,
        after: Vec<(&'static str, &'static [&'static str])>,
        problems: Diagnostics,
    }
    impl<'a> Visit for DeleteSteps<'a> {
        fn visit<C: Component>(&mut self) {
            let spec = match spec::<C>(self.prior) {
                Ok(spec) => spec,
                Err(d) => {
                    self.problems.extend(d);
                    return;
                }
            };
            let ctx = self.ctx;
            self.after.push((C::NAME, C::AFTER));
            self.steps.push(Step {
                component: C::NAME,
                name: C::NAME.to_string(),
                after: Vec::new(),
                start: Box::new(move |_| Box::pin(async move { C::delete(ctx, &spec).await })),
            });
        }
    }
    let mut deletes = DeleteSteps {
        ctx: &ctx,
        prior,
        steps: Vec::new(),
        after: Vec::new(),
        problems: Diagnostics::new(),
    };
    all::each(&mut deletes);
    if deletes.problems.has_errors() {
        return keep(deletes.problems);
    }
    // The graph backwards: each waits for the components that need it.
    for step in &mut deletes.steps {
        step.after = deletes
            .after
            .iter()
            .filter(|(_, needs)| needs.contains(&step.name.as_str()))
            .map(|(name, _)| name.to_string())
            .collect();
    }
    let mut kept = Vec::new();
    let mut errors = Vec::new();
    run_steps(
        &ctx.env,
        &ctx.cancel,
        deletes.steps,
        &mut Observed::default(),
        |_, warnings| kept.extend(warnings),
        &mut errors,
    )
    .await;
    let mut diagnostics: Diagnostics = Diagnostics(
        kept.into_iter()
            .map(|w| Diagnostic::warning("Kept or scheduled", w))
            .collect(),
    );
    diagnostics.extend(Diagnostics(
        errors.iter().map(|e| failed(e, &limit)).collect(),
    ));
    logging::info(&format!(
        "{}: destroy finished; {}",
        ctx.env,
        retries_note(&ctx)
    ));
    if diagnostics.has_errors() {
        // Keep in state what is left, so destroy can be run again.
        let state = match refresh(aws, prior, cancel).await {
            Ok(r) => r.state,
            Err(_) => prior.clone(),
        };
        return Applied { state, diagnostics };
    }
    Applied {
        state: Value::Null,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every component with the components it waits for.
    fn graph() -> BTreeMap<&'static str, Vec<&'static str>> {
        struct Graph(BTreeMap<&'static str, Vec<&'static str>>);
        impl Visit for Graph {
            fn visit<C: Component>(&mut self) {
                self.0.insert(C::NAME, C::AFTER.to_vec());
                if !C::FOLLOW_UP_AFTER.is_empty() {
                    let mut after = vec![C::NAME];
                    after.extend(C::FOLLOW_UP_AFTER);
                    let name: &'static str = Box::leak(format!("{} (follow-up)", C::NAME).into());
                    self.0.insert(name, after);
                }
            }
        }
        let mut g = Graph(BTreeMap::new());
        all::each(&mut g);
        g.0
    }

    /// The order an apply builds in, one wave at a time.
    fn waves() -> Vec<Vec<&'static str>> {
        let graph = graph();
        let mut built: BTreeSet<&str> = BTreeSet::new();
        let mut waves = Vec::new();
        while built.len() < graph.len() {
            let wave: Vec<&str> = graph
                .iter()
                .filter(|(name, after)| {
                    !built.contains(*name) && after.iter().all(|a| built.contains(a))
                })
                .map(|(name, _)| *name)
                .collect();
            assert!(
                !wave.is_empty(),
                "the components wait for each other in a circle: {graph:?}"
            );
            built.extend(&wave);
            waves.push(wave);
        }
        waves
    }

    #[test]
    fn components_wait_only_for_components_that_exist_and_never_in_a_circle() {
        let graph = graph();
        for (name, after) in &graph {
            for a in after {
                assert!(
                    graph.contains_key(a),
                    "{name} waits for {a}, which is not a component"
                );
            }
        }
        waves();
    }

    #[test]
    fn keys_and_network_come_first_and_the_edge_last() {
        // Follow-ups aside: they finish components already built.
        let waves: Vec<Vec<&str>> = waves()
            .into_iter()
            .map(|w| {
                w.into_iter()
                    .filter(|n| !n.ends_with("(follow-up)") && *n != "monitoring")
                    .collect()
            })
            .filter(|w: &Vec<&str>| !w.is_empty())
            .collect();
        assert_eq!(waves[0], ["keys", "network"]);
        assert!(waves.last().unwrap().contains(&"edge"), "{waves:?}");
        assert!(waves
            .iter()
            .all(|w| !w.contains(&"edge") || w == waves.last().unwrap()));
    }

    #[test]
    fn the_alarms_are_made_once_what_they_watch_exists() {
        let waves = waves();
        let wave_of = |name: &str| waves.iter().position(|w| w.contains(&name)).unwrap();
        for watched in ["keys", "network", "database", "cache", "edge"] {
            assert!(wave_of("monitoring") > wave_of(watched), "{watched}");
        }
    }

    #[test]
    fn the_ebs_csi_driver_is_installed_once_its_role_exists() {
        let waves = waves();
        let wave_of = |name: &str| waves.iter().position(|w| w.contains(&name)).unwrap();
        assert!(wave_of("workload_identity") > wave_of("cluster"));
        assert!(wave_of("cluster (follow-up)") > wave_of("workload_identity"));
        assert!(wave_of("network (follow-up)") > wave_of("cluster"));
    }

    fn step(name: &str, after: &[&str], fails: bool) -> Step<'static, Vec<String>> {
        let who = name.to_string();
        Step {
            component: "test",
            name: name.to_string(),
            after: after.iter().map(|a| a.to_string()).collect(),
            start: Box::new(move |_| {
                Box::pin(async move {
                    tokio::task::yield_now().await;
                    if fails {
                        Err(ComponentError::Conflict {
                            component: "test",
                            message: format!("{who} failed"),
                        })
                    } else {
                        Ok(vec![who])
                    }
                })
            }),
        }
    }

    #[tokio::test]
    async fn a_stop_drops_a_step_that_does_not_end_by_itself_and_starts_nothing_more() {
        let cancel = CancellationToken::new();
        // A component busy with AWS calls that never looks at the token.
        let busy: Step<'static, Vec<String>> = Step {
            component: "database",
            name: "database".to_string(),
            after: Vec::new(),
            start: Box::new(|_| Box::pin(std::future::pending())),
        };
        let steps = vec![
            step("network", &[], false),
            busy,
            step("edge", &["database"], false),
        ];
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.cancel();
        });
        let mut order = Vec::new();
        let mut errors = Vec::new();
        let started = Instant::now();
        let ok = tokio::time::timeout(
            Duration::from_secs(5),
            run_steps(
                "test",
                &cancel,
                steps,
                &mut Observed::default(),
                |_, names| order.extend(names),
                &mut errors,
            ),
        )
        .await
        .expect("a stopped run ends");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(order, ["network"]);
        assert_eq!(ok, BTreeSet::from(["network".to_string()]));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].component(), "database");
        assert!(
            errors[0].to_string().contains("stopped by Terraform"),
            "{}",
            errors[0]
        );
    }

    #[tokio::test]
    async fn a_failure_stops_what_waits_for_it_and_nothing_else() {
        let steps = vec![
            step("network", &[], false),
            step("database", &["network"], true),
            step("cluster", &["network"], false),
            step("edge", &["cluster", "database"], false),
        ];
        let mut order = Vec::new();
        let mut errors = Vec::new();
        let ok = run_steps(
            "test",
            &CancellationToken::new(),
            steps,
            &mut Observed::default(),
            |_, names| order.extend(names),
            &mut errors,
        )
        .await;
        assert_eq!(order, ["network", "cluster"]);
        assert_eq!(
            ok,
            BTreeSet::from(["network".to_string(), "cluster".to_string()])
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("database failed"));
    }
}
