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
use crate::logging;
use crate::protocol::cty::{self, Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

use super::schema::{identity_schema, schema, IDENTITY_VERSION, SCHEMA_VERSION};

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

fn newer(what: &str, version: i64, known: i64) -> Diagnostics {
    Diagnostic::error(
        format!("{what} written by a newer provider"),
        format!(
            "This idis_environment was stored with {} version {version}; this provider knows versions up to {known}. \
             Use the provider version that wrote the state (or a newer one): an older provider cannot read it without losing what it does not know.",
            what.to_lowercase()
        ),
    )
    .into()
}

/// Attributes an earlier schema version had and the current one does not
/// (dotted paths, blocks included). Versions 0 to 2 only ever added
/// attributes, so there is none yet; an attribute removed or renamed later
/// goes here (a renamed one is mapped in [`upgrade`] first, and carries a
/// `deprecation_message` for a version before it goes).
const RETIRED: &[&str] = &[];

/// Removes the retired attributes of `retired` that a state of an earlier
/// version still holds, and returns their paths. Any other attribute the
/// schema does not know stays, and fails the typed read that follows:
/// no version of this provider wrote it.
fn prune(
    json: &mut serde_json::Value,
    ty: &Type,
    path: &str,
    retired: &[&str],
    dropped: &mut Vec<String>,
) {
    match (json, ty) {
        (serde_json::Value::Object(members), Type::Object(attrs)) => {
            members.retain(|name, _| {
                let at = format!("{path}{name}");
                let keep = attrs.contains_key(name) || !retired.contains(&at.as_str());
                if !keep {
                    dropped.push(at);
                }
                keep
            });
            for (name, item) in members.iter_mut() {
                if let Some(inner) = attrs.get(name) {
                    prune(item, inner, &format!("{path}{name}."), retired, dropped);
                }
            }
        }
        (serde_json::Value::Array(items), Type::List(elem) | Type::Set(elem)) => {
            for item in items {
                prune(item, elem, path, retired, dropped);
            }
        }
        _ => {}
    }
}

/// Reads the raw JSON state Terraform stored with schema `version` and
/// brings it to the current schema. A state of the current version must
/// fit the schema exactly; one of an earlier version is read for what that
/// version had: attributes since retired are dropped (and logged), those
/// added since are null until [`upgrade`] fills them.
pub fn upgrade_raw(version: i64, raw: &[u8]) -> Result<Value, Diagnostics> {
    upgrade_raw_with(version, raw, RETIRED)
}

fn upgrade_raw_with(version: i64, raw: &[u8], retired: &[&str]) -> Result<Value, Diagnostics> {
    if version > SCHEMA_VERSION {
        return Err(newer("Schema", version, SCHEMA_VERSION));
    }
    let ty = schema().value_type();
    let unreadable = |e: String| {
        Diagnostics::from(Diagnostic::error(
            "Cannot read stored state",
            format!("The stored state of this idis_environment (schema version {version}) cannot be read: {e}. Restore the state file from a backup, or remove the resource from state and import it again (terraform import)."),
        ))
    };
    let state = if version == SCHEMA_VERSION {
        cty::decode_json(raw, &ty).map_err(|e| unreadable(e.to_string()))?
    } else {
        let mut json: serde_json::Value =
            serde_json::from_slice(raw).map_err(|e| unreadable(e.to_string()))?;
        let mut dropped = Vec::new();
        prune(&mut json, &ty, "", retired, &mut dropped);
        if !dropped.is_empty() {
            logging::debug(&format!(
                "state upgrade from schema version {version}: attributes no longer in the schema dropped: {}",
                dropped.join(", ")
            ));
        }
        let bytes = serde_json::to_vec(&json).map_err(|e| unreadable(e.to_string()))?;
        cty::decode_json(&bytes, &ty).map_err(|e| unreadable(e.to_string()))?
    };
    upgrade(version, state)
}

/// Reads a stored identity. There is one identity version so far; a newer
/// one is refused like a newer state.
pub fn upgrade_identity(version: i64, raw: &[u8]) -> Result<Value, Diagnostics> {
    if version > IDENTITY_VERSION {
        return Err(newer("Identity", version, IDENTITY_VERSION));
    }
    cty::decode_json(raw, &identity_schema().value_type()).map_err(|e| {
        Diagnostic::error(
            "Cannot read stored identity",
            format!("The stored identity of this idis_environment (version {version}) cannot be read: {e}."),
        )
        .into()
    })
}

/// The state of schema `version` in the current schema's shape.
pub fn upgrade(version: i64, mut state: Value) -> Result<Value, Diagnostics> {
    if version > SCHEMA_VERSION {
        return Err(newer("Schema", version, SCHEMA_VERSION));
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
        let err = upgrade_raw(SCHEMA_VERSION + 1, b"{}").unwrap_err();
        assert_eq!(err.0[0].summary, "Schema written by a newer provider");
        assert!(err.0[0].detail.contains(&format!(
            "version {}; this provider knows versions up to {SCHEMA_VERSION}",
            SCHEMA_VERSION + 1
        )));
        let err = upgrade_identity(IDENTITY_VERSION + 1, b"{}").unwrap_err();
        assert_eq!(err.0[0].summary, "Identity written by a newer provider");
    }

    #[test]
    fn an_earlier_state_is_read_for_what_it_had_the_current_one_exactly() {
        let raw = br#"{"name":"prod","region":"us-east-1","retired_attribute":"x","network":{"vpc_cidr":"10.0.0.0/16","old_knob":true}}"#;
        let retired = ["retired_attribute", "network.old_knob"];
        let up = upgrade_raw_with(0, raw, &retired).unwrap();
        assert_eq!(up.get_attr("name"), &Value::string("prod"));
        assert_eq!(
            up.get_attr("network").get_attr("vpc_cidr"),
            &Value::string("10.0.0.0/16")
        );
        // What the upgrade fills is there.
        assert!(up
            .get_attr("network")
            .get_attr(ENFORCED)
            .as_string_map()
            .is_some());
        // The same attributes in a state of the current version are an
        // error, and so is an attribute no version had.
        let err = upgrade_raw_with(SCHEMA_VERSION, raw, &retired).unwrap_err();
        assert_eq!(err.0[0].summary, "Cannot read stored state");
        assert!(
            err.0[0].detail.contains("unexpected attribute"),
            "{}",
            err.0[0].detail
        );
        let err = upgrade_raw_with(0, raw, &["retired_attribute"]).unwrap_err();
        assert!(err.0[0].detail.contains("old_knob"), "{}", err.0[0].detail);
        // A state of version 0 as 0.1.0 wrote it (no `enforced`, no cache
        // engine) reads with the real list.
        let v0 = br#"{"name":"prod","cache":{"engine_version":"7"},"network":{"vpc_cidr":"10.0.0.0/16"}}"#;
        let up = upgrade_raw(0, v0).unwrap();
        assert_eq!(
            up.get_attr("cache").get_attr("engine"),
            &Value::string("redis")
        );
    }

    #[test]
    fn an_identity_is_read_back() {
        let v = upgrade_identity(0, br#"{"name":"prod","region":"eu-west-1"}"#).unwrap();
        assert_eq!(v.get_attr("region"), &Value::string("eu-west-1"));
        assert!(upgrade_identity(0, br#"{"name":"prod","zone":"x"}"#).is_err());
    }
}
