//! State upgrades of `idis_environment`, one schema version at a time.
//!
//! - 0 → 1: every component block gains `enforced`, the settings the
//!   provider makes without a knob. A 0.1.0 state has none; it is filled
//!   with what the plan wants, so the first refresh after the upgrade
//!   reports only settings AWS really has otherwise (the refresh judges
//!   them at once), not every environment as changed.
//! - 1 → 2: the cache gains `engine` (every earlier cache is Redis OSS);
//!   the edge gains `ingress_annotations` (derived from the web ACL and
//!   the DDoS toggle) and `web_acl_associations` (empty until the first
//!   refresh reads them); guards added since (the cluster's `node_version`
//!   and `addons`) are filled as the plan wants, as in 0 → 1, and the
//!   refresh judges them at once.

use crate::components::describe::{planned_guards, Component, Visit, ENFORCED};
use crate::components::{self, cache, edge};
use crate::protocol::cty::Value;
use crate::protocol::diag::{Diagnostic, Diagnostics};

use super::schema::SCHEMA_VERSION;

struct FillGuards<'a>(&'a mut Value);

impl Visit for FillGuards<'_> {
    fn visit<C: Component>(&mut self) {
        let block = self.0.get_attr(C::NAME).clone();
        if block.is_null() {
            return;
        }
        let Some(mut made) = planned_guards(C::guards(), &block).as_string_map() else {
            return;
        };
        // Guards judged before stay as judged; new ones are filled.
        if let Some(judged) = block.get_attr(ENFORCED).as_string_map() {
            made.extend(judged);
        }
        self.0
            .attr_mut(C::NAME)
            .set_attr(ENFORCED, Value::string_map(made));
    }
}

/// 1 → 2: the attributes added, as the earlier provider made them.
fn to_version_2(state: &mut Value) {
    let cache = state.get_attr("cache");
    if !cache.is_null() && cache.get_attr("engine").is_null() {
        state
            .attr_mut("cache")
            .set_attr("engine", Value::string(cache::DEFAULT_ENGINE));
    }
    let acl = state.get_attr("web_acl_arn").as_str().map(str::to_string);
    let ddos = state.get_attr("edge").get_attr("ddos_protection").as_bool() == Some(true);
    if state.get_attr("ingress_annotations").is_null() {
        state.set_attr(
            "ingress_annotations",
            Value::string_map(edge::annotations(acl.as_deref(), ddos)),
        );
    }
    if state.get_attr("web_acl_associations").is_null() && acl.is_some() {
        state.set_attr("web_acl_associations", Value::strings(Vec::<String>::new()));
    }
}

/// The state of schema `version` in the current schema's shape.
pub fn upgrade(version: i64, mut state: Value) -> Result<Value, Diagnostics> {
    if version > SCHEMA_VERSION {
        return Err(Diagnostic::error(
            "State written by a newer provider",
            format!(
                "This idis_environment was stored with schema version {version}; this provider knows versions up to {SCHEMA_VERSION}. \
                 Use the provider version that wrote the state (or a newer one): an older provider cannot read it without losing what it does not know."
            ),
        )
        .into());
    }
    if state.is_null() {
        return Ok(state);
    }
    if version < 2 {
        to_version_2(&mut state);
        components::each(&mut FillGuards(&mut state));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_version_0_state_gets_the_guards_the_plan_wants() {
        let mut state = Value::Object(BTreeMap::new());
        state.set_attr("name", Value::string("production"));
        let mut edge = Value::Object(BTreeMap::new());
        edge.set_attr("waf", Value::Bool(true));
        edge.set_attr("ddos_protection", Value::Bool(false));
        edge.set_attr("origin_domain", Value::Null);
        state.set_attr("edge", edge);
        state.set_attr("network", Value::Object(BTreeMap::new()));
        let up = upgrade(0, state).unwrap();
        let guards = up
            .get_attr("edge")
            .get_attr(ENFORCED)
            .as_string_map()
            .unwrap();
        assert!(guards.contains_key("web_acl"));
        assert!(!guards.contains_key("shield"));
        assert!(!guards.contains_key("distribution"));
        assert!(up
            .get_attr("network")
            .get_attr(ENFORCED)
            .as_string_map()
            .unwrap()
            .contains_key("security_groups"));
    }

    #[test]
    fn a_version_1_state_gets_the_cache_engine_the_annotations_and_the_new_guards() {
        let mut state = Value::Object(BTreeMap::new());
        state.set_attr("web_acl_arn", Value::string("arn:waf"));
        let mut edge = Value::Object(BTreeMap::new());
        edge.set_attr("waf", Value::Bool(true));
        edge.set_attr("ddos_protection", Value::Bool(true));
        edge.set_attr("origin_domain", Value::Null);
        state.set_attr("edge", edge);
        let mut cache = Value::Object(BTreeMap::new());
        cache.set_attr("engine_version", Value::string("7"));
        state.set_attr("cache", cache);
        let mut cluster = Value::Object(BTreeMap::new());
        cluster.set_attr(
            ENFORCED,
            Value::string_map(BTreeMap::from([("roles", "role trust changed")])),
        );
        state.set_attr("cluster", cluster);
        let up = upgrade(1, state).unwrap();
        assert_eq!(
            up.get_attr("cache").get_attr("engine"),
            &Value::string("redis")
        );
        let annotations = up.get_attr("ingress_annotations").as_string_map().unwrap();
        assert_eq!(annotations.len(), 2);
        assert_eq!(
            up.get_attr("web_acl_associations"),
            &Value::strings(Vec::<String>::new())
        );
        let guards = up
            .get_attr("cluster")
            .get_attr(ENFORCED)
            .as_string_map()
            .unwrap();
        // What was judged stays; what is new is filled as made.
        assert_eq!(guards["roles"], "role trust changed");
        assert!(guards.contains_key("addons") && guards.contains_key("node_version"));
    }

    #[test]
    fn a_state_from_a_newer_provider_is_refused_with_the_versions() {
        let err = upgrade(SCHEMA_VERSION + 1, Value::Null).unwrap_err();
        assert!(err.0[0]
            .detail
            .contains(&format!("version {}", SCHEMA_VERSION + 1)));
    }
}
