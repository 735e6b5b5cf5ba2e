//! go-plugin's side of the handshake: check that Terraform started us,
//! agree on protocol 5, serve gRPC over mutual TLS on loopback, print the
//! handshake line, and stop when Terraform calls `GRPCController.Shutdown`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::Stream;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::proto::plugin as goplugin;
use super::proto::tfplugin5::provider_server::ProviderServer;
use super::server::{Backend, ProviderService};
use super::tls;
use crate::logging;

pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The only protocol version this provider speaks.
pub const PROTOCOL_VERSION: u32 = 5;
/// go-plugin's own handshake version (the first field of the line).
const CORE_PROTOCOL_VERSION: u32 = 1;
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/idis/idis";

/// Shown when someone runs the binary by hand.
pub const NOT_BY_HAND: &str = "This binary is a plugin for Terraform (terraform-provider-idis). \
It is not meant to be run directly: Terraform starts it. Put it in a provider \
mirror or run `make install`, then use `terraform init` in a configuration that \
requires source = \"idis/idis\". For debugging, run it with --debug.";

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{NOT_BY_HAND}")]
    NotByTerraform,
    #[error(
        "Terraform offered plugin protocol version(s) {offered:?}, but terraform-provider-idis \
         speaks only version {PROTOCOL_VERSION}. Use Terraform 0.12 or later (1.11 is tested)."
    )]
    NoCommonVersion { offered: String },
    #[error(
        "PLUGIN_CLIENT_CERT is not set: Terraform should pass its client certificate (AutoMTLS)"
    )]
    NoClientCert,
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on loopback: {0}")]
    Listen(std::io::Error),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// How this process was started.
pub enum Mode {
    /// By Terraform, with mutual TLS.
    Plugin { client_cert_pem: String },
    /// By a developer (`--debug`): plaintext on loopback, and Terraform
    /// attaches through `TF_REATTACH_PROVIDERS`.
    Debug,
}

/// Checks the environment Terraform sets before starting a plugin.
pub fn negotiate(env: impl Fn(&str) -> Option<String>) -> Result<Mode, HandshakeError> {
    if env(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
        return Err(HandshakeError::NotByTerraform);
    }
    let offered = env("PLUGIN_PROTOCOL_VERSIONS").unwrap_or_default();
    let speaks_ours = offered
        .split(',')
        .any(|v| v.trim().parse::<u32>() == Ok(PROTOCOL_VERSION));
    if !speaks_ours {
        return Err(HandshakeError::NoCommonVersion { offered });
    }
    match env("PLUGIN_CLIENT_CERT") {
        Some(pem) if !pem.trim().is_empty() => Ok(Mode::Plugin {
            client_cert_pem: pem,
        }),
        _ => Err(HandshakeError::NoClientCert),
    }
}

