//! monitoring: Where production says it is in trouble: the alarm topic `idis-<env>-alarms` (SNS, encrypted with the platform key) and its e-mail and HTTPS subscriptions.
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

use super::describe::{
    Check, Component, Default, Guard, Output, Problem, Reading, Setting, Verdicts,
};
use super::keys::KeysState;
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
    /// The guards, as read.
    #[serde(skip)]
    pub verdicts: Verdicts,
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitoringSpec {
    pub alarm_emails: Vec<String>,
    pub alarm_webhooks: Vec<String>,
}

/// The computed attributes of monitoring.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MonitoringOutputs {
    pub alarm_topic_arn: Option<String>,
}

/// The environment's monitoring.
pub struct Monitoring;

impl Component for Monitoring {
    const NAME: &'static str = COMPONENT;
    const DOC: &'static str = "Monitoring: the alarm topic `idis-<name>-alarms` (SNS, encrypted with the platform key) that every alarm of the environment notifies, with e-mail and HTTPS subscriptions.";
    const AFTER: &'static [&'static str] = &[super::keys::COMPONENT];
    type Spec = MonitoringSpec;
    type State = MonitoringState;
    type Outputs = MonitoringOutputs;

    async fn find(ctx: &Ctx) -> Result<Option<MonitoringState>, ComponentError> {
        let (seen, platform) = tokio::join!(read(ctx), super::platform_key(ctx, COMPONENT));
        let Some(seen) = seen? else {
            return Ok(None);
        };
        Ok(Some(judged(ctx, seen, platform?.as_ref())))
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &MonitoringSpec,
        built: &super::Observed,
    ) -> Result<MonitoringState, ComponentError> {
        let keys = built.need::<super::keys::TenantKeys>(COMPONENT)?;
        ensure(ctx, spec, keys).await
    }

    async fn delete(ctx: &Ctx, _spec: &MonitoringSpec) -> Result<Vec<String>, ComponentError> {
        delete(ctx).await
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
        ]
    }

    fn outputs() -> Vec<Output> {
        vec![Output::new(
            "alarm_topic_arn",
            Type::String,
            "ARN of the alarm topic `idis-<name>-alarms` (SNS) every alarm notifies; subscribe more endpoints to it as needed.",
        )]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn check(config: &Value) -> Vec<Problem> {
        let mut problems = Vec::new();
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
        _prior: &Value,
    ) -> Reading<MonitoringSpec, MonitoringOutputs> {
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
            },
            outputs: MonitoringOutputs {
                alarm_topic_arn: Some(state.topic_arn.clone()),
            },
            verdicts: state.verdicts.clone(),
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
            verdicts: Verdicts::new(),
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
    v.judge(
        &GUARDS[TAGS],
        super::tag_problems(&format!("topic {topic}"), &tags, &ctx.tags(COMPONENT)),
    );
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

pub async fn ensure(
    ctx: &Ctx,
    spec: &MonitoringSpec,
    keys: &KeysState,
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

    let seen = if changed {
        read(ctx).await?.ok_or_else(|| {
            conflict(format!(
                "the alarm topic {name} disappeared while it was configured"
            ))
        })?
    } else {
        seen
    };
    Ok(judged(ctx, seen, Some(&platform)))
}

/// Deletes the topic with its subscriptions (DeleteTopic is idempotent:
/// a topic already gone is success).
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
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
