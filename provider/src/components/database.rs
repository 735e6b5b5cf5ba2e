//! database: RDS PostgreSQL: subnet group, Multi-AZ instance (gp3, encrypted with the platform key, master password managed by Secrets Manager), backups, deletion protection, final snapshot, read replicas.
//!
//! Everything is found by deterministic name: the subnet group and the
//! primary are `idis-<env>-db`, read replicas `idis-<env>-db-replica-<n>`
//! (n from 1). One DescribeDBInstances call with a `db-instance-id` filter
//! reads the primary and every possible replica at once.
//!
//! The master password never passes through the provider: RDS generates it
//! and keeps it in a Secrets Manager secret encrypted with the platform key
//! (`ManageMasterUserPassword`); the state holds that secret's ARN only.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_rds::types::{DbInstance, Filter, Tag};
use futures_util::future::try_join_all;
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};

use super::keys::KeysState;
use super::network::NetworkState;
use super::{
    aws_error, is_not_found, same_members, tag_diff, user_visible_tags, ComponentError, Ctx,
};
use crate::environment::spec::DatabaseSpec;

pub const COMPONENT: &str = "database";

/// The most read replicas an environment may have.
pub const MAX_READ_REPLICAS: i64 = 5;
const ENGINE: &str = "postgres";
const STORAGE_TYPE: &str = "gp3";

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseState {
    pub identifier: String,
    pub arn: String,
    pub endpoint: Option<String>,
    pub port: i64,
    pub master_secret_arn: Option<String>,
    /// The full version AWS runs, e.g. "16.4".
    pub engine_version_actual: String,
    pub instance_class: String,
    pub multi_az: bool,
    pub allocated_storage_gb: i64,
    pub backup_retention_days: i64,
    pub deletion_protection: bool,
    pub performance_insights: bool,
    pub storage_encrypted: bool,
    pub replica_endpoints: Vec<String>,
    /// The master user name the instance was created with (RDS cannot
    /// rename it).
    #[serde(default)]
    pub master_username: String,
    /// The initial database the instance was created with.
    #[serde(default)]
    pub database_name: Option<String>,
    /// The primary's user-visible tags (no ownership or aws:* tags).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// `idis-<env>-db`: the primary instance and the DB subnet group.
pub fn identifier(ctx: &Ctx) -> String {
    format!("{}-db", ctx.prefix())
}

/// `idis-<env>-db-replica-<n>`, n from 1.
pub fn replica_identifier(ctx: &Ctx, n: i64) -> String {
    format!("{}-db-replica-{n}", ctx.prefix())
}

/// The primary and the replicas as DescribeDBInstances reports them.
#[derive(Default)]
struct Observed {
    primary: Option<DbInstance>,
    /// Replica number to instance.
    replicas: BTreeMap<i64, DbInstance>,
}

fn status(db: &DbInstance) -> &str {
    db.db_instance_status().unwrap_or("")
}

fn is_deleting(db: &DbInstance) -> bool {
    status(db) == "deleting"
}

/// States an instance does not leave without someone's help: waiting on
/// them would only run into the deadline.
const STUCK_STATES: &[&str] = &[
    "failed",
    "incompatible-credentials",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "restore-error",
    "storage-full",
    "stopped",
    "stopping",
];

/// Reads the primary and every possible replica in one call.
async fn describe(ctx: &Ctx, rds: &aws_sdk_rds::Client) -> Result<Observed, ComponentError> {
    let primary_id = identifier(ctx);
    let mut ids = vec![primary_id.clone()];
    ids.extend((1..=MAX_READ_REPLICAS).map(|n| replica_identifier(ctx, n)));
    let filter = Filter::builder()
        .name("db-instance-id")
        .set_values(Some(ids))
        .build();
    let out = rds
        .describe_db_instances()
        .filters(filter)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!("describe DB instance {primary_id} and its read replicas"),
                e,
            )
        })?;
    let mut observed = Observed::default();
    let replica_prefix = format!("{primary_id}-replica-");
    for db in out.db_instances() {
        let Some(id) = db.db_instance_identifier() else {
            continue;
        };
        if id == primary_id {
            observed.primary = Some(db.clone());
        } else if let Some(n) = id
            .strip_prefix(&replica_prefix)
            .and_then(|n| n.parse::<i64>().ok())
        {
            observed.replicas.insert(n, db.clone());
        }
    }
    Ok(observed)
}

