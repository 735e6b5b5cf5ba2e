//! keys: The platform KMS key and one customer-managed key per tenant, aliases `alias/idis/<env>/<tenant>`, rotation on; removed tenants' keys are scheduled for deletion, never deleted at once.
//!
//! Keys are found by alias first (`alias/idis/<env>/...`). A key whose
//! alias is missing (a killed apply between CreateKey and CreateAlias, or
//! an alias deleted out of band) is found again by its tags
//! (`idis:environment`, `idis:component = keys`, `idis:tenant`) before a
//! new key is made: a tenant's data stays readable with the key that
//! encrypted it. A key pending deletion counts as gone, and is brought
//! back (CancelKeyDeletion + EnableKey) if its tenant is wanted again.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyState, KeyUsageType, Tag};
use aws_sdk_kms::Client;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::DateTime;
use futures_util::future::try_join_all;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::describe::{
    Check, Component, Default, Guard, Output, Problem, Reading, Setting, Verdicts,
};
use super::{
    aws_error, create_or_adopt, is_not_found, ComponentError, Ctx, TAG_COMPONENT, TAG_ENVIRONMENT,
};
use crate::protocol::cty::{Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

pub const COMPONENT: &str = "keys";

/// The name of the platform key among the tenants' (`alias/idis/<env>/platform`).
pub const PLATFORM: &str = "platform";
/// Tag naming the tenant a key belongs to (`platform` for the platform key).
pub const TAG_TENANT: &str = "idis:tenant";

/// How many tag reads run at once while looking for keys without alias.
const SCAN_CONCURRENCY: usize = 8;

/// The largest page ListAliases returns (its default is 50).
const ALIASES_PER_PAGE: i32 = 100;

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeysState {
    pub platform_key_arn: String,
    pub platform_key_id: String,
    /// Tenant name to key ARN, for every tenant alias that exists.
    pub tenant_key_arns: BTreeMap<String, String>,
    /// True only when rotation is on for every key.
    pub rotation_enabled: bool,
    /// Keys (`platform` or a tenant name) that are disabled; empty when
    /// every key is usable. `ensure` enables them again.
    #[serde(default)]
    pub disabled_keys: Vec<String>,
    /// The guards of the keys, as read.
    #[serde(skip)]
    pub verdicts: Verdicts,
}

// ---------------------------------------------------------------------------
// Description: the `keys` block

/// The `keys` block once planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeysSpec {
    /// Tenant names; each gets a customer-managed key
    /// `alias/idis/<env>/<tenant>`. The platform key is
    /// `alias/idis/<env>/platform`.
    pub tenants: Vec<String>,
    /// Days a removed key waits before AWS deletes it (7 to 30).
    pub deletion_window_days: i64,
    /// Automatic yearly rotation on every key.
    pub rotation_enabled: bool,
}

/// The computed attributes of the keys.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KeysOutputs {
    pub platform_key_arn: String,
    pub tenant_key_arns: BTreeMap<String, String>,
}

pub const DEFAULT_DELETION_WINDOW_DAYS: i64 = 30;

/// The platform key and the tenants' keys of an environment.
pub struct TenantKeys;

fn is_tenant_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 32
        && t.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && t.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        && t != PLATFORM
}

impl Component for TenantKeys {
    const NAME: &'static str = COMPONENT;

    async fn find(ctx: &Ctx) -> Result<Option<KeysState>, ComponentError> {
        find(ctx).await
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &KeysSpec,
        _built: &super::Observed,
    ) -> Result<KeysState, ComponentError> {
        ensure(ctx, spec).await
    }

    async fn delete(ctx: &Ctx, spec: &KeysSpec) -> Result<Vec<String>, ComponentError> {
        delete(ctx, spec).await
    }
    const DOC: &'static str = "KMS keys: one platform key for the environment and one customer-managed key per tenant, aliases `alias/idis/<name>/<tenant>`.";
    type Spec = KeysSpec;
    type State = KeysState;
    type Outputs = KeysOutputs;

