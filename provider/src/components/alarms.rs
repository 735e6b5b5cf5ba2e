//! The CloudWatch alarms of an environment, as data: which alarms an
//! environment gets for what it has (its [`Targets`]), each alarm's metric,
//! statistic, threshold and missing-data rule, and how an alarm CloudWatch
//! reports is judged against the one wanted. The `monitoring` component
//! makes, reads and deletes them; nothing here calls AWS.
//!
//! Every alarm notifies the alarm topic on ALARM and on OK. Names are
//! `<resource>-<what>` (`idis-<env>-db-cpu`, `idis-<env>-db-replica-2-lag`,
//! `idis-<env>-cache-001-evictions`), and the description starts with
//! `IDIS environment <env>:`, which is how the provider tells its alarms
//! from others' (DescribeAlarms gives no tags).
//!
//! Missing data is treated per metric (CloudWatch User Guide, "Configuring
//! how CloudWatch alarms treat missing data"): `breaching` where silence
//! is itself the failure (free storage: a database reporting nothing may
//! be full and hung; replica lag: RDS stops reporting lag when replication
//! stops), `notBreaching` where no data means nothing happened (evictions,
//! blocked requests, 5xx rates without traffic, NAT port allocation
//! errors, the replication lag a primary cache node never reports) and
//! `missing` for gauges whose gaps say nothing (CPU, memory, connections).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The thresholds, as the `monitoring` block holds them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub database_cpu_percent: i64,
    pub database_free_storage_percent: i64,
    pub database_freeable_memory_mb: i64,
    pub database_connections: i64,
    pub replica_lag_seconds: i64,
    pub cache_cpu_percent: i64,
    pub cache_memory_percent: i64,
    pub cache_evictions: i64,
    pub cache_replication_lag_seconds: i64,
    pub cache_connections: i64,
    pub cdn_5xx_rate_percent: i64,
    pub waf_blocked_requests: i64,
}

/// One threshold setting: its name, default, allowed range, and words.
pub struct ThresholdSetting {
    pub name: &'static str,
    pub default: i64,
    pub min: i64,
    pub max: i64,
    pub doc: &'static str,
}

/// Every threshold setting of the `monitoring` block.
pub const THRESHOLDS: &[ThresholdSetting] = &[
    ThresholdSetting { name: "database_cpu_percent", default: 80, min: 1, max: 100, doc: "CPU of the database and of each replica (`AWS/RDS` `CPUUtilization`, average) above which, for 15 minutes, the alarm fires; percent" },
    ThresholdSetting { name: "database_free_storage_percent", default: 10, min: 1, max: 99, doc: "Free storage of the database and of each replica (`AWS/RDS` `FreeStorageSpace`, minimum) below which the alarm fires, as a percent of `database.allocated_storage_gb`" },
    ThresholdSetting { name: "database_freeable_memory_mb", default: 256, min: 1, max: 1048576, doc: "Freeable memory of the database and of each replica (`AWS/RDS` `FreeableMemory`, average) below which, for 15 minutes, the alarm fires; MiB" },
    ThresholdSetting { name: "database_connections", default: 1000, min: 1, max: 100000, doc: "Connections to the database or to a replica (`AWS/RDS` `DatabaseConnections`, maximum) above which, for 15 minutes, the alarm fires" },
    ThresholdSetting { name: "replica_lag_seconds", default: 5, min: 1, max: 86400, doc: "Replication lag of each read replica (`AWS/RDS` `ReplicaLag`, maximum) above which, for 3 minutes, its alarm fires; seconds (REQ-T234 asks for under 5)" },
    ThresholdSetting { name: "cache_cpu_percent", default: 90, min: 1, max: 100, doc: "Engine CPU of each cache node (`AWS/ElastiCache` `EngineCPUUtilization`, average) above which, for 15 minutes, the alarm fires; percent" },
    ThresholdSetting { name: "cache_memory_percent", default: 80, min: 1, max: 100, doc: "Memory used by the data set on each cache node (`AWS/ElastiCache` `DatabaseMemoryUsagePercentage`, average) above which, for 15 minutes, the alarm fires; percent" },
    ThresholdSetting { name: "cache_evictions", default: 100, min: 0, max: 1000000000, doc: "Keys evicted from a cache node in 5 minutes (`AWS/ElastiCache` `Evictions`, sum) above which the alarm fires" },
    ThresholdSetting { name: "cache_replication_lag_seconds", default: 5, min: 1, max: 86400, doc: "Replication lag of each cache replica node (`AWS/ElastiCache` `ReplicationLag`, maximum) above which, for 3 minutes, the alarm fires; seconds" },
    ThresholdSetting { name: "cache_connections", default: 5000, min: 1, max: 65000, doc: "Client connections to a cache node (`AWS/ElastiCache` `CurrConnections`, maximum) above which, for 15 minutes, the alarm fires" },
    ThresholdSetting { name: "cdn_5xx_rate_percent", default: 5, min: 1, max: 100, doc: "Share of the distribution's requests answered with a 5xx status (`AWS/CloudFront` `5xxErrorRate`, average) above which, for 15 minutes, the alarm fires; percent (only with a distribution, in us-east-1)" },
    ThresholdSetting { name: "waf_blocked_requests", default: 1000, min: 1, max: 2000000000, doc: "Requests the web ACL blocks in 5 minutes (`AWS/WAFV2` `BlockedRequests`, sum) above which the alarm fires: an attack, or a rule blocking real users" },
];