/// One instance by identifier; `None` when AWS does not know it.
async fn describe_one(
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Result<Option<DbInstance>, ComponentError> {
    match rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("describe DB instance {id}"),
            e,
        )),
    }
}

fn state_of(primary: &DbInstance, replicas: &BTreeMap<i64, DbInstance>) -> DatabaseState {
    let endpoint = primary.endpoint();
    DatabaseState {
        identifier: primary
            .db_instance_identifier()
            .unwrap_or_default()
            .to_string(),
        arn: primary.db_instance_arn().unwrap_or_default().to_string(),
        endpoint: endpoint.and_then(|e| e.address()).map(str::to_string),
        port: endpoint
            .and_then(|e| e.port())
            .or(primary.db_instance_port())
            .map(i64::from)
            .unwrap_or_default(),
        master_secret_arn: primary
            .master_user_secret()
            .and_then(|s| s.secret_arn())
            .map(str::to_string),
        engine_version_actual: primary.engine_version().unwrap_or_default().to_string(),
        instance_class: primary.db_instance_class().unwrap_or_default().to_string(),
        multi_az: primary.multi_az().unwrap_or(false),
        allocated_storage_gb: primary.allocated_storage().map(i64::from).unwrap_or(0),
        backup_retention_days: primary
            .backup_retention_period()
            .map(i64::from)
            .unwrap_or(0),
        deletion_protection: primary.deletion_protection().unwrap_or(false),
        performance_insights: primary.performance_insights_enabled().unwrap_or(false),
        storage_encrypted: primary.storage_encrypted().unwrap_or(false),
        replica_endpoints: replicas
            .values()
            .filter(|r| !is_deleting(r))
            .filter_map(|r| r.endpoint().and_then(|e| e.address()))
            .map(str::to_string)
            .collect(),
        master_username: primary.master_username().unwrap_or_default().to_string(),
        database_name: primary.db_name().map(str::to_string),
        tags: user_visible_tags(tag_map(primary.tag_list())),
    }
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

fn rds_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Reads the database of this environment. A primary being deleted counts
/// as absent.
pub async fn find(ctx: &Ctx) -> Result<Option<DatabaseState>, ComponentError> {
    let rds = ctx.aws.rds();
    let observed = describe(ctx, &rds).await?;
    Ok(match &observed.primary {
        Some(primary) if !is_deleting(primary) => Some(state_of(primary, &observed.replicas)),
        _ => None,
    })
}

/// Creates what is missing, repairs drift in place, waits until every
/// instance is available, and returns what AWS then reports.
pub async fn ensure(
    ctx: &Ctx,
    spec: &DatabaseSpec,
    network: &NetworkState,
    keys: &KeysState,
) -> Result<DatabaseState, ComponentError> {
    check_inputs(ctx, spec, network, keys)?;
    let rds = ctx.aws.rds();
    let id = identifier(ctx);
    let tags = ctx.tags(COMPONENT);

    let (subnet_group_changed, observed) = tokio::try_join!(
        ensure_subnet_group(ctx, &rds, network, &tags),
        describe(ctx, &rds)
    )?;
    // Whether to read everything again at the end; whether the primary
    // must be waited for before the replicas.
    let mut changed = subnet_group_changed;
    let mut primary_changed = false;

    // The primary.
    match &observed.primary {
        Some(db) if !is_deleting(db) => {
            // RDS refuses changes (and replicas) while an instance is busy,
            // e.g. still being created by a killed apply: wait, then look
            // again.
            let fresh;
            let db = if is_usable(db) {
                db
            } else {
                fresh = wait_available(ctx, &rds, &id).await?;
                // What was observed is stale now: read again at the end.
                changed = true;
                &fresh
            };
            primary_changed |= repair_primary(ctx, &rds, spec, network, keys, db).await?;
            changed |= reconcile_tags(&rds, db, &tags).await?;
        }
        deleting => {
            if deleting.is_some() {
                wait_gone(ctx, &rds, &id).await?;
            }
            ctx.check_cancelled(COMPONENT, &format!("creating DB instance {id}"))?;
            create_primary(ctx, &rds, spec, network, keys, &tags).await?;
            primary_changed = true;
        }
    }
    if primary_changed {
        wait_available(ctx, &rds, &id).await?;
        changed = true;
    }

    // The read replicas: 1..=wanted exist, the higher-numbered ones go.
    let wanted = spec.read_replicas.clamp(0, MAX_READ_REPLICAS);
    let mut work = Vec::new();
    for n in 1..=MAX_READ_REPLICAS {
        let existing = observed.replicas.get(&n);
        if n <= wanted {
            work.push(converge_replica(ctx, &rds, spec, network, keys, &tags, n, existing).boxed());
        } else if let Some(db) = existing {
            work.push(remove_replica(ctx, &rds, n, db).boxed());
        }
    }
    changed |= try_join_all(work).await?.into_iter().any(|c| c);

    if !changed {
        if let Some(primary) = &observed.primary {
            return Ok(state_of(primary, &observed.replicas));
        }
    }
    let observed = describe(ctx, &rds).await?;
    match &observed.primary {
        Some(primary) if !is_deleting(primary) => Ok(state_of(primary, &observed.replicas)),
        _ => Err(ComponentError::Conflict {
            component: COMPONENT,
            message: format!(
                "DB instance {id} disappeared right after it became available; \
                 someone deleted it outside Terraform: apply again to recreate it"
            ),
        }),
    }
}

fn check_inputs(
    ctx: &Ctx,
    spec: &DatabaseSpec,
    network: &NetworkState,
    keys: &KeysState,
) -> Result<(), ComponentError> {
    let conflict = |message: String| {
        Err(ComponentError::Conflict {
            component: COMPONENT,
            message,
        })
    };
    if network.private_subnet_ids.is_empty() {
        return conflict(format!(
            "the network of environment {} has no private subnets for the DB subnet group; apply the network first",
            ctx.env
        ));
    }
    if network.database_security_group_id.is_empty() {
        return conflict(format!(
            "the network of environment {} has no database security group; apply the network first",
            ctx.env
        ));
    }
    if keys.platform_key_arn.is_empty() {
        return conflict(format!(
            "environment {} has no platform KMS key to encrypt the database with; apply the keys first",
            ctx.env
        ));
    }
    if !(0..=MAX_READ_REPLICAS).contains(&spec.read_replicas) {
        return conflict(format!(
            "database.read_replicas = {} is out of range: use 0 to {MAX_READ_REPLICAS}",
            spec.read_replicas
        ));
    }
    if spec.read_replicas > 0 && spec.backup_retention_days < 1 {
        return conflict(format!(
            "database.read_replicas = {} needs automated backups, but database.backup_retention_days = {}: set it to at least 1",
            spec.read_replicas, spec.backup_retention_days
        ));
    }
    Ok(())
}

/// Creates the DB subnet group, or brings its subnets and tags in line.
/// Returns whether anything changed.
async fn ensure_subnet_group(
    ctx: &Ctx,
    rds: &aws_sdk_rds::Client,
    network: &NetworkState,
    tags: &BTreeMap<String, String>,
) -> Result<bool, ComponentError> {
    let name = identifier(ctx);
    let existing = match rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(&name)
        .send()
        .await
    {
        Ok(out) => out.db_subnet_groups().first().cloned(),
        Err(e) if is_not_found(&e) => None,
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("describe DB subnet group {name}"),
                e,
            ))
        }
    };
    let Some(group) = existing else {
        let created = rds
            .create_db_subnet_group()
            .db_subnet_group_name(&name)
            .db_subnet_group_description(format!("Private subnets of IDIS environment {}", ctx.env))
            .set_subnet_ids(Some(network.private_subnet_ids.clone()))
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await;
        return match created {
            Ok(_) => Ok(true),
            // Missing when read: made by a call whose answer was lost (the
            // SDK repeated it) or by a concurrent apply.
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_db_subnet_group_already_exists_fault())
                    == Some(true) =>
            {
                Ok(true)
            }
            Err(e) => Err(aws_error(
                COMPONENT,
                format!("create DB subnet group {name}"),
                e,
            )),
        };
    };

    let mut changed = false;
    let current = group.subnets().iter().filter_map(|s| s.subnet_identifier());
    if !same_members(
        current,
        network.private_subnet_ids.iter().map(String::as_str),
    ) {
        rds.modify_db_subnet_group()
            .db_subnet_group_name(&name)
            .set_subnet_ids(Some(network.private_subnet_ids.clone()))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("set the subnets of DB subnet group {name}"),
                    e,
                )
            })?;
        changed = true;
    }
    if let Some(arn) = group.db_subnet_group_arn() {
        let current = rds
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("read the tags of DB subnet group {name}"),
                    e,
                )
            })?;
        changed |= apply_tag_diff(
            rds,
            arn,
            &format!("DB subnet group {name}"),
            &tag_map(current.tag_list()),
            tags,
        )
        .await?;
    }
    Ok(changed)
}

