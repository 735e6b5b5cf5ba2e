//! monitoring: Where production says it is in trouble: the alarm topic `idis-<env>-alarms` (SNS, encrypted with the platform key), its e-mail and HTTPS subscriptions, and the CloudWatch alarms on what breaks production.
//!
//! The topic is the one place every alarm of the environment sends its
//! ALARM and OK notifications to. It is encrypted with the platform key,
//! whose policy lets the CloudWatch service use it (`keys`): CloudWatch
//! cannot publish to a topic encrypted with a customer managed key
//! otherwise (Amazon SNS Developer Guide, "Enable compatibility between
//! event sources from AWS services and encrypted topics").
//!
//! `alarm_emails` and `alarm_webhooks` are the topic's `email` and `https`
//! subscriptions, read back from SNS: one added or removed outside
//! Terraform shows as a change of the list, and apply puts the list back.
//! SNS keeps a new e-mail or HTTPS subscription "pending confirmation"
//! until its owner confirms it; a pending subscription of a wanted
//! address reads as subscribed (nothing more can be done from AWS), and a
//! pending one of an address no longer wanted is not read (SNS lists it
//! without an ARN, so it cannot be unsubscribed, and deletes it itself
//! after 48 hours; it receives nothing meanwhile). Subscriptions of other
//! protocols (SQS, Lambda, ...) are others' and left alone.

use std::collections::{BTreeMap, BTreeSet};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use super::alarms::{self, AlarmSeen, Targets, Thresholds, THRESHOLDS};
use super::dashboard;
use super::describe::{
    Check, Component, Default, Guard, Output, Problem, Reading, Setting, Verdicts,
};
use super::iam_role::RoleSeen;
use super::keys::KeysState;
use super::logs;
use super::vendors::{self, Vendor, VendorsOutputs, VendorsSpec};
use super::{aws_error, partition, ComponentError, Ctx};
use crate::protocol::cty::{Type, Value};

pub const COMPONENT: &str = "monitoring";

/// SNS protocols of the two kinds of subscription the provider makes.
const EMAIL: &str = "email";
const HTTPS: &str = "https";

/// What SNS lists instead of an ARN for a subscription not confirmed yet.
const PENDING: &str = "PendingConfirmation";

/// One subscription of the topic, as SNS lists it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub protocol: String,
    pub endpoint: String,
    /// None while the subscription waits for its owner's confirmation.
    pub arn: Option<String>,
}

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitoringState {
    pub topic_arn: String,
    /// The topic's `KmsMasterKeyId`; None when it is not encrypted.
    pub kms_key: Option<String>,
    pub subscriptions: Vec<Subscription>,
    /// This environment's alarms, as CloudWatch describes them.
    pub alarms: Vec<AlarmSeen>,
    /// The monitoring vendors' roles, as IAM has them.
    #[serde(default)]
    pub vendor_roles: BTreeMap<Vendor, RoleSeen>,
    /// The body of the dashboard `idis-<env>`; None when there is none.
    pub dashboard: Option<String>,
    /// The guards, as read.
    #[serde(skip)]
    pub verdicts: Verdicts,
    /// The log groups and their writers (`logs`), judged by `read`.
    #[serde(skip)]
    pub logs: logs::LogsState,
}

impl MonitoringState {
    /// The endpoints of one protocol's subscriptions: every confirmed
    /// one, and the pending ones among `wanted`.
    fn endpoints(&self, protocol: &str, wanted: &[String]) -> Vec<String> {
        let mut found: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|s| s.protocol == protocol)
            .filter(|s| s.arn.is_some() || wanted.contains(&s.endpoint))
            .map(|s| s.endpoint.clone())
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

/// The `monitoring` block once planned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitoringSpec {
    pub alarm_emails: Vec<String>,
    pub alarm_webhooks: Vec<String>,
    pub log_retention_days: i64,
    #[serde(flatten)]
    pub thresholds: Thresholds,
    #[serde(flatten)]
    pub vendors: VendorsSpec,
}

/// The defaults of the arguments: what a block of an older state (one
/// without an argument yet) is read as.
impl std::default::Default for MonitoringSpec {
    fn default() -> MonitoringSpec {
        MonitoringSpec {
            alarm_emails: Vec::new(),
            alarm_webhooks: Vec::new(),
            log_retention_days: logs::DEFAULT_RETENTION_DAYS,
            thresholds: Thresholds::default(),
            vendors: VendorsSpec::default(),
        }
    }
}

/// The computed attributes of monitoring.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MonitoringOutputs {
    pub alarm_topic_arn: Option<String>,
    #[serde(flatten)]
    pub vendors: VendorsOutputs,
    pub dashboard_url: Option<String>,
}

/// The environment's monitoring.
pub struct Monitoring;

