//! Apply, refresh, import and destroy of a whole environment.
//!
//! Order: keys and network first; then cluster, database, cache and audit
//! storage concurrently; edge last. Destroy runs the same graph backwards.
//! Refresh reads all seven components concurrently. A failure stops only
//! what depends on the failed component; the state returned says what
//! exists, so the next apply resumes instead of duplicating.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::observe::{self, Mode, Observed};
use super::plan;
use super::schema::{DEFAULT_TIMEOUT, TIMEOUTS};
use super::validate::parse_duration;
use crate::components::cache::{Cache, CacheSpec};
use crate::components::cluster::{ClusterSpec, EksCluster};
use crate::components::database::{Database, DatabaseSpec};
use crate::components::describe::{Component, Visit};
use crate::components::edge::{Edge, EdgeSpec};
use crate::components::keys::{KeysSpec, TenantKeys};
use crate::components::network::{Network, NetworkSpec};
use crate::components::storage::{AuditBucket, AuditStorageSpec};
use crate::components::{
    self as all, cache, cluster, database, edge, keys, network, storage, ComponentError, Ctx,
};
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
    })
}

fn component_error(e: &ComponentError) -> Diagnostic {
    let summary = match e {
        ComponentError::Timeout { .. } => format!("{}: timed out", e.component()),
        ComponentError::Cancelled { .. } => format!("{}: stopped", e.component()),
        _ => format!("{} failed", e.component()),
    };
    Diagnostic::error(summary, e.to_string())
}

