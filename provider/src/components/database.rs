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

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_rds::types::{DbInstance, Filter, Tag};
use futures_util::future::try_join_all;
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};

use super::describe::{
    is_dotted_version, is_instance_type, major_of, show, version_less, version_setting, Check,
    Component, Default, Guard, Output, Reading, Setting, Verdicts,
};
use super::keys::KeysState;
use super::network::NetworkState;
use super::{
    aws_error, is_not_found, neighbours, same_members, tag_diff, user_visible_tags, ComponentError,
    Ctx, Neighbours,
};
use crate::protocol::cty::{Path, Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

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
    /// The guards of the database, as read.
    #[serde(skip)]
    pub verdicts: Verdicts,
}

// ---------------------------------------------------------------- description

/// The `database` block once planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseSpec {
    /// "16" (any 16.x) or a full version such as "16.4"; 15 is allowed.
    pub engine_version: String,
    pub instance_class: String,
    pub multi_az: bool,
    pub allocated_storage_gb: i64,
    pub backup_retention_days: i64,
    pub deletion_protection: bool,
    pub skip_final_snapshot: bool,
    pub performance_insights: bool,
    /// 0 to 5 read replicas.
    pub read_replicas: i64,
    pub master_username: String,
    pub database_name: String,
}

/// The computed attributes of the database.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DatabaseOutputs {
    pub database_arn: String,
    pub database_endpoint: Option<String>,
    pub database_port: i64,
    pub database_master_secret_arn: Option<String>,
    pub database_engine_version_actual: String,
    pub database_replica_endpoints: Vec<String>,
}

pub const DEFAULT_ENGINE_VERSION: &str = "16";
pub const DEFAULT_INSTANCE_CLASS: &str = "db.r6g.xlarge";
pub const DEFAULT_STORAGE_GB: i64 = 100;
pub const DEFAULT_BACKUP_RETENTION_DAYS: i64 = 30;
pub const DEFAULT_MASTER_USERNAME: &str = "idis_admin";
pub const DEFAULT_DATABASE_NAME: &str = "idis";

/// The PostgreSQL database of an environment.
pub struct Database;

fn is_master_username(v: &str) -> bool {
    (1..=16).contains(&v.len())
        && v.starts_with(|ch: char| ch.is_ascii_alphabetic())
        && v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !["postgres", "rdsadmin", "admin", "root"].contains(&v)
}

