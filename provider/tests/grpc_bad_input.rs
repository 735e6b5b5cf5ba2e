//! Bad input sent straight over gRPC, past Terraform's own checks: malformed
//! msgpack and JSON (truncated, trailing bytes, huge lengths, deep nesting,
//! stray extensions, random bytes, invalid UTF-8) and well-formed values of
//! the wrong type, to every RPC that takes a value. Each call must come back
//! as a normal gRPC answer carrying an error diagnostic — not a transport
//! error, not a caught panic, not a hang — and the process must go on
//! serving afterwards.

#[path = "support/plugin.rs"]
mod plugin;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use plugin::{connect, start_plugin_with, terraform_like_client_cert};
use terraform_provider_idis::environment::schema as environment;
use terraform_provider_idis::protocol::cty::{self, Type, Value};
use terraform_provider_idis::protocol::proto::tfplugin5 as pb;
use terraform_provider_idis::protocol::proto::tfplugin5::provider_client::ProviderClient;
use terraform_provider_idis::provider::config;
use tonic::transport::Channel;

const RESOURCE: &str = "idis_environment";
const DATA_SOURCE: &str = "idis_account";

fn msgpack(bytes: Vec<u8>) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: bytes,
        json: Vec::new(),
    })
}

fn json(text: &[u8]) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: Vec::new(),
        json: text.to_vec(),
    })
}

fn object(attrs: &[(&str, Value)]) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// A well-formed config of `idis_environment`, msgpack-encoded.
fn valid_config() -> Vec<u8> {
    let v = object(&[
        ("name", Value::string("production")),
        (
            "network",
            object(&[("vpc_cidr", Value::string("10.0.0.0/16"))]),
        ),
        (
            "keys",
            object(&[("tenants", Value::strings(["acme", "globex"]))]),
        ),
    ]);
    cty::encode_msgpack(&v, &environment::schema().value_type()).unwrap()
}

/// msgpack of a partial object with the given (wrongly typed) attributes:
/// encoded with the type they have, decoded by the provider with the
/// schema's.
fn typed_as(attrs: &[(&str, Value, Type)]) -> Vec<u8> {
    let ty = Type::Object(
        attrs
            .iter()
            .map(|(k, _, t)| (k.to_string(), t.clone()))
            .collect::<BTreeMap<_, _>>(),
    );
    let v = object(
        &attrs
            .iter()
            .map(|(k, v, _)| (*k, v.clone()))
            .collect::<Vec<_>>(),
    );
    cty::encode_msgpack(&v, &ty).unwrap()
}

