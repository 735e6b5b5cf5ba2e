//! Turning what the components found in AWS into Terraform state, by each
//! component's own reading (`Component::read`): outputs always come from
//! AWS; arguments come from AWS on refresh (so drift shows) and from the
//! plan after apply (so the result matches the plan exactly where it was
//! known); every block's `enforced` map comes from AWS always, so what
//! the provider made without a knob is judged on every refresh.
//!
//! # Quiet drift
//!
//! A daily `terraform plan -refresh-only -detailed-exitcode` exits 2 as soon
//! as the refreshed state differs from the stored one in any attribute,
//! computed ones included. So what AWS does on its own, as designed, must
//! leave the refreshed state exactly as it was. The components' readings
//! hold those rules (the autoscaler's node count, minor engine versions,
//! AWS's own tags and rules); here, for the resource's `tags`: tags AWS or
//! EKS put on the VPC that the user never set (`aws:*`, and
//! `kubernetes.io/cluster/<name>` unless `tags` sets that key) are not the
//! resource's tags ([`own_tags`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::components::describe::{block_type, outputs_type, Component, Visit, ENFORCED};
use crate::components::network::Network;
use crate::components::{self as all, Observed};
use crate::protocol::cty::{self, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

use super::app::derive_app_settings;

/// How arguments are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refresh: AWS's value wins, so the plan shows drift.
    Refresh,
    /// After apply: the planned value wins where it is known.
    AfterApply,
}

/// A component's block as the state holds it, as its typed Spec: nulls
/// and unknowns (an import's zones, a block from an older state) take the
/// type's default, so a reading can always compare with it.
fn stored_spec<C: Component>(block: &Value) -> C::Spec {
    let Ok(serde_json::Value::Object(mut base)) = serde_json::to_value(C::Spec::default()) else {
        return C::Spec::default();
    };
    if let Value::Object(attrs) = block {
        for (name, value) in attrs {
            if !value.is_wholly_known() || value.is_null() || !base.contains_key(name) {
                continue;
            }
            if let Ok(json) = value.to_json(&cty::Path::root()) {
                base.insert(name.clone(), json);
            }
        }
    }
    serde_json::from_value(serde_json::Value::Object(base)).unwrap_or_default()
}

fn to_cty<T: Serialize>(value: &T, ty: &cty::Type) -> Value {
    // The components' structs fit their own declared types by
    // construction (a unit test reads every component through here).
    cty::to_value(value, ty).unwrap_or(Value::Null)
}

struct Writer<'a> {
    state: &'a mut Value,
    mode: Mode,
    diagnostics: Diagnostics,
}

impl Writer<'_> {
    fn component<C: Component>(&mut self, found: Option<&C::State>) {
        let absent = C::absent();
        let Some(found) = found.or(absent.as_ref()) else {
            // Absent: its outputs are null, and nothing of it is judged.
            for o in C::outputs() {
                self.state.set_attr(o.name, Value::Null);
            }
            if self.mode == Mode::Refresh {
                self.state.attr_mut(C::NAME).set_attr(ENFORCED, Value::Null);
            }
            return;
        };
        let stored = stored_spec::<C>(self.state.get_attr(C::NAME));
        let reading = C::read(found, &stored, self.state);
        let settings = to_cty(&reading.settings, &block_type::<C>());
        for s in C::settings() {
            let slot = self.state.attr_mut(C::NAME).attr_mut(s.name);
            // A setting AWS does not record stays as the state has it;
            // missing (a block added since the state was written, an
            // upgraded 0.1.0 state) it takes its default, as on import.
            if s.recorded {
                if self.mode == Mode::Refresh || !slot.is_known() {
                    *slot = settings.get_attr(s.name).clone();
                }
            } else if slot.is_null() {
                let block = self.state.get_attr(C::NAME).clone();
                *self.state.attr_mut(C::NAME).attr_mut(s.name) =
                    super::plan::default_value(&s.default, &block, &block);
            }
        }
        let outputs = to_cty(&reading.outputs, &outputs_type::<C>());
        for o in C::outputs() {
            // What others make is read by the refresh; apply leaves it as
            // planned (it changed nothing of it), so a plan need not leave
            // it unknown for a controller that acts meanwhile.
            let planned = self.state.get_attr(o.name);
            if o.made_by_others
                && self.mode == Mode::AfterApply
                && planned.is_wholly_known()
                && !planned.is_null()
                && !outputs.get_attr(o.name).is_null()
            {
                continue;
            }
            self.state
                .set_attr(o.name, outputs.get_attr(o.name).clone());
        }
        let enforced = Value::string_map(reading.verdicts.to_map(C::guards()));
        for (key, problems) in reading.verdicts.failing() {
            let what = problems.join("; ");
            self.diagnostics.push(match self.mode {
                Mode::Refresh => Diagnostic::warning(
                    format!("{}: {key} changed outside Terraform", C::NAME),
                    format!(
                        "{}.enforced[\"{key}\"]: {what}. The provider makes it so: terraform apply puts it back.",
                        C::NAME
                    ),
                ),
                Mode::AfterApply => Diagnostic::error(
                    format!("{}: {key} is still not as the provider makes it", C::NAME),
                    format!(
                        "{}.enforced[\"{key}\"]: after apply AWS still reports: {what}. Check that the provider's role may change it, then apply again.",
                        C::NAME
                    ),
                ),
            });
        }
        self.state.attr_mut(C::NAME).set_attr(ENFORCED, enforced);
    }
}

