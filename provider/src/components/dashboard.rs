//! The CloudWatch dashboard `idis-<env>`: one row per component
//! (database, cache, cluster nodes, edge, NAT), one graph per metric the
//! alarms watch, one line per alarm, and each alarm's threshold drawn as a
//! horizontal annotation.
//!
//! The dashboard is derived from the alarm list ([`alarms::wanted`]) and
//! from nothing else: a metric is on the dashboard because an alarm
//! watches it, with the alarm's statistic, period and dimensions, so the
//! graphs and the alarms cannot disagree. A replica added or removed
//! changes the alarms and so the dashboard, in the same apply.
//!
//! The body is JSON with sorted keys (serde_json's map) and rows, graphs
//! and lines in the alarm list's order: the same environment always gives
//! the same bytes. It is read back with GetDashboard and compared with the
//! body the provider would write, as JSON values (not text); a dashboard
//! deleted or edited outside Terraform is the `dashboard` guard of the
//! `monitoring` block, in words (which graphs were removed, added or
//! changed), not a diff of the JSON. Apply writes the body again.
//!
//! The `monitoring` component owns it: it makes, reads and deletes it
//! with the alarms.

use std::collections::BTreeMap;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{json, Value as Json};

use super::alarms::{self, Alarm, Compare, Targets, Thresholds};
use super::describe::Guard;
use super::{aws_error, ComponentError, Ctx};

const COMPONENT: &str = super::monitoring::COMPONENT;

/// The guard of the `monitoring` block that holds the dashboard's verdict.
pub const GUARD: Guard = Guard::new(
    "dashboard",
    "as built",
    "The CloudWatch dashboard `idis-<name>` (output `dashboard_url`) holds one row per component and one graph per metric the alarms watch, each alarm's metric as a line and its threshold as a horizontal annotation, exactly as the provider builds it from the alarm list. A dashboard deleted or edited outside Terraform is written again.",
);

/// The rows of the dashboard, in order, and the namespaces each shows.
/// Alarms of a namespace not listed get a row of their own, after these.
const ROWS: &[(&str, &[&str])] = &[
    ("Database", &["AWS/RDS"]),
    ("Cache", &["AWS/ElastiCache"]),
    ("Cluster nodes", &["ContainerInsights"]),
    ("Edge", &["AWS/CloudFront", "AWS/WAFV2"]),
    ("NAT", &["AWS/NATGateway"]),
];

/// The dashboard grid is 24 units wide; three graphs a line.
const GRID: i64 = 24;
const GRAPH_WIDTH: i64 = 8;
const GRAPH_HEIGHT: i64 = 6;

/// `idis-<env>`.
pub fn name(env: &str) -> String {
    format!("idis-{env}")
}

/// The console address of the dashboard.
pub fn url(region: &str, env: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards/dashboard/{}",
        name(env)
    )
}

/// A graph's title: what the metric is, in words.
fn words(metric: &str) -> &str {
    match metric {
        "CPUUtilization" => "CPU (%)",
        "FreeStorageSpace" => "free storage (bytes)",
        "FreeableMemory" => "freeable memory (bytes)",
        "DatabaseConnections" => "connections",
        "ReplicaLag" => "replica lag (s)",
        "EngineCPUUtilization" => "engine CPU (%)",
        "DatabaseMemoryUsagePercentage" => "memory used (%)",
        "Evictions" => "evictions",
        "ReplicationLag" => "replication lag (s)",
        "CurrConnections" => "connections",
        "5xxErrorRate" => "distribution 5xx rate (%)",
        "BlockedRequests" => "web ACL blocked requests",
        "ErrorPortAllocation" => "port allocation errors",
        other => other,
    }
}

/// A threshold as a person reads it: bytes in GiB or MiB, else the number.
fn shown(value: f64, metric: &str) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    const GIB: f64 = 1024.0 * MIB;
    let number = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    match metric {
        "FreeStorageSpace" | "FreeableMemory" if value >= GIB => {
            format!("{} GiB", number(value / GIB))
        }
        "FreeStorageSpace" | "FreeableMemory" => format!("{} MiB", number(value / MIB)),
        _ => number(value),
    }
}