    fn settings() -> Vec<Setting> {
        vec![
            Setting::new(
                "tenants",
                Type::list(Type::String),
                Default::Strings(&[]),
                "Tenant names (lowercase letters, digits, dashes; unique). Each gets its own key. Removing a tenant schedules its key for deletion. Default: none.".into(),
            )
            .check(Check::EachText(
                is_tenant_name,
                "tenant names are 1 to 32 lowercase letters, digits and dashes, and \"platform\" is reserved",
            )),
            Setting::new(
                "deletion_window_days",
                Type::Number,
                Default::Int(DEFAULT_DELETION_WINDOW_DAYS),
                format!("Days a removed key waits before AWS deletes it, 7 to 30. Keys are never deleted at once. Default `{DEFAULT_DELETION_WINDOW_DAYS}`."),
            )
            .check(Check::Range(7, 30))
            .not_recorded(),
            Setting::new(
                "rotation_enabled",
                Type::Bool,
                Default::Bool(true),
                "Automatic yearly rotation of every key. Default `true`.".into(),
            ),
        ]
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new(
                "platform_key_arn",
                Type::String,
                "ARN of the environment's platform KMS key.",
            ),
            Output::new(
                "tenant_key_arns",
                Type::map(Type::String),
                "Tenant name to KMS key ARN.",
            ),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn check(config: &Value) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Value::List(items) = config.get_attr(COMPONENT).get_attr("tenants") {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                if let Some(t) = item.as_str() {
                    if !seen.insert(t) {
                        problems.push(Problem::at_index(
                            "tenants",
                            i,
                            item,
                            "each tenant may appear only once (duplicate tenant)",
                        ));
                    }
                }
            }
        }
        problems
    }

    /// The tenants' ARNs are known when the planned tenants are the ones
    /// that have keys.
    fn plan_outputs(prior: &Value, planned: &mut Value) {
        let tenants = planned.get_attr(COMPONENT).get_attr("tenants").as_strings();
        let known = prior
            .get_attr("tenant_key_arns")
            .as_string_map()
            .map(|m| m.into_keys().collect::<Vec<_>>());
        let same = match (tenants, known) {
            (Some(mut want), Some(have)) => {
                want.sort();
                want == have
            }
            _ => false,
        };
        if !same {
            planned.set_attr("tenant_key_arns", Value::Unknown);
        }
    }

    fn judge(prior: &Value, planned: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        let was = prior.get_attr(COMPONENT).get_attr("tenants").as_strings();
        let now = planned.get_attr(COMPONENT).get_attr("tenants").as_strings();
        if let (Some(old), Some(new)) = (was, now) {
            let window = planned
                .get_attr(COMPONENT)
                .get_attr("deletion_window_days")
                .as_i64()
                .unwrap_or(DEFAULT_DELETION_WINDOW_DAYS);
            let env = planned.get_attr("name").as_str().unwrap_or("?");
            for gone in old.iter().filter(|t| !new.contains(t)) {
                d.push(Diagnostic::warning(
                    "Tenant key will be scheduled for deletion",
                    format!("keys: the key of tenant {gone:?} (alias/idis/{env}/{gone}) is scheduled for deletion in {window} days; data encrypted with it becomes unreadable then. Re-adding the tenant before that restores the key."),
                ));
            }
        }
        d
    }

    fn on_destroy(prior: &Value) -> Diagnostics {
        let window = prior
            .get_attr(COMPONENT)
            .get_attr("deletion_window_days")
            .as_i64()
            .unwrap_or(DEFAULT_DELETION_WINDOW_DAYS);
        Diagnostic::warning(
            "KMS keys are kept while data they encrypt is kept",
            format!("keys: while the destroy keeps data the keys encrypt (the audit or documents bucket, the DR copies, the database's final snapshot), the platform and tenant keys are kept, enabled, and the apply's warning names what needs them; otherwise they are scheduled for deletion in {window} days, not deleted now (until then `aws kms cancel-key-deletion` restores them, and with them the database's retained automated backups)."),
        )
        .into()
    }

    /// Tenants in the order the state has them, then any AWS has beyond
    /// them (a list reordered only by AWS's answer is not drift).
    fn read(
        state: &KeysState,
        stored: &KeysSpec,
        _prior: &Value,
    ) -> Reading<KeysSpec, KeysOutputs> {
        let mut tenants: Vec<String> = stored
            .tenants
            .iter()
            .filter(|t| state.tenant_key_arns.contains_key(*t))
            .cloned()
            .collect();
        tenants.extend(
            state
                .tenant_key_arns
                .keys()
                .filter(|t| !stored.tenants.contains(t))
                .cloned(),
        );
        Reading {
            settings: KeysSpec {
                tenants,
                deletion_window_days: stored.deletion_window_days,
                rotation_enabled: state.rotation_enabled,
            },
            outputs: KeysOutputs {
                platform_key_arn: state.platform_key_arn.clone(),
                tenant_key_arns: state.tenant_key_arns.clone(),
            },
            verdicts: state.verdicts.clone(),
        }
    }
}

const KEY_STATE: usize = 0;
const KEY_POLICY: usize = 1;
const ALIASES: usize = 2;
const TAGS: usize = 3;

/// What the provider makes of the keys without a knob.
const GUARDS: &[Guard] = &[
    Guard::new(
        "key_state",
        "every key enabled",
        "The platform key and every tenant's key are enabled (a disabled key stops every decryption with it).",
    ),
    Guard::new(
        "key_policy",
        "KMS default policy",
        "Every key has the policy KMS gives a key by default: the account's root may use it, so IAM policies decide who does. The platform key's policy also lets the CloudWatch service use it (`kms:Decrypt`, `kms:GenerateDataKey*` for `cloudwatch.amazonaws.com`), which CloudWatch needs to publish alarms to the alarm topic encrypted with it, and lets CloudTrail generate data keys with it and describe it for the environment's trail alone (`aws:SourceArn`), to encrypt the trail's log files, and lets CloudWatch Logs (`logs.<region>.amazonaws.com`) encrypt and decrypt with it for this account's and region's log groups (condition on `kms:EncryptionContext:aws:logs:arn`).",
    ),
    Guard::new(
        "aliases",
        "every alias on its own key",
        "`alias/idis/<name>/<tenant>` points at the key made for that tenant of this environment.",
    )
    .affects(&["platform_key_arn", "tenant_key_arns"]),
    Guard::new(
        "tags",
        "ownership and user tags present",
        "Every key carries `tags`, the provider's `default_tags`, the ownership tags and `idis:tenant`. Tags others add are left alone.",
    ),
];

fn conflict(message: String) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message,
    }
}

fn alias_prefix(ctx: &Ctx) -> String {
    alias_of(&ctx.env, "")
}

/// `alias/idis/<env>/<name>`: the alias of key `name` of environment `env`,
/// the same in every region.
pub fn alias_of(env: &str, name: &str) -> String {
    format!("alias/idis/{env}/{name}")
}

pub fn alias_name(ctx: &Ctx, name: &str) -> String {
    alias_of(&ctx.env, name)
}

pub fn description(ctx: &Ctx, name: &str) -> String {
    if name == PLATFORM {
        format!("IDIS environment {}: platform key", ctx.env)
    } else {
        format!("IDIS environment {}: key of tenant {name}", ctx.env)
    }
}

fn desired_tags(ctx: &Ctx, name: &str) -> BTreeMap<String, String> {
    let mut tags = ctx.tags(COMPONENT);
    tags.insert(TAG_TENANT.to_string(), name.to_string());
    tags
}