impl Component for Monitoring {
    const NAME: &'static str = COMPONENT;
    const DOC: &'static str = "Monitoring: the alarm topic `idis-<name>-alarms` (SNS, encrypted with the platform key) with e-mail and HTTPS subscriptions, and CloudWatch alarms on what breaks production (database and each replica, cache nodes, web ACL, NAT gateways, distribution) that notify it on ALARM and OK, and the CloudWatch dashboard `idis-<name>` drawn from those alarms (output `dashboard_url`). Thresholds are arguments; the alarms and the dashboard follow the environment.";
    const AFTER: &'static [&'static str] = &[
        super::keys::COMPONENT,
        super::network::COMPONENT,
        super::cluster::COMPONENT,
        super::database::COMPONENT,
        super::cache::COMPONENT,
        super::edge::COMPONENT,
    ];
    type Spec = MonitoringSpec;
    type State = MonitoringState;
    type Outputs = MonitoringOutputs;

    async fn find(ctx: &Ctx) -> Result<Option<MonitoringState>, ComponentError> {
        let (seen, platform, alarms, roles, board, logs) = tokio::join!(
            read(ctx),
            super::platform_key(ctx, COMPONENT),
            read_alarms(ctx),
            vendors::read(ctx, COMPONENT),
            dashboard::read(ctx),
            logs::read(ctx, COMPONENT)
        );
        let Some(mut seen) = seen? else {
            return Ok(None);
        };
        seen.state.alarms = alarms?;
        seen.state.vendor_roles = roles?;
        seen.state.dashboard = board?;
        seen.state.logs = logs?;
        Ok(Some(judged(ctx, seen, platform?.as_ref())))
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &MonitoringSpec,
        built: &super::Observed,
    ) -> Result<MonitoringState, ComponentError> {
        let keys = built.need::<super::keys::TenantKeys>(COMPONENT)?;
        let targets = targets_built(ctx, built)?;
        ensure(ctx, spec, keys, &targets).await
    }

    async fn delete(ctx: &Ctx, _spec: &MonitoringSpec) -> Result<Vec<String>, ComponentError> {
        let warnings = delete(ctx).await?;
        logs::delete(ctx, COMPONENT).await?;
        vendors::delete(ctx, COMPONENT).await?;
        Ok(warnings)
    }

    fn settings() -> Vec<Setting> {
        vec![
            Setting::new(
                "alarm_emails",
                Type::list(Type::String),
                Default::Strings(&[]),
                "E-mail addresses the alarm topic notifies (SNS `email` subscriptions; each address confirms its subscription from the message SNS sends it). Default: none.".into(),
            )
            .check(Check::EachText(is_email, "an e-mail address such as \"oncall@example.com\"")),
            Setting::new(
                "alarm_webhooks",
                Type::list(Type::String),
                Default::Strings(&[]),
                "HTTPS URLs the alarm topic posts to (SNS `https` subscriptions, e.g. a paging service's SNS integration URL; the endpoint confirms the subscription). Plain HTTP is refused. Default: none.".into(),
            )
            .check(Check::EachText(
                is_https_url,
                "an https:// URL with a host, without spaces (plain http:// is not allowed: alarms would cross the internet unencrypted)",
            )),
            Setting::new(
                "log_retention_days",
                Type::Number,
                Default::Int(logs::DEFAULT_RETENTION_DAYS),
                format!(
                    "Days CloudWatch Logs keeps every log group of the environment (EKS control plane, RDS `postgresql` and `upgrade` exports, ElastiCache slow and engine logs, VPC flow log). One of the values CloudWatch Logs accepts: {}. Default `{}`.",
                    logs::allowed_retention(),
                    logs::DEFAULT_RETENTION_DAYS
                ),
            )
            .check(Check::Range(1, 3653)),
        ]
        .into_iter()
        .chain(THRESHOLDS.iter().map(|t| {
            Setting::new(
                t.name,
                Type::Number,
                Default::Int(t.default),
                format!("{}. {} to {}. Default `{}`.", t.doc, t.min, t.max, t.default),
            )
            .check(Check::Range(t.min, t.max))
        }))
        .chain(vendors::settings())
        .collect()
    }

    fn outputs() -> Vec<Output> {
        let mut outputs = vec![
            Output::new(
                "alarm_topic_arn",
                Type::String,
                "ARN of the alarm topic `idis-<name>-alarms` (SNS) every alarm notifies; subscribe more endpoints to it as needed.",
            ),
            Output::new(
                "dashboard_url",
                Type::String,
                "Console URL of the CloudWatch dashboard `idis-<name>`: one row per component, a graph per metric the alarms watch, each threshold drawn as a line.",
            ),
        ];
        outputs.extend(vendors::outputs());
        outputs
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    /// The dashboard's address is known from the name and region alone,
    /// so the plan shows it (and a state from before the output gets it).
    /// The vendor roles' ARNs follow their arguments.
    fn plan_outputs(prior: &Value, planned: &mut Value) {
        vendors::plan_outputs(COMPONENT, prior, planned);
        let url = match (
            planned.get_attr("name").as_str(),
            planned.get_attr("region").as_str(),
        ) {
            (Some(env), Some(region)) => dashboard::url(region, env),
            _ => return,
        };
        planned.set_attr("dashboard_url", Value::string(url));
    }

    fn check(config: &Value) -> Vec<Problem> {
        let mut problems = vendors::check(config.get_attr(COMPONENT));
        let retention = config.get_attr(COMPONENT).get_attr("log_retention_days");
        if let Some(days) = retention.as_i64() {
            if !logs::RETENTION_DAYS.contains(&days) {
                problems.push(Problem::at(
                    "log_retention_days",
                    retention,
                    format!(
                        "one of the retention periods CloudWatch Logs accepts: {}",
                        logs::allowed_retention()
                    ),
                ));
            }
        }
        for attr in ["alarm_emails", "alarm_webhooks"] {
            if let Value::List(items) = config.get_attr(COMPONENT).get_attr(attr) {
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(text) = item.as_str() {
                        if !seen.insert(text.to_ascii_lowercase()) {
                            problems.push(Problem::at_index(
                                attr,
                                i,
                                item,
                                "each address may appear only once (duplicate)",
                            ));
                        }
                    }
                }
            }
        }
        problems
    }

    fn read(
        state: &MonitoringState,
        stored: &MonitoringSpec,
        prior: &Value,
    ) -> Reading<MonitoringSpec, MonitoringOutputs> {
        // The alarms are judged here, against the thresholds in the state
        // and what the environment has as this reading found it (the
        // components read before this one).
        let mut verdicts = state.verdicts.clone();
        let env = prior.get_attr("name").as_str().unwrap_or_default();
        let region = prior.get_attr("region").as_str().unwrap_or_default();
        let targets = targets_read(prior, &state.alarms);
        let wanted = alarms::wanted(env, &stored.thresholds, &targets);
        verdicts.judge(
            &GUARDS[ALARMS],
            alarm_problems(&wanted, &state.alarms, &state.topic_arn),
        );
        verdicts.judge(
            &GUARDS[DASHBOARD],
            dashboard::problems(
                env,
                &dashboard::body(region, &wanted),
                state.dashboard.as_deref(),
            ),
        );
        verdicts.judge(
            &GUARDS[VENDOR_ROLES],
            vendors::problems(env, &targets.region, &stored.vendors, &state.vendor_roles),
        );
        let (vendor_settings, vendor_outputs) = vendors::reading(&state.vendor_roles);
        let logged = logs::problems(&state.logs, stored.log_retention_days);
        verdicts.judge(&GUARDS[LOG_GROUPS], logged.groups);
        verdicts.judge(&GUARDS[DATABASE_LOGS], logged.database);
        verdicts.judge(&GUARDS[CACHE_LOGS], logged.cache);
        verdicts.judge(&GUARDS[FLOW_LOGS], logged.flow);
        Reading {
            settings: MonitoringSpec {
                alarm_emails: in_stored_order(
                    state.endpoints(EMAIL, &stored.alarm_emails),
                    &stored.alarm_emails,
                ),
                alarm_webhooks: in_stored_order(
                    state.endpoints(HTTPS, &stored.alarm_webhooks),
                    &stored.alarm_webhooks,
                ),
                log_retention_days: stored.log_retention_days,
                thresholds: stored.thresholds.clone(),
                vendors: vendor_settings,
            },
            outputs: MonitoringOutputs {
                alarm_topic_arn: Some(state.topic_arn.clone()),
                vendors: vendor_outputs,
                dashboard_url: Some(dashboard::url(region, env)),
            },
            verdicts,
        }
    }
}