/// A component's failure, naming the `timeouts` setting when it ran out.
fn failed(e: &ComponentError, limit: &str) -> Diagnostic {
    match e {
        ComponentError::Timeout { .. } => Diagnostic::error(
            format!("{}: timed out ({limit})", e.component()),
            format!("{e}. The limit is {limit}; what was made so far is kept in the state."),
        ),
        _ => component_error(e),
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

struct Specs {
    network: NetworkSpec,
    keys: KeysSpec,
    cluster: ClusterSpec,
    database: DatabaseSpec,
    cache: CacheSpec,
    storage: AuditStorageSpec,
    edge: EdgeSpec,
}

fn specs(planned: &Value) -> Result<Specs, Diagnostics> {
    Ok(Specs {
        network: spec::<Network>(planned)?,
        keys: spec::<TenantKeys>(planned)?,
        cluster: spec::<EksCluster>(planned)?,
        database: spec::<Database>(planned)?,
        cache: spec::<Cache>(planned)?,
        storage: spec::<AuditBucket>(planned)?,
        edge: spec::<Edge>(planned)?,
    })
}

/// The first three available zones of the region, for a network whose
/// zones were left to the provider.
async fn choose_zones(ctx: &Ctx) -> Result<Vec<String>, Diagnostics> {
    let zones = ctx
        .aws
        .ec2()
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| Diagnostics::from(ctx.aws.explain("ec2", "list availability zones", &e)))?;
    let mut names: Vec<String> = zones
        .availability_zones()
        .iter()
        .filter(|z| z.state().is_none_or(|s| s.as_str() == "available"))
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    names.sort();
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

/// Best effort: what exists of a component whose ensure failed.
async fn salvage<T, F>(found: F) -> Option<T>
where
    F: std::future::Future<Output = Result<Option<T>, ComponentError>>,
{
    found.await.ok().flatten()
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
    let specs = match specs(&planned) {
        Ok(s) => s,
        Err(diagnostics) => {
            return Applied {
                state: prior_or_null(prior),
                diagnostics,
            }
        }
    };
    let started = Instant::now();
    let mut diagnostics = Diagnostics::new();
    let mut observed = Observed::default();

    // Phase 1: keys and network.
    let (keys_result, network_result) = tokio::join!(
        keys::ensure(&ctx, &specs.keys),
        network::ensure(&ctx, &specs.network)
    );
    logging::info(&format!(
        "{}: keys and network done after {:?}",
        ctx.env,
        started.elapsed()
    ));
    match keys_result {
        Ok(k) => observed.keys = Some(k),
        Err(e) => {
            diagnostics.push(failed(&e, &limit));
            observed.keys = salvage(keys::find(&ctx)).await;
        }
    }
    match network_result {
        Ok(n) => observed.network = Some(n),
        Err(e) => {
            diagnostics.push(failed(&e, &limit));
            observed.network = salvage(network::find(&ctx)).await;
        }
    }

    // Phase 2: what needs network and keys, concurrently.
    if let (false, Some(net), Some(k)) = (
        diagnostics.has_errors(),
        observed.network.clone(),
        observed.keys.clone(),
    ) {
        let (c, d, ca, s) = tokio::join!(
            Box::pin(cluster::ensure(&ctx, &specs.cluster, &net, &k)),
            Box::pin(database::ensure(&ctx, &specs.database, &net, &k)),
            Box::pin(cache::ensure(&ctx, &specs.cache, &net, &k)),
            Box::pin(storage::ensure(&ctx, &specs.storage, &k)),
        );
        logging::info(&format!(
            "{}: cluster, database, cache and storage done after {:?}",
            ctx.env,
            started.elapsed()
        ));
        match c {
            Ok(v) => observed.cluster = Some(v),
            Err(e) => {
                diagnostics.push(failed(&e, &limit));
                observed.cluster = salvage(cluster::find(&ctx)).await;
            }
        }
        match d {
            Ok(v) => observed.database = Some(v),
            Err(e) => {
                diagnostics.push(failed(&e, &limit));
                observed.database = salvage(database::find(&ctx)).await;
            }
        }
        match ca {
            Ok(v) => observed.cache = Some(v),
            Err(e) => {
                diagnostics.push(failed(&e, &limit));
                observed.cache = salvage(cache::find(&ctx)).await;
            }
        }
        match s {
            Ok(v) => observed.storage = Some(v),
            Err(e) => {
                diagnostics.push(failed(&e, &limit));
                observed.storage = salvage(storage::find(&ctx)).await;
            }
        }
        // The nodes reach the database and the cache through the security
        // group EKS made with the cluster: let it in now that it exists.
        if !diagnostics.has_errors() {
            match network::admit_cluster(&ctx).await {
                Ok(n) => observed.network = Some(n),
                Err(e) => diagnostics.push(failed(&e, &limit)),
            }
        }
        // Phase 3: the edge, once everything behind it stands.
        if !diagnostics.has_errors() {
            match Box::pin(edge::ensure(&ctx, &specs.edge)).await {
                Ok(v) => observed.edge = Some(v),
                Err(e) => {
                    diagnostics.push(failed(&e, &limit));
                    observed.edge = salvage(edge::find(&ctx)).await;
                }
            }
        }
    }
    if diagnostics.has_errors() {
        // Fill in what exists of components that were never reached.
        let (c, d, ca, s, e) = tokio::join!(
            async {
                if observed.cluster.is_none() {
                    salvage(cluster::find(&ctx)).await
                } else {
                    observed.cluster.clone()
                }
            },
            async {
                if observed.database.is_none() {
                    salvage(database::find(&ctx)).await
                } else {
                    observed.database.clone()
                }
            },
            async {
                if observed.cache.is_none() {
                    salvage(cache::find(&ctx)).await
                } else {
                    observed.cache.clone()
                }
            },
            async {
                if observed.storage.is_none() {
                    salvage(storage::find(&ctx)).await
                } else {
                    observed.storage.clone()
                }
            },
            async {
                if observed.edge.is_none() {
                    salvage(edge::find(&ctx)).await
                } else {
                    observed.edge.clone()
                }
            },
        );
        observed.cluster = c;
        observed.database = d;
        observed.cache = ca;
        observed.storage = s;
        observed.edge = e;
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
    let (n, k, c, d, ca, s, e) = tokio::join!(
        Box::pin(network::find(ctx)),
        Box::pin(keys::find(ctx)),
        Box::pin(cluster::find(ctx)),
        Box::pin(database::find(ctx)),
        Box::pin(cache::find(ctx)),
        Box::pin(storage::find(ctx)),
        Box::pin(edge::find(ctx)),
    );
    fn keep<T>(
        r: Result<Option<T>, ComponentError>,
        errors: &mut Vec<ComponentError>,
    ) -> Option<T> {
        r.unwrap_or_else(|e| {
            errors.push(e);
            None
        })
    }
    let mut errors = Vec::new();
    let observed = Observed {
        network: keep(n, &mut errors),
        keys: keep(k, &mut errors),
        cluster: keep(c, &mut errors),
        database: keep(d, &mut errors),
        cache: keep(ca, &mut errors),
        storage: keep(s, &mut errors),
        edge: keep(e, &mut errors),
    };
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
        .map_err(|errors| Diagnostics(errors.iter().map(component_error).collect()))?;
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

/// Destroy, backwards: edge; cluster, database, cache and bucket
/// concurrently; then network and keys. Refused before anything is
/// deleted when the database has deletion protection in AWS, or when a
/// load balancer the cluster left in the VPC has deletion protection.
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
    let specs = match specs(prior) {
        Ok(s) => s,
        Err(d) => return keep(d),
    };
    match database::find(&ctx).await {
        Ok(Some(db)) if db.deletion_protection => {
            return keep(
                Diagnostic::error(
                    "Destroy refused: the database has deletion protection",
                    format!(
                        "Database {} has deletion protection on in AWS, so nothing was deleted. Set database.deletion_protection = false, run terraform apply, then destroy again.",
                        db.identifier
                    ),
                )
                .into(),
            )
        }
        Err(e) => return keep(component_error(&e).into()),
        _ => {}
    }
    // What the cluster left in the VPC with deletion protection would stop
    // the network's deletion at the very end: refuse before anything goes.
    match network::check_deletable(&ctx).await {
        Ok(()) => {}
        Err(e @ ComponentError::Conflict { .. }) => {
            return keep(
                Diagnostic::error(
                    "Destroy refused: a load balancer in the VPC has deletion protection",
                    format!("{e}. Nothing was deleted."),
                )
                .into(),
            )
        }
        Err(e) => return keep(component_error(&e).into()),
    }
    let mut diagnostics = Diagnostics::new();
    let note =
        |result: Result<Vec<String>, ComponentError>, diagnostics: &mut Diagnostics| match result {
            Ok(warnings) => {
                for w in warnings {
                    diagnostics.push(Diagnostic::warning("Kept or scheduled", w));
                }
            }
            Err(e) => diagnostics.push(failed(&e, &limit)),
        };
    note(Box::pin(edge::delete(&ctx)).await, &mut diagnostics);
    if !diagnostics.has_errors() {
        let (c, d, ca, s) = tokio::join!(
            Box::pin(cluster::delete(&ctx)),
            Box::pin(database::delete(&ctx, &specs.database)),
            Box::pin(cache::delete(&ctx)),
            Box::pin(storage::delete(&ctx, &specs.storage)),
        );
        for r in [c, d, ca, s] {
            note(r, &mut diagnostics);
        }
    }
    if !diagnostics.has_errors() {
        let (n, k) = tokio::join!(
            Box::pin(network::delete(&ctx)),
            Box::pin(keys::delete(&ctx, &specs.keys))
        );
        note(n, &mut diagnostics);
        note(k, &mut diagnostics);
    }
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