fn kms_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, ComponentError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| conflict(format!("cannot build the KMS tag {k}: {e}")))
        })
        .collect()
}

fn pending_deletion(state: Option<&KeyState>) -> bool {
    matches!(
        state,
        Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
    )
}

fn day(date: &DateTime) -> String {
    date.fmt(Format::DateTime)
        .map(|d| d.chars().take(10).collect())
        .unwrap_or_else(|_| format!("{} (epoch seconds)", date.secs()))
}

/// One key of the environment as read from AWS.
#[derive(Clone, Debug)]
struct KeyView {
    key_id: String,
    arn: String,
    state: Option<KeyState>,
    /// None when it could not be read (a key pending deletion).
    rotation: Option<bool>,
    description: String,
    /// The key policy; None when it was not read.
    policy: Option<String>,
    /// The key's tags; None when they were not read.
    tags: Option<BTreeMap<String, String>>,
}

impl KeyView {
    fn from_metadata(meta: &KeyMetadata, rotation: Option<bool>) -> KeyView {
        KeyView {
            key_id: meta.key_id().to_string(),
            arn: meta.arn().unwrap_or_default().to_string(),
            state: meta.key_state().cloned(),
            rotation,
            description: meta.description().unwrap_or_default().to_string(),
            policy: None,
            tags: None,
        }
    }

    fn gone(&self) -> bool {
        pending_deletion(self.state.as_ref())
    }

    /// Whether the key says it belongs to another environment or tenant
    /// than `name` of this environment: its ownership tags name another,
    /// or it has none and is not described as ours (an alias pointed at
    /// some other key of the account).
    fn foreign(&self, ctx: &Ctx, name: &str) -> bool {
        let Some(tags) = &self.tags else {
            return false;
        };
        let env = tags.get(TAG_ENVIRONMENT);
        let tenant = tags.get(TAG_TENANT);
        match (env, tenant) {
            (None, None) => self.description != description(ctx, name),
            _ => env != Some(&ctx.env) || tenant.map(String::as_str) != Some(name),
        }
    }
}

/// The key policy KMS gives a key created without one: the account's root
/// may do everything, so IAM policies decide who uses the key.
fn default_policy(ctx: &Ctx) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:{}:iam::{}:root", super::partition(&ctx.region), ctx.account_id) },
            "Action": "kms:*",
            "Resource": "*",
        }],
    })
    .to_string()
}

/// A policy's statements in a form that compares by meaning: Sids, ids
/// and the order of lists do not count; an account id as principal is its
/// root.
fn policy_meaning(policy: &str, account_id: &str) -> Option<BTreeSet<String>> {
    let doc: serde_json::Value = serde_json::from_str(policy).ok()?;
    let list = |v: &serde_json::Value| -> Vec<String> {
        let mut items: Vec<String> = match v {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap_or("?").to_string())
                .collect(),
            serde_json::Value::Null => Vec::new(),
            other => vec![other
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string())],
        };
        for item in &mut items {
            if item == account_id {
                *item = format!("root of {account_id}");
            } else if let Some(acct) = item.strip_prefix("arn:").and_then(|r| r.split(':').nth(3)) {
                if item.ends_with(":root") {
                    *item = format!("root of {acct}");
                }
            }
        }
        items.sort();
        items
    };
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        single => vec![single.clone()],
    };
    Some(
        statements
            .iter()
            .map(|st| {
                let principal = match &st["Principal"] {
                    serde_json::Value::String(p) => vec![p.clone()],
                    serde_json::Value::Object(m) => m
                        .iter()
                        .flat_map(|(kind, v)| {
                            list(v).into_iter().map(move |p| format!("{kind} {p}"))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                format!(
                    "{} {} to {}{}",
                    st["Effect"].as_str().unwrap_or("?"),
                    list(&st["Action"]).join(","),
                    principal.join(","),
                    if st["Condition"].is_null() {
                        String::new()
                    } else {
                        format!(" if {}", st["Condition"])
                    }
                )
            })
            .collect(),
    )
}

/// The policy of key `name`: KMS's default; the platform key's also lets
/// the CloudWatch service use it, which CloudWatch needs to publish alarm
/// notifications to the alarm topic encrypted with it (Amazon SNS
/// Developer Guide, "Enable compatibility between event sources from AWS
/// services and encrypted topics": `kms:Decrypt` and
/// `kms:GenerateDataKey*` for `cloudwatch.amazonaws.com`).
pub fn wanted_policy(ctx: &Ctx, name: &str) -> String {
    let mut policy: serde_json::Value =
        serde_json::from_str(&default_policy(ctx)).unwrap_or_default();
    if name == PLATFORM {
        if let Some(statements) = policy["Statement"].as_array_mut() {
            statements.push(serde_json::json!({
                "Sid": "Allow CloudWatch alarms to publish to the encrypted alarm topic",
                "Effect": "Allow",
                "Principal": { "Service": "cloudwatch.amazonaws.com" },
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            }));
            statements.extend(cloudtrail_statements(ctx));
            // CloudWatch Logs encrypts the environment's log groups with
            // it, only for log groups of this account and region (Amazon
            // CloudWatch Logs User Guide, "Encrypt log data in CloudWatch
            // Logs using AWS Key Management Service", step 2).
            statements.push(serde_json::json!({
                "Sid": "Allow CloudWatch Logs to encrypt the log groups",
                "Effect": "Allow",
                "Principal": { "Service": format!("logs.{}.amazonaws.com", ctx.region) },
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*"
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": format!(
                            "arn:{}:logs:{}:{}:log-group:*",
                            super::partition(&ctx.region),
                            ctx.region,
                            ctx.account_id
                        )
                    }
                },
            }));
        }
    }
    policy.to_string()
}