fn is_database_name(v: &str) -> bool {
    (1..=63).contains(&v.len())
        && v.starts_with(|ch: char| ch.is_ascii_alphabetic())
        && v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// `database_engine_version_actual` on refresh: the version AWS runs,
/// recorded when it is first read, when the major changes, or whenever
/// `engine_version` pins a full version. A minor upgrade AWS makes in a
/// maintenance window under a major-only `engine_version` keeps the
/// recorded value: it is not drift, and the output would otherwise make
/// every refresh after a maintenance window report a change.
fn engine_version_output(recorded: Option<&str>, written: &str, actual: &str) -> String {
    match recorded {
        Some(rec)
            if !written.contains('.')
                && major_of(actual) == written
                && major_of(rec) == written =>
        {
            rec.to_string()
        }
        _ => actual.to_string(),
    }
}

fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

impl Component for Database {
    const NAME: &'static str = COMPONENT;
    const AFTER: &'static [&'static str] = &[super::network::COMPONENT, super::keys::COMPONENT];

    async fn find(ctx: &Ctx) -> Result<Option<DatabaseState>, ComponentError> {
        find(ctx).await
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &DatabaseSpec,
        built: &super::Observed,
    ) -> Result<DatabaseState, ComponentError> {
        let network = built.need::<super::network::Network>(COMPONENT)?;
        let keys = built.need::<super::keys::TenantKeys>(COMPONENT)?;
        Box::pin(ensure(ctx, spec, network, keys)).await
    }

    async fn delete(ctx: &Ctx, spec: &DatabaseSpec) -> Result<Vec<String>, ComponentError> {
        delete(ctx, spec).await
    }

    /// RDS refuses to delete an instance with deletion protection: refuse
    /// the destroy before anything else goes.
    async fn refuse_destroy(ctx: &Ctx) -> Option<Diagnostic> {
        match find(ctx).await {
            Ok(Some(db)) if db.deletion_protection => Some(Diagnostic::error(
                "Destroy refused: the database has deletion protection",
                format!(
                    "Database {} has deletion protection on in AWS, so nothing was deleted. Set database.deletion_protection = false, run terraform apply, then destroy again.",
                    db.identifier
                ),
            )),
            Ok(_) => None,
            Err(e) => Some(e.to_diagnostic()),
        }
    }
    const DOC: &'static str = "RDS PostgreSQL: Multi-AZ, gp3, encrypted with the platform key, master password managed by AWS Secrets Manager (never in state), backups, deletion protection, final snapshot.";
    type Spec = DatabaseSpec;
    type State = DatabaseState;
    type Outputs = DatabaseOutputs;

    fn settings() -> Vec<Setting> {
        vec![
            Setting::new(
                "engine_version",
                Type::String,
                Default::Str(DEFAULT_ENGINE_VERSION),
                format!("PostgreSQL version: a major (`17`, `16`; any minor of it satisfies) or a full version (`16.4`), one RDS offers in the region (checked at plan). Default `\"{DEFAULT_ENGINE_VERSION}\"`. Downgrades are refused."),
            )
            .check(Check::Text(
                is_dotted_version,
                "use a PostgreSQL version such as \"17\", \"16\" or \"16.4\"",
            )),
            Setting::new(
                "instance_class",
                Type::String,
                Default::Str(DEFAULT_INSTANCE_CLASS),
                format!("DB instance class. Default `{DEFAULT_INSTANCE_CLASS}`."),
            )
            .check(Check::Text(
                |v| is_instance_type(v, "db."),
                "use an RDS instance class such as \"db.r6g.xlarge\"",
            )),
            Setting::new(
                "multi_az",
                Type::Bool,
                Default::Bool(true),
                "Synchronous standby in another zone. Default `true`.".into(),
            ),
            Setting::new(
                "allocated_storage_gb",
                Type::Number,
                Default::Int(DEFAULT_STORAGE_GB),
                format!("Storage in GiB, 20 to 65536; can only grow. Default `{DEFAULT_STORAGE_GB}`."),
            )
            .check(Check::Range(20, 65536)),
            Setting::new(
                "backup_retention_days",
                Type::Number,
                Default::Int(DEFAULT_BACKUP_RETENTION_DAYS),
                format!("Days of automated backups (point-in-time restore window), 1 to 35. Default `{DEFAULT_BACKUP_RETENTION_DAYS}`."),
            )
            .check(Check::Range(1, 35)),
            Setting::new(
                "deletion_protection",
                Type::Bool,
                Default::Bool(true),
                "Refuse to delete the database (and so the environment). Default `true`.".into(),
            ),
            Setting::new(
                "skip_final_snapshot",
                Type::Bool,
                Default::Bool(false),
                "Delete without a final snapshot. Default `false`.".into(),
            )
            .not_recorded(),
            Setting::new(
                "performance_insights",
                Type::Bool,
                Default::Bool(true),
                "Performance Insights, encrypted with the platform key. Default `true`.".into(),
            ),
            Setting::new(
                "read_replicas",
                Type::Number,
                Default::Int(0),
                "Read replicas, 0 to 5. Default `0`.".into(),
            )
            .check(Check::Range(0, MAX_READ_REPLICAS)),
            Setting::new(
                "master_username",
                Type::String,
                Default::Str(DEFAULT_MASTER_USERNAME),
                format!("Master user name; its password is generated and kept by AWS Secrets Manager. Default `{DEFAULT_MASTER_USERNAME}`."),
            )
            .check(Check::Text(
                is_master_username,
                "use 1 to 16 letters, digits or underscores starting with a letter, not a reserved name (postgres, rdsadmin, admin, root)",
            )),
            Setting::new(
                "database_name",
                Type::String,
                Default::Str(DEFAULT_DATABASE_NAME),
                format!("Initial database. Default `{DEFAULT_DATABASE_NAME}`."),
            )
            .check(Check::Text(
                is_database_name,
                "use 1 to 63 letters, digits or underscores starting with a letter",
            )),
        ]
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new("database_arn", Type::String, "RDS instance ARN."),
            Output::new("database_endpoint", Type::String, "Database host name."),
            Output::new("database_port", Type::Number, "Database port."),
            Output::new(
                "database_master_secret_arn",
                Type::String,
                "ARN of the Secrets Manager secret AWS keeps the master credentials in.",
            ),
            Output::new(
                "database_engine_version_actual",
                Type::String,
                "The PostgreSQL version AWS reported when the major was last set: at create, after a major upgrade, or always when `database.engine_version` pins a full version. Minor upgrades AWS applies under a major-only `engine_version` do not refresh it (they are not drift); ask RDS for the version running right now.",
            ),
            Output::new(
                "database_replica_endpoints",
                Type::list(Type::String),
                "Read replica host names.",
            ),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn plan_outputs(prior: &Value, planned: &mut Value) {
        let block = |v: &Value, a: &str| v.get_attr(COMPONENT).get_attr(a).clone();
        let replicas = block(planned, "read_replicas").as_i64();
        let have = prior
            .get_attr("database_replica_endpoints")
            .as_strings()
            .map(|v| v.len() as i64);
        if replicas.is_none() || replicas != have {
            planned.set_attr("database_replica_endpoints", Value::Unknown);
        }
        if block(prior, "engine_version") != block(planned, "engine_version") {
            planned.set_attr("database_engine_version_actual", Value::Unknown);
        }
    }

    fn judge(prior: &Value, planned: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        let was = |a: &str| prior.get_attr(COMPONENT).get_attr(a).clone();
        let now = |a: &str| planned.get_attr(COMPONENT).get_attr(a).clone();
        let changed = |a: &str| was(a) != now(a) && now(a).is_known();
        let path = |a: &str| Path::root().attr(COMPONENT).attr(a);
        if let (Some(old), Some(new)) = (
            was("allocated_storage_gb").as_i64(),
            now("allocated_storage_gb").as_i64(),
        ) {
            if new < old {
                d.push(
                    Diagnostic::error(
                        "Database storage cannot shrink",
                        format!("database.allocated_storage_gb: RDS cannot shrink storage from {old} to {new} GiB in place. Keep {old} or more; to shrink, restore a snapshot into a new environment."),
                    )
                    .at(path("allocated_storage_gb")),
                );
            }
        }
        let actual = prior
            .get_attr("database_engine_version_actual")
            .as_str()
            .map(str::to_string);
        if let Some(new) = now("engine_version").as_str() {
            let current = actual.or_else(|| was("engine_version").as_str().map(str::to_string));
            if let Some(current) = current {
                let downgrade = match (major(new), major(&current)) {
                    (Some(n), Some(c)) if n < c => true,
                    (Some(n), Some(c)) if n == c && new.contains('.') => {
                        version_less(new, &current)
                    }
                    _ => false,
                };
                if downgrade {
                    d.push(
                        Diagnostic::error(
                            "PostgreSQL cannot be downgraded",
                            format!("database.engine_version: the database runs {current}; RDS cannot downgrade it to {new}. To go back, restore a snapshot into a new environment."),
                        )
                        .at(path("engine_version")),
                    );
                } else if changed("engine_version") && major(new) != major(&current) {
                    let replicas = now("read_replicas").as_i64().unwrap_or(0);
                    let replicas = match replicas {
                        0 => String::new(),
                        1 => " The read replica is upgraded with it and serves no reads until it is done.".to_string(),
                        n => format!(" The {n} read replicas are upgraded with it and serve no reads until they are done."),
                    };
                    d.push(Diagnostic::warning(
                        "Major PostgreSQL upgrade",
                        format!("database: upgrading {current} to {new} takes the database offline for the whole upgrade: expect tens of minutes of downtime, more with many tables and other objects (pg_upgrade's work grows with their number more than with the data's size). Multi-AZ does not shorten it: the standby is upgraded at the same time.{replicas} RDS snapshots the instance before and after; the parameter group becomes the default of PostgreSQL {}. The upgrade cannot be undone in place. To keep the downtime short, rehearse it on a restored snapshot first.", major_of(new)),
                    ));
                } else if changed("engine_version") {
                    d.push(Diagnostic::warning(
                        "PostgreSQL minor upgrade",
                        format!("database: upgrading to {new} restarts PostgreSQL; with Multi-AZ the standby is upgraded first and a failover of about a minute drops connections."),
                    ));
                }
            }
        }
        let mut warn = |cond: bool, summary: &str, detail: String| {
            if cond {
                d.push(Diagnostic::warning(summary, detail));
            }
        };
        warn(
            changed("instance_class"),
            "Database instance class change",
            format!(
                "database: moving from {} to {} restarts PostgreSQL; with Multi-AZ the standby is resized first, then a failover of about 1 to 2 minutes drops open connections.",
                show(&was("instance_class")),
                show(&now("instance_class"))
            ),
        );
        warn(
            now("multi_az").as_bool() == Some(false) && was("multi_az").as_bool() == Some(true),
            "Database Multi-AZ turned off",
            "database: the standby in the second zone is removed; an outage of the primary's zone will then mean downtime until a restore.".to_string(),
        );
        warn(
            now("multi_az").as_bool() == Some(true) && was("multi_az").as_bool() == Some(false),
            "Database Multi-AZ turned on",
            "database: a standby is created from a snapshot of the primary; I/O may be slower while it syncs, no downtime.".to_string(),
        );
        if let (Some(old), Some(new)) =
            (was("read_replicas").as_i64(), now("read_replicas").as_i64())
        {
            warn(
                new < old,
                "Read replicas will be deleted",
                format!("database: {} read replica(s) are deleted (the highest numbered); connections to their endpoints fail.", old - new),
            );
        }
        d
    }

    /// Destroy is refused at plan time while deletion protection is on.
    fn on_destroy(prior: &Value) -> Diagnostics {
        let block = prior.get_attr(COMPONENT);
        if block.get_attr("deletion_protection").as_bool() == Some(true)
            && !prior.get_attr("database_arn").is_null()
        {
            return Diagnostic::error(
                "Destroy refused: the database has deletion protection",
                format!(
                    "Destroying environment {} would delete its PostgreSQL database. Nothing was deleted. \
                     To destroy it deliberately, set database.deletion_protection = false (and decide on \
                     database.skip_final_snapshot), run terraform apply, then destroy again.",
                    prior.get_attr("name").as_str().unwrap_or("?")
                ),
            )
            .at(Path::root().attr(COMPONENT).attr("deletion_protection"))
            .into();
        }
        if block.get_attr("skip_final_snapshot").as_bool() == Some(true) {
            return Diagnostic::warning(
                "Database deleted without a final snapshot",
                "database: skip_final_snapshot = true, so no final snapshot is taken; automated backups are kept per the retention period.",
            )
            .into();
        }
        Diagnostics::new()
    }

    fn read(
        state: &DatabaseState,
        stored: &DatabaseSpec,
        prior: &Value,
    ) -> Reading<DatabaseSpec, DatabaseOutputs> {
        let recorded = prior.get_attr("database_engine_version_actual").as_str();
        let settings = DatabaseSpec {
            engine_version: version_setting(
                &stored.engine_version,
                Some(&state.engine_version_actual),
            ),
            instance_class: state.instance_class.clone(),
            multi_az: state.multi_az,
            allocated_storage_gb: state.allocated_storage_gb,
            backup_retention_days: state.backup_retention_days,
            deletion_protection: state.deletion_protection,
            skip_final_snapshot: stored.skip_final_snapshot,
            performance_insights: state.performance_insights,
            read_replicas: state.replica_endpoints.len() as i64,
            // Fixed at creation, but an import or a lookup must see them.
            master_username: if state.master_username.is_empty() {
                stored.master_username.clone()
            } else {
                state.master_username.clone()
            },
            database_name: state
                .database_name
                .clone()
                .unwrap_or_else(|| stored.database_name.clone()),
        };
        Reading {
            settings,
            outputs: DatabaseOutputs {
                database_arn: state.arn.clone(),
                database_endpoint: state.endpoint.clone(),
                database_port: state.port,
                database_master_secret_arn: state.master_secret_arn.clone(),
                database_engine_version_actual: engine_version_output(
                    recorded,
                    &stored.engine_version,
                    &state.engine_version_actual,
                ),
                database_replica_endpoints: state.replica_endpoints.clone(),
            },
            verdicts: state.verdicts.clone(),
        }
    }
}

const NETWORK_ACCESS: usize = 0;
const SUBNET_GROUP: usize = 1;
const STORAGE: usize = 2;
const MASTER_PASSWORD: usize = 3;
const PARAMETER_GROUP: usize = 4;
const SNAPSHOTS: usize = 5;
const READ_REPLICAS: usize = 6;
const TAGS: usize = 7;

/// What the provider makes of the database without a knob.
const GUARDS: &[Guard] = &[
    Guard::new(
        "network_access",
        "private, database security group only",
        "The primary is not publicly accessible, sits in the DB subnet group `idis-<name>-db` and has exactly the security group `idis-<name>-database`.",
    ),
    Guard::new(
        "subnet_group",
        "the private subnets",
        "The DB subnet group `idis-<name>-db` holds exactly the environment's private subnets.",
    ),
    Guard::new(
        "storage",
        "gp3, encrypted with the platform key",
        "Storage is gp3 and encrypted with the platform key; Performance Insights, when on, too.",
    ),
    Guard::new(
        "master_password",
        "managed by Secrets Manager",
        "RDS keeps the master password in Secrets Manager, encrypted with the platform key; nobody ever sees it.",
    )
    .affects(&["database_master_secret_arn"]),
    Guard::new(
        "parameter_group",
        "the default one",
        "The instance uses RDS's default parameter group of its major version (which forces TLS from PostgreSQL 15).",
    ),
    Guard::new(
        "snapshots",
        "tags copied to snapshots",
        "Snapshots carry the instance's tags.",
    ),
    Guard::new(
        "read_replicas",
        "private, as the primary",
        "Every read replica is private, in the same subnet group and security group as the primary, of the primary's instance class, without deletion protection (a replica holds nothing the primary does not).",
    ),
    Guard::new(
        "tags",
        "ownership and user tags present",
        "The primary and every replica carry `tags`, the provider's `default_tags` and the ownership tags. Tags others add are left alone.",
    ),
];

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
    describe_instance(rds, id, COMPONENT).await
}