async fn apply_tag_diff(
    rds: &aws_sdk_rds::Client,
    arn: &str,
    what: &str,
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Result<bool, ComponentError> {
    let (set, remove) = tag_diff(current, wanted);
    if !set.is_empty() {
        rds.add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(rds_tags(&set)))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("tag {what}"), e))?;
    }
    if !remove.is_empty() {
        rds.remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(remove.clone()))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("remove old tags from {what}"), e))?;
    }
    Ok(!set.is_empty() || !remove.is_empty())
}

async fn reconcile_tags(
    rds: &aws_sdk_rds::Client,
    db: &DbInstance,
    wanted: &BTreeMap<String, String>,
) -> Result<bool, ComponentError> {
    let Some(arn) = db.db_instance_arn() else {
        return Ok(false);
    };
    let what = format!(
        "DB instance {}",
        db.db_instance_identifier().unwrap_or_default()
    );
    apply_tag_diff(rds, arn, &what, &tag_map(db.tag_list()), wanted).await
}

async fn create_primary(
    ctx: &Ctx,
    rds: &aws_sdk_rds::Client,
    spec: &DatabaseSpec,
    network: &NetworkState,
    keys: &KeysState,
    tags: &BTreeMap<String, String>,
) -> Result<(), ComponentError> {
    let id = identifier(ctx);
    let mut create = rds
        .create_db_instance()
        .db_instance_identifier(&id)
        .engine(ENGINE)
        .engine_version(&spec.engine_version)
        .db_instance_class(&spec.instance_class)
        .multi_az(spec.multi_az)
        .allocated_storage(clamp_i32(spec.allocated_storage_gb))
        .storage_type(STORAGE_TYPE)
        .storage_encrypted(true)
        .kms_key_id(&keys.platform_key_arn)
        .manage_master_user_password(true)
        .master_user_secret_kms_key_id(&keys.platform_key_arn)
        .master_username(&spec.master_username)
        .db_name(&spec.database_name)
        .backup_retention_period(clamp_i32(spec.backup_retention_days))
        .deletion_protection(spec.deletion_protection)
        .enable_performance_insights(spec.performance_insights)
        .copy_tags_to_snapshot(true)
        .vpc_security_group_ids(&network.database_security_group_id)
        .publicly_accessible(false)
        .db_subnet_group_name(&id)
        .set_tags(Some(rds_tags(tags)));
    if spec.performance_insights {
        create = create.performance_insights_kms_key_id(&keys.platform_key_arn);
    }
    match create.send().await {
        Ok(_) => Ok(()),
        // A concurrent or killed apply created it a moment ago: adopt it;
        // the wait and the next ensure repair any difference.
        Err(e)
            if e.as_service_error()
                .map(|s| s.is_db_instance_already_exists_fault())
                == Some(true) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error(COMPONENT, format!("create DB instance {id}"), e)),
    }
}

