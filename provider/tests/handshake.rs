//! Launches the provider binary the way Terraform does and talks to it over
//! mutual TLS: the handshake line parses, a client with Terraform's
//! certificate can call GetProviderSchema, one without it is refused, and
//! Shutdown ends the process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use terraform_provider_idis::protocol::proto::plugin::grpc_controller_client::GrpcControllerClient;
use terraform_provider_idis::protocol::proto::plugin::Empty;
use terraform_provider_idis::protocol::proto::tfplugin5::get_provider_schema;
use terraform_provider_idis::protocol::proto::tfplugin5::provider_client::ProviderClient;
use tonic::transport::{Channel, Endpoint};

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-idis");
const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// A certificate like the one Terraform makes for AutoMTLS: ECDSA P-521,
/// self-signed, CA:TRUE, used as a client certificate.
struct ClientIdentity {
    pem: String,
    der: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn terraform_like_client_cert() -> ClientIdentity {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    ClientIdentity {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    }
}

struct Plugin {
    child: Child,
    addr: String,
    server_cert: CertificateDer<'static>,
    startup: Duration,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_plugin(client: &ClientIdentity) -> Plugin {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .env("PLUGIN_CLIENT_CERT", &client.pem)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("provider binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let startup = started.elapsed();
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "handshake line {line:?}");
    assert_eq!(fields[0], "1", "go-plugin core protocol version");
    assert_eq!(fields[1], "5", "tfplugin protocol version");
    assert_eq!(fields[2], "tcp");
    assert!(
        fields[3].starts_with("127.0.0.1:"),
        "loopback only: {}",
        fields[3]
    );
    assert_eq!(fields[4], "grpc");
    assert!(!fields[5].ends_with('='), "base64 without padding");
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .expect("certificate is standard base64");
    Plugin {
        child,
        addr: fields[3].to_string(),
        server_cert: CertificateDer::from(der),
        startup,
    }
}

/// Trusts exactly the certificate from the handshake line, as Terraform
/// does (it adds it as the only root), and checks handshake signatures.
#[derive(Debug)]
struct PinnedServer(CertificateDer<'static>);

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        assert_eq!(server_name.to_str(), "localhost");
        if end_entity.as_ref() == self.0.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

async fn connect(
    plugin: &Plugin,
    client: Option<&ClientIdentity>,
) -> Result<Channel, tonic::transport::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(plugin.server_cert.clone())));
    let mut config = match client {
        Some(id) => builder
            .with_client_auth_cert(
                vec![id.der.clone()],
                PrivateKeyDer::Pkcs8(id.key.clone_key()),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr = plugin.addr.clone();
    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            let addr = addr.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}

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