fn str_head(s: &str) -> Vec<u8> {
    let mut out = vec![0xa0 | s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

/// Deterministic noise (xorshift), so a failure replays.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Malformed msgpack for an object-typed value, by name.
fn malformed_msgpack() -> Vec<(&'static str, Vec<u8>)> {
    let valid = valid_config();
    let mut trailing = valid.clone();
    trailing.push(0xc0);
    let mut cases = vec![
        ("truncated in the middle", valid[..valid.len() / 2].to_vec()),
        ("truncated by one byte", valid[..valid.len() - 1].to_vec()),
        ("trailing bytes", trailing),
        ("reserved byte 0xc1", vec![0xc1]),
        (
            "map32 claiming 4 billion entries",
            vec![0xdf, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "str32 claiming 4 GiB",
            [
                vec![0x81],
                str_head("name"),
                vec![0xdb, 0xff, 0xff, 0xff, 0xff, b'x'],
            ]
            .concat(),
        ),
        (
            "array32 claiming 4 billion tenants",
            [
                vec![0x81],
                str_head("keys"),
                vec![0x81],
                str_head("tenants"),
                vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0],
            ]
            .concat(),
        ),
        (
            "ext32 claiming 4 GiB",
            vec![0xc9, 0xff, 0xff, 0xff, 0xff, 0x05],
        ),
        (
            "an extension as an attribute name",
            vec![0x81, 0xd4, 0x05, 0x00, 0xc0],
        ),
        ("100000 nested arrays", {
            let mut b = vec![0x91; 100_000];
            b.push(0xc0);
            b
        }),
        ("100000 nested maps", {
            let mut b = Vec::new();
            for _ in 0..100_000 {
                b.push(0x81);
                b.extend(str_head("cluster"));
            }
            b.push(0xc0);
            b
        }),
        (
            "invalid UTF-8 in a string",
            [vec![0x81], str_head("name"), vec![0xa2, 0xff, 0xfe]].concat(),
        ),
        (
            "invalid UTF-8 in an attribute name",
            vec![0x81, 0xa2, 0xc3, 0x28, 0xc0],
        ),
        ("a bare integer", vec![0x2a]),
    ];
    for seed in 1..=6u64 {
        cases.push(("random bytes", random_bytes(seed * 7919, 64 << seed)));
    }
    cases
}

/// Well-formed msgpack with the wrong types, and the attribute the error
/// must name.
fn wrongly_typed() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "a number where a string goes",
            typed_as(&[("name", Value::int(42), Type::Number)]),
            "name",
        ),
        (
            "a list where a block goes",
            typed_as(&[(
                "cluster",
                Value::List(vec![Value::int(1), Value::int(2)]),
                Type::list(Type::Number),
            )]),
            "cluster",
        ),
        (
            "a word where a number goes",
            typed_as(&[(
                "cluster",
                object(&[("node_min_size", Value::string("three"))]),
                Type::Object(BTreeMap::from([("node_min_size".into(), Type::String)])),
            )]),
            "node_min_size",
        ),
        (
            "a string where a list goes",
            typed_as(&[(
                "keys",
                object(&[("tenants", Value::string("acme"))]),
                Type::Object(BTreeMap::from([("tenants".into(), Type::String)])),
            )]),
            "tenants",
        ),
        (
            "a list where a tag value goes",
            typed_as(&[(
                "tags",
                Value::Map(BTreeMap::from([(
                    "team".to_string(),
                    Value::strings(["a"]),
                )])),
                Type::map(Type::list(Type::String)),
            )]),
            "team",
        ),
        (
            "an attribute the schema does not have",
            typed_as(&[("master_password", Value::string("hunter2"), Type::String)]),
            "master_password",
        ),
    ]
}

struct Client {
    grpc: ProviderClient<Channel>,
}

/// What one call came back with.
enum Outcome {
    Diagnostics(Vec<pb::Diagnostic>),
    Transport(tonic::Status),
    Hung,
}

macro_rules! call {
    ($client:expr, $method:ident, $request:expr) => {{
        let mut grpc = $client.grpc.clone();
        match tokio::time::timeout(Duration::from_secs(20), grpc.$method($request)).await {
            Err(_) => Outcome::Hung,
            Ok(Err(status)) => Outcome::Transport(status),
            Ok(Ok(response)) => Outcome::Diagnostics(response.into_inner().diagnostics),
        }
    }};
}

/// [`expect_error_diagnostic`]'s summary and detail.
fn expect_error(what: &str, outcome: Outcome) -> String {
    text_of(&expect_error_diagnostic(what, outcome))
}

fn text_of(d: &pb::Diagnostic) -> String {
    format!("{} {}", d.summary, d.detail)
}

/// The names along a diagnostic's attribute path (attributes and map keys).
fn path_names(d: &pb::Diagnostic) -> Vec<String> {
    use pb::attribute_path::step::Selector;
    d.attribute
        .iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.selector {
            Some(Selector::AttributeName(n)) | Some(Selector::ElementKeyString(n)) => {
                Some(n.clone())
            }
            _ => None,
        })
        .collect()
}