fn clamp_i32(n: i64) -> i32 {
    n.clamp(0, i64::from(i32::MAX)) as i32
}

/// A PostgreSQL version as numbers: "16.4" is [16, 4].
fn version_parts(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0)
        })
        .collect()
}

/// What to do about the engine version: `Ok(None)` when `actual` satisfies
/// `wanted`, `Ok(Some((target, major)))` for an upgrade, a Conflict for a
/// downgrade (RDS cannot downgrade in place).
fn engine_upgrade(
    id: &str,
    wanted: &str,
    actual: &str,
) -> Result<Option<(String, bool)>, ComponentError> {
    let want = version_parts(wanted);
    let have = version_parts(actual);
    let (want_major, have_major) = (
        want.first().copied().unwrap_or(0),
        have.first().copied().unwrap_or(0),
    );
    let downgrade = || ComponentError::Conflict {
        component: COMPONENT,
        message: format!(
            "DB instance {id} runs PostgreSQL {actual}, newer than \
             database.engine_version = \"{wanted}\"; RDS cannot downgrade in place: \
             set database.engine_version = \"{actual}\" \
             (or \"{have_major}\" for any {have_major}.x)"
        ),
    };
    if want.len() == 1 {
        // A major alone: any minor of it will do.
        return match want_major.cmp(&have_major) {
            std::cmp::Ordering::Equal => Ok(None),
            std::cmp::Ordering::Greater => Ok(Some((wanted.to_string(), true))),
            std::cmp::Ordering::Less => Err(downgrade()),
        };
    }
    match want.cmp(&have) {
        std::cmp::Ordering::Equal => Ok(None),
        std::cmp::Ordering::Greater => Ok(Some((wanted.to_string(), want_major != have_major))),
        std::cmp::Ordering::Less => Err(downgrade()),
    }
}

