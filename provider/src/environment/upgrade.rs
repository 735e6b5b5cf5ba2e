//! State upgrades of `idis_environment`, one schema version at a time.
//!
//! - 0 → 1: every component block gains `enforced`, the settings the
//!   provider makes without a knob. A 0.1.0 state has none; it is filled
//!   with what the plan wants, so the first refresh after the upgrade
//!   reports only settings AWS really has otherwise (the refresh judges
//!   them at once), not every environment as changed.

use crate::components::describe::{planned_guards, Component, Visit, ENFORCED};
use crate::components::{self};
use crate::protocol::cty::Value;
use crate::protocol::diag::{Diagnostic, Diagnostics};

use super::schema::SCHEMA_VERSION;

struct FillGuards<'a>(&'a mut Value);

impl Visit for FillGuards<'_> {
    fn visit<C: Component>(&mut self) {
        let block = self.0.get_attr(C::NAME).clone();
        if block.is_null() || !block.get_attr(ENFORCED).is_null() {
            return;
        }
        let made = planned_guards(C::guards(), &block);
        if made.is_known() {
            self.0.attr_mut(C::NAME).set_attr(ENFORCED, made);
        }
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
    if version < 1 {
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
    fn a_state_from_a_newer_provider_is_refused_with_the_versions() {
        let err = upgrade(SCHEMA_VERSION + 1, Value::Null).unwrap_err();
        assert!(err.0[0]
            .detail
            .contains(&format!("version {}", SCHEMA_VERSION + 1)));
    }
}
