//! One module per AWS component of an environment. Each exposes the same
//! triad, after terraform-provider-aws's find/status/wait:
//!
//! - `find(ctx)`: read what exists for this environment, `Ok(None)` when the
//!   component is absent (or being deleted). Never changes anything.
//! - `ensure(ctx, spec, deps)`: make AWS match `spec`: adopt what exists
//!   under the environment's deterministic names and ownership tags, create
//!   what is missing, repair drift in place, wait until usable, and return
//!   what it observed. Running it twice is a no-op; running it after a
//!   killed apply converges.
//! - `delete(ctx, spec)`: remove the component (or keep it, where the spec
//!   says so), waiting until it is gone; absent is success.

pub mod access;
pub mod addons;
pub mod alarms;
pub mod audit_trail;
pub mod cache;
pub mod cdn_assets;
pub mod cluster;
pub mod cluster_access;
pub mod dashboard;
pub mod database;
pub mod describe;
pub mod documents;
pub mod dr;
pub mod edge;
pub mod iam_role;
pub mod identity;
pub mod inventory;
pub mod kept;
pub mod keys;
pub mod logs;
pub mod monitoring;
pub mod network;
pub mod offers;
pub mod secrets;
pub mod storage;
pub mod vendors;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_runtime::retries::classifiers::THROTTLING_ERRORS;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio_util::sync::CancellationToken;

use crate::logging;
use crate::provider::config::Aws;
use describe::Component;

/// Runs `visitor` once for every component of an environment, in the
/// order they are built: the one list of them.
pub fn each(visitor: &mut impl describe::Visit) {
    visitor.visit::<network::Network>();
    visitor.visit::<keys::TenantKeys>();
    visitor.visit::<cluster::EksCluster>();
    visitor.visit::<database::Database>();
    visitor.visit::<cache::Cache>();
    visitor.visit::<storage::AuditBucket>();
    visitor.visit::<documents::DocumentsBucket>();
    visitor.visit::<audit_trail::AuditTrail>();
    visitor.visit::<dr::DisasterRecovery>();
    visitor.visit::<secrets::AppSecrets>();
    visitor.visit::<edge::Edge>();
    visitor.visit::<monitoring::Monitoring>();
    // Last: its reading judges its policies against the ARNs the other
    // components' readings have just written (`identity::Targets`).
    visitor.visit::<identity::WorkloadIdentity>();
}

/// What was found or built of an environment's components: each
/// component's typed state under its name, absent while not found. The
/// orchestrator fills it; an `ensure` reads the components it depends on
/// from it.
#[derive(Clone, Default)]
pub struct Observed {
    states: BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>,
    /// The planned Spec of every component, during an apply: a component
    /// that builds another's kind elsewhere (the DR site's copies of the
    /// buckets, its database once promoted) builds it from the same
    /// settings.
    specs: BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>,
}

impl Observed {
    /// The planned Spec of component `C`, during an apply.
    pub fn spec<C: Component>(&self) -> Option<&C::Spec> {
        self.specs.get(C::NAME)?.downcast_ref()
    }

    /// The planned Spec of `C`, which `component` builds from: present in
    /// every apply, so its absence is a bug.
    pub fn need_spec<C: Component>(
        &self,
        component: &'static str,
    ) -> Result<&C::Spec, ComponentError> {
        self.spec::<C>().ok_or_else(|| ComponentError::Conflict {
            component,
            message: format!(
                "the planned {} block was not given to it; this is a bug in terraform-provider-idis",
                C::NAME
            ),
        })
    }

    pub fn put_spec<C: Component>(&mut self, spec: C::Spec) {
        self.specs.insert(C::NAME, Arc::new(spec));
    }

    /// The state of component `C`, when it was found or built.
    pub fn get<C: Component>(&self) -> Option<&C::State> {
        self.states.get(C::NAME)?.downcast_ref()
    }

    /// The state of `C`, which `component` depends on: built before it
    /// by the orchestrator, so its absence is a bug.
    pub fn need<C: Component>(&self, component: &'static str) -> Result<&C::State, ComponentError> {
        self.get::<C>().ok_or_else(|| ComponentError::Conflict {
            component,
            message: format!(
                "{} was not built before it; this is a bug in terraform-provider-idis",
                C::NAME
            ),
        })
    }