/// The platform key's statements for the environment's trail (CloudTrail
/// User Guide, "Configure AWS KMS key policies for CloudTrail"): it may
/// generate data keys to encrypt the trail's log files and describe the
/// key, both only for this trail (`aws:SourceArn`).
fn cloudtrail_statements(ctx: &Ctx) -> [serde_json::Value; 2] {
    let trail = super::audit_trail::trail_arn(ctx);
    [
        serde_json::json!({
            "Sid": "Allow CloudTrail to encrypt the logs of the environment's trail",
            "Effect": "Allow",
            "Principal": { "Service": "cloudtrail.amazonaws.com" },
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": {
                "StringEquals": { "aws:SourceArn": trail },
                "StringLike": { "kms:EncryptionContext:aws:cloudtrail:arn": format!("arn:{}:cloudtrail:*:{}:trail/*", super::partition(&ctx.region), ctx.account_id) },
            },
        }),
        serde_json::json!({
            "Sid": "Allow CloudTrail to describe the key",
            "Effect": "Allow",
            "Principal": { "Service": "cloudtrail.amazonaws.com" },
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": { "StringEquals": { "aws:SourceArn": trail } },
        }),
    ]
}

/// What is wrong with the policy of key `name`, against the one it gets.
fn policy_problem(ctx: &Ctx, name: &str, policy: &str) -> Option<String> {
    let want = policy_meaning(&wanted_policy(ctx, name), &ctx.account_id)?;
    match policy_meaning(policy, &ctx.account_id) {
        None => Some("the key policy is not JSON".to_string()),
        Some(have) if have == want => None,
        Some(have) => {
            let added: Vec<&String> = have.difference(&want).collect();
            let removed: Vec<&String> = want.difference(&have).collect();
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!(
                    "adds {}",
                    added
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            if !removed.is_empty() {
                parts.push(format!(
                    "drops {}",
                    removed
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            Some(format!("the key policy {}", parts.join(" and ")))
        }
    }
}

/// The environment's aliases: key name (`platform` or tenant) to target key id.
///
/// ListAliases lists every alias of the account and region, 50 a page by
/// default; the pages come one after the other, so an account with many
/// environments costs a round trip per page. Ask for the largest page KMS
/// allows.
async fn list_aliases(ctx: &Ctx, kms: &Client) -> Result<BTreeMap<String, String>, ComponentError> {
    let prefix = alias_prefix(ctx);
    let aliases: Vec<_> = kms
        .list_aliases()
        .limit(ALIASES_PER_PAGE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error(COMPONENT, "list the KMS aliases", e))?;
    Ok(aliases
        .iter()
        .filter_map(|a| {
            let name = a.alias_name()?.strip_prefix(&prefix)?;
            Some((name.to_string(), a.target_key_id()?.to_string()))
        })
        .collect())
}

async fn describe(kms: &Client, key_id: &str) -> Result<KeyMetadata, ComponentError> {
    kms.describe_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("describe KMS key {key_id}"), e))?
        .key_metadata()
        .cloned()
        .ok_or_else(|| {
            conflict(format!(
                "KMS answered DescribeKey for {key_id} without metadata"
            ))
        })
}

async fn rotation(kms: &Client, key_id: &str) -> Result<bool, ComponentError> {
    kms.get_key_rotation_status()
        .key_id(key_id)
        .send()
        .await
        .map(|o| o.key_rotation_enabled())
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!("read the rotation of KMS key {key_id}"),
                e,
            )
        })
}

async fn key_policy(kms: &Client, key_id: &str) -> Result<Option<String>, ComponentError> {
    kms.get_key_policy()
        .key_id(key_id)
        .policy_name("default")
        .send()
        .await
        .map(|o| o.policy().map(str::to_string))
        .map_err(|e| aws_error(COMPONENT, format!("read the policy of KMS key {key_id}"), e))
}

async fn key_tags(kms: &Client, key_id: &str) -> Result<BTreeMap<String, String>, ComponentError> {
    kms.list_resource_tags()
        .key_id(key_id)
        .send()
        .await
        .map(|o| {
            o.tags()
                .iter()
                .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
                .collect()
        })
        .map_err(|e| aws_error(COMPONENT, format!("read the tags of KMS key {key_id}"), e))
}

/// Reads one key: metadata, rotation, policy and tags in parallel. What a
/// key pending deletion does not answer does not matter then.
async fn read_key(kms: &Client, key_id: &str) -> Result<KeyView, ComponentError> {
    let (meta, rotation, policy, tags) = tokio::join!(
        describe(kms, key_id),
        rotation(kms, key_id),
        key_policy(kms, key_id),
        key_tags(kms, key_id)
    );
    let meta = meta?;
    let mut view = if pending_deletion(meta.key_state()) {
        let mut v = KeyView::from_metadata(&meta, rotation.ok());
        v.policy = policy.ok().flatten();
        v.tags = tags.ok();
        v
    } else {
        let mut v = KeyView::from_metadata(&meta, Some(rotation?));
        v.policy = policy?;
        v.tags = Some(tags?);
        v
    };
    view.key_id = meta.key_id().to_string();
    Ok(view)
}

/// Every aliased key of the environment, by name.
async fn read_aliased(
    ctx: &Ctx,
    kms: &Client,
) -> Result<BTreeMap<String, (String, KeyView)>, ComponentError> {
    let aliases = list_aliases(ctx, kms).await?;
    let views = try_join_all(aliases.iter().map(|(name, key_id)| async move {
        Ok::<_, ComponentError>((
            name.clone(),
            (alias_name(ctx, name), read_key(kms, key_id).await?),
        ))
    }))
    .await?;
    Ok(views.into_iter().collect())
}

