//! logs: Where the environment's logs are kept: one CloudWatch Logs group
//! per writer, each encrypted with the platform key and kept
//! `monitoring.log_retention_days`, and the writers pointed at them.
//!
//! | writer | log group |
//! |---|---|
//! | EKS control plane (`api`, `audit`, `authenticator`; `cluster`) | `/aws/eks/<cluster>/cluster` |
//! | RDS primary log exports `postgresql`, `upgrade` | `/aws/rds/instance/<id>/<type>` |
//! | ElastiCache slow and engine logs (JSON) | `/aws/elasticache/<group>/slow-log`, `/engine-log` |
//! | VPC flow log (all traffic) | `/aws/vpc/<vpc-name>/flow-logs` |
//!
//! A group is made before its writer is turned on (AWS would otherwise
//! make it itself, unencrypted and kept forever): the cluster makes its
//! group before it creates the control plane; `monitoring` makes the
//! others before it turns on the database's exports, the cache's log
//! delivery and the flow log, and puts every group's retention and key
//! right. The database also gets Enhanced Monitoring (every
//! [`MONITORING_INTERVAL`] s, through the role `idis-<env>-rds-monitoring`)
//! and the flow log its delivery role `idis-<env>-flow-logs`. Everything
//! here is read back by `monitoring`, whose guards report what differs.
//! The one place log groups are made, read and deleted.

use std::collections::{BTreeMap, BTreeSet};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::iam_role::{self, RoleSeen, Wanted};
use super::{aws_error, is_not_found, partition, ComponentError, Ctx};

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy,
/// `retentionInDays`, CloudWatch Logs API Reference).
pub const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

/// The RDS log types the primary exports.
pub const DB_EXPORTS: [&str; 2] = ["postgresql", "upgrade"];
/// The ElastiCache logs delivered (`LogType`).
pub const CACHE_LOGS: [&str; 2] = ["slow-log", "engine-log"];
/// Enhanced Monitoring's interval, seconds.
pub const MONITORING_INTERVAL: i32 = 60;
/// The AWS managed policy Enhanced Monitoring's role needs.
const MONITORING_POLICY: &str = "service-role/AmazonRDSEnhancedMonitoringRole";
const FLOW_POLICY_NAME: &str = "deliver-flow-logs";

pub fn allowed_retention() -> String {
    RETENTION_DAYS
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn eks_group(ctx: &Ctx) -> String {
    format!("/aws/eks/{}/cluster", super::cluster::cluster_name(ctx))
}

pub fn database_groups(ctx: &Ctx) -> Vec<String> {
    let id = super::database::identifier(ctx);
    DB_EXPORTS
        .iter()
        .map(|t| format!("/aws/rds/instance/{id}/{t}"))
        .collect()
}

pub fn cache_groups(ctx: &Ctx) -> Vec<String> {
    let id = super::cache::replication_group_id(ctx);
    CACHE_LOGS
        .iter()
        .map(|t| format!("/aws/elasticache/{id}/{t}"))
        .collect()
}

/// The VPC is named `idis-<env>` (its `Name` tag).
pub fn flow_group(ctx: &Ctx) -> String {
    format!("/aws/vpc/{}/flow-logs", ctx.prefix())
}

pub fn flow_role(ctx: &Ctx) -> String {
    format!("{}-flow-logs", ctx.prefix())
}

pub fn monitoring_role(ctx: &Ctx) -> String {
    format!("{}-rds-monitoring", ctx.prefix())
}

/// One log group as CloudWatch Logs describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    pub name: String,
    pub retention: Option<i64>,
    pub kms_key: Option<String>,
}

/// The database's logging settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatabaseLogs {
    pub identifier: String,
    pub exports: BTreeSet<String>,
    pub monitoring_interval: i32,
    pub monitoring_role: Option<String>,
}

/// One log delivery of the replication group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivery {
    pub log_type: String,
    pub destination: String,
    pub group: String,
    pub format: String,
    pub status: String,
}

/// One flow log writing to the flow-log group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlowLog {
    pub id: String,
    pub resource: String,
    pub traffic: String,
    pub role: String,
    pub status: String,
}