/// Brings the primary in line with the spec with ModifyDBInstance
/// (ApplyImmediately). An engine upgrade goes first, on its own, as RDS
/// asks when the instance class changes too. Returns whether anything was
/// modified.
async fn repair_primary(
    ctx: &Ctx,
    rds: &aws_sdk_rds::Client,
    spec: &DatabaseSpec,
    network: &NetworkState,
    keys: &KeysState,
    db: &DbInstance,
) -> Result<bool, ComponentError> {
    let id = identifier(ctx);
    let conflict = |message: String| ComponentError::Conflict {
        component: COMPONENT,
        message,
    };

    // What RDS cannot change in place.
    if let Some(user) = db.master_username() {
        if user != spec.master_username {
            return Err(conflict(format!(
                "DB instance {id} was created with master user \"{user}\" but database.master_username = \"{}\"; \
                 RDS cannot rename the master user: set database.master_username = \"{user}\"",
                spec.master_username
            )));
        }
    }
    if let Some(name) = db.db_name() {
        if name != spec.database_name {
            return Err(conflict(format!(
                "DB instance {id} was created with database \"{name}\" but database.database_name = \"{}\"; \
                 RDS cannot rename it: set database.database_name = \"{name}\"",
                spec.database_name
            )));
        }
    }
    if db.storage_encrypted() == Some(false) {
        return Err(conflict(format!(
            "DB instance {id} stores its data unencrypted and RDS cannot encrypt an instance in place; \
             snapshot it, destroy the database and restore the snapshot encrypted with the platform key"
        )));
    }
    let storage = i64::from(db.allocated_storage().unwrap_or(0));
    if storage > spec.allocated_storage_gb {
        return Err(conflict(format!(
            "DB instance {id} has {storage} GB of storage but database.allocated_storage_gb = {}; \
             RDS storage can only grow: set database.allocated_storage_gb to {storage} or more",
            spec.allocated_storage_gb
        )));
    }

    let mut modified = false;
    if let Some((target, major)) = engine_upgrade(
        &id,
        &spec.engine_version,
        db.engine_version().unwrap_or_default(),
    )? {
        tracing_note(&id, "engine version", &target);
        rds.modify_db_instance()
            .db_instance_identifier(&id)
            .engine_version(&target)
            .allow_major_version_upgrade(major)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("upgrade DB instance {id} to PostgreSQL {target}"),
                    e,
                )
            })?;
        wait_available(ctx, rds, &id).await?;
        modified = true;
    }

    let mut modify = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .apply_immediately(true);
    let mut drift: Vec<&str> = Vec::new();
    if db.db_instance_class() != Some(spec.instance_class.as_str()) {
        modify = modify.db_instance_class(&spec.instance_class);
        drift.push("instance class");
    }
    if db.multi_az() != Some(spec.multi_az) {
        modify = modify.multi_az(spec.multi_az);
        drift.push("Multi-AZ");
    }
    if storage < spec.allocated_storage_gb {
        modify = modify.allocated_storage(clamp_i32(spec.allocated_storage_gb));
        drift.push("allocated storage");
    }
    if db.storage_type() != Some(STORAGE_TYPE) {
        modify = modify.storage_type(STORAGE_TYPE);
        drift.push("storage type");
    }
    if db.backup_retention_period().map(i64::from) != Some(spec.backup_retention_days) {
        modify = modify.backup_retention_period(clamp_i32(spec.backup_retention_days));
        drift.push("backup retention");
    }
    if db.deletion_protection() != Some(spec.deletion_protection) {
        modify = modify.deletion_protection(spec.deletion_protection);
        drift.push("deletion protection");
    }
    if db.performance_insights_enabled().unwrap_or(false) != spec.performance_insights {
        modify = modify.enable_performance_insights(spec.performance_insights);
        if spec.performance_insights {
            modify = modify.performance_insights_kms_key_id(&keys.platform_key_arn);
        }
        drift.push("Performance Insights");
    }
    if db.copy_tags_to_snapshot() != Some(true) {
        modify = modify.copy_tags_to_snapshot(true);
        drift.push("copy tags to snapshot");
    }
    if db.publicly_accessible() == Some(true) {
        modify = modify.publicly_accessible(false);
        drift.push("public accessibility");
    }
    let groups: Vec<&str> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    if groups != [network.database_security_group_id.as_str()] {
        modify = modify.vpc_security_group_ids(&network.database_security_group_id);
        drift.push("security groups");
    }
    if db.master_user_secret().is_none() {
        // Someone switched to a self-managed password: hand it back to
        // Secrets Manager (RDS generates a new one; we never see it).
        modify = modify
            .manage_master_user_password(true)
            .master_user_secret_kms_key_id(&keys.platform_key_arn);
        drift.push("managed master password");
    }
    if drift.is_empty() {
        return Ok(modified);
    }
    tracing_note(&id, &drift.join(", "), "spec");
    modify.send().await.map_err(|e| {
        aws_error(
            COMPONENT,
            format!("modify DB instance {id} ({})", drift.join(", ")),
            e,
        )
    })?;
    Ok(true)
}