/// `found` in the order the state holds them (SNS lists in no order of
/// the user's), the new ones after them.
fn in_stored_order(found: Vec<String>, stored: &[String]) -> Vec<String> {
    let mut ordered: Vec<String> = stored
        .iter()
        .filter(|s| found.contains(s))
        .cloned()
        .collect();
    ordered.extend(found.into_iter().filter(|f| !stored.contains(f)));
    ordered
}

/// `local@domain.tld`, as SNS takes an e-mail endpoint: no spaces, one
/// `@`, a dotted domain.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && s.chars().all(|c| c.is_ascii_graphic())
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// `https://host[:port][/path]`, no spaces.
pub fn is_https_url(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("https://") else {
        return false;
    };
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    s.len() <= 2048
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && s.chars().all(|c| c.is_ascii_graphic())
}

const TOPIC: usize = 0;
const TAGS: usize = 1;
const ALARMS: usize = 2;
const LOG_GROUPS: usize = 3;
const DATABASE_LOGS: usize = 4;
const CACHE_LOGS: usize = 5;
const FLOW_LOGS: usize = 6;
const DASHBOARD: usize = 7;
const VENDOR_ROLES: usize = 8;

const GUARDS: &[Guard] = &[
    Guard::new(
        "alarm_topic",
        "encrypted with the platform key",
        "The alarm topic `idis-<name>-alarms` is encrypted with the environment's platform KMS key (whose policy lets CloudWatch use it, so alarms can publish to the topic).",
    ),
    Guard::new(
        "tags",
        "ownership and user tags present",
        "The alarm topic carries `tags`, the provider's `default_tags` and the ownership tags. Tags others add are left alone.",
    ),
    Guard::new(
        "alarms",
        "every alarm present, notifying the alarm topic",
        "Every alarm the environment gets exists as the provider makes it: its metric and dimensions (this environment's database and each replica, cache nodes, web ACL, NAT gateways, distribution), statistic, period, threshold (from the arguments), missing-data rule, and the alarm topic as its only ALARM and OK action. Alarms of resources the environment no longer has are deleted. Alarms are tagged when made; their tags are not read back.",
    ),
    Guard::new(
        "log_groups",
        "kept and encrypted with the platform key",
        "Every log group of the environment exists, encrypted with the platform key and keeping logs `log_retention_days`: `/aws/eks/<cluster>/cluster` (control plane), `/aws/rds/instance/<id>/postgresql` and `/upgrade`, `/aws/elasticache/<group>/slow-log` and `/engine-log`, `/aws/vpc/idis-<name>/flow-logs`. Each is made before its writer is turned on.",
    ),
    Guard::new(
        "database_logs",
        "log exports and Enhanced Monitoring on",
        "The primary exports its `postgresql` and `upgrade` logs to CloudWatch Logs and has Enhanced Monitoring every 60 s through the role `idis-<name>-rds-monitoring` (trusting monitoring.rds.amazonaws.com, with AmazonRDSEnhancedMonitoringRole). Performance Insights is the database's `performance_insights`.",
    ),
    Guard::new(
        "cache_logs",
        "slow and engine logs delivered",
        "The replication group delivers its slow log and engine log, as JSON, to their log groups.",
    ),
    Guard::new(
        "flow_logs",
        "flow log active",
        "The VPC has an active flow log of all traffic to `/aws/vpc/idis-<name>/flow-logs`, delivered through the role `idis-<name>-flow-logs` (trusting vpc-flow-logs.amazonaws.com, with the permissions the Amazon VPC User Guide lists).",
    ),
    dashboard::GUARD,
    Guard::new(
        "vendor_roles",
        "each vendor role as the vendor documents",
        "The roles of `datadog` and `newrelic` have exactly the permissions their vendor documents (Datadog: AWS's `SecurityAudit` and the inline policy `idis-datadog-integration`; New Relic: AWS's `ReadOnlyAccess`), no other inline or attached policy, and a trust policy of the one statement the provider writes (its account and external id are the arguments). A vendor role left after its argument is unset shows here and is deleted by apply.",
    ),
];

