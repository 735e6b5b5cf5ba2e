//! Planning `idis_environment`: a pure function of (prior state, config,
//! provider region), composed from the components' descriptions. Defaults
//! are written into the plan explicitly (never copied from prior state), so
//! drift on a defaulted attribute shows; every component's `enforced` map
//! is planned as what the provider makes, so drift on a setting without a
//! knob shows too. What AWS cannot change in place is planned as
//! replacement or refused; what disturbs running systems is planned with a
//! warning that says so.

use std::collections::BTreeMap;

use super::app::derive_app_settings;
use super::schema::{timeouts, TIMEOUTS};
use super::validate::validate;
use crate::components::describe::{planned_guards, Component, Default, Setting, Visit, ENFORCED};
use crate::components::{self};
use crate::protocol::cty::{Path, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

pub struct Plan {
    pub planned: Value,
    pub requires_replace: Vec<Path>,
    pub diagnostics: Diagnostics,
}

pub(super) fn default_value(
    default: &Default,
    planned_block: &Value,
    prior_block: &Value,
) -> Value {
    match default {
        Default::Str(s) => Value::string(*s),
        Default::Int(i) => Value::int(*i),
        Default::Bool(b) => Value::Bool(*b),
        Default::Strings(items) => Value::strings(items.iter().copied()),
        Default::Null => Value::Null,
        Default::Derived(derive) => derive(planned_block, prior_block),
    }
}

/// A block's arguments: the configuration's value, else the default.
fn plan_settings(settings: &[Setting], config_block: &Value, prior_block: &Value) -> Value {
    let mut planned = Value::Object(BTreeMap::new());
    for s in settings {
        let configured = config_block.get_attr(s.name);
        let value = if configured.is_null() {
            default_value(&s.default, &planned, prior_block)
        } else {
            configured.clone()
        };
        planned.set_attr(s.name, value);
    }
    planned
}

/// Every path whose change replaces the whole environment: `name`,
/// `region`, and the components' replacing arguments.
pub fn replacing() -> Vec<Path> {
    struct Collect(Vec<Path>);
    impl Visit for Collect {
        fn visit<C: Component>(&mut self) {
            for s in C::settings().iter().filter(|s| s.replaces) {
                self.0.push(Path::root().attr(C::NAME).attr(s.name));
            }
        }
    }
    let mut paths = Collect(vec![Path::root().attr("name"), Path::root().attr("region")]);
    components::each(&mut paths);
    paths.0
}

/// The replacing paths whose planned value is known and differs.
pub fn changed_replacing(prior: &Value, planned: &Value) -> Vec<Path> {
    replacing()
        .into_iter()
        .filter(|path| {
            let now = at(planned, path);
            now.is_known() && at(prior, path) != now
        })
        .collect()
}

fn at<'a>(v: &'a Value, path: &Path) -> &'a Value {
    path.0.iter().fold(v, |v, step| match step {
        crate::protocol::cty::PathStep::Attr(a) => v.get_attr(a),
        _ => &Value::Null,
    })
}

/// Plans each component: its block (arguments and `enforced`), then its
/// outputs (kept while it exists, unknown when apply makes it).
struct PlanComponents<'a> {
    prior: &'a Value,
    config: &'a Value,
    planned: &'a mut Value,
}

impl Visit for PlanComponents<'_> {
    fn visit<C: Component>(&mut self) {
        let prior_block = self.prior.get_attr(C::NAME);
        let mut block = plan_settings(&C::settings(), self.config.get_attr(C::NAME), prior_block);
        block.set_attr(ENFORCED, planned_guards(C::guards(), &block));
        self.planned.set_attr(C::NAME, block);
        let outputs = C::outputs();
        let present = outputs
            .first()
            .is_some_and(|o| !self.prior.get_attr(o.name).is_null());
        // Outputs a failing guard's repair may change are unknown.
        let prior_guards = prior_block.get_attr(ENFORCED).as_string_map();
        let repaired: Vec<&str> = C::guards()
            .iter()
            .filter(|g| {
                prior_guards
                    .as_ref()
                    .and_then(|m| m.get(g.key))
                    .is_some_and(|v| v != g.made)
            })
            .flat_map(|g| g.affects.iter().copied())
            .collect();
        for o in &outputs {
            let prior = self.prior.get_attr(o.name);
            let value = if present && !repaired.contains(&o.name) {
                prior.clone()
            } else {
                Value::Unknown
            };
            self.planned.set_attr(o.name, value);
        }
        C::plan_outputs(self.prior, self.planned);
    }
}