/// The resource's own tags, from the tags on the VPC: without the
/// provider's `default_tags` (a default tag changed on the VPC counts),
/// and without `kubernetes.io/cluster/<name>` tags that EKS and Kubernetes
/// tooling put on a cluster's VPC unless `tags` itself sets that key
/// (`stored` are the tags in state). `aws:*` tags never get here (see
/// `components::user_visible_tags`).
fn own_tags(
    vpc_tags: &BTreeMap<String, String>,
    default_tags: &BTreeMap<String, String>,
    stored: &Value,
) -> BTreeMap<String, String> {
    let stored = stored.as_string_map().unwrap_or_default();
    vpc_tags
        .iter()
        .filter(|(k, v)| default_tags.get(*k) != Some(*v))
        .filter(|(k, _)| !k.starts_with("kubernetes.io/cluster/") || stored.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Writes `observed` into `state` (the prior state on refresh, the planned
/// state after apply). Returns what the reading found worth saying: on
/// refresh, a warning per guard that does not hold; after apply, an error
/// per guard the apply did not put back.
pub fn write(
    state: &mut Value,
    observed: &Observed,
    default_tags: &BTreeMap<String, String>,
    mode: Mode,
) -> Diagnostics {
    let mut w = Writer {
        state,
        mode,
        diagnostics: Diagnostics::new(),
    };
    struct Each<'a, 'b>(&'b mut Writer<'a>, &'b Observed);
    impl Visit for Each<'_, '_> {
        fn visit<C: Component>(&mut self) {
            self.0.component::<C>(self.1.get::<C>());
        }
    }
    all::each(&mut Each(&mut w, observed));
    let diagnostics = w.diagnostics;

    if let (Some(n), Mode::Refresh) = (observed.get::<Network>(), mode) {
        let own = own_tags(&n.tags, default_tags, state.get_attr("tags"));
        let tags = if own.is_empty() && state.get_attr("tags").is_null() {
            Value::Null
        } else {
            Value::string_map(own)
        };
        state.set_attr("tags", tags);
    }
    derive_app_settings(state);
    diagnostics
}

/// State may not hold unknowns: anything still unknown becomes null.
pub fn resolve_unknowns(v: &mut Value) {
    match v {
        Value::Unknown => *v = Value::Null,
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
            items.iter_mut().for_each(resolve_unknowns)
        }
        Value::Map(items) | Value::Object(items) => items.values_mut().for_each(resolve_unknowns),
        _ => {}
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::alarms;
    use crate::components::audit_trail::{AuditTrail, AuditTrailState};
    use crate::components::cache::{Cache, CacheState};
    use crate::components::cluster::{ClusterState, EksCluster};
    use crate::components::database::{Database, DatabaseState};
    use crate::components::documents::{DocumentsBucket, DocumentsState};
    use crate::components::edge::{Edge, EdgeState};
    use crate::components::identity::{IdentityState, WorkloadIdentity};
    use crate::components::keys::{KeysState, TenantKeys};
    use crate::components::monitoring::{Monitoring, MonitoringState};
    use crate::components::network::NetworkState;
    use crate::components::secrets::{AppSecrets, AppSecretsState, SecretSeen};
    use crate::components::storage::{AuditBucket, AuditStorageState};
    use crate::environment::plan::plan;

    /// What AWS reports right after the production defaults were applied
    /// with `tags = { team = "platform" }`.
    fn aws() -> Observed {
        let mut aws = Observed::default();
        aws.put::<Network>(NetworkState {
            vpc_id: "vpc-1".into(),
            vpc_cidr: "10.0.0.0/16".into(),
            availability_zones: vec![
                "us-east-1a".into(),
                "us-east-1b".into(),
                "us-east-1c".into(),
            ],
            public_subnet_ids: vec!["p1".into(), "p2".into(), "p3".into()],
            private_subnet_ids: vec!["s1".into(), "s2".into(), "s3".into()],
            nat_gateway_per_az: true,
            tags: BTreeMap::from([("team".into(), "platform".into())]),
            ..Default::default()
        });
        aws.put::<TenantKeys>(KeysState {
            platform_key_arn: "arn:key".into(),
            rotation_enabled: true,
            ..Default::default()
        });
        aws.put::<EksCluster>(ClusterState {
            arn: "arn:eks".into(),
            kubernetes_version: "1.31".into(),
            node_group_arn: Some("arn:ng".into()),
            node_instance_types: vec!["m6i.xlarge".into()],
            node_min_size: 3,
            node_max_size: 10,
            node_desired_size: 3,
            ..Default::default()
        });
        aws.put::<Database>(DatabaseState {
            arn: "arn:db".into(),
            port: 5432,
            engine_version_actual: "16.3".into(),
            instance_class: "db.r6g.xlarge".into(),
            multi_az: true,
            allocated_storage_gb: 100,
            backup_retention_days: 30,
            deletion_protection: true,
            performance_insights: true,
            master_username: "idis_admin".into(),
            database_name: Some("idis".into()),
            ..Default::default()
        });
        aws.put::<Cache>(CacheState {
            replication_group_id: "idis-production-cache".into(),
            port: 6379,
            engine_version_actual: Some("7.1.0".into()),
            node_type: "cache.r6g.large".into(),
            node_count: 2,
            multi_az: true,
            snapshot_retention_days: 7,
            ..Default::default()
        });
        aws.put::<AuditBucket>(AuditStorageState {
            bucket: "bucket".into(),
            arn: "arn:s3:bucket".into(),
            versioning: true,
            worm: true,
            retention_mode: Some("COMPLIANCE".into()),
            retention_days: Some(365),
            ..Default::default()
        });
        aws.put::<Edge>(EdgeState {
            web_acl_arn: Some("arn:waf".into()),
            rate_limit: Some(2000),
            shield_protection_id: Some("prot-1".into()),
            ..Default::default()
        });
        aws.put::<DocumentsBucket>(DocumentsState {
            bucket: "documents".into(),
            arn: "arn:s3:documents".into(),
            noncurrent_days: Some(90),
            ..Default::default()
        });
        aws.put::<AuditTrail>(AuditTrailState {
            log_bucket: "access-logs".into(),
            log_bucket_arn: "arn:s3:access-logs".into(),
            log_days: Some(365),
            trail_arn: Some("arn:trail".into()),
            ..Default::default()
        });
        let secret = |arn: &str| SecretSeen {
            arn: arn.into(),
            ..Default::default()
        };
        aws.put::<AppSecrets>(AppSecretsState {
            jwt: Some(secret("arn:jwt")),
            encryption_key: Some(secret("arn:key")),
            ..Default::default()
        });
        aws.put::<WorkloadIdentity>(IdentityState {
            env: "production".into(),
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            ..Default::default()
        });
        // The alarms the environment above gets, as made.
        let topic = "arn:aws:sns:us-east-1:123456789012:idis-production-alarms";
        let targets = alarms::Targets {
            database: Some("idis-production-db".into()),
            allocated_storage_gb: 100,
            cache_nodes: alarms::cache_members("idis-production-cache", 2),
            region: "us-east-1".into(),
            nat_gateways: vec!["nat-1".into(), "nat-2".into(), "nat-3".into()],
            ..Default::default()
        };
        aws.put::<Monitoring>(MonitoringState {
            topic_arn: topic.into(),
            kms_key: Some("arn:key".into()),
            alarms: alarms::wanted("production", &alarms::Thresholds::default(), &targets)
                .iter()
                .map(|a| alarms::as_made(a, topic))
                .collect(),
            ..Default::default()
        });
        aws
    }

    fn config(engine: Option<&str>) -> Value {
        let mut c = crate::environment::plan::config_of("production");
        c.set_attr("tags", Value::string_map([("team", "platform")]));
        if let Some(v) = engine {
            c.attr_mut("database")
                .set_attr("engine_version", Value::string(v));
        }
        c
    }

    /// The state an apply of `config` leaves when AWS reports `aws()`.
    fn applied(config: &Value) -> Value {
        let mut state = plan(&Value::Null, config, config, "us-east-1").planned;
        state.attr_mut("network").set_attr(
            "availability_zones",
            Value::strings(["us-east-1a", "us-east-1b", "us-east-1c"]),
        );
        write(&mut state, &aws(), &BTreeMap::new(), Mode::AfterApply);
        resolve_unknowns(&mut state);
        state
    }

    fn refreshed(state: &Value, aws: &Observed) -> Value {
        let mut next = state.clone();
        write(&mut next, aws, &BTreeMap::new(), Mode::Refresh);
        resolve_unknowns(&mut next);
        next
    }

    /// The attributes whose value a refresh changed, as `block.attr`.
    fn changed(before: &Value, after: &Value) -> Vec<String> {
        let (Value::Object(a), Value::Object(b)) = (before, after) else {
            panic!("states are objects");
        };
        let mut out = Vec::new();
        for (k, v) in b {
            match (a.get(k), v) {
                (Some(Value::Object(x)), Value::Object(y)) => {
                    for (kk, vv) in y {
                        if x.get(kk) != Some(vv) {
                            out.push(format!("{k}.{kk}"));
                        }
                    }
                }
                (old, new) if old != Some(new) => out.push(k.clone()),
                _ => {}
            }
        }
        out
    }

    /// One place names each setting: the block's arguments, its Spec, its
    /// outputs and its reading of AWS agree, for every component.
    #[test]
    fn every_component_description_is_whole() {
        use crate::components::describe::testing::description_is_whole;
        let state = applied(&config(None));
        let aws = aws();
        let spec = |name: &str| state.get_attr(name).clone();
        description_is_whole::<Network>(
            aws.get::<Network>().unwrap(),
            &stored_spec::<Network>(&spec("network")),
        );
        description_is_whole::<TenantKeys>(
            aws.get::<TenantKeys>().unwrap(),
            &stored_spec::<TenantKeys>(&spec("keys")),
        );
        description_is_whole::<EksCluster>(
            aws.get::<EksCluster>().unwrap(),
            &stored_spec::<EksCluster>(&spec("cluster")),
        );
        description_is_whole::<Database>(
            aws.get::<Database>().unwrap(),
            &stored_spec::<Database>(&spec("database")),
        );
        description_is_whole::<Cache>(
            aws.get::<Cache>().unwrap(),
            &stored_spec::<Cache>(&spec("cache")),
        );
        description_is_whole::<AuditBucket>(
            aws.get::<AuditBucket>().unwrap(),
            &stored_spec::<AuditBucket>(&spec("audit_storage")),
        );
        description_is_whole::<Edge>(
            aws.get::<Edge>().unwrap(),
            &stored_spec::<Edge>(&spec("edge")),
        );
        description_is_whole::<DocumentsBucket>(
            aws.get::<DocumentsBucket>().unwrap(),
            &stored_spec::<DocumentsBucket>(&spec("documents_storage")),
        );
        description_is_whole::<AuditTrail>(
            aws.get::<AuditTrail>().unwrap(),
            &stored_spec::<AuditTrail>(&spec("audit_trail")),
        );
        description_is_whole::<AppSecrets>(
            aws.get::<AppSecrets>().unwrap(),
            &stored_spec::<AppSecrets>(&spec("app_secrets")),
        );
        description_is_whole::<WorkloadIdentity>(
            aws.get::<WorkloadIdentity>().unwrap(),
            &stored_spec::<WorkloadIdentity>(&spec("workload_identity")),
        );
        description_is_whole::<Monitoring>(
            aws.get::<Monitoring>().unwrap(),
            &stored_spec::<Monitoring>(&spec("monitoring")),
        );
    }

    #[test]
    fn nothing_changed_in_aws_refreshes_to_the_same_state() {
        let state = applied(&config(None));
        assert_eq!(refreshed(&state, &aws()), state);
    }

    #[test]
    fn the_autoscaler_resizing_within_bounds_is_not_drift() {
        let state = applied(&config(None));
        for size in [3, 7, 10] {
            let mut now = aws();
            now.get_mut::<EksCluster>().unwrap().node_desired_size = size;
            assert_eq!(refreshed(&state, &now), state, "desired size {size}");
        }
    }

    #[test]
    fn bounds_changed_out_of_band_show_and_a_size_outside_them_shows_too() {
        let state = applied(&config(None));
        // min raised to 5: the autoscaler had to follow, that size is fine.
        let mut now = aws();
        let c = now.get_mut::<EksCluster>().unwrap();
        (c.node_min_size, c.node_desired_size) = (5, 5);
        assert_eq!(
            changed(&state, &refreshed(&state, &now)),
            ["cluster.node_min_size"]
        );
        // max raised to 20 and 15 nodes: outside [3, 10], so the size shows.
        let mut now = aws();
        let c = now.get_mut::<EksCluster>().unwrap();
        (c.node_max_size, c.node_desired_size) = (20, 15);
        let next = refreshed(&state, &now);
        assert_eq!(
            changed(&state, &next),
            ["cluster.node_desired_size", "cluster.node_max_size"]
        );
        assert_eq!(
            next.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(15)
        );
    }

    #[test]
    fn a_state_without_a_node_group_takes_the_size_aws_reports() {
        let mut state = applied(&config(None));
        state.set_attr("node_group_arn", Value::Null);
        let mut now = aws();
        now.get_mut::<EksCluster>().unwrap().node_desired_size = 6;
        let next = refreshed(&state, &now);
        assert_eq!(
            next.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(6)
        );
    }

    #[test]
    fn the_database_name_and_master_user_come_from_aws_and_reach_app_config() {
        // What import and the data source see: a state of defaults,
        // refreshed from an environment created with other names.
        let state = applied(&config(None));
        let mut now = aws();
        let d = now.get_mut::<Database>().unwrap();
        (d.master_username, d.database_name) = ("owner".into(), Some("ledger".into()));
        let next = refreshed(&state, &now);
        assert_eq!(
            changed(&state, &next),
            [
                "app_config",
                "database.database_name",
                "database.master_username"
            ]
        );
        let app_config = next
            .get_attr("app_config")
            .as_string_map()
            .unwrap_or_default();
        assert_eq!(
            app_config.get("IDIS_DATABASE_NAME").map(String::as_str),
            Some("ledger")
        );
    }

    #[test]
    fn a_minor_upgrade_under_a_major_is_not_drift_not_even_in_the_actual_version() {
        let state = applied(&config(None));
        assert_eq!(
            state.get_attr("database_engine_version_actual"),
            &Value::string("16.3")
        );
        let mut now = aws();
        now.get_mut::<Database>().unwrap().engine_version_actual = "16.4".into();
        now.get_mut::<Cache>().unwrap().engine_version_actual = Some("7.2.4".into());
        assert_eq!(refreshed(&state, &now), state);
    }

    #[test]
    fn another_major_shows_in_the_setting_and_the_actual_version() {
        let state = applied(&config(None));
        let mut now = aws();
        now.get_mut::<Database>().unwrap().engine_version_actual = "17.2".into();
        now.get_mut::<Cache>().unwrap().engine_version_actual = Some("6.2.6".into());
        let next = refreshed(&state, &now);
        assert_eq!(
            changed(&state, &next),
            [
                "cache.engine_version",
                "database.engine_version",
                "database_engine_version_actual"
            ]
        );
        assert_eq!(
            next.get_attr("database_engine_version_actual"),
            &Value::string("17.2")
        );
        assert_eq!(
            next.get_attr("cache").get_attr("engine_version"),
            &Value::string("6.2.6")
        );
    }

    #[test]
    fn a_pinned_full_version_shows_any_other_version() {
        let state = applied(&config(Some("16.3")));
        let mut now = aws();
        now.get_mut::<Database>().unwrap().engine_version_actual = "16.4".into();
        let next = refreshed(&state, &now);
        assert_eq!(
            changed(&state, &next),
            ["database.engine_version", "database_engine_version_actual"]
        );
    }

    #[test]
    fn a_cache_version_aws_does_not_report_keeps_the_stored_one() {
        let state = applied(&config(None));
        let mut now = aws();
        now.get_mut::<Cache>().unwrap().engine_version_actual = None;
        assert_eq!(refreshed(&state, &now), state);
    }

    #[test]
    fn tags_aws_and_eks_add_to_the_vpc_are_not_drift_but_a_user_tag_is() {
        let state = applied(&config(None));
        // aws:* tags are dropped by the network component already; EKS's
        // cluster tag arrives here.
        let mut now = aws();
        now.get_mut::<Network>().unwrap().tags.insert(
            "kubernetes.io/cluster/idis-production".into(),
            "shared".into(),
        );
        assert_eq!(refreshed(&state, &now), state);

        let mut now = aws();
        now.get_mut::<Network>()
            .unwrap()
            .tags
            .insert("team".into(), "someone-else".into());
        assert_eq!(changed(&state, &refreshed(&state, &now)), ["tags"]);
    }

    #[test]
    fn a_cluster_tag_the_user_sets_is_theirs() {
        let mut c = config(None);
        c.set_attr(
            "tags",
            Value::string_map([
                ("team", "platform"),
                ("kubernetes.io/cluster/idis-production", "owned"),
            ]),
        );
        let mut aws_now = aws();
        aws_now.get_mut::<Network>().unwrap().tags.insert(
            "kubernetes.io/cluster/idis-production".into(),
            "owned".into(),
        );
        let mut state = plan(&Value::Null, &c, &c, "us-east-1").planned;
        state.attr_mut("network").set_attr(
            "availability_zones",
            Value::strings(["us-east-1a", "us-east-1b", "us-east-1c"]),
        );
        write(&mut state, &aws_now, &BTreeMap::new(), Mode::AfterApply);
        resolve_unknowns(&mut state);
        assert_eq!(refreshed(&state, &aws_now), state);
        aws_now.get_mut::<Network>().unwrap().tags.insert(
            "kubernetes.io/cluster/idis-production".into(),
            "shared".into(),
        );
        assert_eq!(changed(&state, &refreshed(&state, &aws_now)), ["tags"]);
    }

    #[test]
    fn after_apply_a_version_known_in_the_plan_comes_back_unchanged() {
        let state = applied(&config(None));
        // An apply for something else, planned from a state recorded before
        // a minor upgrade AWS made: the planned output is the recorded one.
        let mut planned = state.clone();
        let mut now = aws();
        now.get_mut::<Database>().unwrap().engine_version_actual = "16.4".into();
        write(&mut planned, &now, &BTreeMap::new(), Mode::AfterApply);
        assert_eq!(
            planned.get_attr("database_engine_version_actual"),
            &Value::string("16.3")
        );
    }
}