/// `idis-<env>-alarms`.
pub fn topic_name(ctx: &Ctx) -> String {
    format!("{}-alarms", ctx.prefix())
}

/// The ARN of the alarm topic: SNS names a topic by account, region and
/// name, so it is known before the topic exists.
pub fn topic_arn(ctx: &Ctx) -> String {
    format!(
        "arn:{}:sns:{}:{}:{}",
        partition(&ctx.region),
        ctx.region,
        ctx.account_id,
        topic_name(ctx)
    )
}

fn conflict(message: impl Into<String>) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: message.into(),
    }
}

/// The topic, its subscriptions and tags, read concurrently; None when
/// there is no topic.
async fn read(ctx: &Ctx) -> Result<Option<Seen>, ComponentError> {
    let sns = ctx.aws.sns();
    let arn = topic_arn(ctx);
    let subscriptions = async {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = match sns
                .list_subscriptions_by_topic()
                .topic_arn(&arn)
                .set_next_token(token.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) if e.code() == Some("NotFound") => return Ok(None),
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!("list the subscriptions of the alarm topic {arn}"),
                        e,
                    ))
                }
            };
            all.extend(page.subscriptions().iter().map(|s| {
                Subscription {
                    protocol: s.protocol().unwrap_or_default().to_string(),
                    endpoint: s.endpoint().unwrap_or_default().to_string(),
                    arn: s
                        .subscription_arn()
                        .filter(|a| *a != PENDING && a.starts_with("arn:"))
                        .map(str::to_string),
                }
            }));
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(Some(all))
    };
    let (attributes, subscriptions, tags) = tokio::join!(
        sns.get_topic_attributes().topic_arn(&arn).send(),
        subscriptions,
        sns.list_tags_for_resource().resource_arn(&arn).send(),
    );
    let attributes = match attributes {
        Ok(out) => out.attributes().cloned().unwrap_or_default(),
        Err(e) if e.code() == Some("NotFound") => return Ok(None),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("read the alarm topic {arn}"),
                e,
            ))
        }
    };
    let Some(subscriptions) = subscriptions? else {
        return Ok(None);
    };
    let tags = match tags {
        Ok(out) => out
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(e) if matches!(e.code(), Some("NotFound" | "ResourceNotFound")) => return Ok(None),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("read the tags of the alarm topic {arn}"),
                e,
            ))
        }
    };
    Ok(Some(Seen {
        state: MonitoringState {
            topic_arn: arn,
            kms_key: attributes
                .get("KmsMasterKeyId")
                .filter(|k| !k.is_empty())
                .cloned(),
            subscriptions,
            alarms: Vec::new(),
            vendor_roles: BTreeMap::new(),
            dashboard: None,
            verdicts: Verdicts::new(),
            logs: logs::LogsState::default(),
        },
        tags,
    }))
}