    /// The state of `C` to change in place (tests), while not shared.
    pub fn get_mut<C: Component>(&mut self) -> Option<&mut C::State> {
        Arc::get_mut(self.states.get_mut(C::NAME)?)?.downcast_mut()
    }

    pub fn put<C: Component>(&mut self, state: C::State) {
        self.states.insert(C::NAME, Arc::new(state));
    }

    /// Takes `found` (one component's state, as `Found::of` made it).
    pub fn insert(&mut self, found: Found) {
        self.states.insert(found.0, found.1);
    }

    /// The names of the components present.
    pub fn names(&self) -> BTreeSet<&'static str> {
        self.states.keys().copied().collect()
    }

    /// Nothing of the environment was found.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.states.keys()).finish()
    }
}

/// One component's state, its type erased, on its way into [`Observed`].
pub struct Found(&'static str, Arc<dyn Any + Send + Sync>);

impl Found {
    pub fn of<C: Component>(state: C::State) -> Found {
        Found(C::NAME, Arc::new(state))
    }
}

/// Tag keys that mark what the provider owns.
pub const TAG_ENVIRONMENT: &str = "idis:environment";
pub const TAG_COMPONENT: &str = "idis:component";
pub const TAG_MANAGED_BY: &str = "managed-by";
pub const MANAGED_BY: &str = "terraform-provider-idis";

/// How long a status read may still take when a wait starts at (or after)
/// its deadline.
const PROBE_GRACE: Duration = Duration::from_secs(30);

/// Everything a component needs to talk to AWS for one environment.
#[derive(Clone)]
pub struct Ctx {
    pub aws: Arc<Aws>,
    /// The environment name (`idis_environment.name`), already validated:
    /// lowercase letters, digits and dashes, at most 23 characters.
    pub env: String,
    pub account_id: String,
    pub region: String,
    /// default_tags and the resource's `tags`, without ownership tags.
    pub user_tags: BTreeMap<String, String>,
    /// Cancelled by StopProvider.
    pub cancel: CancellationToken,
    /// When the current operation's timeout (`timeouts` block) runs out.
    pub deadline: Instant,
    /// First poll interval of waits; grows by half each poll up to 15 s.
    pub poll_interval: Duration,
    /// The DR site's context (`dr::in_region`): the IAM names of what is
    /// made for its cluster alone (IAM names are global) carry `dr`.
    pub dr_site: bool,
}

impl Ctx {
    /// `idis-<env>`: the base of every deterministic name.
    pub fn prefix(&self) -> String {
        format!("idis-{}", self.env)
    }

    /// The full tag set for an object of `component`: user tags, then the
    /// ownership tags (which win).
    pub fn tags(&self, component: &str) -> BTreeMap<String, String> {
        let mut tags = self.user_tags.clone();
        tags.insert(TAG_ENVIRONMENT.to_string(), self.env.clone());
        tags.insert(TAG_COMPONENT.to_string(), component.to_string());
        tags.insert(TAG_MANAGED_BY.to_string(), MANAGED_BY.to_string());
        tags
    }

    /// Polls `probe` until it returns `Ok(Some(_))`, with growing intervals,
    /// bounded by the deadline and cancellable by StopProvider. A probe
    /// that fails transiently (throttling, 5xx, a dropped connection or a
    /// timeout, after the SDK's own retries) does not end the wait: polling
    /// goes on, and a wait that runs out reports the last such error. Any
    /// other probe error ends the wait.
    pub async fn wait_for<T, F, Fut>(
        &self,
        component: &'static str,
        what: &str,
        mut probe: F,
    ) -> Result<T, ComponentError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, ComponentError>>,
    {
        let started = Instant::now();
        let mut interval = self.poll_interval;
        loop {
            // The probe itself is cancellable (a call the SDK is retrying
            // with backoff must not hold up a stop) and bounded by the
            // deadline, with a short grace so a wait that starts late
            // still reads once.
            let probe_deadline = self.deadline.max(Instant::now() + PROBE_GRACE);
            let outcome = tokio::select! {
                _ = self.cancel.cancelled() => {
                    return Err(ComponentError::Cancelled { component, what: what.to_string() });
                }
                _ = tokio::time::sleep_until(probe_deadline.into()) => {
                    return Err(ComponentError::Timeout {
                        component,
                        what: what.to_string(),
                        waited: started.elapsed(),
                        last_error: Some("AWS did not answer the status read in time".to_string()),
                    });
                }
                outcome = probe() => outcome,
            };
            let last_error = match outcome {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => None,
                Err(e) if e.is_transient() => {
                    logging::debug(&format!(
                        "{component}: transient error while waiting for {what}, polling on: {e}"
                    ));
                    Some(e.to_string())
                }
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            if now >= self.deadline {
                return Err(ComponentError::Timeout {
                    component,
                    what: what.to_string(),
                    waited: now.duration_since(started),
                    last_error,
                });
            }
            let sleep = interval.min(self.deadline - now);
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    return Err(ComponentError::Cancelled { component, what: what.to_string() });
                }
                _ = tokio::time::sleep(sleep) => {}
            }
            interval = (interval * 3 / 2).min(Duration::from_secs(15));
        }
    }

    /// Fails fast when Terraform asked the provider to stop.
    pub fn check_cancelled(
        &self,
        component: &'static str,
        what: &str,
    ) -> Result<(), ComponentError> {
        if self.cancel.is_cancelled() {
            Err(ComponentError::Cancelled {
                component,
                what: what.to_string(),
            })
        } else {
            Ok(())
        }
    }
}

