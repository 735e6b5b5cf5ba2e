//! Value decoding at the gRPC border: the bytes of a `DynamicValue`, read as
//! msgpack or as JSON against the schemas the provider really serves plus
//! the awkward generic types (dynamic, nested collections, tuples).
//!
//! The first input byte picks the type and the codec, the rest is the
//! payload. Beyond "never panics", every value that decodes must encode
//! again (a value the provider accepted is one it can answer with) and
//! decode back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use terraform_provider_idis::protocol::cty::{self, Type, Value};

fn types() -> &'static [Type] {
    static TYPES: OnceLock<Vec<Type>> = OnceLock::new();
    TYPES.get_or_init(|| {
        vec![
            terraform_provider_idis::environment::schema::schema().value_type(),
            terraform_provider_idis::provider::config::schema().value_type(),
            terraform_provider_idis::data_sources::account::schema().value_type(),
            Type::Dynamic,
            Type::list(Type::Dynamic),
            Type::map(Type::Number),
            Type::set(Type::String),
            Type::Tuple(vec![Type::String, Type::Number, Type::Dynamic]),
            Type::Object(
                [
                    ("n".to_string(), Type::Number),
                    ("s".to_string(), Type::set(Type::map(Type::Bool))),
                    ("l".to_string(), Type::list(Type::list(Type::String))),
                ]
                .into_iter()
                .collect(),
            ),
        ]
    })
}

fn contains_dynamic(ty: &Type) -> bool {
    match ty {
        Type::Dynamic => true,
        Type::List(t) | Type::Set(t) | Type::Map(t) => contains_dynamic(t),
        Type::Object(attrs) => attrs.values().any(contains_dynamic),
        Type::Tuple(elems) => elems.iter().any(contains_dynamic),
        _ => false,
    }
}

fn check_msgpack(v: &Value, ty: &Type) {
    match cty::encode_msgpack(v, ty) {
        Ok(bytes) => {
            let again = cty::decode_msgpack(&bytes, ty)
                .unwrap_or_else(|e| panic!("re-decoding our own msgpack failed: {e}; value {v:?}"));
            assert_eq!(&again, v, "msgpack round trip changed the value");
        }
        // Under "dynamic" a decoded collection may mix element types that
        // no single cty type describes; only then may encoding refuse.
        Err(e) => assert!(
            contains_dynamic(ty),
            "a decoded value does not encode: {e}; value {v:?}"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let types = types();
    let ty = &types[(selector as usize >> 1) % types.len()];
    if selector & 1 == 0 {
        if let Ok(v) = cty::decode_msgpack(payload, ty) {
            check_msgpack(&v, ty);
        }
    } else if let Ok(v) = cty::decode_json(payload, ty) {
        check_msgpack(&v, ty);
        // JSON holds no unknowns, so what came from JSON goes back to JSON.
        if !contains_dynamic(ty) {
            let json = cty::encode_json(&v, ty).unwrap_or_else(|e| {
                panic!("a value decoded from JSON does not encode as JSON: {e}")
            });
            let again = cty::decode_json(&json, ty)
                .unwrap_or_else(|e| panic!("re-decoding our own JSON failed: {e}"));
            assert_eq!(again, v, "JSON round trip changed the value");
        }
    }
});