impl Default for Thresholds {
    fn default() -> Thresholds {
        let d = |name: &str| {
            THRESHOLDS
                .iter()
                .find(|t| t.name == name)
                .map_or(0, |t| t.default)
        };
        Thresholds {
            database_cpu_percent: d("database_cpu_percent"),
            database_free_storage_percent: d("database_free_storage_percent"),
            database_freeable_memory_mb: d("database_freeable_memory_mb"),
            database_connections: d("database_connections"),
            replica_lag_seconds: d("replica_lag_seconds"),
            cache_cpu_percent: d("cache_cpu_percent"),
            cache_memory_percent: d("cache_memory_percent"),
            cache_evictions: d("cache_evictions"),
            cache_replication_lag_seconds: d("cache_replication_lag_seconds"),
            cache_connections: d("cache_connections"),
            cdn_5xx_rate_percent: d("cdn_5xx_rate_percent"),
            waf_blocked_requests: d("waf_blocked_requests"),
        }
    }
}

/// What the environment has that alarms watch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Targets {
    /// The database primary's identifier, when there is a database.
    pub database: Option<String>,
    /// The read replicas' identifiers.
    pub replicas: Vec<String>,
    /// The database's allocated storage, GiB.
    pub allocated_storage_gb: i64,
    /// The cache's member clusters (one per node).
    pub cache_nodes: Vec<String>,
    /// The regional web ACL's metric name (its `VisibilityConfig`
    /// `MetricName`, `<acl name>-web-acl`): WAF publishes the web ACL's
    /// metrics under it (AWS WAF Developer Guide, "AWS WAF metrics and
    /// dimensions": dimensions `WebACL`, `Region`, `Rule`, `ALL` for the
    /// whole web ACL).
    pub web_acl: Option<String>,
    /// The environment's region (the WAF metrics' `Region` dimension).
    pub region: String,
    /// The CloudFront distribution's id (its alarm lives in us-east-1).
    pub distribution: Option<String>,
    /// NAT gateway ids.
    pub nat_gateways: Vec<String>,
}

/// How the metric is compared with the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Above,
    Below,
}

impl Compare {
    /// CloudWatch's name of the comparison.
    pub fn operator(self) -> &'static str {
        match self {
            Compare::Above => "GreaterThanThreshold",
            Compare::Below => "LessThanThreshold",
        }
    }
}