/// What a component judges its own objects against that other components
/// make: the platform key, the private subnets, the security groups. Read
/// by name and tag in one round of calls beside the component's own.
#[derive(Clone, Debug, Default)]
pub struct Neighbours {
    /// (key id, key ARN) of `alias/idis/<env>/platform`.
    pub platform_key: Option<(String, String)>,
    /// Ids of the private subnets (`idis-<env>-private-*`).
    pub private_subnets: BTreeSet<String>,
    /// Security group name to id, for the environment's groups.
    pub security_groups: BTreeMap<String, String>,
}

impl Neighbours {
    /// Whether `key` (an id, an ARN or an alias ARN) is the platform key.
    pub fn is_platform_key(&self, key: &str) -> bool {
        self.platform_key
            .as_ref()
            .is_some_and(|(id, arn)| key == id || key == arn || key.ends_with(&format!("key/{id}")))
    }

    /// A security group's name, if it is one of the environment's.
    pub fn group_name(&self, id: &str) -> Option<&str> {
        self.security_groups
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.as_str())
    }
}

impl Neighbours {
    /// The neighbours as an apply knows them, from the components it
    /// depends on.
    pub fn of(ctx: &Ctx, net: &network::NetworkState, keys: &keys::KeysState) -> Neighbours {
        let prefix = ctx.prefix();
        Neighbours {
            platform_key: Some((keys.platform_key_id.clone(), keys.platform_key_arn.clone())),
            private_subnets: net.private_subnet_ids.iter().cloned().collect(),
            security_groups: [
                ("cluster", &net.cluster_security_group_id),
                ("database", &net.database_security_group_id),
                ("cache", &net.cache_security_group_id),
            ]
            .into_iter()
            .filter(|(_, id)| !id.is_empty())
            .map(|(role, id)| (format!("{prefix}-{role}"), id.clone()))
            .collect(),
        }
    }
}

/// The platform key, (id, ARN), from its alias; None when it is missing.
pub async fn platform_key(
    ctx: &Ctx,
    component: &'static str,
) -> Result<Option<(String, String)>, ComponentError> {
    let alias = format!("alias/idis/{}/{}", ctx.env, keys::PLATFORM);
    match ctx.aws.kms().describe_key().key_id(&alias).send().await {
        Ok(out) => Ok(out.key_metadata().map(|m| {
            (
                m.key_id().to_string(),
                m.arn().unwrap_or_default().to_string(),
            )
        })),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(
            component,
            format!("describe the platform key {alias}"),
            e,
        )),
    }
}