struct Judge<'a> {
    prior: &'a Value,
    planned: &'a Value,
    diagnostics: Diagnostics,
}

impl Visit for Judge<'_> {
    fn visit<C: Component>(&mut self) {
        self.diagnostics.extend(C::judge(self.prior, self.planned));
    }
}

/// Plans create (prior null), update, or destroy (proposed null).
pub fn plan(prior: &Value, proposed: &Value, config: &Value, provider_region: &str) -> Plan {
    if proposed.is_null() {
        return plan_destroy(prior);
    }
    let mut diagnostics = validate(config);
    let mut planned = Value::Object(BTreeMap::new());
    planned.set_attr("name", config.get_attr("name").clone());
    planned.set_attr("id", config.get_attr("name").clone());
    planned.set_attr(
        "region",
        match config.get_attr("region") {
            Value::Null => Value::string(provider_region),
            v => v.clone(),
        },
    );
    planned.set_attr("tags", config.get_attr("tags").clone());
    planned.set_attr(
        "cluster_name",
        match config.get_attr("name").as_str() {
            Some(n) => Value::string(format!("idis-{n}")),
            None => Value::Unknown,
        },
    );
    components::each(&mut PlanComponents {
        prior,
        config,
        planned: &mut planned,
    });
    planned.set_attr(
        TIMEOUTS,
        plan_settings(
            &timeouts(),
            config.get_attr(TIMEOUTS),
            prior.get_attr(TIMEOUTS),
        ),
    );
    // Defaults can break a rule that the configuration alone did not
    // (desired size against a configured max): check the planned value.
    if !diagnostics.has_errors() {
        diagnostics.extend(validate(&planned));
    }
    derive_app_settings(&mut planned);

    let mut requires_replace = Vec::new();
    if !prior.is_null() {
        // An unknown value is not judged: it may well turn out unchanged,
        // and once known (at apply) a change is refused (see
        // `orchestrate::converge`).
        requires_replace = changed_replacing(prior, &planned);
        diagnostics.extend(judge_replacement(prior, &requires_replace));
        let mut judge = Judge {
            prior,
            planned: &planned,
            diagnostics: Diagnostics::new(),
        };
        components::each(&mut judge);
        diagnostics.extend(judge.diagnostics);
    }
    Plan {
        planned,
        requires_replace,
        diagnostics,
    }
}

/// A replacement of the whole environment: refused while the database has
/// deletion protection, else warned about.
fn judge_replacement(prior: &Value, requires_replace: &[Path]) -> Diagnostics {
    let mut d = Diagnostics::new();
    if requires_replace.is_empty() {
        return d;
    }
    let what: Vec<String> = requires_replace.iter().map(|p| p.to_string()).collect();
    let protected = prior
        .get_attr("database")
        .get_attr("deletion_protection")
        .as_bool()
        == Some(true);
    if protected {
        d.push(
            Diagnostic::error(
                "Change would replace the environment and its database",
                format!(
                    "Changing {} cannot be done in place: the whole environment, including its PostgreSQL database, would be destroyed and created again. \
                     Refused because database.deletion_protection is on. To do it deliberately, set database.deletion_protection = false and apply first, \
                     or create a second environment and migrate.",
                    what.join(", ")
                ),
            )
            .at(requires_replace[0].clone()),
        );
    } else {
        d.push(Diagnostic::warning(
            "The environment will be replaced",
            format!("Changing {} replaces the whole environment: the database is deleted (final snapshot unless skip_final_snapshot) and every endpoint changes.", what.join(", ")),
        ));
    }
    d
}