/// What [`read`] found: the state, and the topic's tags (judged, not kept).
struct Seen {
    state: MonitoringState,
    tags: BTreeMap<String, String>,
}

/// Whether the topic's key (an id, an ARN, an alias name or alias ARN)
/// is the platform key.
fn is_platform(ctx: &Ctx, key: &str, platform: Option<&(String, String)>) -> bool {
    key.ends_with(&format!("alias/idis/{}/{}", ctx.env, super::keys::PLATFORM))
        || platform
            .is_some_and(|(id, arn)| key == id || key == arn || key.ends_with(&format!("key/{id}")))
}

fn judged(ctx: &Ctx, seen: Seen, platform: Option<&(String, String)>) -> MonitoringState {
    let Seen { mut state, tags } = seen;
    let mut v = Verdicts::new();
    let topic = topic_name(ctx);
    match state.kms_key.as_deref() {
        Some(key) if is_platform(ctx, key, platform) => {
            v.seen(&GUARDS[TOPIC]);
        }
        Some(key) => v.problem(
            &GUARDS[TOPIC],
            format!("topic {topic} is encrypted with {key}, not the platform key"),
        ),
        None => v.problem(&GUARDS[TOPIC], format!("topic {topic} is not encrypted")),
    }
    let mut tag_problems =
        super::tag_problems(&format!("topic {topic}"), &tags, &ctx.tags(COMPONENT));
    tag_problems.extend(vendors::tag_problems(ctx, COMPONENT, &state.vendor_roles));
    v.judge(&GUARDS[TAGS], tag_problems);
    state.verdicts = v;
    state
}

fn sns_tags(
    tags: &BTreeMap<String, String>,
) -> Result<Vec<aws_sdk_sns::types::Tag>, ComponentError> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_sns::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| conflict(format!("invalid tag {k:?}: {e}")))
        })
        .collect()
}

/// What the environment has, from the components an apply just built.
fn targets_built(ctx: &Ctx, built: &super::Observed) -> Result<Targets, ComponentError> {
    let net = built.need::<super::network::Network>(COMPONENT)?;
    let db = built.get::<super::database::Database>();
    let cache = built.get::<super::cache::Cache>();
    let edge = built.get::<super::edge::Edge>();
    Ok(Targets {
        database: db.map(|d| d.identifier.clone()),
        replicas: db
            .map(|d| {
                d.replica_endpoints
                    .iter()
                    .filter_map(|e| alarms::instance_of_endpoint(e))
                    .collect()
            })
            .unwrap_or_default(),
        allocated_storage_gb: db.map_or(0, |d| d.allocated_storage_gb),
        cache_nodes: cache
            .map(|c| alarms::cache_members(&c.replication_group_id, c.node_count))
            .unwrap_or_default(),
        web_acl: edge
            .and_then(|e| e.web_acl_arn.as_deref())
            .and_then(alarms::web_acl_name)
            .map(|n| format!("{n}-web-acl")),
        region: ctx.region.clone(),
        distribution: edge
            .and_then(|e| e.cdn_distribution_id.clone())
            .filter(|_| ctx.region == alarms::CLOUDFRONT_METRICS_REGION),
        nat_gateways: net.nat_gateway_ids.clone(),
    })
}