/// Everything of the logs as AWS has it. Names of what is wanted are
/// kept beside what was found, so the judgement is a pure function.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogsState {
    /// The groups the writers found need, by name, with what was found.
    pub groups: BTreeMap<String, Option<Group>>,
    /// The platform key (id, ARN), when found.
    pub platform: Option<(String, String)>,
    /// None while there is no primary instance.
    pub database: Option<DatabaseLogs>,
    pub monitoring_role: Option<RoleSeen>,
    pub monitoring_role_name: String,
    /// The replication group and its deliveries; None while there is none.
    pub cache: Option<(String, Vec<Delivery>)>,
    pub cache_groups: Vec<String>,
    /// The VPC's id; None while there is none.
    pub vpc: Option<String>,
    pub flow_group: String,
    pub flow_logs: Vec<FlowLog>,
    pub flow_role: Option<RoleSeen>,
    pub flow_role_name: String,
    /// The environment's name and partition, for the roles' documents.
    pub env: String,
    pub partition: String,
}

/// The problems of each of the four guards of the logs: groups, database,
/// cache, flow log.
pub struct Problems {
    pub groups: Vec<String>,
    pub database: Vec<String>,
    pub cache: Vec<String>,
    pub flow: Vec<String>,
}

fn is_platform(key: &str, platform: Option<&(String, String)>) -> bool {
    platform.is_some_and(|(id, arn)| key == id || key == arn || key.ends_with(&format!("key/{id}")))
}

/// The Enhanced Monitoring role as the provider makes it.
pub fn monitoring_wanted(env: &str, name: &str, partition: &str) -> Wanted {
    Wanted {
        name: name.to_string(),
        description: format!("IDIS environment {env}: assumed by monitoring.rds.amazonaws.com"),
        trust: trust_policy("monitoring.rds.amazonaws.com"),
        inline: None,
        attached: vec![format!(
            "arn:{partition}:iam::aws:policy/{MONITORING_POLICY}"
        )],
    }
}

/// The flow log's delivery role as the provider makes it.
pub fn flow_wanted(env: &str, name: &str) -> Wanted {
    Wanted {
        name: name.to_string(),
        description: format!("IDIS environment {env}: assumed by vpc-flow-logs.amazonaws.com"),
        trust: trust_policy("vpc-flow-logs.amazonaws.com"),
        inline: Some((FLOW_POLICY_NAME, flow_policy())),
        attached: Vec::new(),
    }
}

fn role_problems(name: &str, role: Option<&RoleSeen>, want: &Wanted) -> Vec<String> {
    match role {
        None => vec![format!("IAM role {name} is missing")],
        Some(seen) => iam_role::problems(seen, want),
    }
}