/// The DB instance `id`, None when RDS has none; errors name `component`.
pub async fn describe_instance(
    rds: &aws_sdk_rds::Client,
    id: &str,
    component: &'static str,
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
            component,
            format!("describe DB instance {id}"),
            e,
        )),
    }
}

/// The security groups of an instance, named where they are the
/// environment's.
fn groups_of(db: &DbInstance, n: &Neighbours) -> Vec<String> {
    let mut groups: Vec<String> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .map(|id| {
            n.group_name(id)
                .map_or_else(|| id.to_string(), str::to_string)
        })
        .collect();
    groups.sort();
    groups
}

/// What is wrong with where an instance sits on the network.
fn network_problems(ctx: &Ctx, what: &str, db: &DbInstance, n: &Neighbours) -> Vec<String> {
    let mut problems = Vec::new();
    if db.publicly_accessible() == Some(true) {
        problems.push(format!("{what} is publicly accessible"));
    }
    let want = format!("{}-{COMPONENT}", ctx.prefix());
    let groups = groups_of(db, n);
    if groups != [want.clone()] {
        problems.push(format!(
            "{what} has security groups [{}], not [{want}]",
            groups.join(", ")
        ));
    }
    let subnet_group = db
        .db_subnet_group()
        .and_then(|g| g.db_subnet_group_name())
        .unwrap_or_default();
    if subnet_group != identifier(ctx) {
        problems.push(format!(
            "{what} is in DB subnet group {subnet_group:?}, not {}",
            identifier(ctx)
        ));
    }
    problems
}