/// The horizontal annotation of an alarm's threshold.
fn annotation(alarm: &Alarm) -> Json {
    let (side, fill) = match alarm.compare {
        Compare::Above => ("above", "above"),
        Compare::Below => ("below", "below"),
    };
    let setting = if alarm.setting.is_empty() {
        String::new()
    } else {
        format!(" (monitoring.{})", alarm.setting)
    };
    json!({
        "label": format!("alarm {side} {}{setting}", shown(alarm.threshold, alarm.metric)),
        "value": alarm.threshold,
        "fill": fill,
        "color": "#d62728",
    })
}

/// A line of a graph: the alarm's metric and dimensions, with its
/// statistic and period.
fn line(alarm: &Alarm) -> Json {
    let mut l = vec![json!(alarm.namespace), json!(alarm.metric)];
    for (k, v) in &alarm.dimensions {
        l.push(json!(k));
        l.push(json!(v));
    }
    l.push(json!({
        "label": alarm.name,
        "stat": alarm.statistic,
        "period": alarm.period,
    }));
    Json::Array(l)
}

/// The dashboard body for `alarms` (as [`alarms::wanted`] gives them) of
/// an environment in `region`.
pub fn body(region: &str, alarms: &[Alarm]) -> String {
    // Rows in ROWS' order, then unknown namespaces in the alarms' order.
    let mut rows: Vec<(String, Vec<&str>)> = ROWS
        .iter()
        .map(|(title, ns)| (title.to_string(), ns.to_vec()))
        .collect();
    for a in alarms {
        if !rows.iter().any(|(_, ns)| ns.contains(&a.namespace)) {
            rows.push((a.namespace.to_string(), vec![a.namespace]));
        }
    }
    let mut widgets = Vec::new();
    let mut y = 0;
    for (title, namespaces) in rows {
        // One graph per metric, in the alarm list's order.
        let mut graphs: Vec<(&str, &str, Vec<&Alarm>)> = Vec::new();
        for a in alarms.iter().filter(|a| namespaces.contains(&a.namespace)) {
            match graphs
                .iter_mut()
                .find(|(ns, m, _)| *ns == a.namespace && *m == a.metric)
            {
                Some((_, _, members)) => members.push(a),
                None => graphs.push((a.namespace, a.metric, vec![a])),
            }
        }
        if graphs.is_empty() {
            continue;
        }
        widgets.push(json!({
            "type": "text",
            "x": 0, "y": y, "width": GRID, "height": 1,
            "properties": { "markdown": format!("## {title}") },
        }));
        y += 1;
        let per_line = GRID / GRAPH_WIDTH;
        for (i, (_, metric, members)) in graphs.iter().enumerate() {
            let i = i as i64;
            let first = members[0];
            let mut annotations: Vec<Json> = Vec::new();
            for a in members {
                let ann = annotation(a);
                if !annotations.contains(&ann) {
                    annotations.push(ann);
                }
            }
            let graph_region = if first.global {
                alarms::CLOUDFRONT_METRICS_REGION
            } else {
                region
            };
            widgets.push(json!({
                "type": "metric",
                "x": (i % per_line) * GRAPH_WIDTH,
                "y": y + (i / per_line) * GRAPH_HEIGHT,
                "width": GRAPH_WIDTH,
                "height": GRAPH_HEIGHT,
                "properties": {
                    "title": format!("{title}: {}", words(metric)),
                    "view": "timeSeries",
                    "stacked": false,
                    "region": graph_region,
                    "stat": first.statistic,
                    "period": first.period,
                    "metrics": members.iter().map(|a| line(a)).collect::<Vec<_>>(),
                    "annotations": { "horizontal": annotations },
                    "yAxis": { "left": { "min": 0 } },
                },
            }));
        }
        let lines = (graphs.len() as i64 + per_line - 1) / per_line;
        y += lines * GRAPH_HEIGHT;
    }
    json!({ "start": "-PT6H", "periodOverride": "inherit", "widgets": widgets }).to_string()
}

