//! Configuration validation and planning of `idis_environment`, as Terraform
//! drives them: a config arrives as a msgpack (or JSON) `DynamicValue` of
//! the resource's schema, is validated (ValidateResourceTypeConfig), then
//! planned against no prior state and against itself as prior state
//! (PlanResourceChange). The provider block's validation runs on the same
//! bytes read with the provider schema.
//!
//! Beyond "never panics": a validation error always names an attribute
//! path, and a config that validates cleanly plans into a value that
//! encodes under the schema.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use terraform_provider_idis::environment::{observe, plan, schema, validate};
use terraform_provider_idis::protocol::cty::{self, Type, Value};
use terraform_provider_idis::provider::config;

struct Types {
    environment: Type,
    provider: Type,
}

fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| Types {
        environment: schema::schema().value_type(),
        provider: config::schema().value_type(),
    })
}

fn decode(bytes: &[u8], ty: &Type) -> Option<Value> {
    match bytes.first() {
        Some(b'{') => cty::decode_json(bytes, ty).ok(),
        _ => cty::decode_msgpack(bytes, ty).ok(),
    }
}

fuzz_target!(|data: &[u8]| {
    let types = types();
    if let Some(config) = decode(data, &types.environment) {
        let diags = validate::validate(&config);
        for d in &diags.0 {
            assert!(
                d.path.is_some(),
                "a validation diagnostic names no attribute: {d:?}"
            );
        }
        if !diags.has_errors() && !config.is_null() {
            let created = plan::plan(&Value::Null, &config, &config, "us-east-1");
            if !created.diagnostics.has_errors() {
                cty::encode_msgpack(&created.planned, &types.environment)
                    .unwrap_or_else(|e| panic!("planned state does not fit the schema: {e}"));
                // That plan, with AWS's answers filled in, as the prior
                // state of an update plan and of a destroy plan.
                let mut state = created.planned;
                observe::resolve_unknowns(&mut state);
                let _ = plan::plan(&state, &config, &config, "us-east-1");
                let _ = plan::plan(&state, &Value::Null, &Value::Null, "us-east-1");
            }
        }
    }
    if let Some(config) = decode(data, &types.provider) {
        let _ = config::validate(&config);
    }
});