/// Keys tagged for this environment (skipping `skip`): their `idis:tenant`
/// and metadata. Costs ListKeys plus one ListResourceTags per key of the
/// account, so it only runs when an alias is missing, and on delete.
async fn scan_tagged(
    ctx: &Ctx,
    kms: &Client,
    skip: &BTreeSet<String>,
) -> Result<Vec<(String, KeyMetadata)>, ComponentError> {
    let keys: Vec<_> = kms
        .list_keys()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error(COMPONENT, "list the KMS keys", e))?;
    let ids: Vec<String> = keys
        .iter()
        .filter_map(|k| k.key_id())
        .filter(|id| !skip.contains(*id))
        .map(str::to_string)
        .collect();
    let tagged: Vec<Option<(String, String)>> = futures_util::stream::iter(ids)
        .map(|id| async move {
            let tags = match kms.list_resource_tags().key_id(&id).send().await {
                Ok(out) => out.tags().to_vec(),
                // Keys of other owners or in odd states: not ours to read.
                Err(e)
                    if is_not_found(&e)
                        || matches!(
                            e.code(),
                            Some("AccessDeniedException" | "KMSInvalidStateException")
                        ) =>
                {
                    return Ok(None)
                }
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!("read the tags of KMS key {id}"),
                        e,
                    ))
                }
            };
            let value = |key: &str| {
                tags.iter()
                    .find(|t| t.tag_key() == key)
                    .map(|t| t.tag_value().to_string())
            };
            let ours = value(TAG_ENVIRONMENT).as_deref() == Some(ctx.env.as_str())
                && value(TAG_COMPONENT).as_deref() == Some(COMPONENT);
            Ok(ours
                .then(|| value(TAG_TENANT))
                .flatten()
                .map(|tenant| (tenant, id)))
        })
        .buffer_unordered(SCAN_CONCURRENCY)
        .try_collect()
        .await?;
    try_join_all(tagged.into_iter().flatten().map(|(tenant, id)| async move {
        Ok::<_, ComponentError>((tenant, describe(kms, &id).await?))
    }))
    .await
}

// ---------------------------------------------------------------------------
// find

/// Judges what the provider makes of the keys without a knob.
fn verdicts(ctx: &Ctx, live: &[(&String, &KeyView)]) -> Verdicts {
    let mut v = Verdicts::new();
    let mut states = Vec::new();
    let mut policies = Vec::new();
    let mut aliases = Vec::new();
    let mut tags = Vec::new();
    for (name, view) in live {
        let alias = alias_name(ctx, name);
        if view.state != Some(KeyState::Enabled) {
            let state = view.state.as_ref().map(|s| s.as_str()).unwrap_or("unknown");
            states.push(format!("{alias}: {state}"));
        }
        if let Some(problem) = view
            .policy
            .as_deref()
            .and_then(|p| policy_problem(ctx, name, p))
        {
            policies.push(format!("{alias}: {problem}"));
        }
        if view.foreign(ctx, name) {
            aliases.push(format!(
                "{alias} points at KMS key {}, which is not this environment's {name} key",
                view.key_id
            ));
        } else if let Some(have) = &view.tags {
            tags.extend(super::tag_problems(&alias, have, &desired_tags(ctx, name)));
        }
    }
    v.judge(&GUARDS[KEY_STATE], states);
    v.judge(&GUARDS[KEY_POLICY], policies);
    v.judge(&GUARDS[ALIASES], aliases);
    v.judge(&GUARDS[TAGS], tags);
    v
}

fn state_from(ctx: &Ctx, aliased: &BTreeMap<String, (String, KeyView)>) -> Option<KeysState> {
    let live: Vec<(&String, &KeyView)> = aliased
        .iter()
        .filter(|(_, (_, v))| !v.gone())
        .map(|(name, (_, v))| (name, v))
        .collect();
    if live.is_empty() {
        return None;
    }
    let mut state = KeysState {
        rotation_enabled: live.iter().all(|(_, v)| v.rotation == Some(true)),
        verdicts: verdicts(ctx, &live),
        ..KeysState::default()
    };
    for (name, view) in live {
        if view.state != Some(KeyState::Enabled) {
            state.disabled_keys.push(name.clone());
        }
        if name == PLATFORM {
            state.platform_key_arn = view.arn.clone();
            state.platform_key_id = view.key_id.clone();
        } else {
            state.tenant_key_arns.insert(name.clone(), view.arn.clone());
        }
    }
    Some(state)
}

pub async fn find(ctx: &Ctx) -> Result<Option<KeysState>, ComponentError> {
    let kms = ctx.aws.kms();
    let aliased = read_aliased(ctx, &kms).await?;
    Ok(state_from(ctx, &aliased))
}

// ---------------------------------------------------------------------------
// ensure

fn check_spec(spec: &KeysSpec) -> Result<(), ComponentError> {
    if !(7..=30).contains(&spec.deletion_window_days) {
        return Err(conflict(format!(
            "deletion_window_days = {} is not allowed: KMS takes 7 to 30 days",
            spec.deletion_window_days
        )));
    }
    let mut seen = BTreeSet::new();
    for tenant in &spec.tenants {
        let valid = !tenant.is_empty()
            && tenant.len() <= 200
            && tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(conflict(format!(
                "tenant {tenant:?} cannot name a KMS alias: use letters, digits, '-' and '_'"
            )));
        }
        if tenant == PLATFORM {
            return Err(conflict(format!(
                "tenant {PLATFORM:?} is reserved for the platform key; choose another tenant name"
            )));
        }
        if !seen.insert(tenant) {
            return Err(conflict(format!("tenant {tenant:?} is listed twice")));
        }
    }
    Ok(())
}