/// What the environment has, from the state a refresh is writing (the
/// components read before this one). The NAT gateways' and the
/// distribution's ids are not in the state: their alarms' own dimensions
/// stand in (an alarm missing is missing whatever it should watch; an
/// apply gives each the real id).
fn targets_read(prior: &Value, seen: &[AlarmSeen]) -> Targets {
    let env = prior.get_attr("name").as_str().unwrap_or_default();
    let region = prior
        .get_attr("region")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let dimension = |name: String, dim: &str| {
        seen.iter()
            .find(|a| a.name == name)
            .and_then(|a| a.dimensions.get(dim).cloned())
            .unwrap_or_else(|| "(unknown until made)".to_string())
    };
    let zones = prior
        .get_attr("network")
        .get_attr("availability_zones")
        .as_strings()
        .map_or(3, |z| z.len());
    let nats = if prior.get_attr("vpc_id").is_null() {
        0
    } else if prior
        .get_attr("network")
        .get_attr("nat_gateway_per_az")
        .as_bool()
        .unwrap_or(true)
    {
        zones
    } else {
        1
    };
    Targets {
        database: (!prior.get_attr("database_arn").is_null()).then(|| format!("idis-{env}-db")),
        replicas: prior
            .get_attr("database_replica_endpoints")
            .as_strings()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| alarms::instance_of_endpoint(e))
            .collect(),
        allocated_storage_gb: prior
            .get_attr("database")
            .get_attr("allocated_storage_gb")
            .as_i64()
            .unwrap_or(0),
        cache_nodes: prior
            .get_attr("cache_replication_group_id")
            .as_str()
            .map(|g| {
                alarms::cache_members(
                    g,
                    prior
                        .get_attr("cache")
                        .get_attr("node_count")
                        .as_i64()
                        .unwrap_or(0),
                )
            })
            .unwrap_or_default(),
        web_acl: prior
            .get_attr("web_acl_arn")
            .as_str()
            .and_then(alarms::web_acl_name)
            .map(|n| format!("{n}-web-acl")),
        distribution: (!prior.get_attr("cdn_domain_name").is_null()
            && region == alarms::CLOUDFRONT_METRICS_REGION)
            .then(|| dimension(format!("idis-{env}-cdn-5xx-rate"), "DistributionId")),
        nat_gateways: (1..=nats)
            .map(|i| {
                dimension(
                    format!("idis-{env}-nat-{i}-port-allocation-errors"),
                    "NatGatewayId",
                )
            })
            .collect(),
        region,
    }
}

/// What is wrong with the alarms found against those wanted.
fn alarm_problems(wanted: &[alarms::Alarm], seen: &[AlarmSeen], topic: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for want in wanted {
        match seen.iter().find(|s| s.name == want.name) {
            None => problems.push(format!("alarm {} is missing", want.name)),
            Some(s) => problems.extend(alarms::problems(want, s, topic)),
        }
    }
    for s in seen {
        if !wanted.iter().any(|w| w.name == s.name) {
            problems.push(format!(
                "alarm {} watches something the environment no longer has",
                s.name
            ));
        }
    }
    problems
}

/// This environment's alarms (those whose description carries its
/// marker), all pages of DescribeAlarms.
async fn read_alarms(ctx: &Ctx) -> Result<Vec<AlarmSeen>, ComponentError> {
    let cw = ctx.aws.cloudwatch();
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = cw
            .describe_alarms()
            .alarm_name_prefix(format!("{}-", ctx.prefix()))
            .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
            // The most a page holds: one call for up to 100 alarms (an
            // environment with five replicas and six cache nodes has 64).
            .max_records(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, "list the environment's CloudWatch alarms", e))?;
        all.extend(page.metric_alarms().iter().map(|a| {
            AlarmSeen {
                name: a.alarm_name().unwrap_or_default().to_string(),
                description: a.alarm_description().unwrap_or_default().to_string(),
                namespace: a.namespace().unwrap_or_default().to_string(),
                metric: a.metric_name().unwrap_or_default().to_string(),
                statistic: a
                    .statistic()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                dimensions: a
                    .dimensions()
                    .iter()
                    .map(|d| {
                        (
                            d.name().unwrap_or_default().to_string(),
                            d.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
                period: a.period().unwrap_or_default(),
                evaluation_periods: a.evaluation_periods().unwrap_or_default(),
                datapoints_to_alarm: a.datapoints_to_alarm(),
                threshold: a.threshold().unwrap_or_default(),
                comparison: a
                    .comparison_operator()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
                treat_missing_data: a.treat_missing_data().map(str::to_string),
                actions_enabled: a.actions_enabled().unwrap_or(false),
                alarm_actions: a.alarm_actions().to_vec(),
                ok_actions: a.ok_actions().to_vec(),
            }
        }));
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(all
        .into_iter()
        .filter(|a| alarms::is_ours(a, &ctx.env))
        .collect())
}

/// Makes (or overwrites) one alarm as wanted.
async fn put_alarm(ctx: &Ctx, alarm: &alarms::Alarm, topic: &str) -> Result<(), ComponentError> {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic, Tag};
    let mut put = ctx
        .aws
        .cloudwatch()
        .put_metric_alarm()
        .alarm_name(&alarm.name)
        .alarm_description(&alarm.description)
        .namespace(alarm.namespace)
        .metric_name(alarm.metric)
        .statistic(Statistic::from(alarm.statistic))
        .period(alarm.period)
        .evaluation_periods(alarm.evaluation_periods)
        .datapoints_to_alarm(alarm.evaluation_periods)
        .threshold(alarm.threshold)
        .comparison_operator(ComparisonOperator::from(alarm.compare.operator()))
        .treat_missing_data(alarm.treat_missing_data)
        .actions_enabled(true)
        .alarm_actions(topic)
        .ok_actions(topic);
    for (name, value) in &alarm.dimensions {
        put = put.dimensions(Dimension::builder().name(name).value(value).build());
    }
    // Tags are taken when the alarm is made (PutMetricAlarm ignores them
    // on an update). Each alarm carries its own `Name`, as every object the
    // provider makes: objects of a component are told apart by it.
    let mut tags = ctx.tags(COMPONENT);
    tags.insert("Name".to_string(), alarm.name.clone());
    for (key, value) in tags {
        put = put.tags(Tag::builder().key(key).value(value).build());
    }
    put.send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("put the alarm {}", alarm.name), e))?;
    Ok(())
}