/// Graphs of a body by title (text widgets are row headers).
fn graphs(body: &Json) -> BTreeMap<String, &Json> {
    body.get("widgets")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|w| {
            let title = w
                .pointer("/properties/title")
                .and_then(Json::as_str)
                .or_else(|| w.pointer("/properties/markdown").and_then(Json::as_str))?;
            Some((title.to_string(), w))
        })
        .collect()
}

/// What is wrong with the dashboard CloudWatch holds (`seen`, None when
/// there is none) against the body the provider writes: none when it is
/// as built, else words an ops reviewer reads in a plan.
pub fn problems(env: &str, want: &str, seen: Option<&str>) -> Vec<String> {
    let dashboard = name(env);
    let Some(seen) = seen else {
        return vec![format!("dashboard {dashboard} is missing")];
    };
    let want: Json = serde_json::from_str(want).unwrap_or(Json::Null);
    let Ok(seen) = serde_json::from_str::<Json>(seen) else {
        return vec![format!(
            "dashboard {dashboard} was changed outside Terraform: its body is not JSON"
        )];
    };
    if seen == want {
        return Vec::new();
    }
    let (w, s) = (graphs(&want), graphs(&seen));
    let mut changes = Vec::new();
    for (title, widget) in &w {
        match s.get(title) {
            None => changes.push(format!("'{title}' removed")),
            Some(other) if other != widget => changes.push(format!("'{title}' changed")),
            Some(_) => {}
        }
    }
    for title in s.keys().filter(|t| !w.contains_key(*t)) {
        changes.push(format!("'{title}' added"));
    }
    if changes.is_empty() {
        changes.push("its layout or time range changed".to_string());
    }
    vec![format!(
        "dashboard {dashboard} was changed outside Terraform: {}",
        changes.join(", ")
    )]
}

fn gone(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("ResourceNotFound" | "DashboardNotFoundError" | "ResourceNotFoundException")
    )
}

/// The dashboard's body; None when there is no dashboard.
pub async fn read(ctx: &Ctx) -> Result<Option<String>, ComponentError> {
    let dashboard = name(&ctx.env);
    match ctx
        .aws
        .cloudwatch()
        .get_dashboard()
        .dashboard_name(&dashboard)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out.dashboard_body().unwrap_or_default().to_string())),
        Err(e) if gone(e.code()) => Ok(None),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("read the dashboard {dashboard}"),
            e,
        )),
    }
}

/// Writes `want` unless CloudWatch holds it already (`seen`); returns the
/// body CloudWatch holds afterwards. PutDashboard replaces the whole body
/// (CloudWatch API Reference, PutDashboard), so a repeat is harmless.
pub async fn ensure(
    ctx: &Ctx,
    want: &str,
    seen: Option<String>,
) -> Result<Option<String>, ComponentError> {
    if problems(&ctx.env, want, seen.as_deref()).is_empty() {
        return Ok(seen);
    }
    let dashboard = name(&ctx.env);
    let out = ctx
        .aws
        .cloudwatch()
        .put_dashboard()
        .dashboard_name(&dashboard)
        .dashboard_body(want)
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("write the dashboard {dashboard}"), e))?;
    if let Some(m) = out.dashboard_validation_messages().first() {
        return Err(ComponentError::Conflict {
            component: COMPONENT,
            message: format!(
                "CloudWatch found a problem in the dashboard {dashboard} at {}: {}; this is a bug in terraform-provider-idis",
                m.data_path().unwrap_or("/"),
                m.message().unwrap_or_default()
            ),
        });
    }
    read(ctx).await
}

/// Deletes the dashboard; absent is success.
pub async fn delete(ctx: &Ctx) -> Result<(), ComponentError> {
    let dashboard = name(&ctx.env);
    match ctx
        .aws
        .cloudwatch()
        .delete_dashboards()
        .dashboard_names(&dashboard)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if gone(e.code()) => Ok(()),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("delete the dashboard {dashboard}"),
            e,
        )),
    }
}