/// Asserts an answer with an error diagnostic that is not a caught panic,
/// and returns it.
fn expect_error_diagnostic(what: &str, outcome: Outcome) -> pb::Diagnostic {
    let diagnostics = match outcome {
        Outcome::Diagnostics(d) => d,
        Outcome::Transport(status) => {
            panic!("{what}: transport error instead of a diagnostic: {status:?}")
        }
        Outcome::Hung => panic!("{what}: no answer within 20 s"),
    };
    let error = diagnostics
        .iter()
        .find(|d| d.severity == pb::diagnostic::Severity::Error as i32)
        .unwrap_or_else(|| panic!("{what}: no error diagnostic in {diagnostics:?}"));
    assert!(
        !error.summary.contains("Internal error"),
        "{what}: the provider panicked (caught): {error:?}"
    );
    assert!(
        !error.summary.is_empty() && !error.detail.is_empty(),
        "{what}: an error with nothing to say: {error:?}"
    );
    error.clone()
}

fn provider_config(attrs: &[(&str, Value)]) -> Vec<u8> {
    cty::encode_msgpack(&object(attrs), &config::schema().value_type()).unwrap()
}

#[tokio::test]
async fn malformed_and_wrongly_typed_values_get_diagnostics_and_the_provider_keeps_serving() {
    let identity = terraform_like_client_cert();
    let log = std::env::temp_dir().join(format!("idis-grpc-bad-input-{}.log", std::process::id()));
    let mut plugin = start_plugin_with(
        &identity,
        &[("TF_LOG_PROVIDER", "debug")],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let channel = connect(&plugin, Some(&identity))
        .await
        .expect("mTLS connect");
    let client = Client {
        grpc: ProviderClient::new(channel),
    };
    let mut calls = 0;

    // Before configuration: ConfigureProvider itself, the validations and
    // the data source.
    let bad_configs: Vec<(&str, Vec<u8>)> = malformed_msgpack()
        .into_iter()
        .chain([
            (
                "max_retries as a word",
                typed_as(&[("max_retries", Value::string("lots"), Type::String)]),
            ),
            (
                "endpoints as a list",
                typed_as(&[(
                    "endpoints",
                    Value::strings(["http://x"]),
                    Type::list(Type::String),
                )]),
            ),
        ])
        .collect();
    for (name, bytes) in &bad_configs {
        let text = expect_error(
            &format!("ConfigureProvider, {name}"),
            call!(
                client,
                configure,
                pb::configure::Request {
                    terraform_version: "1.11.0".into(),
                    config: msgpack(bytes.clone()),
                    client_capabilities: None,
                }
            ),
        );
        assert!(
            text.contains("decode") || text.contains("msgpack"),
            "{name}: {text}"
        );
        expect_error(
            &format!("PrepareProviderConfig, {name}"),
            call!(
                client,
                prepare_provider_config,
                pb::prepare_provider_config::Request {
                    config: msgpack(bytes.clone()),
                }
            ),
        );
        calls += 2;
    }

    for (name, bytes) in malformed_msgpack() {
        expect_error(
            &format!("ValidateResourceTypeConfig, {name}"),
            call!(
                client,
                validate_resource_type_config,
                pb::validate_resource_type_config::Request {
                    client_capabilities: None,
                    type_name: RESOURCE.into(),
                    config: msgpack(bytes.clone()),
                }
            ),
        );
        expect_error(
            &format!("ValidateDataSourceConfig, {name}"),
            call!(
                client,
                validate_data_source_config,
                pb::validate_data_source_config::Request {
                    type_name: DATA_SOURCE.into(),
                    config: msgpack(bytes.clone()),
                }
            ),
        );
        expect_error(
            &format!("ReadDataSource, {name}"),
            call!(
                client,
                read_data_source,
                pb::read_data_source::Request {
                    type_name: DATA_SOURCE.into(),
                    config: msgpack(bytes),
                    provider_meta: None,
                    client_capabilities: None,
                }
            ),
        );
        calls += 3;
    }
    for (name, bytes, attribute) in wrongly_typed() {
        let error = expect_error_diagnostic(
            &format!("ValidateResourceTypeConfig, {name}"),
            call!(
                client,
                validate_resource_type_config,
                pb::validate_resource_type_config::Request {
                    client_capabilities: None,
                    type_name: RESOURCE.into(),
                    config: msgpack(bytes),
                }
            ),
        );
        let text = text_of(&error);
        assert!(
            text.contains(attribute),
            "{name}: the error does not name {attribute}: {text}"
        );
        // And points Terraform at it, so the CLI can show the line.
        assert_eq!(
            path_names(&error).last().map(String::as_str),
            Some(attribute),
            "{name}: the error's attribute path: {error:?}"
        );
        calls += 1;
    }
    let text = expect_error(
        "ValidateDataSourceConfig, an attribute the data source does not have",
        call!(
            client,
            validate_data_source_config,
            pb::validate_data_source_config::Request {
                type_name: DATA_SOURCE.into(),
                config: msgpack(typed_as(&[("bogus", Value::Bool(true), Type::Bool)])),
            }
        ),
    );
    assert!(text.contains("bogus"), "{text}");
    let text = expect_error(
        "ValidateResourceTypeConfig, a type this provider does not have",
        call!(
            client,
            validate_resource_type_config,
            pb::validate_resource_type_config::Request {
                client_capabilities: None,
                type_name: "idis_nothing".into(),
                config: msgpack(valid_config()),
            }
        ),
    );
    assert!(text.contains("idis_nothing"), "{text}");
    expect_error(
        "ValidateResourceTypeConfig, truncated JSON instead of msgpack",
        call!(
            client,
            validate_resource_type_config,
            pb::validate_resource_type_config::Request {
                client_capabilities: None,
                type_name: RESOURCE.into(),
                config: json(br#"{"name": "produ"#),
            }
        ),
    );
    calls += 3;

    // Configured against an endpoint nobody listens on, so that the
    // resource RPCs get past "not configured" and no AWS call can succeed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let configured = call!(
        client,
        configure,
        pb::configure::Request {
            terraform_version: "1.11.0".into(),
            config: msgpack(provider_config(&[
                ("region", Value::string("us-east-1")),
                ("access_key", Value::string("testing")),
                ("secret_key", Value::string("testing")),
                ("endpoint_url", Value::string(format!("http://{closed}"))),
                ("skip_credentials_validation", Value::Bool(true)),
                ("max_retries", Value::int(0)),
            ])),
            client_capabilities: None,
        }
    );
    match configured {
        Outcome::Diagnostics(d) => assert!(
            d.iter()
                .all(|d| d.severity != pb::diagnostic::Severity::Error as i32),
            "configuration failed: {d:?}"
        ),
        _ => panic!("ConfigureProvider did not answer"),
    }

    let valid = valid_config();
    for (name, bytes) in malformed_msgpack() {
        for slot in 0..3 {
            let mut values = [
                msgpack(valid.clone()),
                msgpack(valid.clone()),
                msgpack(valid.clone()),
            ];
            values[slot] = msgpack(bytes.clone());
            let [prior, proposed, config] = values;
            expect_error(
                &format!("PlanResourceChange, {name} in value {slot}"),
                call!(
                    client,
                    plan_resource_change,
                    pb::plan_resource_change::Request {
                        prior_identity: None,
                        type_name: RESOURCE.into(),
                        prior_state: prior,
                        proposed_new_state: proposed,
                        config,
                        prior_private: Vec::new(),
                        provider_meta: None,
                        client_capabilities: None,
                    }
                ),
            );
            let mut values = [
                msgpack(valid.clone()),
                msgpack(valid.clone()),
                msgpack(valid.clone()),
            ];
            values[slot] = msgpack(bytes.clone());
            let [prior, planned, config] = values;
            expect_error(
                &format!("ApplyResourceChange, {name} in value {slot}"),
                call!(
                    client,
                    apply_resource_change,
                    pb::apply_resource_change::Request {
                        planned_identity: None,
                        type_name: RESOURCE.into(),
                        prior_state: prior,
                        planned_state: planned,
                        config,
                        planned_private: Vec::new(),
                        provider_meta: None,
                    }
                ),
            );
            calls += 2;
        }
        expect_error(
            &format!("ReadResource, {name}"),
            call!(
                client,
                read_resource,
                pb::read_resource::Request {
                    current_identity: None,
                    type_name: RESOURCE.into(),
                    current_state: msgpack(bytes),
                    private: Vec::new(),
                    provider_meta: None,
                    client_capabilities: None,
                }
            ),
        );
        calls += 1;
    }
    for (name, bytes, attribute) in wrongly_typed() {
        let text = expect_error(
            &format!("PlanResourceChange, {name}"),
            call!(
                client,
                plan_resource_change,
                pb::plan_resource_change::Request {
                    prior_identity: None,
                    type_name: RESOURCE.into(),
                    prior_state: None,
                    proposed_new_state: msgpack(bytes.clone()),
                    config: msgpack(bytes.clone()),
                    prior_private: Vec::new(),
                    provider_meta: None,
                    client_capabilities: None,
                }
            ),
        );
        assert!(text.contains(attribute), "{name}: {text}");
        let text = expect_error(
            &format!("ReadResource, {name}"),
            call!(
                client,
                read_resource,
                pb::read_resource::Request {
                    current_identity: None,
                    type_name: RESOURCE.into(),
                    current_state: msgpack(bytes),
                    private: Vec::new(),
                    provider_meta: None,
                    client_capabilities: None,
                }
            ),
        );
        assert!(text.contains(attribute), "{name}: {text}");
        calls += 2;
    }

    // Raw state is JSON.
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge_number = format!(
        "{{\"cluster\": {{\"node_min_size\": 1{}}}}}",
        "0".repeat(100_000)
    );
    let raw_states: Vec<(&str, Vec<u8>)> = vec![
        (
            "truncated JSON",
            br#"{"name": "production", "network": {"#.to_vec(),
        ),
        ("100000 nested arrays", deep_json.into_bytes()),
        (
            "a string where a block goes",
            br#"{"network": "10.0.0.0/16"}"#.to_vec(),
        ),
        (
            "an attribute the schema does not have",
            br#"{"name": "p", "master_password": "x"}"#.to_vec(),
        ),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}".to_vec()),
        (
            "a number with 100000 digits where a list goes",
            huge_number
                .replace("node_min_size", "node_instance_types")
                .into_bytes(),
        ),
        ("random bytes", random_bytes(42, 512)),
    ];
    for (name, raw) in raw_states {
        expect_error(
            &format!("UpgradeResourceState, {name}"),
            call!(
                client,
                upgrade_resource_state,
                pb::upgrade_resource_state::Request {
                    type_name: RESOURCE.into(),
                    version: 0,
                    raw_state: Some(pb::RawState {
                        json: raw,
                        flatmap: Default::default(),
                    }),
                }
            ),
        );
        calls += 1;
    }
    expect_error(
        "UpgradeResourceState, legacy flatmap",
        call!(
            client,
            upgrade_resource_state,
            pb::upgrade_resource_state::Request {
                type_name: RESOURCE.into(),
                version: 0,
                raw_state: Some(pb::RawState {
                    json: Vec::new(),
                    flatmap: [("name".to_string(), "production".to_string())].into(),
                }),
            }
        ),
    );
    calls += 1;

    for id in [
        "",
        "Not A Name",
        "prod/../../etc",
        &"a".repeat(10_000),
        "us-east-1/",
        "\u{0}",
    ] {
        let text = expect_error(
            &format!(
                "ImportResourceState, id {:?}",
                id.chars().take(20).collect::<String>()
            ),
            call!(
                client,
                import_resource_state,
                pb::import_resource_state::Request {
                    identity: None,
                    type_name: RESOURCE.into(),
                    id: id.to_string(),
                    client_capabilities: None,
                }
            ),
        );
        assert!(text.contains("import id"), "{text}");
        calls += 1;
    }

    // Still serving: the schema comes back whole and the process is alive.
    let schema = ProviderClient::new(connect(&plugin, Some(&identity)).await.expect("reconnect"))
        .get_schema(pb::get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema answers after the bad input")
        .into_inner();
    assert!(schema.resource_schemas.contains_key(RESOURCE));
    assert!(
        plugin.child.try_wait().unwrap().is_none(),
        "the provider process exited"
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        !log_text.contains("panicked"),
        "a panic was caught: {log_text}"
    );
    eprintln!("{calls} bad requests answered with error diagnostics");
    assert!(
        calls >= 250,
        "only {calls} calls: a case list came out empty"
    );
}

/// Configuration errors about credentials say which setting is wrong, never
/// what it holds: not in the diagnostics, not in the provider's trace log.
#[tokio::test]
async fn credentials_never_appear_in_diagnostics_or_the_trace_log() {
    const SECRET_KEY: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY";
    const TOKEN: &str = "FwoGZXIvYXdzEBSESSIONTOKEN0123456789abcdef";
    let identity = terraform_like_client_cert();
    let log = std::env::temp_dir().join(format!("idis-grpc-secrets-{}.log", std::process::id()));
    let plugin = start_plugin_with(
        &identity,
        &[("TF_LOG_PROVIDER", "trace")],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let channel = connect(&plugin, Some(&identity))
        .await
        .expect("mTLS connect");
    let client = Client {
        grpc: ProviderClient::new(channel),
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut said = Vec::new();

    // A secret key without its access key: refused by validation.
    let half = provider_config(&[
        ("secret_key", Value::string(SECRET_KEY)),
        ("token", Value::string(TOKEN)),
    ]);
    said.push(expect_error(
        "PrepareProviderConfig, secret_key without access_key",
        call!(
            client,
            prepare_provider_config,
            pb::prepare_provider_config::Request {
                config: msgpack(half.clone()),
            }
        ),
    ));
    said.push(expect_error(
        "ConfigureProvider, secret_key without access_key",
        call!(
            client,
            configure,
            pb::configure::Request {
                terraform_version: "1.11.0".into(),
                config: msgpack(half),
                client_capabilities: None,
            }
        ),
    ));
    // Complete credentials, but STS cannot be reached to check them.
    let unreachable = provider_config(&[
        ("region", Value::string("us-east-1")),
        ("access_key", Value::string("AKIAIOSFODNN7EXAMPLE")),
        ("secret_key", Value::string(SECRET_KEY)),
        ("token", Value::string(TOKEN)),
        ("endpoint_url", Value::string(format!("http://{closed}"))),
        ("max_retries", Value::int(0)),
    ]);
    said.push(expect_error(
        "ConfigureProvider, STS unreachable",
        call!(
            client,
            configure,
            pb::configure::Request {
                terraform_version: "1.11.0".into(),
                config: msgpack(unreachable),
                client_capabilities: None,
            }
        ),
    ));
    // The same secret beside a wrongly typed setting: refused at decoding.
    said.push(expect_error(
        "ConfigureProvider, secret beside a wrongly typed setting",
        call!(
            client,
            configure,
            pb::configure::Request {
                terraform_version: "1.11.0".into(),
                config: msgpack(typed_as(&[
                    ("secret_key", Value::string(SECRET_KEY), Type::String),
                    (
                        "max_retries",
                        Value::strings([TOKEN]),
                        Type::list(Type::String)
                    ),
                ])),
                client_capabilities: None,
            }
        ),
    ));
    drop(plugin);

    assert!(
        said[0].contains("secret_key is set but access_key is not"),
        "{}",
        said[0]
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        log_text.contains("TRACE") || log_text.contains("trace"),
        "no trace log captured"
    );
    for text in said.iter().chain([&log_text]) {
        assert!(!text.contains(SECRET_KEY), "the secret key leaked: {text}");
        assert!(!text.contains(TOKEN), "the session token leaked: {text}");
    }
}