/// What differs from what the provider makes, per guard.
pub fn problems(state: &LogsState, retention: i64) -> Problems {
    let mut groups = Vec::new();
    for (name, seen) in &state.groups {
        match seen {
            None => groups.push(format!("log group {name} is missing")),
            Some(g) => {
                if g.retention != Some(retention) {
                    groups.push(match g.retention {
                        Some(d) => format!("log group {name} keeps logs {d} days, not {retention}"),
                        None => {
                            format!("log group {name} keeps logs forever, not {retention} days")
                        }
                    });
                }
                match g.kms_key.as_deref() {
                    Some(k) if is_platform(k, state.platform.as_ref()) => {}
                    Some(k) => groups.push(format!(
                        "log group {name} is encrypted with {k}, not the platform key"
                    )),
                    None => groups.push(format!("log group {name} is not encrypted")),
                }
            }
        }
    }

    let mut database = Vec::new();
    if let Some(db) = &state.database {
        let missing: Vec<&str> = DB_EXPORTS
            .iter()
            .copied()
            .filter(|t| !db.exports.contains(*t))
            .collect();
        if !missing.is_empty() {
            database.push(format!(
                "{} does not export its {} log to CloudWatch Logs",
                db.identifier,
                missing.join(" and ")
            ));
        }
        if db.monitoring_interval != MONITORING_INTERVAL {
            database.push(format!(
                "{} has Enhanced Monitoring every {} s, not {MONITORING_INTERVAL} s",
                db.identifier, db.monitoring_interval
            ));
        }
        let role_arn = state.monitoring_role.as_ref().map(|r| r.arn.as_str());
        if db.monitoring_role.as_deref() != role_arn || role_arn.is_none() {
            database.push(format!(
                "{} does not send Enhanced Monitoring through {}",
                db.identifier, state.monitoring_role_name
            ));
        }
        database.extend(role_problems(
            &state.monitoring_role_name,
            state.monitoring_role.as_ref(),
            &monitoring_wanted(&state.env, &state.monitoring_role_name, &state.partition),
        ));
    }

    let mut cache = Vec::new();
    if let Some((id, deliveries)) = &state.cache {
        for (log_type, group) in CACHE_LOGS.iter().zip(&state.cache_groups) {
            match deliveries.iter().find(|d| d.log_type == *log_type) {
                None => cache.push(format!("{id} does not deliver its {log_type}")),
                Some(d) => {
                    if d.destination != "cloudwatch-logs" || &d.group != group {
                        cache.push(format!(
                            "{id} delivers its {log_type} to {} {}, not to {group}",
                            d.destination, d.group
                        ));
                    }
                    if d.format != "json" {
                        cache.push(format!(
                            "{id} delivers its {log_type} as {}, not json",
                            d.format
                        ));
                    }
                    if matches!(d.status.as_str(), "disabling" | "error") {
                        cache.push(format!("{id}'s {log_type} delivery is {}", d.status));
                    }
                }
            }
        }
    }

    let mut flow = Vec::new();
    if let Some(vpc) = &state.vpc {
        let role_arn = state.flow_role.as_ref().map(|r| r.arn.clone());
        let good = state.flow_logs.iter().any(|f| {
            &f.resource == vpc
                && f.traffic == "ALL"
                && Some(&f.role) == role_arn.as_ref()
                && f.status == "ACTIVE"
        });
        if !good {
            flow.push(match state.flow_logs.iter().find(|f| &f.resource == vpc) {
                None => format!("VPC {vpc} has no flow log to {}", state.flow_group),
                Some(f) => format!(
                    "the flow log {} of VPC {vpc} is {} for {} traffic through {}",
                    f.id, f.status, f.traffic, f.role
                ),
            });
        }
        flow.extend(role_problems(
            &state.flow_role_name,
            state.flow_role.as_ref(),
            &flow_wanted(&state.env, &state.flow_role_name),
        ));
    }
    Problems {
        groups,
        database,
        cache,
        flow,
    }
}

// -- reading --------------------------------------------------------------------------

/// The groups whose names start with `prefix`.
async fn read_groups(
    ctx: &Ctx,
    component: &'static str,
    prefix: &str,
) -> Result<Vec<Group>, ComponentError> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .aws
            .logs()
            .describe_log_groups()
            .log_group_name_prefix(prefix)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| aws_error(component, format!("list the log groups {prefix}*"), e))?;
        all.extend(page.log_groups().iter().map(|g| Group {
            name: g.log_group_name().unwrap_or_default().to_string(),
            retention: g.retention_in_days().map(i64::from),
            kms_key: g.kms_key_id().filter(|k| !k.is_empty()).map(str::to_string),
        }));
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(all)
}

/// One group, None when absent.
pub async fn read_group(
    ctx: &Ctx,
    component: &'static str,
    name: &str,
) -> Result<Option<Group>, ComponentError> {
    Ok(read_groups(ctx, component, name)
        .await?
        .into_iter()
        .find(|g| g.name == name))
}

async fn read_role(
    ctx: &Ctx,
    component: &'static str,
    name: &str,
    inline: Option<&str>,
) -> Result<Option<RoleSeen>, ComponentError> {
    iam_role::read(ctx, component, name, inline).await
}

async fn read_database(
    ctx: &Ctx,
    component: &'static str,
) -> Result<Option<DatabaseLogs>, ComponentError> {
    let id = super::database::identifier(ctx);
    match ctx
        .aws
        .rds()
        .describe_db_instances()
        .db_instance_identifier(&id)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .db_instances()
            .iter()
            .find(|d| d.db_instance_status() != Some("deleting"))
            .map(|d| DatabaseLogs {
                identifier: id.clone(),
                exports: d
                    .enabled_cloudwatch_logs_exports()
                    .iter()
                    .cloned()
                    .collect(),
                monitoring_interval: d.monitoring_interval().unwrap_or(0),
                monitoring_role: d.monitoring_role_arn().map(str::to_string),
            })),
        Err(e) if e.code() == Some("DBInstanceNotFound") || is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(
            component,
            format!("read the logging of the DB instance {id}"),
            e,
        )),
    }
}

