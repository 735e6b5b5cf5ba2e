//! `data "idis_environment"`: the outputs of an environment another stack
//! owns (endpoints, ARNs, ids, `app_config`, `secret_refs`), looked up by
//! name. Application stacks read it instead of the managing stack's state.
//!
//! It is the resource's import read, not a second one: the state a
//! configuration with only `name` would plan, refreshed from AWS by
//! [`orchestrate::refresh`] (every component found by its deterministic
//! name and ownership tags, concurrently), then narrowed to the outputs.
//! Its attributes are the resource's computed attributes, descriptions
//! included, so the two cannot drift apart.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::environment::{orchestrate, schema as resource, validate};
use crate::protocol::cty::{Path, Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Schema};
use crate::provider::config::Aws;

pub const TYPE_NAME: &str = "idis_environment";

/// The resource's outputs: its attributes that are computed and cannot be
/// set (`id`, `vpc_id`, ..., `app_config`, `secret_refs`).
fn outputs() -> Vec<Attribute> {
    resource::schema()
        .block
        .attributes
        .into_iter()
        .filter(|a| a.computed && !a.optional && !a.required)
        .collect()
}

pub fn schema() -> Schema {
    let mut block = Block::new("The outputs of an existing IDIS environment (endpoints, ARNs, ids, `app_config`, `secret_refs`), looked up in AWS by name, for stacks that use an environment without owning it. Components are found as the resource finds them: by their deterministic names `idis-<name>-*` and the tag `idis:environment`. An output of a component that does not exist (no web ACL when `edge.waf` is off) is null.")
        .attr(Attribute::required("name", Type::String, "Name of the environment: the `name` of its `idis_environment` (the module's `environment` input). Lowercase letters, digits and dashes, starting with a letter, at most 23 characters."))
        .attr(Attribute::optional_computed("region", Type::String, "Region the environment is in. Default: the provider's region."));
    for a in outputs() {
        block = block.attr(a);
    }
    Schema::new(0, block)
}

/// The same checks as the resource's `name` and `region` (the config has
/// no component blocks, so nothing else applies).
pub fn validate(config: &Value) -> Diagnostics {
    validate::validate(config)
}

/// Narrows an environment's state to this data source's attributes.
fn project(state: &Value) -> Value {
    let mut out = Value::Object(BTreeMap::new());
    for name in ["name", "region"]
        .into_iter()
        .map(str::to_string)
        .chain(outputs().into_iter().map(|a| a.name))
    {
        out.set_attr(&name, state.get_attr(&name).clone());
    }
    out
}

fn not_found(name: &str, region: &str) -> Diagnostic {
    Diagnostic::error(
        "Environment not found",
        format!(
            "No IDIS environment named {name:?} was found in {region}: no AWS object is tagged \
             idis:environment = {name:?} and none is named idis-{name}-*. Check `name` (the `name` \
             of its idis_environment, the module's `environment` input), `region` (default: the \
             provider's region), and that the provider's credentials are for the account that \
             holds the environment."
        ),
    )
    .at(Path::root().attr("name"))
}

