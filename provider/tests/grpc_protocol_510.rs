//! What protocol 5.9 and 5.10 add, asked of the real binary over mTLS as
//! Terraform 1.12+ asks it, without Terraform: the identity schema and its
//! upgrade, the state upgrader's refusal of a schema from the future (which
//! Terraform itself refuses before asking, so no e2e test can reach it),
//! the 0.1.0 state fixture through UpgradeResourceState, import by a bad
//! identity, the streamed ListResource (a failure is an event, never a
//! broken stream), ephemeral validation, the actions' schemas and
//! validation, and what this provider does not serve (an unknown action,
//! GenerateResourceConfig), each answered with a diagnostic. The process
//! still answers afterwards.

#[path = "support/plugin.rs"]
mod plugin;

use std::time::Duration;

use plugin::{connect, start_plugin, terraform_like_client_cert};
use terraform_provider_idis::environment::schema as environment;
use terraform_provider_idis::ephemeral::cluster_auth;
use terraform_provider_idis::protocol::cty::{self, Value};
use terraform_provider_idis::protocol::proto::tfplugin5 as pb;
use terraform_provider_idis::protocol::proto::tfplugin5::provider_client::ProviderClient;
use tonic::transport::Channel;

const RESOURCE: &str = "idis_environment";

fn errors(diagnostics: &[pb::Diagnostic]) -> String {
    diagnostics
        .iter()
        .filter(|d| d.severity == pb::diagnostic::Severity::Error as i32)
        .map(|d| format!("{}: {}", d.summary, d.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

fn object(attrs: &[(&str, Value)]) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

async fn client() -> (plugin::Plugin, ProviderClient<Channel>) {
    let identity = terraform_like_client_cert();
    let plugin = start_plugin(&identity);
    let channel = connect(&plugin, Some(&identity))
        .await
        .expect("mTLS connect");
    (plugin, ProviderClient::new(channel))
}

#[tokio::test]
async fn metadata_and_identity_schema_name_what_terraform_1_12_and_later_use() {
    let (_plugin, mut grpc) = client().await;
    let meta = grpc
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    let ephemeral: Vec<&str> = meta
        .ephemeral_resources
        .iter()
        .map(|e| e.type_name.as_str())
        .collect();
    assert_eq!(
        ephemeral,
        ["idis_cluster_auth", "idis_database_credentials"]
    );
    let lists: Vec<&str> = meta
        .list_resources
        .iter()
        .map(|e| e.type_name.as_str())
        .collect();
    assert_eq!(lists, [RESOURCE]);
    let actions: Vec<&str> = meta.actions.iter().map(|a| a.type_name.as_str()).collect();
    assert_eq!(
        actions,
        [
            "idis_dr_promote",
            "idis_failover_drill",
            "idis_restore_check"
        ]
    );
    let caps = meta.server_capabilities.unwrap();
    assert!(caps.plan_destroy && caps.get_provider_schema_optional);
    assert!(!caps.generate_resource_config && !caps.move_resource_state);

    let schema = grpc
        .get_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.list_resource_schemas.contains_key(RESOURCE));
    let restore = schema.action_schemas["idis_restore_check"]
        .schema
        .as_ref()
        .and_then(|s| s.block.as_ref())
        .unwrap();
    let args: Vec<(&str, bool)> = restore
        .attributes
        .iter()
        .map(|a| (a.name.as_str(), a.required))
        .collect();
    assert_eq!(
        args,
        [
            ("environment", true),
            ("region", false),
            ("instance_class", false)
        ]
    );
    let token = &schema.ephemeral_resource_schemas["idis_cluster_auth"]
        .block
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|a| a.name == "token")
        .unwrap()
        .clone();
    assert!(token.sensitive && token.computed);

    let identities = grpc
        .get_resource_identity_schemas(pb::get_resource_identity_schemas::Request {})
        .await
        .unwrap()
        .into_inner();
    let identity = &identities.identity_schemas[RESOURCE];
    assert_eq!(identity.version, 0);
    let rules: Vec<(&str, bool, bool)> = identity
        .identity_attributes
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                a.required_for_import,
                a.optional_for_import,
            )
        })
        .collect();
    assert_eq!(rules, [("name", true, false), ("region", false, true)]);
}