async fn read_cache(
    ctx: &Ctx,
    component: &'static str,
) -> Result<Option<(String, Vec<Delivery>)>, ComponentError> {
    let id = super::cache::replication_group_id(ctx);
    match ctx
        .aws
        .elasticache()
        .describe_replication_groups()
        .replication_group_id(&id)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .replication_groups()
            .iter()
            .find(|g| g.status() != Some("deleting"))
            .map(|g| {
                let deliveries = g
                    .log_delivery_configurations()
                    .iter()
                    .map(|d| Delivery {
                        log_type: d
                            .log_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                        destination: d
                            .destination_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                        group: d
                            .destination_details()
                            .and_then(|x| x.cloud_watch_logs_details())
                            .and_then(|x| x.log_group())
                            .unwrap_or_default()
                            .to_string(),
                        format: d
                            .log_format()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                        status: d
                            .status()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                    })
                    .collect();
                (id.clone(), deliveries)
            })),
        Err(e) if e.code() == Some("ReplicationGroupNotFoundFault") || is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(
            component,
            format!("read the log delivery of the replication group {id}"),
            e,
        )),
    }
}

async fn read_vpc(ctx: &Ctx, component: &'static str) -> Result<Option<String>, ComponentError> {
    use aws_sdk_ec2::types::Filter;
    let out = ctx
        .aws
        .ec2()
        .describe_vpcs()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", super::TAG_ENVIRONMENT))
                .values(&ctx.env)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("tag:Name")
                .values(ctx.prefix())
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error(component, "look up the VPC by its tags", e))?;
    Ok(out
        .vpcs()
        .first()
        .and_then(|v| v.vpc_id())
        .map(str::to_string))
}

async fn read_flow_logs(
    ctx: &Ctx,
    component: &'static str,
) -> Result<Vec<FlowLog>, ComponentError> {
    use aws_sdk_ec2::types::Filter;
    let group = flow_group(ctx);
    let out = ctx
        .aws
        .ec2()
        .describe_flow_logs()
        .filter(
            Filter::builder()
                .name("log-group-name")
                .values(&group)
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error(component, format!("list the flow logs to {group}"), e))?;
    Ok(out
        .flow_logs()
        .iter()
        .map(|f| FlowLog {
            id: f.flow_log_id().unwrap_or_default().to_string(),
            resource: f.resource_id().unwrap_or_default().to_string(),
            traffic: f
                .traffic_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            role: f
                .deliver_logs_permission_arn()
                .unwrap_or_default()
                .to_string(),
            status: f.flow_log_status().unwrap_or_default().to_string(),
        })
        .collect())
}