/// Preference among keys found by tag for one name: usable first, then
/// one pending deletion (which can be brought back).
fn adoption_rank(meta: &KeyMetadata) -> Option<u8> {
    match meta.key_state() {
        Some(KeyState::Enabled) => Some(0),
        Some(KeyState::Disabled) => Some(1),
        Some(KeyState::PendingDeletion) => Some(2),
        _ => None,
    }
}

pub async fn ensure(ctx: &Ctx, spec: &KeysSpec) -> Result<KeysState, ComponentError> {
    check_spec(spec)?;
    let kms = ctx.aws.kms();
    let all_aliased = read_aliased(ctx, &kms).await?;
    let wanted: Vec<&str> = std::iter::once(PLATFORM)
        .chain(spec.tenants.iter().map(String::as_str))
        .collect();
    // An alias pointed at a key that is not this environment's: its key is
    // left alone, and the alias is pointed back at ours below.
    let (foreign, aliased): (BTreeMap<_, _>, BTreeMap<_, _>) = all_aliased
        .into_iter()
        .partition(|(name, (_, view))| view.foreign(ctx, name));

    // Keys without alias: adopt a tagged key before making a new one.
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|name| !aliased.contains_key(*name))
        .collect();
    let mut adoptable: BTreeMap<String, KeyMetadata> = BTreeMap::new();
    if !missing.is_empty() {
        let skip: BTreeSet<String> = aliased.values().map(|(_, v)| v.key_id.clone()).collect();
        for (tenant, meta) in scan_tagged(ctx, &kms, &skip).await? {
            let Some(rank) = adoption_rank(&meta) else {
                continue;
            };
            let better = adoptable
                .get(&tenant)
                .and_then(adoption_rank)
                .is_none_or(|current| rank < current);
            if better {
                adoptable.insert(tenant, meta);
            }
        }
    }

    let converge = wanted.iter().map(|name| {
        let kms = &kms;
        let found = aliased.get(*name).map(|(_, view)| view.clone());
        let adopted = adoptable.get(*name).cloned();
        async move { converge_key(ctx, kms, spec, name, found, adopted).await }
    });
    let retire = aliased
        .iter()
        .filter(|(name, _)| !wanted.contains(&name.as_str()))
        .map(|(name, (alias, view))| {
            let kms = &kms;
            async move { retire_key(ctx, kms, spec, name, alias, view).await }
        });
    let unpoint = foreign
        .iter()
        .filter(|(name, _)| !wanted.contains(&name.as_str()))
        .map(|(_, (alias, _))| {
            let kms = &kms;
            async move {
                match kms.delete_alias().alias_name(alias).send().await {
                    Ok(_) => Ok(true),
                    Err(e) if is_not_found(&e) => Ok(true),
                    Err(e) => Err(aws_error(COMPONENT, format!("delete alias {alias}"), e)),
                }
            }
        });
    let (converged, retired, unpointed) = tokio::try_join!(
        try_join_all(converge),
        try_join_all(retire),
        try_join_all(unpoint)
    )?;

    if converged
        .into_iter()
        .chain(retired)
        .chain(unpointed)
        .any(|changed| changed)
    {
        let aliased = read_aliased(ctx, &kms).await?;
        state_from(ctx, &aliased).ok_or_else(|| {
            conflict("the keys vanished right after they were made; retry the apply".to_string())
        })
    } else {
        state_from(ctx, &aliased)
            .ok_or_else(|| conflict("no key found after ensure; retry the apply".to_string()))
    }
}