/// Deletes alarms by name, 100 a call (DeleteAlarms' limit); alarms
/// already gone are fine.
async fn delete_alarms(ctx: &Ctx, names: &[String]) -> Result<(), ComponentError> {
    for chunk in names.chunks(100) {
        match ctx
            .aws
            .cloudwatch()
            .delete_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceNotFound") => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("delete the alarms {}", chunk.join(", ")),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// Makes the alarms match `wanted`: puts the missing and changed ones,
/// deletes those of resources the environment no longer has. Returns
/// whether anything changed.
async fn ensure_alarms(
    ctx: &Ctx,
    wanted: &[alarms::Alarm],
    seen: &[AlarmSeen],
    topic: &str,
) -> Result<bool, ComponentError> {
    let mut changed = false;
    for want in wanted {
        let fine = seen
            .iter()
            .find(|s| s.name == want.name)
            .is_some_and(|s| alarms::problems(want, s, topic).is_empty());
        if !fine {
            put_alarm(ctx, want, topic).await?;
            changed = true;
        }
    }
    let stale: Vec<String> = seen
        .iter()
        .filter(|s| !wanted.iter().any(|w| w.name == s.name))
        .map(|s| s.name.clone())
        .collect();
    if !stale.is_empty() {
        delete_alarms(ctx, &stale).await?;
        changed = true;
    }
    Ok(changed)
}

pub async fn ensure(
    ctx: &Ctx,
    spec: &MonitoringSpec,
    keys: &KeysState,
    targets: &Targets,
) -> Result<MonitoringState, ComponentError> {
    let sns = ctx.aws.sns();
    let arn = topic_arn(ctx);
    let name = topic_name(ctx);
    let platform = (keys.platform_key_id.clone(), keys.platform_key_arn.clone());
    let wanted_tags = ctx.tags(COMPONENT);
    let mut changed = false;
    let seen = match read(ctx).await? {
        Some(seen) => seen,
        None => {
            // CreateTopic is idempotent for a name, its attributes and
            // tags: a repeat after a lost answer gets the same topic.
            sns.create_topic()
                .name(&name)
                .attributes("KmsMasterKeyId", &keys.platform_key_arn)
                .set_tags(Some(sns_tags(&wanted_tags)?))
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, format!("create the alarm topic {name}"), e))?;
            changed = true;
            ctx.wait_for(
                COMPONENT,
                &format!("the alarm topic {name} to exist"),
                || read(ctx),
            )
            .await?
        }
    };

    if !seen
        .state
        .kms_key
        .as_deref()
        .is_some_and(|k| is_platform(ctx, k, Some(&platform)))
    {
        sns.set_topic_attributes()
            .topic_arn(&arn)
            .attribute_name("KmsMasterKeyId")
            .attribute_value(&keys.platform_key_arn)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("encrypt the alarm topic {name} with the platform key"),
                    e,
                )
            })?;
        changed = true;
    }

    let (set, _) = super::tag_diff(&seen.tags, &wanted_tags);
    if !set.is_empty() {
        sns.tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(sns_tags(&set)?))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("tag the alarm topic {name}"), e))?;
        changed = true;
    }

    // Subscriptions: the wanted ones made, the confirmed ones no longer
    // wanted removed (pending ones cannot be, and expire by themselves).
    let mut subscribe = Vec::new();
    let mut unsubscribe = Vec::new();
    for (protocol, wanted) in [(EMAIL, &spec.alarm_emails), (HTTPS, &spec.alarm_webhooks)] {
        for endpoint in wanted {
            if !seen
                .state
                .subscriptions
                .iter()
                .any(|s| s.protocol == protocol && &s.endpoint == endpoint)
            {
                subscribe.push((protocol, endpoint.clone()));
            }
        }
        for s in &seen.state.subscriptions {
            if s.protocol == protocol && !wanted.contains(&s.endpoint) {
                if let Some(sub_arn) = &s.arn {
                    unsubscribe.push((sub_arn.clone(), s.endpoint.clone()));
                }
            }
        }
    }
    for (protocol, endpoint) in &subscribe {
        // Subscribe is idempotent for a topic, protocol and endpoint.
        sns.subscribe()
            .topic_arn(&arn)
            .protocol(*protocol)
            .endpoint(endpoint)
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("subscribe {endpoint} ({protocol}) to the alarm topic {name}"),
                    e,
                )
            })?;
        changed = true;
    }
    for (sub_arn, endpoint) in &unsubscribe {
        match sns.unsubscribe().subscription_arn(sub_arn).send().await {
            Ok(_) => {}
            Err(e) if e.code() == Some("NotFound") => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("unsubscribe {endpoint} from the alarm topic {name}"),
                    e,
                ))
            }
        }
        changed = true;
    }

    let mut seen = if changed {
        read(ctx).await?.ok_or_else(|| {
            conflict(format!(
                "the alarm topic {name} disappeared while it was configured"
            ))
        })?
    } else {
        seen
    };

    let wanted = alarms::wanted(&ctx.env, &spec.thresholds, targets);
    let (found, board) = tokio::join!(read_alarms(ctx), dashboard::read(ctx));
    let found = found?;
    seen.state.alarms = if ensure_alarms(ctx, &wanted, &found, &arn).await? {
        read_alarms(ctx).await?
    } else {
        found
    };
    seen.state.logs = logs::ensure(
        ctx,
        COMPONENT,
        spec.log_retention_days,
        &keys.platform_key_arn,
    )
    .await?;
    seen.state.dashboard =
        dashboard::ensure(ctx, &dashboard::body(&ctx.region, &wanted), board?).await?;
    let roles = vendors::read(ctx, COMPONENT).await?;
    vendors::ensure(ctx, COMPONENT, &spec.vendors, &roles).await?;
    seen.state.vendor_roles = vendors::read(ctx, COMPONENT).await?;
    Ok(judged(ctx, seen, Some(&platform)))
}