/// Reads the neighbours `component` judges against.
pub async fn neighbours(ctx: &Ctx, component: &'static str) -> Result<Neighbours, ComponentError> {
    let ec2 = ctx.aws.ec2();
    let env_filter = aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{TAG_ENVIRONMENT}"))
        .values(&ctx.env)
        .build();
    let (platform_key, subnets, groups) = tokio::join!(
        platform_key(ctx, component),
        ec2.describe_subnets()
            .filters(env_filter.clone())
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:Name")
                    .values(format!("{}-private-*", ctx.prefix()))
                    .build()
            )
            .send(),
        ec2.describe_security_groups().filters(env_filter).send(),
    );
    let platform_key = platform_key?;
    let private_subnets = subnets
        .map_err(|e| aws_error(component, "list the private subnets", e))?
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .collect();
    let security_groups = groups
        .map_err(|e| aws_error(component, "list the security groups", e))?
        .security_groups()
        .iter()
        .filter_map(|g| Some((g.group_name()?.to_string(), g.group_id()?.to_string())))
        .collect();
    Ok(Neighbours {
        platform_key,
        private_subnets,
        security_groups,
    })
}

/// Tries of a create whose answer was lost, before giving up.
const CREATE_ATTEMPTS: u32 = 3;
/// Reads of what a create with a lost answer may have made, before
/// creating again (AWS lists a new object after a moment).
const LOST_CREATE_LOOKUPS: u32 = 3;

/// Runs a create that AWS does not make idempotent (a KMS key, a VPC, a
/// subnet, an internet gateway, an Elastic IP). The SDK does not repeat
/// such a call when its answer is lost (see `provider::config`), because
/// the first call may have made the object: `find` then looks for it by
/// this environment's deterministic name and ownership tags, and adopts
/// it; only when nothing turns up is it created again. Any other error
/// ends the create.
pub async fn create_or_adopt<T, C, CF, F, FF>(
    ctx: &Ctx,
    component: &'static str,
    what: &str,
    mut create: C,
    mut find: F,
) -> Result<T, ComponentError>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<T, ComponentError>>,
    F: FnMut() -> FF,
    FF: Future<Output = Result<Option<T>, ComponentError>>,
{
    let mut attempt = 1;
    loop {
        let lost = match create().await {
            Ok(made) => return Ok(made),
            Err(e) if e.is_transient() && attempt < CREATE_ATTEMPTS => e,
            Err(e) => return Err(e),
        };
        logging::info(&format!(
            "{component}: no answer to {what} ({lost}); looking for what it may have made before trying again"
        ));
        for _ in 0..LOST_CREATE_LOOKUPS {
            tokio::select! {
                _ = ctx.cancel.cancelled() => {
                    return Err(ComponentError::Cancelled { component, what: what.to_string() });
                }
                _ = tokio::time::sleep(ctx.poll_interval) => {}
            }
            match find().await {
                Ok(Some(found)) => {
                    logging::info(&format!(
                        "{component}: adopted what the unanswered call to {what} made"
                    ));
                    return Ok(found);
                }
                Ok(None) => {}
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
        }
        attempt += 1;
    }
}

/// What went wrong in one component. Messages name the component, the AWS
/// object and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("{component}: AWS refused to {action}: {message}")]
    Aws {
        component: &'static str,
        action: String,
        code: Option<String>,
        message: String,
        /// Throttling, a 5xx answer, a dropped connection or a timeout:
        /// the same call may well succeed later.
        transient: bool,
    },
    #[error("{component}: timed out after {}s waiting for {what}{}; raise the timeouts block or retry the apply, which resumes where this one stopped", waited.as_secs(), last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    Timeout {
        component: &'static str,
        what: String,
        waited: Duration,
        /// The transient error of the last poll, when it failed.
        last_error: Option<String>,
    },
    #[error("{component}: stopped by Terraform while {what}; the next apply resumes")]
    Cancelled {
        component: &'static str,
        what: String,
    },
    #[error("{component}: {message}")]
    Conflict {
        component: &'static str,
        message: String,
    },
}

impl ComponentError {
    /// The error as Terraform shows it: what failed, and the message.
    pub fn to_diagnostic(&self) -> crate::protocol::diag::Diagnostic {
        let summary = match self {
            ComponentError::Timeout { .. } => format!("{}: timed out", self.component()),
            ComponentError::Cancelled { .. } => format!("{}: stopped", self.component()),
            _ => format!("{} failed", self.component()),
        };
        crate::protocol::diag::Diagnostic::error(summary, self.to_string())
    }