/// Makes key `name` exist, enabled, aliased, rotated as the spec says
/// and tagged. Returns whether it changed anything.
async fn converge_key(
    ctx: &Ctx,
    kms: &Client,
    spec: &KeysSpec,
    name: &str,
    aliased: Option<KeyView>,
    adopted: Option<KeyMetadata>,
) -> Result<bool, ComponentError> {
    let alias = alias_name(ctx, name);
    let tags = desired_tags(ctx, name);
    let mut changed = false;

    // (view, whether the alias exists, whether the key is brand new)
    let (mut view, has_alias, fresh) = match (aliased, adopted) {
        (Some(view), _) => (view, true, false),
        (None, Some(meta)) => (KeyView::from_metadata(&meta, None), false, false),
        (None, None) => {
            changed = true;
            let kms_tag_list = kms_tags(&tags)?;
            let what = format!("create the KMS key for {alias}");
            let meta = create_or_adopt(
                ctx,
                COMPONENT,
                &what,
                || async {
                    kms.create_key()
                        .description(description(ctx, name))
                        .key_usage(KeyUsageType::EncryptDecrypt)
                        .key_spec(KeySpec::SymmetricDefault)
                        // Multi-Region primary keys, so that a DR site
                        // (`dr`) can hold replicas of them: KMS cannot make
                        // a key multi-Region after it is created (KMS
                        // Developer Guide, "Multi-Region keys"); until
                        // replicated it is used and priced as any key.
                        .multi_region(true)
                        // The platform key's policy is more than the
                        // default from the start; tenant keys get KMS's.
                        .set_policy((name == PLATFORM).then(|| wanted_policy(ctx, name)))
                        .set_tags(Some(kms_tag_list.clone()))
                        .send()
                        .await
                        .map_err(|e| aws_error(COMPONENT, what.clone(), e))?
                        .key_metadata()
                        .cloned()
                        .ok_or_else(|| {
                            conflict(format!(
                                "KMS created the key for {alias} but returned no metadata"
                            ))
                        })
                },
                // What the unanswered CreateKey made carries this key's tags.
                || async {
                    let found = scan_tagged(ctx, kms, &BTreeSet::new()).await?;
                    Ok(found
                        .into_iter()
                        .filter(|(tenant, meta)| tenant == name && adoption_rank(meta) == Some(0))
                        .map(|(_, meta)| meta)
                        .next())
                },
            )
            .await?;
            (KeyView::from_metadata(&meta, Some(false)), false, true)
        }
    };
    let key_id = view.key_id.clone();

    // A key pending deletion is wanted again: bring it back.
    if view.gone() {
        changed = true;
        kms.cancel_key_deletion()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("cancel the scheduled deletion of KMS key {key_id} ({alias})"),
                    e,
                )
            })?;
        view.state = Some(KeyState::Disabled);
    }
    if view.state == Some(KeyState::Disabled) {
        changed = true;
        kms.enable_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("enable KMS key {key_id} ({alias})"), e))?;
    }

    if !has_alias {
        changed = true;
        match kms
            .create_alias()
            .alias_name(&alias)
            .target_key_id(&key_id)
            .send()
            .await
        {
            Ok(_) => {}
            // Made meanwhile (another run): point it at this key.
            Err(e) if e.code() == Some("AlreadyExistsException") => {
                kms.update_alias()
                    .alias_name(&alias)
                    .target_key_id(&key_id)
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(COMPONENT, format!("point {alias} at KMS key {key_id}"), e)
                    })?;
            }
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("create alias {alias} for KMS key {key_id}"),
                    e,
                ))
            }
        }
    }

    let (rotation_now, current_tags, current_policy) = if fresh {
        (false, None, None)
    } else {
        let (rotation_now, current_tags, current_policy) = tokio::try_join!(
            async {
                match view.rotation {
                    Some(on) => Ok(on),
                    None => rotation(kms, &key_id).await,
                }
            },
            async {
                kms.list_resource_tags()
                    .key_id(&key_id)
                    .send()
                    .await
                    .map(|o| o.tags().to_vec())
                    .map_err(|e| {
                        aws_error(
                            COMPONENT,
                            format!("read the tags of KMS key {key_id} ({alias})"),
                            e,
                        )
                    })
            },
            async {
                match &view.policy {
                    Some(p) => Ok(Some(p.clone())),
                    None => key_policy(kms, &key_id).await,
                }
            },
        )?;
        (rotation_now, Some(current_tags), current_policy)
    };

    // The key policy: KMS's default, as every key of ours is created with.
    let repolicy = async {
        let Some(policy) = current_policy else {
            return Ok(false);
        };
        if policy_problem(ctx, name, &policy).is_none() {
            return Ok(false);
        }
        kms.put_key_policy()
            .key_id(&key_id)
            .policy_name("default")
            .policy(wanted_policy(ctx, name))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("put back the policy of KMS key {key_id} ({alias})"),
                    e,
                )
            })?;
        Ok::<_, ComponentError>(true)
    };

    let rotate = async {
        if rotation_now == spec.rotation_enabled {
            return Ok(false);
        }
        if spec.rotation_enabled {
            kms.enable_key_rotation()
                .key_id(&key_id)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("turn on rotation of KMS key {key_id} ({alias})"),
                        e,
                    )
                })?;
        } else {
            kms.disable_key_rotation()
                .key_id(&key_id)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("turn off rotation of KMS key {key_id} ({alias})"),
                        e,
                    )
                })?;
        }
        Ok::<_, ComponentError>(true)
    };
    let retag = async {
        let Some(current) = current_tags else {
            return Ok(false);
        };
        let lacking: BTreeMap<String, String> = tags
            .iter()
            .filter(|(k, v)| {
                !current
                    .iter()
                    .any(|t| t.tag_key() == k.as_str() && t.tag_value() == v.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if lacking.is_empty() {
            return Ok(false);
        }
        kms.tag_resource()
            .key_id(&key_id)
            .set_tags(Some(kms_tags(&lacking)?))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("tag KMS key {key_id} ({alias})"), e))?;
        Ok::<_, ComponentError>(true)
    };
    let (rotated, retagged, repolicied) = tokio::try_join!(rotate, retag, repolicy)?;
    Ok(changed || rotated || retagged || repolicied)
}

/// A tenant no longer in the spec: its key is scheduled for deletion
/// (never deleted at once) and its alias removed. Deletion is scheduled
/// first, so that a run killed in between still sees the alias and
/// finishes the job.
async fn retire_key(
    ctx: &Ctx,
    kms: &Client,
    spec: &KeysSpec,
    name: &str,
    alias: &str,
    view: &KeyView,
) -> Result<bool, ComponentError> {
    let _ = (ctx, name);
    if !view.gone() {
        schedule_deletion(kms, &view.key_id, alias, spec.deletion_window_days).await?;
    }
    match kms.delete_alias().alias_name(alias).send().await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(true),
        Err(e) => Err(aws_error(COMPONENT, format!("delete alias {alias}"), e)),
    }
}

async fn schedule_deletion(
    kms: &Client,
    key_id: &str,
    what: &str,
    days: i64,
) -> Result<Option<DateTime>, ComponentError> {
    let days = i32::try_from(days).unwrap_or(30);
    match kms
        .schedule_key_deletion()
        .key_id(key_id)
        .pending_window_in_days(days)
        .send()
        .await
    {
        Ok(out) => Ok(out.deletion_date().cloned()),
        Err(e) if is_not_found(&e) => Ok(None),
        // A key already pending deletion is refused with KMSInvalidStateException
        // (ScheduleKeyDeletion API reference): a retry after our first call's
        // answer was lost. What counts is the state the key is in now.
        Err(e) if e.code() == Some("KMSInvalidStateException") => {
            match kms.describe_key().key_id(key_id).send().await {
                Ok(out) => match out.key_metadata() {
                    Some(meta) if pending_deletion(meta.key_state()) => {
                        Ok(meta.deletion_date().cloned())
                    }
                    _ => Err(aws_error(
                        COMPONENT,
                        format!(
                            "schedule the deletion of KMS key {key_id} ({what}) in {days} days"
                        ),
                        e,
                    )),
                },
                Err(_) => Err(aws_error(
                    COMPONENT,
                    format!("schedule the deletion of KMS key {key_id} ({what}) in {days} days"),
                    e,
                )),
            }
        }
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("schedule the deletion of KMS key {key_id} ({what}) in {days} days"),
            e,
        )),
    }
}