/// Reads everything of the logs; the groups wanted are those of the
/// writers found (a cluster, a primary, a replication group, a VPC).
pub async fn read(ctx: &Ctx, component: &'static str) -> Result<LogsState, ComponentError> {
    let cluster = async {
        match ctx
            .aws
            .eks()
            .describe_cluster()
            .name(super::cluster::cluster_name(ctx))
            .send()
            .await
        {
            Ok(out) => Ok(out.cluster().is_some()),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(aws_error(component, "look up the EKS cluster", e)),
        }
    };
    let prefix = |p: String| async move { read_groups(ctx, component, &p).await };
    let (cluster, database, cache, vpc, flow_logs, platform) = tokio::try_join!(
        cluster,
        read_database(ctx, component),
        read_cache(ctx, component),
        read_vpc(ctx, component),
        read_flow_logs(ctx, component),
        super::platform_key(ctx, component),
    )?;
    let (monitoring_name, flow_name) = (monitoring_role(ctx), flow_role(ctx));
    let (eks_groups, db_groups, cache_groups_seen, flow_groups, monitoring_seen, flow_seen) = tokio::try_join!(
        prefix(eks_group(ctx)),
        prefix(format!(
            "/aws/rds/instance/{}/",
            super::database::identifier(ctx)
        )),
        prefix(format!(
            "/aws/elasticache/{}/",
            super::cache::replication_group_id(ctx)
        )),
        prefix(flow_group(ctx)),
        read_role(ctx, component, &monitoring_name, None),
        read_role(ctx, component, &flow_name, Some(FLOW_POLICY_NAME)),
    )?;
    let seen: Vec<Group> = [eks_groups, db_groups, cache_groups_seen, flow_groups].concat();
    let mut wanted = Vec::new();
    if cluster {
        wanted.push(eks_group(ctx));
    }
    if database.is_some() {
        wanted.extend(database_groups(ctx));
    }
    if cache.is_some() {
        wanted.extend(cache_groups(ctx));
    }
    if vpc.is_some() {
        wanted.push(flow_group(ctx));
    }
    Ok(LogsState {
        groups: wanted
            .into_iter()
            .map(|name| {
                let g = seen.iter().find(|g| g.name == name).cloned();
                (name, g)
            })
            .collect(),
        platform,
        database,
        monitoring_role: monitoring_seen,
        monitoring_role_name: monitoring_role(ctx),
        cache,
        cache_groups: cache_groups(ctx),
        vpc,
        flow_group: flow_group(ctx),
        flow_logs,
        flow_role: flow_seen,
        flow_role_name: flow_role(ctx),
        env: ctx.env.clone(),
        partition: partition(&ctx.region).to_string(),
    })
}

// -- making -------------------------------------------------------------------------

/// Makes group `name` (encrypted with `key_arn`) when absent, and puts
/// its key and (when given) retention right. Returns whether it changed
/// anything.
pub async fn ensure_group(
    ctx: &Ctx,
    component: &'static str,
    name: &str,
    key_arn: &str,
    retention: Option<i64>,
    seen: Option<&Group>,
) -> Result<bool, ComponentError> {
    let logs = ctx.aws.logs();
    let mut changed = false;
    let current = match seen {
        Some(g) => Some(g.clone()),
        None => read_group(ctx, component, name).await?,
    };
    let current = match current {
        Some(g) => g,
        None => {
            let mut create = logs
                .create_log_group()
                .log_group_name(name)
                .kms_key_id(key_arn);
            // Each object the provider makes carries its own `Name`: the
            // objects of a component are told apart by it.
            let mut wanted_tags = ctx.tags(component);
            wanted_tags.insert("Name".to_string(), name.to_string());
            for (k, v) in wanted_tags {
                create = create.tags(k, v);
            }
            match create.send().await {
                Ok(_) => {}
                // Made by a concurrent or killed run (or by its writer): adopt it.
                Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {}
                Err(e) => {
                    return Err(aws_error(
                        component,
                        format!("create the log group {name}"),
                        e,
                    ))
                }
            }
            changed = true;
            read_group(ctx, component, name).await?.unwrap_or(Group {
                name: name.to_string(),
                retention: None,
                kms_key: Some(key_arn.to_string()),
            })
        }
    };
    if current.kms_key.as_deref() != Some(key_arn) {
        logs.associate_kms_key()
            .log_group_name(name)
            .kms_key_id(key_arn)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    component,
                    format!("encrypt the log group {name} with the platform key"),
                    e,
                )
            })?;
        changed = true;
    }
    if let Some(days) = retention {
        if current.retention != Some(days) {
            logs.put_retention_policy()
                .log_group_name(name)
                .retention_in_days(days as i32)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        component,
                        format!("set the retention of the log group {name}"),
                        e,
                    )
                })?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Deletes the groups; absent ones are fine.
pub async fn delete_groups(
    ctx: &Ctx,
    component: &'static str,
    names: &[String],
) -> Result<(), ComponentError> {
    for name in names {
        match ctx
            .aws
            .logs()
            .delete_log_group()
            .log_group_name(name)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceNotFoundException") => {}
            Err(e) => {
                return Err(aws_error(
                    component,
                    format!("delete the log group {name}"),
                    e,
                ))
            }
        }
    }
    Ok(())
}

fn trust_policy(service: &str) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole",
        }],
    })
}

/// The permissions AWS documents for a flow log's delivery role (Amazon
/// VPC User Guide, "IAM role for publishing flow logs to CloudWatch Logs").
fn flow_policy() -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogGroups",
                "logs:DescribeLogStreams",
            ],
            "Resource": "*",
        }],
    })
}