/// One alarm as the provider makes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub description: String,
    pub namespace: &'static str,
    pub metric: &'static str,
    /// `Average`, `Maximum`, `Minimum` or `Sum`.
    pub statistic: &'static str,
    pub dimensions: BTreeMap<String, String>,
    pub period: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub compare: Compare,
    /// `breaching`, `notBreaching` or `missing`.
    pub treat_missing_data: &'static str,
    /// The setting the threshold comes from.
    pub setting: &'static str,
    /// Whether the alarm lives in us-east-1 whatever the region
    /// (CloudFront's metrics are published there only).
    pub global: bool,
}

/// An alarm as CloudWatch describes it (the parts the provider sets).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlarmSeen {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub metric: String,
    pub statistic: String,
    pub dimensions: BTreeMap<String, String>,
    pub period: i32,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: Option<i32>,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: Option<String>,
    pub actions_enabled: bool,
    pub alarm_actions: Vec<String>,
    pub ok_actions: Vec<String>,
}

/// The description every alarm of environment `env` starts with.
pub fn marker(env: &str) -> String {
    format!("IDIS environment {env}:")
}

/// Whether CloudWatch's alarm is one the provider made for `env`.
pub fn is_ours(seen: &AlarmSeen, env: &str) -> bool {
    seen.description.starts_with(&marker(env))
}