    pub fn component(&self) -> &'static str {
        match self {
            ComponentError::Aws { component, .. }
            | ComponentError::Timeout { component, .. }
            | ComponentError::Cancelled { component, .. }
            | ComponentError::Conflict { component, .. } => component,
        }
    }

    /// True for an AWS error worth trying again (throttling, 5xx, a
    /// dropped connection, a timeout).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ComponentError::Aws {
                transient: true,
                ..
            }
        )
    }

    /// The AWS error code, e.g. `DBInstanceNotFound`.
    pub fn code(&self) -> Option<&str> {
        match self {
            ComponentError::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Wraps an SDK error with the component and the action that failed.
pub fn aws_error<E, R>(
    component: &'static str,
    action: impl Into<String>,
    err: SdkError<E, R>,
) -> ComponentError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus + 'static,
{
    let code = err.code().map(str::to_string);
    let message = match (&err, err.message()) {
        (SdkError::ServiceError(_), Some(msg)) => {
            format!("{}: {msg}", code.as_deref().unwrap_or("error"))
        }
        _ => root_cause(&err),
    };
    let transient = is_transient(&err);
    ComponentError::Aws {
        component,
        action: action.into(),
        code,
        message,
        transient,
    }
}

/// True for a failure that says nothing about the request itself:
/// throttling, a 5xx answer, no answer at all (a dropped connection, a
/// timeout, an unreadable answer).
pub fn is_transient<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
    R: HttpStatus,
{
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status();
            status >= 500
                || status == 429
                || err
                    .code()
                    .is_some_and(|code| THROTTLING_ERRORS.contains(&code))
        }
        _ => false,
    }
}

/// The HTTP status of a raw answer (the SDK's is an HTTP response).
pub trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// True for the "it does not exist" answers of the services we use.
pub fn is_not_found<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(
        err.code(),
        Some(
            "NotFoundException"
                | "ResourceNotFoundException"
                | "NoSuchEntity"
                | "NoSuchBucket"
                | "NoSuchDistribution"
                | "DBInstanceNotFound"
                | "DBInstanceNotFoundFault"
                | "DBSubnetGroupNotFoundFault"
                | "ReplicationGroupNotFoundFault"
                | "CacheSubnetGroupNotFoundFault"
                | "WAFNonexistentItemException"
                | "InvalidVpcID.NotFound"
                | "InvalidSubnetID.NotFound"
                | "InvalidGroup.NotFound"
                | "InvalidInternetGatewayID.NotFound"
                | "InvalidAllocationID.NotFound"
                | "NatGatewayNotFound"
                | "InvalidRouteTableID.NotFound"
        )
    )
}

/// The shape of an AWS region name: dash-separated lowercase parts, the
/// last a number (`us-west-2`, `us-gov-west-1`).
pub fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// The AWS partition of a region, for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Tags to set and tag keys to remove so that `current` becomes `wanted`
/// (AWS's own `aws:*` tags are left alone).
pub fn tag_diff(
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = wanted
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = current
        .keys()
        .filter(|k| !k.starts_with("aws:") && !wanted.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// True when both hold the same items, in any order (subnet ids, instance
/// types, ...).
pub fn same_members<'a>(
    a: impl IntoIterator<Item = &'a str>,
    b: impl IntoIterator<Item = &'a str>,
) -> bool {
    let mut a: Vec<&str> = a.into_iter().collect();
    let mut b: Vec<&str> = b.into_iter().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Converts a tag map into the (key, value) pairs the SDK builders take.
pub fn tag_pairs(tags: &BTreeMap<String, String>) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// What is wrong with the tags of `object` against the tags the provider
/// gives it (`want`): tags missing or with another value. Tags someone
/// else added are theirs and not judged.
pub fn tag_problems(
    object: &str,
    have: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
) -> Vec<String> {
    want.iter()
        .filter_map(|(k, v)| match have.get(k) {
            None => Some(format!("{object}: tag {k} is missing")),
            Some(h) if h != v => Some(format!("{object}: tag {k} is {h:?}, not {v:?}")),
            Some(_) => None,
        })
        .collect()
}

/// User-visible tags of an object: without ownership tags and without the
/// `aws:*` tags AWS manages itself.
pub fn user_visible_tags(tags: BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter(|(k, _)| {
            !k.starts_with("aws:")
                && k != TAG_ENVIRONMENT
                && k != TAG_COMPONENT
                && k != TAG_MANAGED_BY
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::partition;

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(partition("us-east-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }
}