/// Judges what the provider makes of the database without a knob.
fn judge(
    ctx: &Ctx,
    primary: &DbInstance,
    replicas: &BTreeMap<i64, DbInstance>,
    n: &Neighbours,
) -> Verdicts {
    let mut v = Verdicts::new();
    let id = identifier(ctx);
    let what = format!("DB instance {id}");
    v.judge(
        &GUARDS[NETWORK_ACCESS],
        network_problems(ctx, &what, primary, n),
    );

    let subnets: BTreeSet<String> = primary
        .db_subnet_group()
        .map(|g| {
            g.subnets()
                .iter()
                .filter_map(|s| s.subnet_identifier())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    v.judge(
        &GUARDS[SUBNET_GROUP],
        (subnets != n.private_subnets).then(|| {
            format!(
                "DB subnet group {id} holds [{}], not the private subnets [{}]",
                subnets.iter().cloned().collect::<Vec<_>>().join(", "),
                n.private_subnets
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
    );

    let mut encryption = Vec::new();
    if primary.storage_encrypted() != Some(true) {
        encryption.push("storage is not encrypted".to_string());
    } else if let Some(key) = primary.kms_key_id() {
        if !n.is_platform_key(key) {
            encryption.push(format!(
                "storage is encrypted with {key}, not the platform key"
            ));
        }
    }
    if primary.storage_type().is_some_and(|t| t != STORAGE_TYPE) {
        encryption.push(format!(
            "storage type {}, not {STORAGE_TYPE}",
            primary.storage_type().unwrap_or_default()
        ));
    }
    if let Some(key) = primary.performance_insights_kms_key_id() {
        if primary.performance_insights_enabled() == Some(true) && !n.is_platform_key(key) {
            encryption.push(format!(
                "Performance Insights is encrypted with {key}, not the platform key"
            ));
        }
    }
    v.judge(&GUARDS[STORAGE], encryption);

    let mut password = Vec::new();
    match primary.master_user_secret() {
        None => password
            .push("the master password is self-managed (not kept by Secrets Manager)".to_string()),
        Some(secret) => {
            if let Some(key) = secret.kms_key_id() {
                if !n.is_platform_key(key) {
                    password.push(format!(
                        "the master password secret is encrypted with {key}, not the platform key"
                    ));
                }
            }
        }
    }
    v.judge(&GUARDS[MASTER_PASSWORD], password);

    let groups: Vec<&str> = primary
        .db_parameter_groups()
        .iter()
        .filter_map(|g| g.db_parameter_group_name())
        .collect();
    v.judge(
        &GUARDS[PARAMETER_GROUP],
        groups
            .iter()
            .filter(|g| !g.starts_with("default."))
            .map(|g| format!("parameter group {g}, not the default one"))
            .collect::<Vec<_>>(),
    );

    let mut snapshots = Vec::new();
    if primary.copy_tags_to_snapshot() == Some(false) {
        snapshots.push("tags are not copied to snapshots".to_string());
    }
    v.judge(&GUARDS[SNAPSHOTS], snapshots);

    let class = primary.db_instance_class().unwrap_or_default();
    let mut replica_problems = Vec::new();
    for (number, r) in replicas.iter().filter(|(_, r)| !is_deleting(r)) {
        let what = format!("read replica {}", replica_identifier(ctx, *number));
        replica_problems.extend(network_problems(ctx, &what, r, n));
        if r.db_instance_class().is_some_and(|c| c != class) {
            replica_problems.push(format!(
                "{what} is a {}, not a {class} like the primary",
                r.db_instance_class().unwrap_or_default()
            ));
        }
        if r.deletion_protection() == Some(true) {
            replica_problems.push(format!("{what} has deletion protection on"));
        }
    }
    v.judge(&GUARDS[READ_REPLICAS], replica_problems);

    let want = ctx.tags(COMPONENT);
    let mut tags = super::tag_problems(&what, &tag_map(primary.tag_list()), &want);
    for (number, r) in replicas.iter().filter(|(_, r)| !is_deleting(r)) {
        let what = format!("read replica {}", replica_identifier(ctx, *number));
        tags.extend(super::tag_problems(&what, &tag_map(r.tag_list()), &want));
    }
    v.judge(&GUARDS[TAGS], tags);
    v
}

fn state_of(
    ctx: &Ctx,
    primary: &DbInstance,
    replicas: &BTreeMap<i64, DbInstance>,
    n: &Neighbours,
) -> DatabaseState {
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
        verdicts: judge(ctx, primary, replicas, n),
    }
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

pub fn rds_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Reads the database of this environment. A primary being deleted counts
/// as absent.
pub async fn find(ctx: &Ctx) -> Result<Option<DatabaseState>, ComponentError> {
    let rds = ctx.aws.rds();
    let (observed, n) = tokio::try_join!(describe(ctx, &rds), neighbours(ctx, COMPONENT))?;
    Ok(match &observed.primary {
        Some(primary) if !is_deleting(primary) => {
            Some(state_of(ctx, primary, &observed.replicas, &n))
        }
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
            primary_changed |=
                repair_primary(ctx, &rds, spec, network, keys, db, &observed.replicas).await?;
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
            return Ok(state_of(
                ctx,
                primary,
                &observed.replicas,
                &Neighbours::of(ctx, network, keys),
            ));
        }
    }
    let observed = describe(ctx, &rds).await?;
    match &observed.primary {
        Some(primary) if !is_deleting(primary) => Ok(state_of(
            ctx,
            primary,
            &observed.replicas,
            &Neighbours::of(ctx, network, keys),
        )),
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
pub async fn ensure_subnet_group(
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

/// Upgrades PostgreSQL to what the spec asks, as RDS requires it
/// ("Upgrades of the RDS for PostgreSQL DB engine", RDS User Guide):
///
/// - a minor upgrade of an instance with read replicas needs the replicas
///   upgraded first (RDS refuses the primary with
///   `DBUpgradeDependencyFailure` otherwise), so the replicas behind the
///   target go first, together, then the primary;
/// - a major upgrade is asked of the primary alone, with
///   `AllowMajorVersionUpgrade` and the default parameter group of the new
///   major's family; RDS upgrades the in-Region replicas with it (they
///   cannot be upgraded on their own), so afterwards every replica is
///   waited for until it is available again.
///
/// Returns whether anything was upgraded.
async fn upgrade_engine(
    ctx: &Ctx,
    rds: &aws_sdk_rds::Client,
    spec: &DatabaseSpec,
    db: &DbInstance,
    replicas: &BTreeMap<i64, DbInstance>,
) -> Result<bool, ComponentError> {
    let id = identifier(ctx);
    let Some((target, major)) = engine_upgrade(
        &id,
        &spec.engine_version,
        db.engine_version().unwrap_or_default(),
    )?
    else {
        return Ok(false);
    };
    let live: Vec<String> = replicas
        .iter()
        .filter(|(_, r)| !is_deleting(r))
        .map(|(n, _)| replica_identifier(ctx, *n))
        .collect();
    if !major {
        let behind = replicas
            .iter()
            .filter(|(_, r)| !is_deleting(r))
            .filter(|(_, r)| {
                version_parts(r.engine_version().unwrap_or_default()) < version_parts(&target)
            })
            .map(|(n, _)| replica_identifier(ctx, *n));
        try_join_all(behind.map(|replica| {
            let target = target.clone();
            async move {
                tracing_note(&replica, "engine version (replica before primary)", &target);
                rds.modify_db_instance()
                    .db_instance_identifier(&replica)
                    .engine_version(&target)
                    .apply_immediately(true)
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            COMPONENT,
                            format!("upgrade read replica {replica} to PostgreSQL {target}"),
                            e,
                        )
                    })?;
                wait_available(ctx, rds, &replica).await.map(|_| ())
            }
            .boxed()
        }))
        .await?;
    }
    tracing_note(&id, "engine version", &target);
    let mut modify = rds
        .modify_db_instance()
        .db_instance_identifier(&id)
        .engine_version(&target)
        .apply_immediately(true);
    if major {
        modify = modify
            .allow_major_version_upgrade(true)
            .db_parameter_group_name(format!("default.{ENGINE}{}", major_of(&target)));
    }
    modify.send().await.map_err(|e| {
        aws_error(
            COMPONENT,
            format!("upgrade DB instance {id} to PostgreSQL {target}"),
            e,
        )
    })?;
    wait_available(ctx, rds, &id).await?;
    if major {
        try_join_all(live.iter().map(|replica| wait_available(ctx, rds, replica))).await?;
    }
    Ok(true)
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
    replicas: &BTreeMap<i64, DbInstance>,
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
    if let Some(key) = db.kms_key_id() {
        if key != keys.platform_key_arn && !key.ends_with(&format!("key/{}", keys.platform_key_id))
        {
            return Err(conflict(format!(
                "DB instance {id} is encrypted with {key}, not the platform key {}, and RDS cannot change the key of an instance in place; \
                 snapshot it, copy the snapshot with the platform key, destroy the database and restore the copy",
                keys.platform_key_arn
            )));
        }
    }
    let storage = i64::from(db.allocated_storage().unwrap_or(0));
    if storage > spec.allocated_storage_gb {
        return Err(conflict(format!(
            "DB instance {id} has {storage} GB of storage but database.allocated_storage_gb = {}; \
             RDS storage can only grow: set database.allocated_storage_gb to {storage} or more",
            spec.allocated_storage_gb
        )));
    }

    let modified = upgrade_engine(ctx, rds, spec, db, replicas).await?;

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
    modify = repair_network_access(modify, db, network, &mut drift);
    match db.master_user_secret() {
        None => {
            // Someone switched to a self-managed password: hand it back to
            // Secrets Manager (RDS generates a new one; we never see it).
            modify = modify
                .manage_master_user_password(true)
                .master_user_secret_kms_key_id(&keys.platform_key_arn);
            drift.push("managed master password");
        }
        Some(secret)
            if secret.kms_key_id().is_some_and(|k| {
                k != keys.platform_key_arn && !k.ends_with(&format!("key/{}", keys.platform_key_id))
            }) =>
        {
            modify = modify.master_user_secret_kms_key_id(&keys.platform_key_arn);
            drift.push("master password secret key");
        }
        Some(_) => {}
    }
    if let Some(custom) = db
        .db_parameter_groups()
        .iter()
        .filter_map(|g| g.db_parameter_group_name())
        .find(|g| !g.starts_with("default."))
    {
        let major = db
            .engine_version()
            .map(|v| major_of(v).to_string())
            .unwrap_or_else(|| major_of(&spec.engine_version).to_string());
        tracing_note(
            &id,
            &format!("parameter group (was {custom})"),
            "the default group",
        );
        modify = modify.db_parameter_group_name(format!("default.{ENGINE}{major}"));
        drift.push("parameter group");
    }
    let subnet_group = db
        .db_subnet_group()
        .and_then(|g| g.db_subnet_group_name())
        .unwrap_or_default();
    if subnet_group != id {
        modify = modify.db_subnet_group_name(&id);
        drift.push("DB subnet group");
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

/// Puts an instance (the primary or a replica) back on the network as
/// the provider makes it: private, with exactly the database security
/// group.
fn repair_network_access(
    mut modify: aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder,
    db: &DbInstance,
    network: &NetworkState,
    drift: &mut Vec<&'static str>,
) -> aws_sdk_rds::operation::modify_db_instance::builders::ModifyDBInstanceFluentBuilder {
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
    modify
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
            modify = repair_network_access(modify, db, network, &mut drift);
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
pub async fn delete_instance(
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
pub async fn wait_gone(
    ctx: &Ctx,
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Result<(), ComponentError> {
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

    delete_subnet_group(ctx, COMPONENT).await?;
    Ok(warnings)
}

/// Deletes the DB subnet group `idis-<env>-db` of `ctx`'s region, once no
/// instance is in it; an absent one is success. Errors name `component`.
pub async fn delete_subnet_group(ctx: &Ctx, component: &'static str) -> Result<(), ComponentError> {
    let id = identifier(ctx);
    match ctx
        .aws
        .rds()
        .delete_db_subnet_group()
        .db_subnet_group_name(&id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error(
            component,
            format!("delete the DB subnet group {id} in {}", ctx.region),
            e,
        )),
    }
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