/// CloudFront publishes its metrics in US East (N. Virginia) only, so an
/// alarm on a distribution lives there, and an alarm's SNS actions must be
/// in its own region (Amazon CloudFront Developer Guide, "Monitor
/// CloudFront metrics with Amazon CloudWatch"): the distribution's alarm
/// is made only for an environment in us-east-1, where its alarm topic is.
pub const CLOUDFRONT_METRICS_REGION: &str = "us-east-1";

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// Every alarm environment `env` gets for `targets`.
pub fn wanted(env: &str, t: &Thresholds, targets: &Targets) -> Vec<Alarm> {
    let mut alarms = Vec::new();
    let mut add = |resource: &str,
                   what: &str,
                   words: &str,
                   namespace: &'static str,
                   metric: &'static str,
                   statistic: &'static str,
                   dimensions: &[(&str, &str)],
                   (period, evaluation_periods): (i32, i32),
                   (threshold, compare): (f64, Compare),
                   treat_missing_data: &'static str,
                   setting: &'static str| {
        alarms.push(Alarm {
            name: format!("{resource}-{what}"),
            description: format!(
                "{} {words} ({resource}). Managed by terraform-provider-idis: change `monitoring.{setting}`, not the alarm.",
                marker(env)
            ),
            namespace,
            metric,
            statistic,
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            period,
            evaluation_periods,
            threshold,
            compare,
            treat_missing_data,
            setting,
            global: namespace == "AWS/CloudFront",
        });
    };
    let instances = targets
        .database
        .iter()
        .chain(targets.replicas.iter())
        .cloned()
        .collect::<Vec<_>>();
    for id in &instances {
        let dims = [("DBInstanceIdentifier", id.as_str())];
        add(
            id,
            "cpu",
            "database CPU is high",
            "AWS/RDS",
            "CPUUtilization",
            "Average",
            &dims,
            (300, 3),
            (t.database_cpu_percent as f64, Compare::Above),
            "missing",
            "database_cpu_percent",
        );
        add(
            id,
            "free-storage",
            "database storage is nearly full",
            "AWS/RDS",
            "FreeStorageSpace",
            "Minimum",
            &dims,
            (300, 1),
            (
                targets.allocated_storage_gb as f64 * GIB * t.database_free_storage_percent as f64
                    / 100.0,
                Compare::Below,
            ),
            "breaching",
            "database_free_storage_percent",
        );
        add(
            id,
            "freeable-memory",
            "database memory is low",
            "AWS/RDS",
            "FreeableMemory",
            "Average",
            &dims,
            (300, 3),
            (t.database_freeable_memory_mb as f64 * MIB, Compare::Below),
            "missing",
            "database_freeable_memory_mb",
        );
        add(
            id,
            "connections",
            "database connections are high",
            "AWS/RDS",
            "DatabaseConnections",
            "Maximum",
            &dims,
            (300, 3),
            (t.database_connections as f64, Compare::Above),
            "missing",
            "database_connections",
        );
    }
    for id in &targets.replicas {
        add(
            id,
            "lag",
            "read replica lags behind the primary",
            "AWS/RDS",
            "ReplicaLag",
            "Maximum",
            &[("DBInstanceIdentifier", id.as_str())],
            (60, 3),
            (t.replica_lag_seconds as f64, Compare::Above),
            "breaching",
            "replica_lag_seconds",
        );
    }
    for node in &targets.cache_nodes {
        let dims = [("CacheClusterId", node.as_str())];
        add(
            node,
            "engine-cpu",
            "cache engine CPU is high",
            "AWS/ElastiCache",
            "EngineCPUUtilization",
            "Average",
            &dims,
            (300, 3),
            (t.cache_cpu_percent as f64, Compare::Above),
            "missing",
            "cache_cpu_percent",
        );
        add(
            node,
            "memory",
            "cache memory is nearly full",
            "AWS/ElastiCache",
            "DatabaseMemoryUsagePercentage",
            "Average",
            &dims,
            (300, 3),
            (t.cache_memory_percent as f64, Compare::Above),
            "missing",
            "cache_memory_percent",
        );
        add(
            node,
            "evictions",
            "cache evicts keys",
            "AWS/ElastiCache",
            "Evictions",
            "Sum",
            &dims,
            (300, 1),
            (t.cache_evictions as f64, Compare::Above),
            "notBreaching",
            "cache_evictions",
        );
        add(
            node,
            "replication-lag",
            "cache replica lags behind the primary",
            "AWS/ElastiCache",
            "ReplicationLag",
            "Maximum",
            &dims,
            (60, 3),
            (t.cache_replication_lag_seconds as f64, Compare::Above),
            "notBreaching",
            "cache_replication_lag_seconds",
        );
        add(
            node,
            "connections",
            "cache connections are high",
            "AWS/ElastiCache",
            "CurrConnections",
            "Maximum",
            &dims,
            (300, 3),
            (t.cache_connections as f64, Compare::Above),
            "missing",
            "cache_connections",
        );
    }
    let prefix = format!("idis-{env}");
    if let Some(distribution) = &targets.distribution {
        add(
            &format!("{prefix}-cdn"),
            "5xx-rate",
            "the distribution answers with server errors",
            "AWS/CloudFront",
            "5xxErrorRate",
            "Average",
            &[
                ("DistributionId", distribution.as_str()),
                ("Region", "Global"),
            ],
            (300, 3),
            (t.cdn_5xx_rate_percent as f64, Compare::Above),
            "notBreaching",
            "cdn_5xx_rate_percent",
        );
    }
    if let Some(acl) = &targets.web_acl {
        add(
            &format!("{prefix}-waf"),
            "blocked-requests",
            "the web ACL blocks a spike of requests",
            "AWS/WAFV2",
            "BlockedRequests",
            "Sum",
            &[
                ("WebACL", acl.as_str()),
                ("Region", targets.region.as_str()),
                ("Rule", "ALL"),
            ],
            (300, 1),
            (t.waf_blocked_requests as f64, Compare::Above),
            "notBreaching",
            "waf_blocked_requests",
        );
    }
    for (i, nat) in targets.nat_gateways.iter().enumerate() {
        add(
            &format!("{prefix}-nat-{}", i + 1),
            "port-allocation-errors",
            "the NAT gateway cannot allocate source ports",
            "AWS/NATGateway",
            "ErrorPortAllocation",
            "Sum",
            &[("NatGatewayId", nat.as_str())],
            (300, 1),
            (0.0, Compare::Above),
            "notBreaching",
            "",
        );
    }
    alarms
}