/// The body the provider would write for a planned `idis_environment`
/// (its values as `terraform show -json` prints them): what `make docs`
/// draws. Names are the environment's deterministic ones; the ids only
/// AWS assigns (NAT gateways, the distribution) are placeholders.
pub fn planned_body(planned: &Json) -> Result<String, String> {
    let text = |v: Option<&Json>| v.and_then(Json::as_str).map(str::to_string);
    let env = text(planned.get("name")).ok_or("the planned resource has no name")?;
    let region = text(planned.get("region")).ok_or("the planned resource has no region")?;
    let block = |name: &str| planned.get(name).filter(|b| b.is_object());
    let int = |b: Option<&Json>, attr: &str| b.and_then(|b| b.get(attr)).and_then(Json::as_i64);
    let on = |b: Option<&Json>, attr: &str| {
        b.and_then(|b| b.get(attr))
            .and_then(Json::as_bool)
            .unwrap_or(false)
    };
    let prefix = name(&env);
    let database = block("database");
    let cache = block("cache");
    let network = block("network");
    let edge = block("edge");
    // The planned block's thresholds over the defaults (a block from
    // before a threshold existed lacks it).
    let mut thresholds = serde_json::to_value(Thresholds::default()).map_err(|e| e.to_string())?;
    if let (Some(Json::Object(all)), Some(Json::Object(set))) =
        (Some(&mut thresholds), block("monitoring"))
    {
        for (k, v) in set {
            if all.contains_key(k) && v.is_number() {
                all.insert(k.clone(), v.clone());
            }
        }
    }
    let thresholds: Thresholds =
        serde_json::from_value(thresholds).map_err(|e| format!("monitoring: {e}"))?;
    let zones = network
        .and_then(|n| n.get("availability_zones"))
        .and_then(Json::as_array)
        .map_or(3, Vec::len);
    let nats = if network.is_none() {
        0
    } else if network
        .and_then(|n| n.get("nat_gateway_per_az"))
        .and_then(Json::as_bool)
        .unwrap_or(true)
    {
        zones
    } else {
        1
    };
    let targets = Targets {
        database: database.map(|_| format!("{prefix}-db")),
        replicas: (1..=int(database, "read_replicas").unwrap_or(0))
            .map(|n| format!("{prefix}-db-replica-{n}"))
            .collect(),
        allocated_storage_gb: int(database, "allocated_storage_gb").unwrap_or(0),
        cache_nodes: cache
            .map(|_| {
                alarms::cache_members(
                    &format!("{prefix}-cache"),
                    int(cache, "node_count").unwrap_or(0),
                )
            })
            .unwrap_or_default(),
        web_acl: on(edge, "waf").then(|| format!("{prefix}-web-acl")),
        region: region.clone(),
        distribution: (on(edge, "cdn") && region == alarms::CLOUDFRONT_METRICS_REGION)
            .then(|| "<distribution id>".to_string()),
        nat_gateways: (1..=nats).map(|i| format!("<nat gateway {i}>")).collect(),
    };
    Ok(body(&region, &alarms::wanted(&env, &thresholds, &targets)))
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
            cache_nodes: alarms::cache_members("idis-p-cache", 2),
            web_acl: Some("idis-p-web-acl".into()),
            region: "us-east-1".into(),
            distribution: Some("E123".into()),
            nat_gateways: vec!["nat-1".into(), "nat-2".into()],
        }
    }

    fn body_of(replicas: usize) -> (Vec<Alarm>, Json) {
        let alarms = alarms::wanted("p", &Thresholds::default(), &targets(replicas));
        let body = body("us-east-1", &alarms);
        (alarms, serde_json::from_str(&body).unwrap())
    }

    /// (namespace, metric, dimensions) of every line of every graph.
    fn lines(body: &Json) -> Vec<(String, String, BTreeMap<String, String>)> {
        let mut out = Vec::new();
        for w in body["widgets"].as_array().unwrap() {
            for l in w
                .pointer("/properties/metrics")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let l = l.as_array().unwrap();
                let s = |i: usize| l[i].as_str().unwrap().to_string();
                let dims = (2..l.len() - 1)
                    .step_by(2)
                    .map(|i| (s(i), s(i + 1)))
                    .collect();
                out.push((s(0), s(1), dims));
            }
        }
        out
    }

    #[test]
    fn every_line_is_an_alarms_metric_and_every_threshold_is_drawn() {
        let (alarms, body) = body_of(2);
        let lines = lines(&body);
        assert_eq!(lines.len(), alarms.len());
        for a in &alarms {
            assert!(
                lines.contains(&(a.namespace.into(), a.metric.into(), a.dimensions.clone())),
                "{} has no line",
                a.name
            );
            let graph = body["widgets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| {
                    w.pointer("/properties/metrics").is_some_and(|m| {
                        m.as_array().unwrap().iter().any(|l| {
                            l.as_array().unwrap().last().unwrap()["label"] == a.name.as_str()
                        })
                    })
                })
                .unwrap();
            let values: Vec<f64> = graph
                .pointer("/properties/annotations/horizontal")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["value"].as_f64().unwrap())
                .collect();
            assert!(values.contains(&a.threshold), "{}: {values:?}", a.name);
        }
        // The distribution's metrics are in us-east-1 only.
        let cdn = graphs(&body)["Edge: distribution 5xx rate (%)"].clone();
        assert_eq!(cdn["properties"]["region"], "us-east-1");
    }

    #[test]
    fn the_body_is_deterministic_and_a_replica_adds_its_lag_line() {
        let alarms = alarms::wanted("p", &Thresholds::default(), &targets(1));
        assert_eq!(body("us-east-1", &alarms), body("us-east-1", &alarms));
        let (_, none) = body_of(0);
        let (_, two) = body_of(2);
        assert!(!graphs(&none).contains_key("Database: replica lag (s)"));
        let lag = graphs(&two)["Database: replica lag (s)"].clone();
        assert_eq!(lag["properties"]["metrics"].as_array().unwrap().len(), 2);
        // Rows in order, each under its header.
        let headers: Vec<&str> = two["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w.pointer("/properties/markdown").and_then(Json::as_str))
            .collect();
        assert_eq!(headers, ["## Database", "## Cache", "## Edge", "## NAT"]);
    }

    #[test]
    fn drift_reads_as_words_not_as_json() {
        let alarms = alarms::wanted("p", &Thresholds::default(), &targets(1));
        let want = body("us-east-1", &alarms);
        assert_eq!(problems("p", &want, Some(&want)), Vec::<String>::new());
        // Reformatted but equal JSON is as built.
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Json>(&want).unwrap()).unwrap();
        assert!(problems("p", &want, Some(&pretty)).is_empty());
        assert_eq!(problems("p", &want, None), ["dashboard idis-p is missing"]);
        let fewer = body(
            "us-east-1",
            &alarms::wanted("p", &Thresholds::default(), &targets(0)),
        );
        let p = problems("p", &want, Some(&fewer));
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("'Database: replica lag (s)' removed"),
            "{p:?}"
        );
        assert!(p[0].contains("'Database: CPU (%)' changed"), "{p:?}");
        assert!(problems("p", &want, Some("{"))
            .iter()
            .any(|p| p.contains("not JSON")));
    }

    #[test]
    fn the_planned_body_follows_the_planned_blocks() {
        let planned = json!({
            "name": "production", "region": "us-east-1",
            "database": { "read_replicas": 2, "allocated_storage_gb": 100 },
            "cache": { "node_count": 2 },
            "network": { "nat_gateway_per_az": true, "availability_zones": null },
            "edge": { "waf": true, "cdn": true },
            "monitoring": { "database_cpu_percent": 75, "replica_lag_seconds": 5, "alarm_emails": [] },
        });
        let body: Json = serde_json::from_str(&planned_body(&planned).unwrap()).unwrap();
        let g = graphs(&body);
        assert_eq!(
            g["Database: replica lag (s)"]["properties"]["metrics"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            g["NAT: port allocation errors"]["properties"]["metrics"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            g["Database: CPU (%)"]["properties"]["annotations"]["horizontal"][0]["value"],
            75.0
        );
        assert!(planned_body(&json!({})).is_err());
        assert_eq!(
            url("eu-west-1", "staging"),
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/idis-staging"
        );
    }
}