/// Makes the role as wanted (or puts it back); returns its ARN.
async fn ensure_role(
    ctx: &Ctx,
    component: &'static str,
    seen: Option<&RoleSeen>,
    want: &Wanted,
) -> Result<String, ComponentError> {
    iam_role::ensure(ctx, component, seen, want).await?;
    Ok(format!(
        "arn:{}:iam::{}:role/{}",
        partition(&ctx.region),
        ctx.account_id,
        want.name
    ))
}

async fn delete_role(ctx: &Ctx, component: &'static str, name: &str) -> Result<(), ComponentError> {
    iam_role::delete(ctx, component, name).await
}

/// Makes AWS match what the logs should be: the roles, then every group
/// (made before its writer), then the writers. Returns the state anew.
pub async fn ensure(
    ctx: &Ctx,
    component: &'static str,
    retention: i64,
    key_arn: &str,
) -> Result<LogsState, ComponentError> {
    let seen = read(ctx, component).await?;
    let p = problems(&seen, retention);
    if p.groups.is_empty() && p.database.is_empty() && p.cache.is_empty() && p.flow.is_empty() {
        return Ok(seen);
    }
    for (name, group) in &seen.groups {
        ensure_group(
            ctx,
            component,
            name,
            key_arn,
            Some(retention),
            group.as_ref(),
        )
        .await?;
    }

    if let Some(db) = seen.database.as_ref().filter(|_| !p.database.is_empty()) {
        let role = ensure_role(
            ctx,
            component,
            seen.monitoring_role.as_ref(),
            &monitoring_wanted(&ctx.env, &seen.monitoring_role_name, partition(&ctx.region)),
        )
        .await?;
        let missing: Vec<String> = DB_EXPORTS
            .iter()
            .filter(|t| !db.exports.contains(**t))
            .map(|t| t.to_string())
            .collect();
        let mut modify = ctx
            .aws
            .rds()
            .modify_db_instance()
            .db_instance_identifier(&db.identifier)
            .monitoring_interval(MONITORING_INTERVAL)
            .monitoring_role_arn(&role)
            .apply_immediately(true);
        if !missing.is_empty() {
            modify = modify.cloudwatch_logs_export_configuration(
                aws_sdk_rds::types::CloudwatchLogsExportConfiguration::builder()
                    .set_enable_log_types(Some(missing))
                    .build(),
            );
        }
        // IAM makes a new role known to RDS within seconds; RDS refuses
        // it as invalid meanwhile.
        let what = format!(
            "turn on the log exports and Enhanced Monitoring of {}",
            db.identifier
        );
        ctx.wait_for(component, &what, || {
            let modify = modify.clone();
            let what = what.clone();
            async move {
                match modify.send().await {
                    Ok(_) => Ok(Some(())),
                    Err(e)
                        if e.code() == Some("InvalidParameterValue")
                            && e.message().is_some_and(|m| m.contains("IAM")) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(aws_error(component, what, e)),
                }
            }
        })
        .await?;
    }

    if let Some((id, _)) = seen.cache.as_ref().filter(|_| !p.cache.is_empty()) {
        use aws_sdk_elasticache::types::{
            CloudWatchLogsDestinationDetails, DestinationDetails, DestinationType,
            LogDeliveryConfigurationRequest, LogFormat, LogType,
        };
        let mut modify = ctx
            .aws
            .elasticache()
            .modify_replication_group()
            .replication_group_id(id)
            .apply_immediately(true);
        for (log_type, group) in CACHE_LOGS.iter().zip(&seen.cache_groups) {
            modify = modify.log_delivery_configurations(
                LogDeliveryConfigurationRequest::builder()
                    .log_type(LogType::from(*log_type))
                    .destination_type(DestinationType::CloudWatchLogs)
                    .destination_details(
                        DestinationDetails::builder()
                            .cloud_watch_logs_details(
                                CloudWatchLogsDestinationDetails::builder()
                                    .log_group(group)
                                    .build(),
                            )
                            .build(),
                    )
                    .log_format(LogFormat::Json)
                    .enabled(true)
                    .build(),
            );
        }
        modify.send().await.map_err(|e| {
            aws_error(
                component,
                format!("deliver the slow and engine logs of {id}"),
                e,
            )
        })?;
    }

    if let Some(vpc) = seen.vpc.as_ref().filter(|_| !p.flow.is_empty()) {
        use aws_sdk_ec2::types::{
            FlowLogsResourceType, LogDestinationType, ResourceType, Tag, TagSpecification,
            TrafficType,
        };
        let role = ensure_role(
            ctx,
            component,
            seen.flow_role.as_ref(),
            &flow_wanted(&ctx.env, &seen.flow_role_name),
        )
        .await?;
        let good = |f: &FlowLog| {
            &f.resource == vpc && f.traffic == "ALL" && f.role == role && f.status == "ACTIVE"
        };
        let stale: Vec<String> = seen
            .flow_logs
            .iter()
            .filter(|f| !good(f))
            .map(|f| f.id.clone())
            .collect();
        if !stale.is_empty() {
            match ctx
                .aws
                .ec2()
                .delete_flow_logs()
                .set_flow_log_ids(Some(stale))
                .send()
                .await
            {
                Ok(_) => {}
                // Already gone (a repeat after a lost answer).
                Err(e) if e.code() == Some("InvalidFlowLogId.NotFound") => {}
                Err(e) => {
                    return Err(aws_error(
                        component,
                        format!("delete the flow logs of VPC {vpc} that differ"),
                        e,
                    ))
                }
            }
        }
        if !seen.flow_logs.iter().any(good) {
            let mut tags = TagSpecification::builder().resource_type(ResourceType::VpcFlowLog);
            let mut wanted_tags = ctx.tags(component);
            wanted_tags.insert("Name".to_string(), flow_role(ctx));
            for (k, v) in wanted_tags {
                tags = tags.tags(Tag::builder().key(k).value(v).build());
            }
            let out = ctx
                .aws
                .ec2()
                .create_flow_logs()
                .resource_type(FlowLogsResourceType::Vpc)
                .resource_ids(vpc)
                .traffic_type(TrafficType::All)
                .log_destination_type(LogDestinationType::CloudWatchLogs)
                .log_group_name(&seen.flow_group)
                .deliver_logs_permission_arn(&role)
                // One token per attempt: the SDK's retries of this call
                // repeat it (one flow log however often the answer is
                // lost), while a flow log deleted since an earlier apply
                // is made anew (a token seen before would only return the
                // old answer).
                .client_token(format!(
                    "{vpc}-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or_default()
                ))
                .tag_specifications(tags.build())
                .send()
                .await
                .map_err(|e| {
                    aws_error(component, format!("create the flow log of VPC {vpc}"), e)
                })?;
            if let Some(u) = out.unsuccessful().first() {
                let message = u.error().and_then(|e| e.message()).unwrap_or("refused");
                if !message.contains("already exists") {
                    return Err(ComponentError::Conflict {
                        component,
                        message: format!("EC2 did not create the flow log of VPC {vpc}: {message}"),
                    });
                }
            }
        }
    }
    read(ctx, component).await
}