/// Serves until Terraform calls Shutdown (plugin mode) or the process is
/// interrupted (debug mode).
pub async fn serve<B: Backend>(mode: Mode, backend: B) -> Result<(), HandshakeError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(HandshakeError::Listen)?;
    let addr = listener.local_addr().map_err(HandshakeError::Listen)?;
    let shutdown = CancellationToken::new();

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(goplugin::grpc_controller_server::GrpcControllerServer::new(
            Controller {
                shutdown: shutdown.clone(),
            },
        ))
        .add_service(goplugin::grpc_stdio_server::GrpcStdioServer::new(Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(ProviderServer::new(ProviderService::new(backend)));

    let server = match mode {
        Mode::Plugin { client_cert_pem } => {
            let client_cert = tls::parse_client_cert(&client_cert_pem)?;
            let identity = tls::ServerIdentity::generate()?;
            let config = tls::server_config(&identity, client_cert)?;
            ignore_interrupts();
            let incoming = tls_incoming(listener, Arc::new(config), shutdown.clone());
            let cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&identity.cert_der);
            print_line(&format!(
                "{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|tcp|{addr}|grpc|{cert}"
            ));
            let stop = shutdown.clone();
            tokio::spawn(
                router
                    .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await }),
            )
        }
        Mode::Debug => {
            let reattach = serde_json::json!({
                PROVIDER_ADDRESS: {
                    "Protocol": "grpc",
                    "ProtocolVersion": PROTOCOL_VERSION,
                    "Pid": std::process::id(),
                    "Test": true,
                    "Addr": {"Network": "tcp", "String": addr.to_string()},
                }
            });
            print_line(&format!(
                "Provider started in debug mode. To attach Terraform, set in another shell:\n\n\
                 \tTF_REATTACH_PROVIDERS='{reattach}'\n\nPress Ctrl-C to stop."
            ));
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                stop.cancel();
            });
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let stop = shutdown.clone();
            tokio::spawn(
                router
                    .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await }),
            )
        }
    };

    shutdown.cancelled().await;
    logging::debug("shutting down");
    // Give in-flight answers a moment to drain, but never hang on exit.
    match tokio::time::timeout(Duration::from_secs(2), server).await {
        Ok(Ok(result)) => result.map_err(HandshakeError::Serve),
        _ => Ok(()),
    }
}

fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Terraform handles Ctrl-C itself and asks providers to stop through
/// StopProvider; like every go-plugin plugin, this process ignores SIGINT
/// so an interrupted apply can still save state.
fn ignore_interrupts() {
    tokio::spawn(async {
        let Ok(mut sigint) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        else {
            return;
        };
        while sigint.recv().await.is_some() {
            logging::debug("interrupt received; waiting for Terraform's StopProvider");
        }
    });
}

type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Accepts TCP connections and completes each TLS handshake off the accept
/// loop, so a client that stalls or shows the wrong certificate delays and
/// reaches nobody else.
fn tls_incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<TlsStream, std::io::Error>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<TlsStream, std::io::Error>>(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    logging::warn(&format!("accept failed: {e}"));
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => logging::warn(&format!("TLS handshake with {peer} refused: {e}")),
                    Err(_) => logging::warn(&format!("TLS handshake with {peer} timed out")),
                }
            });
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

struct Controller {
    shutdown: CancellationToken,
}

#[tonic::async_trait]
impl goplugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _req: Request<goplugin::Empty>,
    ) -> Result<Response<goplugin::Empty>, Status> {
        logging::debug("GRPCController.Shutdown called");
        self.shutdown.cancel();
        Ok(Response::new(goplugin::Empty {}))
    }
}

/// Our output already goes to the process's stdout/stderr, which go-plugin
/// reads directly; the stream stays open, empty, until shutdown.
struct Stdio {
    shutdown: CancellationToken,
}

type StdioStream = Pin<Box<dyn Stream<Item = Result<goplugin::StdioData, Status>> + Send>>;

#[tonic::async_trait]
impl goplugin::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = StdioStream;

    async fn stream_stdio(&self, _req: Request<()>) -> Result<Response<StdioStream>, Status> {
        let shutdown = self.shutdown.clone();
        let stream = futures_util::stream::unfold(shutdown, |shutdown| async move {
            shutdown.cancelled().await;
            None
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn run_by_hand_is_refused() {
        assert!(matches!(
            negotiate(env(&[])),
            Err(HandshakeError::NotByTerraform)
        ));
        assert!(matches!(
            negotiate(env(&[(MAGIC_COOKIE_KEY, "wrong")])),
            Err(HandshakeError::NotByTerraform)
        ));
    }

    #[test]
    fn protocol_five_must_be_offered() {
        let err = negotiate(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "6"),
            ("PLUGIN_CLIENT_CERT", "x"),
        ]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("speaks only version 5"), "{err}");
        assert!(negotiate(env(&[
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
            ("PLUGIN_PROTOCOL_VERSIONS", "4,5,6"),
            ("PLUGIN_CLIENT_CERT", "pem"),
        ]))
        .is_ok());
    }
}