/// Logs what is being repaired (Terraform shows it with TF_LOG_PROVIDER).
/// Never called with secret values.
fn tracing_note(id: &str, what: &str, to: &str) {
    crate::logging::info(&format!(
        "{COMPONENT}: DB instance {id}: setting {what} to match {to}"
    ));
}

/// Makes replica `n` exist, available, with the spec's instance class and
/// tags. Returns whether anything changed.
#[allow(clippy::too_many_arguments)]
async fn converge_replica(
    ctx: &Ctx,
    rds: &aws_sdk_rds::Client,
    spec: &DatabaseSpec,
    network: &NetworkState,
    keys: &KeysState,
    tags: &BTreeMap<String, String>,
    n: i64,
    existing: Option<&DbInstance>,
) -> Result<bool, ComponentError> {
    let id = replica_identifier(ctx, n);
    match existing {
        Some(db) if !is_deleting(db) => {
            let fresh;
            let mut changed = false;
            let db = if is_usable(db) {
                db
            } else {
                fresh = wait_available(ctx, rds, &id).await?;
                changed = true;
                &fresh
            };
            let mut modify = rds
                .modify_db_instance()
                .db_instance_identifier(&id)
                .apply_immediately(true);
            let mut drift: Vec<&str> = Vec::new();
            if db.db_instance_class() != Some(spec.instance_class.as_str()) {
                modify = modify.db_instance_class(&spec.instance_class);
                drift.push("instance class");
            }
            // Replicas hold nothing the primary does not: they stay
            // deletable, whatever someone set by hand.
            if db.deletion_protection() == Some(true) {
                modify = modify.deletion_protection(false);
                drift.push("deletion protection");
            }
            if !drift.is_empty() {
                modify.send().await.map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("modify read replica {id} ({})", drift.join(", ")),
                        e,
                    )
                })?;
                changed = true;
            }
            changed |= reconcile_tags(rds, db, tags).await?;
            if changed {
                wait_available(ctx, rds, &id).await?;
            }
            Ok(changed)
        }
        deleting => {
            if deleting.is_some() {
                wait_gone(ctx, rds, &id).await?;
            }
            ctx.check_cancelled(COMPONENT, &format!("creating read replica {id}"))?;
            let mut create = rds
                .create_db_instance_read_replica()
                .db_instance_identifier(&id)
                .source_db_instance_identifier(identifier(ctx))
                .db_instance_class(&spec.instance_class)
                .storage_type(STORAGE_TYPE)
                .db_subnet_group_name(identifier(ctx))
                .vpc_security_group_ids(&network.database_security_group_id)
                .publicly_accessible(false)
                .copy_tags_to_snapshot(true)
                .deletion_protection(false)
                .enable_performance_insights(spec.performance_insights)
                .set_tags(Some(rds_tags(tags)));
            if spec.performance_insights {
                create = create.performance_insights_kms_key_id(&keys.platform_key_arn);
            }
            match create.send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .map(|s| s.is_db_instance_already_exists_fault())
                        == Some(true) => {}
                Err(e) => return Err(aws_error(COMPONENT, format!("create read replica {id}"), e)),
            }
            wait_available(ctx, rds, &id).await?;
            Ok(true)
        }
    }
}