/// Destroy: each component says what it means (a refusal stops the plan).
fn plan_destroy(prior: &Value) -> Plan {
    struct OnDestroy<'a>(&'a Value, Diagnostics);
    impl Visit for OnDestroy<'_> {
        fn visit<C: Component>(&mut self) {
            self.1.extend(C::on_destroy(self.0));
        }
    }
    let mut notes = OnDestroy(prior, Diagnostics::new());
    components::each(&mut notes);
    let mut diagnostics = notes.1;
    if diagnostics.has_errors() {
        diagnostics
            .0
            .retain(|d| d.severity == crate::protocol::diag::Severity::Error);
    }
    Plan {
        planned: Value::Null,
        requires_replace: Vec::new(),
        diagnostics,
    }
}
/// A configuration that sets only `name`, every block left out (Terraform
/// sends empty GROUP blocks), for tests.
#[cfg(test)]
pub(crate) fn config_of(name: &str) -> Value {
    struct Blocks(Value);
    impl Visit for Blocks {
        fn visit<C: Component>(&mut self) {
            self.0.set_attr(C::NAME, Value::Object(BTreeMap::new()));
        }
    }
    let mut c = Blocks(Value::Object(BTreeMap::new()));
    components::each(&mut c);
    c.0.set_attr(TIMEOUTS, Value::Object(BTreeMap::new()));
    c.0.set_attr("name", Value::string(name));
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str) -> Value {
        super::config_of(name)
    }

    /// A state as apply would leave it for `planned`.
    fn applied(planned: &Value) -> Value {
        let mut s = planned.clone();
        let fill = [
            ("vpc_id", Value::string("vpc-1")),
            ("public_subnet_ids", Value::strings(["a", "b", "c"])),
            ("private_subnet_ids", Value::strings(["d", "e", "f"])),
            ("platform_key_arn", Value::string("arn:key")),
            (
                "tenant_key_arns",
                Value::string_map(BTreeMap::<String, String>::new()),
            ),
            ("cluster_arn", Value::string("arn:eks")),
            ("cluster_endpoint", Value::string("https://eks")),
            ("cluster_certificate_authority_data", Value::string("ca")),
            ("cluster_oidc_issuer_url", Value::string("https://oidc")),
            ("node_group_arn", Value::string("arn:ng")),
            ("database_arn", Value::string("arn:db")),
            ("database_endpoint", Value::string("db.host")),
            ("database_port", Value::int(5432)),
            ("database_master_secret_arn", Value::string("arn:secret:db")),
            ("database_engine_version_actual", Value::string("16.4")),
            (
                "database_replica_endpoints",
                Value::strings(Vec::<String>::new()),
            ),
            (
                "cache_replication_group_id",
                Value::string("idis-production-cache"),
            ),
            ("cache_primary_endpoint", Value::string("cache.host")),
            ("cache_reader_endpoint", Value::string("cache-ro.host")),
            ("cache_port", Value::int(6379)),
            ("cache_auth_secret_arn", Value::string("arn:secret:cache")),
            ("audit_bucket_name", Value::string("bucket")),
            ("audit_bucket_arn", Value::string("arn:s3:bucket")),
            ("web_acl_arn", Value::string("arn:waf")),
            ("web_acl_associations", Value::strings(Vec::<String>::new())),
            (
                "ingress_annotations",
                Value::string_map(BTreeMap::from([
                    ("alb.ingress.kubernetes.io/wafv2-acl-arn", "arn:waf"),
                    (
                        "alb.ingress.kubernetes.io/shield-advanced-protection",
                        "true",
                    ),
                ])),
            ),
        ];
        for (k, v) in fill {
            s.set_attr(k, v);
        }
        s.attr_mut("network").set_attr(
            "availability_zones",
            Value::strings(["us-east-1a", "us-east-1b", "us-east-1c"]),
        );
        derive_app_settings(&mut s);
        s
    }

    #[test]
    fn create_plans_every_default_explicitly() {
        let c = config("production");
        let p = plan(&Value::Null, &c, &c, "us-east-1");
        assert!(!p.diagnostics.has_errors(), "{:?}", p.diagnostics);
        let v = &p.planned;
        assert_eq!(v.get_attr("region"), &Value::string("us-east-1"));
        assert_eq!(
            v.get_attr("network").get_attr("vpc_cidr"),
            &Value::string("10.0.0.0/16")
        );
        assert_eq!(
            v.get_attr("network").get_attr("availability_zones"),
            &Value::Unknown
        );
        assert_eq!(
            v.get_attr("database").get_attr("multi_az"),
            &Value::Bool(true)
        );
        assert_eq!(
            v.get_attr("database").get_attr("deletion_protection"),
            &Value::Bool(true)
        );
        assert_eq!(
            v.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(3)
        );
        assert_eq!(
            v.get_attr("audit_storage").get_attr("retention_mode"),
            &Value::string("COMPLIANCE")
        );
        assert_eq!(v.get_attr("vpc_id"), &Value::Unknown);
        assert_eq!(
            v.get_attr("cluster_name"),
            &Value::string("idis-production")
        );
        assert_eq!(v.get_attr("cdn_domain_name"), &Value::Null);
        assert_eq!(v.get_attr("app_config"), &Value::Unknown);
    }

    #[test]
    fn a_matching_config_plans_no_change() {
        let c = config("production");
        let created = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let p = plan(&created, &c, &c, "us-east-1");
        assert_eq!(p.planned, created);
        assert!(p.requires_replace.is_empty());
        assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
    }

    #[test]
    fn drift_on_a_defaulted_attribute_is_planned_back() {
        let c = config("production");
        let mut state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        state
            .attr_mut("database")
            .set_attr("multi_az", Value::Bool(false));
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(
            p.planned.get_attr("database").get_attr("multi_az"),
            &Value::Bool(true)
        );
        assert_ne!(p.planned, state);
    }

    #[test]
    fn a_missing_component_plans_its_outputs_unknown() {
        let c = config("production");
        let mut state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        for output in [
            "cache_replication_group_id",
            "cache_primary_endpoint",
            "cache_auth_secret_arn",
        ] {
            state.set_attr(output, Value::Null);
        }
        derive_app_settings(&mut state);
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(
            p.planned.get_attr("cache_primary_endpoint"),
            &Value::Unknown
        );
        assert_eq!(p.planned.get_attr("vpc_id"), &Value::string("vpc-1"));
        assert_eq!(p.planned.get_attr("app_config"), &Value::Unknown);
    }

    #[test]
    fn renaming_a_protected_environment_is_refused() {
        let c = config("production");
        let state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let renamed = config("prod2");
        let p = plan(&state, &renamed, &renamed, "us-east-1");
        assert_eq!(p.requires_replace, vec![Path::root().attr("name")]);
        assert!(p.diagnostics.has_errors());
        assert!(p.diagnostics.0[0].detail.contains("deletion_protection"));
    }

    #[test]
    fn an_unknown_replacing_value_is_planned_not_refused() {
        let c = config("production");
        let state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let mut later = config("production");
        later
            .attr_mut("network")
            .set_attr("vpc_cidr", Value::Unknown);
        let p = plan(&state, &later, &later, "us-east-1");
        assert!(!p.diagnostics.has_errors(), "{:?}", p.diagnostics);
        assert!(p.requires_replace.is_empty());
        assert_eq!(
            p.planned.get_attr("network").get_attr("vpc_cidr"),
            &Value::Unknown
        );
        // Known and changed: refused under deletion protection.
        later
            .attr_mut("network")
            .set_attr("vpc_cidr", Value::string("10.1.0.0/16"));
        assert!(plan(&state, &later, &later, "us-east-1")
            .diagnostics
            .has_errors());
    }

    #[test]
    fn the_shield_protection_and_the_cloudfront_acl_follow_the_distribution() {
        let mut cdn = config("production");
        cdn.attr_mut("edge")
            .set_attr("origin_domain", Value::string("app.example.com"));
        let mut state = applied(&plan(&Value::Null, &cdn, &cdn, "us-east-1").planned);
        state.set_attr("shield_protection_id", Value::string("prot-1"));
        state.set_attr("cdn_domain_name", Value::string("d1.cloudfront.net"));
        state.set_attr("cdn_web_acl_arn", Value::string("arn:waf:cdn"));
        let same = plan(&state, &cdn, &cdn, "us-east-1");
        assert_eq!(same.planned, state);

        // The origin goes: so do the protection and the CloudFront ACL,
        // and the regional ACL stays.
        let c = config("production");
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(p.planned.get_attr("shield_protection_id"), &Value::Null);
        assert_eq!(p.planned.get_attr("cdn_web_acl_arn"), &Value::Null);
        assert_eq!(p.planned.get_attr("cdn_domain_name"), &Value::Null);
        assert_eq!(p.planned.get_attr("web_acl_arn"), &Value::string("arn:waf"));
        // What the ingress controller attaches is kept as last read.
        assert_eq!(
            p.planned.get_attr("web_acl_associations"),
            &Value::strings(Vec::<String>::new())
        );

        // A distribution appears: its protection and ACL are made anew.
        let bare = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        assert_eq!(bare.get_attr("shield_protection_id"), &Value::Null);
        let p = plan(&bare, &cdn, &cdn, "us-east-1");
        assert_eq!(p.planned.get_attr("shield_protection_id"), &Value::Unknown);
        assert_eq!(p.planned.get_attr("cdn_web_acl_arn"), &Value::Unknown);
        assert_eq!(p.planned.get_attr("cdn_domain_name"), &Value::Unknown);
        assert_eq!(
            p.planned
                .get_attr("ingress_annotations")
                .as_string_map()
                .unwrap()
                .get("alb.ingress.kubernetes.io/wafv2-acl-arn")
                .map(String::as_str),
            Some("arn:waf")
        );
    }

    #[test]
    fn every_guard_is_planned_as_made_and_a_failing_one_is_repaired() {
        let c = config("production");
        let mut state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let made = plan(&Value::Null, &c, &c, "us-east-1").planned;
        let guards = made
            .get_attr("audit_storage")
            .get_attr("enforced")
            .as_string_map()
            .unwrap();
        assert_eq!(
            guards.get("public_access_block").map(String::as_str),
            Some("all public access blocked")
        );
        // Refresh found the block removed: the plan puts it back.
        let mut refreshed = guards.clone();
        refreshed.insert("public_access_block".into(), "removed".into());
        state
            .attr_mut("audit_storage")
            .set_attr("enforced", Value::string_map(refreshed));
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(
            p.planned.get_attr("audit_storage").get_attr("enforced"),
            &Value::string_map(guards)
        );
        assert_ne!(p.planned, state);
    }

    #[test]
    fn destroy_with_deletion_protection_is_refused_at_plan() {
        let c = config("production");
        let state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let p = plan(&state, &Value::Null, &Value::Null, "us-east-1");
        assert!(p.diagnostics.has_errors());
        let mut unprotected = state.clone();
        unprotected
            .attr_mut("database")
            .set_attr("deletion_protection", Value::Bool(false));
        let p = plan(&unprotected, &Value::Null, &Value::Null, "us-east-1");
        assert!(!p.diagnostics.has_errors());
        assert!(p
            .diagnostics
            .0
            .iter()
            .any(|d| d.detail.contains("bucket bucket stays")));
        assert_eq!(p.planned, Value::Null);
    }

    #[test]
    fn data_losing_updates_are_refused_and_disruptive_ones_warned() {
        let c = config("production");
        let state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let mut worm_off = config("production");
        worm_off
            .attr_mut("audit_storage")
            .set_attr("worm", Value::Bool(false));
        worm_off
            .attr_mut("audit_storage")
            .set_attr("versioning", Value::Bool(true));
        let p = plan(&state, &worm_off, &worm_off, "us-east-1");
        assert!(p.diagnostics.has_errors());
        assert_eq!(
            p.diagnostics.0[0].path,
            Some(Path::root().attr("audit_storage").attr("worm"))
        );

        let mut downgrade = config("production");
        downgrade
            .attr_mut("database")
            .set_attr("engine_version", Value::string("15"));
        assert!(plan(&state, &downgrade, &downgrade, "us-east-1")
            .diagnostics
            .has_errors());

        let mut resize = config("production");
        resize
            .attr_mut("database")
            .set_attr("instance_class", Value::string("db.r6g.2xlarge"));
        let p = plan(&state, &resize, &resize, "us-east-1");
        assert!(!p.diagnostics.has_errors());
        assert!(
            p.diagnostics
                .0
                .iter()
                .any(|d| d.detail.contains("failover")),
            "{:?}",
            p.diagnostics
        );

        let mut tenants = config("production");
        tenants
            .attr_mut("keys")
            .set_attr("tenants", Value::strings(["acme"]));
        let p = plan(&state, &tenants, &tenants, "us-east-1");
        assert_eq!(p.planned.get_attr("tenant_key_arns"), &Value::Unknown);
    }

    #[test]
    fn desired_size_follows_the_autoscaler_within_bounds() {
        let c = config("production");
        let mut state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        state
            .attr_mut("cluster")
            .set_attr("node_desired_size", Value::int(7));
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(
            p.planned.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(7)
        );
        assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
        // Refresh writes AWS's size only when it is outside the bounds.
        state
            .attr_mut("cluster")
            .set_attr("node_desired_size", Value::int(12));
        let p = plan(&state, &c, &c, "us-east-1");
        assert_eq!(
            p.planned.get_attr("cluster").get_attr("node_desired_size"),
            &Value::int(10)
        );
        let why: Vec<&Diagnostic> = p
            .diagnostics
            .0
            .iter()
            .filter(|d| d.summary == "Node group size outside its bounds")
            .collect();
        assert_eq!(why.len(), 1, "{:?}", p.diagnostics);
        assert!(!p.diagnostics.has_errors());
        for part in [
            "node_desired_size",
            "12 nodes",
            "[3, 10]",
            "sets it to 10",
            "2 node(s) are removed",
        ] {
            assert!(why[0].detail.contains(part), "{part}: {}", why[0].detail);
        }
    }

    #[test]
    fn lowering_the_maximum_warns_that_running_nodes_may_go() {
        let c = config("production");
        let state = applied(&plan(&Value::Null, &c, &c, "us-east-1").planned);
        let mut smaller = config("production");
        smaller
            .attr_mut("cluster")
            .set_attr("node_max_size", Value::int(5));
        let p = plan(&state, &smaller, &smaller, "us-east-1");
        assert!(!p.diagnostics.has_errors());
        let warned: Vec<&str> = p.diagnostics.0.iter().map(|d| d.summary.as_str()).collect();
        assert_eq!(
            warned,
            ["Node group maximum lowered"],
            "{:?}",
            p.diagnostics
        );
        assert!(p.diagnostics.0[0].detail.contains("from 10 to 5"));
        let mut larger = config("production");
        larger
            .attr_mut("cluster")
            .set_attr("node_max_size", Value::int(20));
        assert!(plan(&state, &larger, &larger, "us-east-1")
            .diagnostics
            .is_empty());
    }
}