/// What is wrong with `seen` against `want` (none: as the provider makes
/// it), in words.
pub fn problems(want: &Alarm, seen: &AlarmSeen, topic: &str) -> Vec<String> {
    let name = &want.name;
    let mut p = Vec::new();
    if seen.namespace != want.namespace || seen.metric != want.metric {
        p.push(format!(
            "alarm {name} watches {}/{}, not {}/{}",
            seen.namespace, seen.metric, want.namespace, want.metric
        ));
    }
    if seen.dimensions != want.dimensions {
        p.push(format!(
            "alarm {name} watches {:?}, not {:?}",
            seen.dimensions, want.dimensions
        ));
    }
    if seen.statistic != want.statistic
        || seen.period != want.period
        || seen.evaluation_periods != want.evaluation_periods
        || seen
            .datapoints_to_alarm
            .is_some_and(|d| d != want.evaluation_periods)
    {
        p.push(format!(
            "alarm {name} evaluates {} over {} periods of {} s, not {} over {} periods of {} s",
            seen.statistic,
            seen.evaluation_periods,
            seen.period,
            want.statistic,
            want.evaluation_periods,
            want.period
        ));
    }
    if (seen.threshold - want.threshold).abs() > 1e-6 * want.threshold.abs().max(1.0)
        || seen.comparison != want.compare.operator()
    {
        let setting = if want.setting.is_empty() {
            String::new()
        } else {
            format!(" (monitoring.{})", want.setting)
        };
        p.push(format!(
            "alarm {name} fires {} {}, not {} {}{setting}",
            seen.comparison,
            seen.threshold,
            want.compare.operator(),
            want.threshold
        ));
    }
    if seen.treat_missing_data.as_deref().unwrap_or("missing") != want.treat_missing_data {
        p.push(format!(
            "alarm {name} treats missing data as {}, not {}",
            seen.treat_missing_data.as_deref().unwrap_or("missing"),
            want.treat_missing_data
        ));
    }
    let notifies = |actions: &[String]| actions.len() == 1 && actions[0] == topic;
    if !seen.actions_enabled || !notifies(&seen.alarm_actions) || !notifies(&seen.ok_actions) {
        p.push(format!(
            "alarm {name} does not notify only the alarm topic on ALARM and OK"
        ));
    }
    p
}

/// `alarm` as CloudWatch describes it once the provider made it with
/// `topic` as its action (for tests of the reading).
pub fn as_made(alarm: &Alarm, topic: &str) -> AlarmSeen {
    AlarmSeen {
        name: alarm.name.clone(),
        description: alarm.description.clone(),
        namespace: alarm.namespace.to_string(),
        metric: alarm.metric.to_string(),
        statistic: alarm.statistic.to_string(),
        dimensions: alarm.dimensions.clone(),
        period: alarm.period,
        evaluation_periods: alarm.evaluation_periods,
        datapoints_to_alarm: Some(alarm.evaluation_periods),
        threshold: alarm.threshold,
        comparison: alarm.compare.operator().to_string(),
        treat_missing_data: Some(alarm.treat_missing_data.to_string()),
        actions_enabled: true,
        alarm_actions: vec![topic.to_string()],
        ok_actions: vec![topic.to_string()],
    }
}

/// The member cluster ids of a replication group of `nodes` nodes:
/// ElastiCache names them `<group>-001`, `<group>-002`, ... (ElastiCache
/// User Guide, "Creating a Valkey or Redis OSS replication group from
/// scratch": member clusters are named after the group with a three-digit
/// suffix).
pub fn cache_members(group: &str, nodes: i64) -> Vec<String> {
    (1..=nodes.max(0))
        .map(|i| format!("{group}-{i:03}"))
        .collect()
}