/// Deletes replica `n` (no final snapshot: a replica holds nothing the
/// primary does not) and waits until it is gone.
async fn remove_replica(
    ctx: &Ctx,
    rds: &aws_sdk_rds::Client,
    n: i64,
    db: &DbInstance,
) -> Result<bool, ComponentError> {
    let id = replica_identifier(ctx, n);
    if !is_deleting(db) {
        delete_instance(ctx, rds, &id, None).await?;
    }
    wait_gone(ctx, rds, &id).await?;
    Ok(true)
}

/// DeleteDBInstance; an instance already gone or already being deleted is
/// fine. With `final_snapshot`, RDS takes that snapshot first and keeps the
/// automated backups.
async fn delete_instance(
    ctx: &Ctx,
    rds: &aws_sdk_rds::Client,
    id: &str,
    final_snapshot: Option<&str>,
) -> Result<(), ComponentError> {
    let mut waited = false;
    loop {
        let mut delete = rds.delete_db_instance().db_instance_identifier(id);
        delete = match final_snapshot {
            Some(snapshot) => delete
                .final_db_snapshot_identifier(snapshot)
                .delete_automated_backups(false),
            None => delete.skip_final_snapshot(true),
        };
        let err = match delete.send().await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => e,
        };
        let invalid_state = err
            .as_service_error()
            .is_some_and(|s| s.is_invalid_db_instance_state_fault());
        if invalid_state {
            match describe_one(rds, id).await? {
                // Already gone or being deleted: that is success.
                None => return Ok(()),
                Some(db) if is_deleting(&db) => return Ok(()),
                // Busy (creating, modifying, backing up): RDS takes the
                // delete once the instance is available.
                Some(_) if !waited => {
                    wait_available(ctx, rds, id).await?;
                    waited = true;
                    continue;
                }
                Some(_) => {}
            }
        }
        return Err(aws_error(
            COMPONENT,
            format!("delete DB instance {id}"),
            err,
        ));
    }
}