pub async fn read(
    aws: &Arc<Aws>,
    config: &Value,
    cancel: &CancellationToken,
) -> Result<Value, Diagnostics> {
    let diagnostics = validate(config);
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    let name = config.get_attr("name").as_str().unwrap_or_default();
    let region = config
        .get_attr("region")
        .as_str()
        .unwrap_or(&aws.region)
        .to_string();
    let Some(state) = orchestrate::lookup(aws, name, &region, cancel).await? else {
        return Err(not_found(name, &region).into());
    };
    Ok(project(&state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::plan;
    use crate::protocol::cty::PathStep;

    fn config(name: &str, region: Option<&str>) -> Value {
        let mut c = Value::Object(BTreeMap::new());
        c.set_attr("name", Value::string(name));
        c.set_attr("region", region.map_or(Value::Null, Value::string));
        c
    }

    #[test]
    fn it_offers_every_output_of_the_resource_with_the_same_description() {
        let resource = resource::schema();
        let ours = schema();
        let outputs: Vec<&Attribute> = resource
            .block
            .attributes
            .iter()
            .filter(|a| a.computed && !a.optional)
            .collect();
        assert_eq!(outputs.len(), 77);
        for a in outputs {
            let mine = ours.block.attribute(&a.name).expect(&a.name);
            assert!(mine.computed && !mine.optional, "{}", a.name);
            assert_eq!(mine.description, a.description);
            assert_eq!(mine.ty, a.ty);
        }
        // name and region are the only arguments; nothing else is settable.
        let settable: Vec<&str> = ours
            .block
            .attributes
            .iter()
            .filter(|a| a.required || a.optional)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(settable, ["name", "region"]);
        assert!(ours.block.blocks.is_empty());
    }

    #[test]
    fn a_bad_name_or_region_is_refused_naming_the_attribute() {
        assert!(validate(&config("production", None)).0.is_empty());
        assert!(validate(&config("staging-2", Some("eu-west-1")))
            .0
            .is_empty());
        for (c, attr) in [
            (config("Production", None), "name"),
            (config("prod--x", None), "name"),
            (config("a-name-that-is-far-too-long", None), "name"),
            (config("production", Some("moon-1")), "region"),
        ] {
            let d = validate(&c);
            assert!(d.has_errors(), "{c:?}");
            let path = d.0[0].path.clone().expect("path");
            assert_eq!(path.0, vec![PathStep::Attr(attr.to_string())]);
        }
    }

    #[test]
    fn unknown_name_is_not_judged_at_validation() {
        let mut c = config("x", None);
        c.set_attr("name", Value::Unknown);
        assert!(validate(&c).0.is_empty());
    }

    #[test]
    fn the_lookup_keeps_only_the_outputs_and_the_arguments() {
        let c = config("production", None);
        let mut state = plan::plan(&Value::Null, &c, &c, "us-east-1").planned;
        state.set_attr("vpc_id", Value::string("vpc-1"));
        state.set_attr("database_endpoint", Value::string("db.example"));
        let v = project(&state);
        let Value::Object(attrs) = &v else {
            panic!("an object")
        };
        let names: Vec<&str> = attrs.keys().map(String::as_str).collect();
        let mut expected: Vec<String> = schema()
            .block
            .attributes
            .iter()
            .map(|a| a.name.clone())
            .collect();
        expected.sort();
        assert_eq!(names, expected);
        assert_eq!(v.get_attr("vpc_id"), &Value::string("vpc-1"));
        assert_eq!(
            v.get_attr("database_endpoint"),
            &Value::string("db.example")
        );
        assert_eq!(v.get_attr("region"), &Value::string("us-east-1"));
        assert_eq!(
            v.get_attr("cluster_name"),
            &Value::string("idis-production")
        );
    }

    #[test]
    fn an_environment_exists_in_a_region_by_its_regional_components_only() {
        let c = config("production", None);
        let mut state = plan::plan(&Value::Null, &c, &c, "us-east-1").planned;
        crate::environment::observe::resolve_unknowns(&mut state);
        assert!(!orchestrate::exists_in_region(&Value::Null));
        state.set_attr("shield_protection_id", Value::string("prot-1"));
        assert!(!orchestrate::exists_in_region(&state));
        state.set_attr(
            "database_arn",
            Value::string("arn:aws:rds:us-east-1:1:db:x"),
        );
        assert!(orchestrate::exists_in_region(&state));
    }

    #[test]
    fn not_found_names_the_name_the_region_and_what_to_check() {
        let d = not_found("billing", "eu-west-1");
        assert!(d.detail.contains("\"billing\""));
        assert!(d.detail.contains("eu-west-1"));
        assert!(d.detail.contains("idis-billing-*"));
        assert!(d.detail.contains("credentials"));
        assert_eq!(d.path, Some(Path::root().attr("name")));
    }
}
