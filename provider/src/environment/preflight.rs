//! What a plan can only know from AWS, asked before anything is built:
//! a Shield Advanced subscription when DDoS protection is to be made, and
//! whether AWS offers the Kubernetes, PostgreSQL and cache versions the
//! configuration asks for (`components::offers`). Only what the plan
//! changes is asked, so a plan with no changes makes no calls here. All
//! questions go at once and the plan waits at most `LIMIT` for them.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::orchestrate::context;
use crate::components::{edge, offers, ComponentError};
use crate::protocol::cty::{Path, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::provider::config::Aws;

/// How long a plan waits for what it asks AWS.
const LIMIT: Duration = Duration::from_secs(10);

/// One question for AWS.
#[derive(Debug)]
enum Ask {
    Shield,
    Kubernetes(String),
    Postgres(String),
    Cache { engine: String, version: String },
}

enum Answer {
    Subscribed(Result<bool, ComponentError>),
    Versions(Result<Vec<String>, ComponentError>),
}

fn at(block: &str, attr: &str) -> Path {
    Path::root().attr(block).attr(attr)
}

/// A planned string that is known and new (no prior, or another value).
fn new_string(prior: &Value, planned: &Value, block: &str, attr: &str) -> Option<String> {
    let now = planned.get_attr(block).get_attr(attr).as_str()?;
    let was = prior.get_attr(block).get_attr(attr).as_str();
    (was != Some(now)).then(|| now.to_string())
}

/// What this plan must ask.
fn asks(prior: &Value, planned: &Value) -> Vec<Ask> {
    let mut asks = Vec::new();
    let wants_protection = planned
        .get_attr("edge")
        .get_attr("ddos_protection")
        .as_bool()
        == Some(true);
    let protected_before =
        prior.get_attr("edge").get_attr("ddos_protection").as_bool() == Some(true);
    if wants_protection && !protected_before {
        asks.push(Ask::Shield);
    }
    if let Some(v) = new_string(prior, planned, "cluster", "kubernetes_version") {
        asks.push(Ask::Kubernetes(v));
    }
    if let Some(v) = new_string(prior, planned, "database", "engine_version") {
        asks.push(Ask::Postgres(v));
    }
    let engine = new_string(prior, planned, "cache", "engine");
    let version = new_string(prior, planned, "cache", "engine_version");
    if engine.is_some() || version.is_some() {
        let cache = planned.get_attr("cache");
        if let (Some(engine), Some(version)) = (
            cache.get_attr("engine").as_str(),
            cache.get_attr("engine_version").as_str(),
        ) {
            asks.push(Ask::Cache {
                engine: engine.to_string(),
                version: version.to_string(),
            });
        }
    }
    asks
}

impl Ask {
    async fn ask(&self, ctx: &crate::components::Ctx) -> Answer {
        match self {
            Ask::Shield => Answer::Subscribed(edge::shield_subscribed(ctx).await),
            Ask::Kubernetes(_) => Answer::Versions(offers::kubernetes(ctx).await),
            Ask::Postgres(_) => Answer::Versions(offers::postgres(ctx).await),
            Ask::Cache { engine, .. } => Answer::Versions(offers::cache(ctx, engine).await),
        }
    }

    /// The attribute, the version asked for, what offers it, the call, and
    /// the built-in table.
    fn version(&self) -> Option<(Path, &str, String, &'static str, &'static [&'static str])> {
        Some(match self {
            Ask::Shield => return None,
            Ask::Kubernetes(v) => (
                at("cluster", "kubernetes_version"),
                v,
                "EKS".to_string(),
                "eks:DescribeClusterVersions",
                offers::BUILT_IN_KUBERNETES,
            ),
            Ask::Postgres(v) => (
                at("database", "engine_version"),
                v,
                "RDS for PostgreSQL".to_string(),
                "rds:DescribeDBEngineVersions",
                offers::BUILT_IN_POSTGRES,
            ),
            Ask::Cache { engine, version } => (
                at("cache", "engine_version"),
                version,
                format!("ElastiCache for {}", engine_name(engine)),
                "elasticache:DescribeCacheEngineVersions",
                if engine == "valkey" {
                    offers::BUILT_IN_VALKEY
                } else {
                    offers::BUILT_IN_REDIS
                },
            ),
        })
    }

    /// When AWS gave no answer (`why`).
    fn unanswered(&self, why: &str) -> Diagnostics {
        match self.version() {
            None => Diagnostic::warning(
                "Shield Advanced subscription not checked",
                format!(
                    "{why}. The apply fails at CreateProtection if the account has no subscription."
                ),
            )
            .at(at("edge", "ddos_protection"))
            .into(),
            Some((path, version, service, call, table)) => {
                if table
                    .iter()
                    .any(|t| offers::names(version, t) || offers::names(t, version))
                {
                    Diagnostic::warning(
                        "Version not checked against AWS",
                        format!(
                            "{path} = {version:?} could not be checked against what {service} offers ({call}: {why}); \
                             it is in the provider's built-in table ({}).",
                            table.join(", ")
                        ),
                    )
                    .at(path)
                    .into()
                } else {
                    Diagnostic::error(
                        "Version not offered",
                        format!(
                            "{path} = {version:?} is not in the provider's built-in table of what {service} offers ({}), \
                             and AWS could not be asked ({call}: {why}).",
                            table.join(", ")
                        ),
                    )
                    .at(path)
                    .into()
                }
            }
        }
    }

    fn judge(&self, answer: Answer, account: &str, region: &str) -> Diagnostics {
        match answer {
            Answer::Subscribed(Ok(true)) => Diagnostics::new(),
            Answer::Subscribed(Ok(false)) => Diagnostic::error(
                "Shield Advanced is not subscribed",
                format!(
                    "edge.ddos_protection = true (the module's enable_ddos_protection) makes a Shield Advanced protection, and account {account} has no Shield Advanced subscription (shield:DescribeSubscription found none). Nothing was built. \
                     Subscribe the account (`aws shield create-subscription`: a one-year commitment, billed monthly; the provider never subscribes on its own), or set edge.ddos_protection = false to rely on Shield Standard."
                ),
            )
            .at(at("edge", "ddos_protection"))
            .into(),
            Answer::Subscribed(Err(e)) | Answer::Versions(Err(e)) => {
                self.unanswered(&e.to_string())
            }
            Answer::Versions(Ok(offered)) if offered.is_empty() => {
                self.unanswered("AWS listed no versions")
            }
            Answer::Versions(Ok(offered)) => {
                let Some((path, version, service, call, _)) = self.version() else {
                    return Diagnostics::new();
                };
                if offered.iter().any(|o| offers::names(version, o)) {
                    return Diagnostics::new();
                }
                Diagnostic::error(
                    "Version not offered",
                    format!(
                        "{path} = {version:?} is not offered by {service} in {region} (account {account}); {call} lists {}.",
                        offered.join(", ")
                    ),
                )
                .at(path)
                .into()
            }
        }
    }
}

fn engine_name(engine: &str) -> &str {
    match engine {
        "valkey" => "Valkey",
        _ => "Redis OSS",
    }
}

/// Asks AWS what the plan needs to know; diagnostics for what it says (or
/// for what could not be asked).
pub async fn check_plan(
    aws: &Arc<Aws>,
    prior: &Value,
    planned: &Value,
    cancel: &CancellationToken,
) -> Diagnostics {
    if planned.is_null() {
        return Diagnostics::new();
    }
    let asks = asks(prior, planned);
    if asks.is_empty() {
        return Diagnostics::new();
    }
    // Bounded: a plan must not wait on an AWS it cannot reach.
    let answered = tokio::time::timeout(LIMIT, async {
        let ctx = context(aws, planned, LIMIT, cancel).await?;
        let answers = futures_util::future::join_all(asks.iter().map(|a| a.ask(&ctx))).await;
        Ok::<_, Diagnostics>((ctx.account_id.clone(), ctx.region.clone(), answers))
    })
    .await;
    let mut d = Diagnostics::new();
    match answered {
        Err(_) => {
            let why = format!("AWS did not answer within {}s", LIMIT.as_secs());
            for a in &asks {
                d.extend(a.unanswered(&why));
            }
        }
        Ok(Err(e)) => {
            let why =
                e.0.iter()
                    .map(|d| d.detail.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
            for a in &asks {
                d.extend(a.unanswered(&why));
            }
        }
        Ok(Ok((account, region, answers))) => {
            for (a, answer) in asks.iter().zip(answers) {
                d.extend(a.judge(answer, &account, &region));
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::plan::{config_of, plan};

    fn planned() -> Value {
        let config = config_of("prod");
        plan(&Value::Null, &config, &config, "us-east-1").planned
    }

    #[test]
    fn a_plan_without_new_versions_or_protection_asks_nothing() {
        let planned = planned();
        assert!(asks(&planned, &planned).is_empty());
        // A new environment asks for each version and the subscription.
        assert_eq!(asks(&Value::Null, &planned).len(), 4);
    }

    #[test]
    fn new_versions_are_asked_and_unanswered_ones_fall_back_to_the_table() {
        let mut prior = planned();
        prior
            .attr_mut("cluster")
            .set_attr("kubernetes_version", Value::string("1.31"));
        let mut planned = prior.clone();
        planned
            .attr_mut("cluster")
            .set_attr("kubernetes_version", Value::string("1.32"));
        let asked = asks(&prior, &planned);
        assert!(
            matches!(&asked[..], [Ask::Kubernetes(v)] if v == "1.32"),
            "{asked:?}"
        );
        let d = asked[0].unanswered("AccessDeniedException: not allowed");
        assert!(!d.has_errors());
        assert!(d.0[0].detail.contains("built-in table"));
        let d = Ask::Kubernetes("1.99".into()).unanswered("no answer");
        assert!(d.has_errors());
        assert!(d.0[0]
            .detail
            .contains("cluster.kubernetes_version = \"1.99\""));
    }
}