/// An RDS instance identifier from its endpoint (`<id>.<hash>.<region>.rds.amazonaws.com`).
pub fn instance_of_endpoint(endpoint: &str) -> Option<String> {
    endpoint
        .split('.')
        .next()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// A web ACL's name from its ARN (`.../webacl/<name>/<id>`).
pub fn web_acl_name(arn: &str) -> Option<String> {
    let mut parts = arn.rsplit('/');
    let _id = parts.next()?;
    parts.next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(replicas: usize) -> Targets {
        Targets {
            database: Some("idis-p-db".into()),
            replicas: (1..=replicas)
                .map(|n| format!("idis-p-db-replica-{n}"))
                .collect(),
            allocated_storage_gb: 100,
            cache_nodes: cache_members("idis-p-cache", 2),
            web_acl: Some("idis-p-regional-web-acl".into()),
            region: "us-east-1".into(),
            distribution: None,
            nat_gateways: vec!["nat-1".into(), "nat-2".into(), "nat-3".into()],
        }
    }

    #[test]
    fn every_replica_has_its_lag_alarm_and_the_others_follow_the_environment() {
        let t = Thresholds::default();
        let names = |n| -> Vec<String> {
            wanted("p", &t, &targets(n))
                .into_iter()
                .map(|a| a.name)
                .collect()
        };
        assert!(!names(0).iter().any(|n| n.starts_with("idis-p-db-replica")));
        let two = names(2);
        assert!(two.contains(&"idis-p-db-replica-1-lag".to_string()));
        assert!(two.contains(&"idis-p-db-replica-2-lag".to_string()));
        assert!(two.contains(&"idis-p-cache-002-evictions".to_string()));
        assert!(two.contains(&"idis-p-waf-blocked-requests".to_string()));
        assert!(two.contains(&"idis-p-nat-3-port-allocation-errors".to_string()));
        // 4 per instance, 1 per replica, 5 per cache node, WAF, 3 NAT.
        assert_eq!(two.len(), 3 * 4 + 2 + 2 * 5 + 1 + 3);
        let unique: std::collections::BTreeSet<_> = two.iter().collect();
        assert_eq!(unique.len(), two.len());
    }

    #[test]
    fn thresholds_are_in_the_units_cloudwatch_reports() {
        let t = Thresholds::default();
        let alarms = wanted("p", &t, &targets(1));
        let get = |n: &str| alarms.iter().find(|a| a.name == n).unwrap();
        assert_eq!(
            get("idis-p-db-free-storage").threshold,
            10.0 * 1024f64.powi(3)
        );
        assert_eq!(get("idis-p-db-free-storage").compare, Compare::Below);
        assert_eq!(
            get("idis-p-db-freeable-memory").threshold,
            256.0 * 1024f64.powi(2)
        );
        assert_eq!(get("idis-p-db-replica-1-lag").threshold, 5.0);
        assert_eq!(
            get("idis-p-db-replica-1-lag").treat_missing_data,
            "breaching"
        );
    }

    #[test]
    fn an_alarm_as_made_has_no_problem_and_a_changed_threshold_is_named() {
        let want = wanted("p", &Thresholds::default(), &targets(0))
            .into_iter()
            .find(|a| a.name == "idis-p-db-cpu")
            .unwrap();
        let mut seen = AlarmSeen {
            name: want.name.clone(),
            description: want.description.clone(),
            namespace: want.namespace.into(),
            metric: want.metric.into(),
            statistic: want.statistic.into(),
            dimensions: want.dimensions.clone(),
            period: want.period,
            evaluation_periods: want.evaluation_periods,
            datapoints_to_alarm: None,
            threshold: want.threshold,
            comparison: want.compare.operator().into(),
            treat_missing_data: Some(want.treat_missing_data.into()),
            actions_enabled: true,
            alarm_actions: vec!["arn:topic".into()],
            ok_actions: vec!["arn:topic".into()],
        };
        assert!(is_ours(&seen, "p") && !is_ours(&seen, "p-eu"));
        assert_eq!(problems(&want, &seen, "arn:topic"), Vec::<String>::new());
        seen.threshold = 95.0;
        let p = problems(&want, &seen, "arn:topic");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("95") && p[0].contains("monitoring.database_cpu_percent"),
            "{p:?}"
        );
        seen.threshold = want.threshold;
        seen.ok_actions.clear();
        assert_eq!(problems(&want, &seen, "arn:topic").len(), 1);
    }

    #[test]
    fn identifiers_come_from_endpoints_and_arns() {
        assert_eq!(
            instance_of_endpoint("idis-p-db-replica-1.abc.us-east-1.rds.amazonaws.com").as_deref(),
            Some("idis-p-db-replica-1")
        );
        assert_eq!(
            web_acl_name("arn:aws:wafv2:us-east-1:123:regional/webacl/idis-p-regional/0b1c")
                .as_deref(),
            Some("idis-p-regional")
        );
    }
}