// ---------------------------------------------------------------------------
// delete

/// Schedules the deletion of every key of the environment (aliased or only
/// tagged) with the spec's window, then deletes the aliases. Returns a
/// warning saying how many keys are pending deletion and when they go.
///
/// Unless the destroy left data the keys encrypt (`kept`: kept buckets,
/// final snapshots): then every key and alias is kept,
/// and the warning names what needs them. A key gone takes that data with
/// it, and which key encrypts what inside a bucket (a tenant's objects) is
/// the application's to know, so all of them stay.
pub async fn delete(ctx: &Ctx, spec: &KeysSpec) -> Result<Vec<String>, ComponentError> {
    if !(7..=30).contains(&spec.deletion_window_days) {
        return Err(conflict(format!(
            "deletion_window_days = {} is not allowed: KMS takes 7 to 30 days",
            spec.deletion_window_days
        )));
    }
    let left = super::kept::encrypted_data_left(ctx, COMPONENT).await?;
    if !left.is_empty() {
        return Ok(vec![format!(
            "kept the KMS keys of environment {} (alias/idis/{}/*), enabled and not scheduled for deletion: they encrypt what the destroy kept ({}). Schedule their deletion yourself (aws kms schedule-key-deletion) once that is gone; an environment of the same name made again adopts them.",
            ctx.env,
            ctx.env,
            left.join(", ")
        )]);
    }
    let kms = ctx.aws.kms();
    let aliases = list_aliases(ctx, &kms).await?;
    let aliased_ids: BTreeSet<String> = aliases.values().cloned().collect();
    let tagged = scan_tagged(ctx, &kms, &aliased_ids).await?;

    // Every key of the environment, with what names it.
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    for (name, key_id) in &aliases {
        keys.insert(key_id.clone(), alias_name(ctx, name));
    }
    let mut metadata: BTreeMap<String, KeyMetadata> = BTreeMap::new();
    for (tenant, meta) in tagged {
        keys.insert(meta.key_id().to_string(), format!("tenant {tenant}"));
        metadata.insert(meta.key_id().to_string(), meta);
    }

    let window = spec.deletion_window_days;
    let results = try_join_all(keys.iter().map(|(key_id, what)| {
        let kms = &kms;
        let known = metadata.get(key_id).cloned();
        async move {
            let meta = match known {
                Some(meta) => Some(meta),
                None => match kms.describe_key().key_id(key_id).send().await {
                    Ok(out) => out.key_metadata().cloned(),
                    Err(e) if is_not_found(&e) => None,
                    Err(e) => {
                        return Err(aws_error(
                            COMPONENT,
                            format!("describe KMS key {key_id} ({what})"),
                            e,
                        ))
                    }
                },
            };
            let Some(meta) = meta else {
                return Ok(None);
            };
            if pending_deletion(meta.key_state()) {
                return Ok(Some(meta.deletion_date().cloned()));
            }
            Ok(Some(schedule_deletion(kms, key_id, what, window).await?))
        }
    }))
    .await?;

    try_join_all(aliases.keys().map(|name| {
        let alias = alias_name(ctx, name);
        let kms = &kms;
        async move {
            match kms.delete_alias().alias_name(&alias).send().await {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(aws_error(COMPONENT, format!("delete alias {alias}"), e)),
            }
        }
    }))
    .await?;

    let pending: Vec<Option<DateTime>> = results.into_iter().flatten().collect();
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let last = pending
        .iter()
        .flatten()
        .max_by_key(|d| (d.secs(), d.subsec_nanos()));
    let when = match last {
        Some(date) => format!("AWS deletes them by {}", day(date)),
        None => format!("AWS deletes them after the {window}-day waiting period"),
    };
    Ok(vec![format!(
        "{} KMS key(s) of environment {} are pending deletion; {when}. Until then CancelKeyDeletion brings a key back; data encrypted with them becomes unreadable once they are gone.",
        pending.len(),
        ctx.env
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tenants: &[&str], window: i64) -> KeysSpec {
        KeysSpec {
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            deletion_window_days: window,
            rotation_enabled: true,
        }
    }

    #[test]
    fn spec_checks_name_the_problem() {
        assert!(check_spec(&spec(&["acme", "globex_2"], 7)).is_ok());
        let err = |s: KeysSpec| check_spec(&s).unwrap_err().to_string();
        assert!(err(spec(&["acme"], 6)).contains("7 to 30"));
        assert!(err(spec(&["acme"], 31)).contains("7 to 30"));
        assert!(err(spec(&["platform"], 7)).contains("reserved"));
        assert!(err(spec(&["a/b"], 7)).contains("\"a/b\""));
        assert!(err(spec(&[""], 7)).contains("cannot name"));
        assert!(err(spec(&["acme", "acme"], 7)).contains("twice"));
    }

    #[test]
    fn usable_keys_are_adopted_before_keys_pending_deletion() {
        let meta = |state: KeyState| {
            KeyMetadata::builder()
                .key_id("k")
                .key_state(state)
                .build()
                .unwrap()
        };
        assert!(
            adoption_rank(&meta(KeyState::Enabled))
                < adoption_rank(&meta(KeyState::PendingDeletion))
        );
        assert!(
            adoption_rank(&meta(KeyState::Disabled))
                < adoption_rank(&meta(KeyState::PendingDeletion))
        );
        assert_eq!(adoption_rank(&meta(KeyState::PendingImport)), None);
    }
}
