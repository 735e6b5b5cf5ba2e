//! Launches the provider binary the way Terraform does and talks to it over
//! mutual TLS: the handshake line parses, a client with Terraform's
//! certificate can call GetProviderSchema, one without it is refused, and
//! Shutdown ends the process.

#[path = "support/plugin.rs"]
mod plugin;

use std::process::Command;
use std::time::{Duration, Instant};

use plugin::{connect, start_plugin, terraform_like_client_cert, BIN, COOKIE};
use terraform_provider_idis::protocol::proto::plugin::grpc_controller_client::GrpcControllerClient;
use terraform_provider_idis::protocol::proto::plugin::Empty;
use terraform_provider_idis::protocol::proto::tfplugin5::get_provider_schema;
use terraform_provider_idis::protocol::proto::tfplugin5::provider_client::ProviderClient;

#[tokio::test]
async fn terraform_with_its_client_certificate_gets_the_schema() {
    let client = terraform_like_client_cert();
    let plugin = start_plugin(&client);
    eprintln!("exec to handshake line: {:?}", plugin.startup);
    let channel = connect(&plugin, Some(&client)).await.expect("mTLS connect");
    let schema = ProviderClient::new(channel)
        .get_schema(get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema answers")
        .into_inner();
    assert!(schema.diagnostics.is_empty(), "{:?}", schema.diagnostics);
    assert!(schema.data_source_schemas.contains_key("idis_account"));
    let caps = schema.server_capabilities.expect("capabilities declared");
    assert!(caps.get_provider_schema_optional && caps.plan_destroy);
    let provider = schema
        .provider
        .and_then(|s| s.block)
        .expect("provider schema");
    let secret = provider
        .attributes
        .iter()
        .find(|a| a.name == "secret_key")
        .unwrap();
    assert!(secret.sensitive, "secret_key is marked sensitive");
}

#[tokio::test]
async fn plugin_reports_serving_on_the_health_service() {
    let client = terraform_like_client_cert();
    let plugin = start_plugin(&client);
    let channel = connect(&plugin, Some(&client)).await.expect("mTLS connect");
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("health check answers")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn a_client_without_the_announced_certificate_is_refused() {
    let announced = terraform_like_client_cert();
    let plugin = start_plugin(&announced);

    // No client certificate at all.
    let refused = match connect(&plugin, None).await {
        Err(_) => true,
        Ok(channel) => ProviderClient::new(channel)
            .get_schema(get_provider_schema::Request {})
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate got an answer");

    // A well-formed certificate that is not the one Terraform announced.
    let stranger = terraform_like_client_cert();
    let refused = match connect(&plugin, Some(&stranger)).await {
        Err(_) => true,
        Ok(channel) => ProviderClient::new(channel)
            .get_schema(get_provider_schema::Request {})
            .await
            .is_err(),
    };
    assert!(refused, "a client with another certificate got an answer");

    // The right client still gets in afterwards.
    let channel = connect(&plugin, Some(&announced))
        .await
        .expect("mTLS connect");
    assert!(ProviderClient::new(channel)
        .get_schema(get_provider_schema::Request {})
        .await
        .is_ok());
}

#[tokio::test]
async fn shutdown_ends_the_process() {
    let client = terraform_like_client_cert();
    let mut plugin = start_plugin(&client);
    let channel = connect(&plugin, Some(&client)).await.expect("mTLS connect");
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .expect("Shutdown answers");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = plugin.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "process still running 10 s after Shutdown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn run_by_hand_it_explains_and_exits_1() {
    let out = Command::new(BIN)
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("plugin for Terraform"), "{text}");
}

#[test]
fn a_terraform_without_protocol_5_gets_a_clear_error() {
    let out = Command::new(BIN)
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .env("PLUGIN_CLIENT_CERT", terraform_like_client_cert().pem)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("speaks only version 5"), "{text}");
}
