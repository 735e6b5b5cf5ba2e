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

use super::{
    aws_error, create_or_adopt, is_not_found, ComponentError, Ctx, TAG_COMPONENT, TAG_ENVIRONMENT,
};
use crate::environment::spec::KeysSpec;

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
}

fn conflict(message: String) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message,
    }
}

fn alias_prefix(ctx: &Ctx) -> String {
    format!("alias/idis/{}/", ctx.env)
}

fn alias_name(ctx: &Ctx, name: &str) -> String {
    format!("{}{name}", alias_prefix(ctx))
}

fn description(ctx: &Ctx, name: &str) -> String {
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
}

impl KeyView {
    fn from_metadata(meta: &KeyMetadata, rotation: Option<bool>) -> KeyView {
        KeyView {
            key_id: meta.key_id().to_string(),
            arn: meta.arn().unwrap_or_default().to_string(),
            state: meta.key_state().cloned(),
            rotation,
        }
    }

    fn gone(&self) -> bool {
        pending_deletion(self.state.as_ref())
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

/// Reads one key: metadata and rotation in parallel. Rotation of a key
/// pending deletion may be unreadable; it does not matter then.
async fn read_key(kms: &Client, key_id: &str) -> Result<KeyView, ComponentError> {
    let (meta, rotation) = tokio::join!(describe(kms, key_id), rotation(kms, key_id));
    let meta = meta?;
    let rotation = if pending_deletion(meta.key_state()) {
        rotation.ok()
    } else {
        Some(rotation?)
    };
    Ok(KeyView::from_metadata(&meta, rotation))
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

fn state_from(aliased: &BTreeMap<String, (String, KeyView)>) -> Option<KeysState> {
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
    Ok(state_from(&aliased))
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
    let aliased = read_aliased(ctx, &kms).await?;
    let wanted: Vec<&str> = std::iter::once(PLATFORM)
        .chain(spec.tenants.iter().map(String::as_str))
        .collect();

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
    let (converged, retired) = tokio::try_join!(try_join_all(converge), try_join_all(retire))?;

    if converged.into_iter().chain(retired).any(|changed| changed) {
        let aliased = read_aliased(ctx, &kms).await?;
        state_from(&aliased).ok_or_else(|| {
            conflict("the keys vanished right after they were made; retry the apply".to_string())
        })
    } else {
        state_from(&aliased)
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

    let (rotation_now, current_tags) = if fresh {
        (false, None)
    } else {
        let (rotation_now, current_tags) = tokio::try_join!(
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
        )?;
        (rotation_now, Some(current_tags))
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
    let (rotated, retagged) = tokio::try_join!(rotate, retag)?;
    Ok(changed || rotated || retagged)
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
pub async fn delete(ctx: &Ctx, spec: &KeysSpec) -> Result<Vec<String>, ComponentError> {
    if !(7..=30).contains(&spec.deletion_window_days) {
        return Err(conflict(format!(
            "deletion_window_days = {} is not allowed: KMS takes 7 to 30 days",
            spec.deletion_window_days
        )));
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