/// Waits until `id` is available with no pending change of what we manage.
async fn wait_available(
    ctx: &Ctx,
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Result<DbInstance, ComponentError> {
    let what = format!("DB instance {id} to become available");
    ctx.wait_for(COMPONENT, &what, || async {
        let Some(db) = describe_one(rds, id).await? else {
            return Err(ComponentError::Conflict {
                component: COMPONENT,
                message: format!(
                    "DB instance {id} disappeared while waiting for it to become available; \
                     someone deleted it outside Terraform: apply again to recreate it"
                ),
            });
        };
        let state = status(&db);
        if state == "deleting" {
            return Err(ComponentError::Conflict {
                component: COMPONENT,
                message: format!(
                    "DB instance {id} is being deleted by someone else while this apply waits for it; \
                     apply again once it is gone to recreate it"
                ),
            });
        }
        if STUCK_STATES.contains(&state) {
            return Err(ComponentError::Conflict {
                component: COMPONENT,
                message: format!(
                    "DB instance {id} is in state \"{state}\", which RDS does not leave on its own; \
                     see its events in the RDS console, fix the cause, then apply again"
                ),
            });
        }
        Ok(is_usable(&db).then_some(db))
    })
    .await
}

/// Available (or optimizing storage, which serves traffic) with no change
/// of ours still pending.
fn is_usable(db: &DbInstance) -> bool {
    matches!(status(db), "available" | "storage-optimization") && !has_pending_changes(db)
}

/// True while RDS still has to apply a change to what this component
/// manages (right after ModifyDBInstance the status may still read
/// "available").
fn has_pending_changes(db: &DbInstance) -> bool {
    db.pending_modified_values().is_some_and(|p| {
        p.db_instance_class().is_some()
            || p.allocated_storage().is_some()
            || p.multi_az().is_some()
            || p.engine_version().is_some()
            || p.backup_retention_period().is_some()
            || p.storage_type().is_some()
    })
}

/// Waits until AWS no longer knows `id`.
async fn wait_gone(ctx: &Ctx, rds: &aws_sdk_rds::Client, id: &str) -> Result<(), ComponentError> {
    let what = format!("DB instance {id} to be deleted");
    ctx.wait_for(COMPONENT, &what, || async {
        Ok(describe_one(rds, id).await?.is_none().then_some(()))
    })
    .await
}

/// Deletes the replicas, then the primary (with a final snapshot unless the
/// spec skips it), then the subnet group. Refuses while deletion protection
/// is on.
pub async fn delete(ctx: &Ctx, spec: &DatabaseSpec) -> Result<Vec<String>, ComponentError> {
    let rds = ctx.aws.rds();
    let id = identifier(ctx);
    let observed = describe(ctx, &rds).await?;
    let mut warnings = Vec::new();

    if let Some((n, _)) = observed
        .replicas
        .iter()
        .find(|(_, db)| !is_deleting(db) && db.deletion_protection() == Some(true))
    {
        let replica = replica_identifier(ctx, *n);
        return Err(ComponentError::Conflict {
            component: COMPONENT,
            message: format!(
                "read replica {replica} has deletion protection on, set outside Terraform, so nothing was deleted; \
                 apply once (which turns it off: replicas hold no data of their own), then destroy again"
            ),
        });
    }
    if let Some(primary) = &observed.primary {
        if !is_deleting(primary) && primary.deletion_protection() == Some(true) {
            return Err(ComponentError::Conflict {
                component: COMPONENT,
                message: format!(
                    "DB instance {id} has deletion protection on, so it was not deleted (nor were its read replicas); \
                     set database.deletion_protection = false and apply, then destroy again"
                ),
            });
        }
    }

    try_join_all(
        observed
            .replicas
            .iter()
            .map(|(n, db)| remove_replica(ctx, &rds, *n, db)),
    )
    .await?;

    if let Some(primary) = &observed.primary {
        if !is_deleting(primary) {
            let snapshot = (!spec.skip_final_snapshot).then(|| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                format!("{id}-final-{now}")
            });
            ctx.check_cancelled(COMPONENT, &format!("deleting DB instance {id}"))?;
            delete_instance(ctx, &rds, &id, snapshot.as_deref()).await?;
            if let Some(snapshot) = snapshot {
                warnings.push(format!(
                    "kept the final snapshot {snapshot} of DB instance {id}; delete it with \
                     `aws rds delete-db-snapshot --db-snapshot-identifier {snapshot}` when it is no longer needed"
                ));
                if primary.backup_retention_period().unwrap_or(0) > 0 {
                    warnings.push(format!(
                        "kept the automated backups of DB instance {id}; RDS removes them when their retention period ends"
                    ));
                }
            }
        }
        wait_gone(ctx, &rds, &id).await?;
    }

    match rds
        .delete_db_subnet_group()
        .db_subnet_group_name(&id)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("delete DB subnet group {id}"),
                e,
            ))
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_major_version_accepts_any_of_its_minors() {
        assert!(engine_upgrade("db", "16", "16.4").unwrap().is_none());
        assert!(engine_upgrade("db", "16", "16").unwrap().is_none());
        assert_eq!(
            engine_upgrade("db", "16", "15.7").unwrap(),
            Some(("16".to_string(), true))
        );
    }

    #[test]
    fn a_full_version_is_upgraded_to_and_major_only_when_the_major_changes() {
        assert!(engine_upgrade("db", "16.4", "16.4").unwrap().is_none());
        assert_eq!(
            engine_upgrade("db", "16.4", "16.2").unwrap(),
            Some(("16.4".to_string(), false))
        );
        assert_eq!(
            engine_upgrade("db", "16.4", "15.7").unwrap(),
            Some(("16.4".to_string(), true))
        );
        assert_eq!(
            engine_upgrade("db", "16.10", "16.9").unwrap(),
            Some(("16.10".to_string(), false))
        );
    }

    #[test]
    fn a_downgrade_is_a_conflict_that_names_both_versions() {
        let err = engine_upgrade("idis-x-db", "15", "16.4").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("16.4") && text.contains("\"15\""), "{text}");
        assert!(engine_upgrade("db", "16.2", "16.4").is_err());
    }

    #[test]
    fn tag_diff_sets_changed_tags_and_removes_stale_ones_but_not_aws_ones() {
        let current = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("old".to_string(), "x".to_string()),
            ("aws:cloudformation:stack".to_string(), "s".to_string()),
        ]);
        let wanted = BTreeMap::from([
            ("a".to_string(), "2".to_string()),
            ("b".to_string(), "3".to_string()),
        ]);
        let (set, remove) = tag_diff(&current, &wanted);
        assert_eq!(set, wanted);
        assert_eq!(remove, vec!["old".to_string()]);
    }
}