/// Deletes the alarms, then the topic with its subscriptions (DeleteTopic
/// is idempotent: a topic already gone is success).
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    dashboard::delete(ctx).await?;
    let names: Vec<String> = read_alarms(ctx)
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    delete_alarms(ctx, &names).await?;
    let arn = topic_arn(ctx);
    match ctx.aws.sns().delete_topic().topic_arn(&arn).send().await {
        Ok(_) => Ok(Vec::new()),
        Err(e) if e.code() == Some("NotFound") => Ok(Vec::new()),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("delete the alarm topic {arn}"),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses_and_https_urls_are_told_from_the_rest() {
        for ok in ["oncall@example.com", "a.b+alarms@sub.example.co.uk"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "oncall",
            "@example.com",
            "oncall@",
            "oncall@example",
            "on call@example.com",
            "a@b@example.com",
            "a@example..com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        for ok in [
            "https://hooks.example.com/sns",
            "https://events.pagerduty.com:443/x/sns?key=1",
        ] {
            assert!(is_https_url(ok), "{ok}");
        }
        for bad in [
            "http://hooks.example.com",
            "https://",
            "https:///path",
            "https://ex ample.com",
            "ftp://x",
            "hooks.example.com",
        ] {
            assert!(!is_https_url(bad), "{bad}");
        }
    }

    #[test]
    fn a_retention_cloudwatch_logs_does_not_offer_is_a_problem_naming_the_allowed_ones() {
        let config = |days: i64| {
            let block =
                Value::Object([("log_retention_days".to_string(), Value::int(days))].into());
            Value::Object([(COMPONENT.to_string(), block)].into())
        };
        assert_eq!(Monitoring::check(&config(90)), Vec::new());
        assert_eq!(Monitoring::check(&config(3653)), Vec::new());
        let problems = Monitoring::check(&config(45));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].value, Value::int(45));
        assert!(problems[0]
            .allowed
            .ends_with("1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"));
        // A block of an older state, without the argument, reads as the default.
        assert_eq!(MonitoringSpec::default().log_retention_days, 90);
    }

    fn state(subs: &[(&str, &str, bool)]) -> MonitoringState {
        MonitoringState {
            topic_arn: "arn:aws:sns:us-east-1:123456789012:idis-p-alarms".into(),
            subscriptions: subs
                .iter()
                .map(|(p, e, confirmed)| Subscription {
                    protocol: (*p).into(),
                    endpoint: (*e).into(),
                    arn: confirmed.then(|| format!("arn:aws:sns:x:{e}")),
                })
                .collect(),
            ..std::default::Default::default()
        }
    }

    #[test]
    fn subscriptions_read_back_in_the_users_order_pending_ones_only_while_wanted() {
        let stored = MonitoringSpec {
            alarm_emails: vec!["b@example.com".into(), "a@example.com".into()],
            alarm_webhooks: vec!["https://hooks.example.com/x".into()],
            ..std::default::Default::default()
        };
        let s = state(&[
            ("email", "a@example.com", true),
            ("email", "b@example.com", false),
            ("email", "old@example.com", false),
            ("email", "added@example.com", true),
            ("https", "https://hooks.example.com/x", true),
            ("sqs", "arn:aws:sqs:x", true),
        ]);
        let read = Monitoring::read(&s, &stored, &Value::Null).settings;
        assert_eq!(
            read.alarm_emails,
            ["b@example.com", "a@example.com", "added@example.com"]
        );
        assert_eq!(read.alarm_webhooks, ["https://hooks.example.com/x"]);
    }
}