#[tokio::test]
async fn identities_and_states_upgrade_or_are_refused_with_the_versions() {
    let (_plugin, mut grpc) = client().await;
    let raw = |json: &[u8]| {
        Some(pb::RawState {
            json: json.to_vec(),
            flatmap: Default::default(),
        })
    };
    let same = grpc
        .upgrade_resource_identity(pb::upgrade_resource_identity::Request {
            type_name: RESOURCE.into(),
            version: 0,
            raw_identity: raw(br#"{"name":"prod","region":"eu-west-1"}"#),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&same.diagnostics), "");
    let data = same.upgraded_identity.unwrap().identity_data.unwrap();
    let value =
        cty::decode_msgpack(&data.msgpack, &environment::identity_schema().value_type()).unwrap();
    assert_eq!(
        value,
        object(&[
            ("name", Value::string("prod")),
            ("region", Value::string("eu-west-1"))
        ])
    );
    let newer = grpc
        .upgrade_resource_identity(pb::upgrade_resource_identity::Request {
            type_name: RESOURCE.into(),
            version: 1,
            raw_identity: raw(br#"{"name":"prod"}"#),
        })
        .await
        .unwrap()
        .into_inner();
    let text = errors(&newer.diagnostics);
    assert!(
        text.starts_with("Identity written by a newer provider"),
        "{text}"
    );
    assert!(
        text.contains("version 1; this provider knows versions up to 0"),
        "{text}"
    );

    let future = grpc
        .upgrade_resource_state(pb::upgrade_resource_state::Request {
            type_name: RESOURCE.into(),
            version: 9,
            raw_state: raw(br#"{"name":"prod"}"#),
        })
        .await
        .unwrap()
        .into_inner();
    let text = errors(&future.diagnostics);
    assert!(
        text.starts_with("Schema written by a newer provider"),
        "{text}"
    );
    assert!(
        text.contains("schema version 9; this provider knows versions up to 2"),
        "{text}"
    );

    // The state the 0.1.0 binary wrote, as Terraform hands it over.
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/state-v0/terraform.tfstate"
        ))
        .unwrap(),
    )
    .unwrap();
    let instance = &fixture["resources"][0]["instances"][0];
    assert_eq!(instance["schema_version"], 0);
    let up = grpc
        .upgrade_resource_state(pb::upgrade_resource_state::Request {
            type_name: RESOURCE.into(),
            version: 0,
            raw_state: raw(&serde_json::to_vec(&instance["attributes"]).unwrap()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&up.diagnostics), "");
    let state = cty::decode_msgpack(
        &up.upgraded_state.unwrap().msgpack,
        &environment::schema().value_type(),
    )
    .unwrap();
    assert_eq!(state.get_attr("name"), &Value::string("legacy"));
    assert_eq!(
        state.get_attr("cache").get_attr("engine"),
        &Value::string("redis")
    );
    assert!(state
        .get_attr("network")
        .get_attr("enforced")
        .as_string_map()
        .is_some_and(|m| m.contains_key("security_groups")));
}

#[tokio::test]
async fn bad_identities_lists_ephemeral_configs_and_unserved_calls_get_diagnostics() {
    let (mut plugin, mut grpc) = client().await;
    // A list of a type that does not exist, and one before the provider is
    // configured: each is one event with the error, then the stream ends.
    for (type_name, expected) in [
        ("idis_nothing", "Unknown list resource type"),
        (RESOURCE, "Provider not configured"),
    ] {
        let mut stream = grpc
            .list_resource(pb::list_resource::Request {
                type_name: type_name.into(),
                config: None,
                include_resource_object: true,
                limit: 100,
            })
            .await
            .unwrap()
            .into_inner();
        let mut events = Vec::new();
        while let Some(event) = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("the stream ends")
            .expect("no transport error")
        {
            events.push(event);
        }
        assert_eq!(events.len(), 1, "{type_name}: {events:?}");
        let text = errors(&events[0].diagnostic);
        assert!(text.contains(expected), "{type_name}: {text}");
        assert!(events[0].identity.is_none());
    }
    let list_config = |region: &str| {
        cty::encode_msgpack(
            &object(&[("region", Value::string(region))]),
            &terraform_provider_idis::environment::list::schema().value_type(),
        )
        .unwrap()
    };
    let validated = grpc
        .validate_list_resource_config(pb::validate_list_resource_config::Request {
            type_name: RESOURCE.into(),
            config: Some(pb::DynamicValue {
                msgpack: list_config("moon-1"),
                json: Vec::new(),
            }),
            include_resource_object: None,
            limit: None,
        })
        .await
        .unwrap()
        .into_inner();
    let bad = &validated.diagnostics[0];
    assert_eq!(bad.summary, "Invalid region");
    let path = bad.attribute.as_ref().unwrap();
    assert_eq!(path.steps.len(), 1);

    let ephemeral_config = cty::encode_msgpack(
        &object(&[("name", Value::string("Prod!")), ("region", Value::Null)]),
        &cluster_auth::schema().value_type(),
    )
    .unwrap();
    let validated = grpc
        .validate_ephemeral_resource_config(pb::validate_ephemeral_resource_config::Request {
            type_name: cluster_auth::TYPE_NAME.into(),
            config: Some(pb::DynamicValue {
                msgpack: ephemeral_config.clone(),
                json: Vec::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(errors(&validated.diagnostics).contains("\"Prod!\""));
    let opened = grpc
        .open_ephemeral_resource(pb::open_ephemeral_resource::Request {
            type_name: cluster_auth::TYPE_NAME.into(),
            config: Some(pb::DynamicValue {
                msgpack: ephemeral_config,
                json: Vec::new(),
            }),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(opened.result.is_none(), "a refused open returns no value");
    assert!(!errors(&opened.diagnostics).is_empty());
    let closed = grpc
        .close_ephemeral_resource(pb::close_ephemeral_resource::Request {
            type_name: cluster_auth::TYPE_NAME.into(),
            private: Some(b"not ours".to_vec()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(errors(&closed.diagnostics).starts_with("Invalid private data"));

    // Configured (no AWS call: credentials are not checked), an import
    // by a bad identity is refused naming what is wrong.
    let provider_config = cty::encode_msgpack(
        &object(&[
            ("region", Value::string("us-east-1")),
            ("skip_credentials_validation", Value::Bool(true)),
            ("access_key", Value::string("testing")),
            ("secret_key", Value::string("testing")),
            ("endpoint_url", Value::string("http://127.0.0.1:9")),
        ]),
        &terraform_provider_idis::provider::config::schema().value_type(),
    )
    .unwrap();
    let configured = grpc
        .configure(pb::configure::Request {
            terraform_version: "1.15.5".into(),
            config: Some(pb::DynamicValue {
                msgpack: provider_config,
                json: Vec::new(),
            }),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(errors(&configured.diagnostics), "");
    let identity_type = environment::identity_schema().value_type();
    let bad_identity = cty::encode_msgpack(
        &object(&[
            ("name", Value::string("Not A Name")),
            ("region", Value::Null),
        ]),
        &identity_type,
    )
    .unwrap();
    let import = grpc
        .import_resource_state(pb::import_resource_state::Request {
            type_name: RESOURCE.into(),
            id: String::new(),
            client_capabilities: None,
            identity: Some(pb::ResourceIdentityData {
                identity_data: Some(pb::DynamicValue {
                    msgpack: bad_identity,
                    json: Vec::new(),
                }),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let text = errors(&import.diagnostics);
    assert!(text.starts_with("Invalid import identity"), "{text}");
    assert!(text.contains("identity.name = \"Not A Name\""), "{text}");

    // An action's config is validated with the attribute, value and rule.
    let mut config = Value::Object(Default::default());
    config.set_attr("environment", Value::string("Prod!"));
    config.set_attr("region", Value::Null);
    config.set_attr("instance_class", Value::string("r6g.large"));
    let ty = terraform_provider_idis::actions::schemas()["idis_restore_check"].value_type();
    let validated = grpc
        .validate_action_config(pb::validate_action_config::Request {
            type_name: "idis_restore_check".into(),
            config: Some(pb::DynamicValue {
                msgpack: cty::encode_msgpack(&config, &ty).unwrap(),
                json: Vec::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let text = errors(&validated.diagnostics);
    assert!(
        text.contains("environment = \"Prod!\" is not allowed"),
        "{text}"
    );
    assert!(
        text.contains("instance_class = \"r6g.large\" is not allowed"),
        "{text}"
    );

    let action = grpc
        .plan_action(pb::plan_action::Request {
            action_type: "idis_reboot".into(),
            config: None,
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(errors(&action.diagnostics).contains("Unknown action type"));
    let mut invoked = grpc
        .invoke_action(pb::invoke_action::Request {
            action_type: "idis_reboot".into(),
            config: None,
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    let event = invoked.message().await.unwrap().unwrap();
    match event.r#type {
        Some(pb::invoke_action::event::Type::Completed(done)) => {
            assert!(errors(&done.diagnostics).contains("Unknown action type"))
        }
        other => panic!("expected a completed event, got {other:?}"),
    }
    let generated = grpc
        .generate_resource_config(pb::generate_resource_config::Request {
            type_name: RESOURCE.into(),
            state: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!errors(&generated.diagnostics).is_empty());

    assert!(grpc
        .get_schema(pb::get_provider_schema::Request {})
        .await
        .is_ok());
    assert!(
        plugin.child.try_wait().unwrap().is_none(),
        "the provider exited"
    );
}