/// Removes the flow log, every log group of the environment and both
/// roles. Groups a writer still being deleted might make again are
/// deleted once more by its own component.
pub async fn delete(ctx: &Ctx, component: &'static str) -> Result<(), ComponentError> {
    let flows: Vec<String> = read_flow_logs(ctx, component)
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect();
    if !flows.is_empty() {
        match ctx
            .aws
            .ec2()
            .delete_flow_logs()
            .set_flow_log_ids(Some(flows))
            .send()
            .await
        {
            Ok(_) => {}
            // Already gone (a repeat after a lost answer).
            Err(e) if e.code() == Some("InvalidFlowLogId.NotFound") => {}
            Err(e) => return Err(aws_error(component, "delete the VPC flow log", e)),
        }
    }
    let mut groups = vec![eks_group(ctx), flow_group(ctx)];
    groups.extend(database_groups(ctx));
    groups.extend(cache_groups(ctx));
    delete_groups(ctx, component, &groups).await?;
    delete_role(ctx, component, &flow_role(ctx)).await?;
    delete_role(ctx, component, &monitoring_role(ctx)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> LogsState {
        let role = |want: Wanted| RoleSeen {
            arn: format!("arn:aws:iam::1:role/{}", want.name),
            trust: want.trust.to_string(),
            inline: want
                .inline
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect(),
            attached: want.attached.clone(),
            tags: Default::default(),
        };
        let group = |name: &str| {
            (
                name.to_string(),
                Some(Group {
                    name: name.into(),
                    retention: Some(90),
                    kms_key: Some("arn:aws:kms:us-east-1:1:key/k".into()),
                }),
            )
        };
        LogsState {
            groups: ["/aws/eks/idis-p/cluster", "/aws/vpc/idis-p/flow-logs"]
                .map(group)
                .into_iter()
                .collect(),
            platform: Some(("k".into(), "arn:aws:kms:us-east-1:1:key/k".into())),
            database: Some(DatabaseLogs {
                identifier: "idis-p-db".into(),
                exports: DB_EXPORTS.iter().map(|s| s.to_string()).collect(),
                monitoring_interval: 60,
                monitoring_role: Some("arn:aws:iam::1:role/idis-p-rds-monitoring".into()),
            }),
            monitoring_role: Some(role(monitoring_wanted("p", "idis-p-rds-monitoring", "aws"))),
            monitoring_role_name: "idis-p-rds-monitoring".into(),
            cache: Some((
                "idis-p-cache".into(),
                CACHE_LOGS
                    .iter()
                    .map(|t| Delivery {
                        log_type: t.to_string(),
                        destination: "cloudwatch-logs".into(),
                        group: format!("/aws/elasticache/idis-p-cache/{t}"),
                        format: "json".into(),
                        status: "active".into(),
                    })
                    .collect(),
            )),
            cache_groups: CACHE_LOGS
                .iter()
                .map(|t| format!("/aws/elasticache/idis-p-cache/{t}"))
                .collect(),
            vpc: Some("vpc-1".into()),
            flow_group: "/aws/vpc/idis-p/flow-logs".into(),
            flow_logs: vec![FlowLog {
                id: "fl-1".into(),
                resource: "vpc-1".into(),
                traffic: "ALL".into(),
                role: "arn:aws:iam::1:role/idis-p-flow-logs".into(),
                status: "ACTIVE".into(),
            }],
            flow_role: Some(role(flow_wanted("p", "idis-p-flow-logs"))),
            flow_role_name: "idis-p-flow-logs".into(),
            env: "p".into(),
            partition: "aws".into(),
        }
    }

    fn all(p: Problems) -> Vec<String> {
        [p.groups, p.database, p.cache, p.flow].concat()
    }

    #[test]
    fn a_healthy_state_has_no_problem_and_each_drift_is_named() {
        assert_eq!(all(problems(&healthy(), 90)), Vec::<String>::new());
        let p = problems(&healthy(), 30);
        assert_eq!(p.groups.len(), 2);
        assert!(
            p.groups[0].contains("keeps logs 90 days, not 30"),
            "{:?}",
            p.groups
        );

        let mut s = healthy();
        s.flow_logs.clear();
        assert_eq!(
            problems(&s, 90).flow,
            ["VPC vpc-1 has no flow log to /aws/vpc/idis-p/flow-logs"]
        );

        let mut s = healthy();
        if let Some(Some(g)) = s.groups.get_mut("/aws/eks/idis-p/cluster") {
            g.kms_key = None;
        }
        s.database.as_mut().unwrap().exports.remove("upgrade");
        s.cache.as_mut().unwrap().1.pop();
        let p = problems(&s, 90);
        assert_eq!(
            p.groups,
            ["log group /aws/eks/idis-p/cluster is not encrypted"]
        );
        assert_eq!(
            p.database,
            ["idis-p-db does not export its upgrade log to CloudWatch Logs"]
        );
        assert_eq!(p.cache, ["idis-p-cache does not deliver its engine-log"]);
    }

    #[test]
    fn retention_values_are_cloudwatchs() {
        assert!(RETENTION_DAYS.contains(&DEFAULT_RETENTION_DAYS));
        assert!(!RETENTION_DAYS.contains(&45));
        assert!(allowed_retention().starts_with("1, 3, 5, 7, 14, 30"));
    }
}
