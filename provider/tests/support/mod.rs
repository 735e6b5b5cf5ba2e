//! Shared by the component tests: a moto server of our own on a free
//! loopback port (from the venv `make venv` creates), with our proxy
//! (`tests/awsproxy.py`) in front of it, which plays AWS where moto has
//! gaps (EKS add-ons and versions, WAF's ListResourcesForWebACL, ...), and
//! a component context pointed at the proxy. AWS state is checked through
//! the SDK.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use terraform_provider_idis::components::Ctx;
use terraform_provider_idis::provider::config::{Aws, ProviderConfig};
use tokio_util::sync::CancellationToken;

pub struct Moto {
    child: Child,
    proxy: Child,
    /// The proxy's endpoint: what components and checks use.
    pub endpoint: String,
    /// moto's own endpoint.
    pub moto_endpoint: String,
}

impl Moto {
    /// Starts `moto_server` from `$IDIS_MOTO_SERVER` or `<repo>/.venv/bin`.
    pub fn start() -> Moto {
        let server = std::env::var_os("IDIS_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
            });
        assert!(
            server.exists(),
            "{} not found: run `make venv` first",
            server.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // AWS managed IAM policies (AmazonEKSClusterPolicy, ...) exist
            // in moto only when it loads them.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = server.with_file_name("python");
        let mut proxy = Command::new(&python)
            .arg(repo.join("tests/awsproxy.py"))
            .arg(&endpoint)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tests/awsproxy.py starts");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(proxy.stdout.take().expect("proxy stdout")),
            &mut line,
        )
        .expect("the proxy prints its endpoint");
        assert!(
            line.starts_with("http://"),
            "tests/awsproxy.py printed {line:?}, not its endpoint"
        );
        Moto {
            child,
            proxy,
            endpoint: line.trim().to_string(),
            moto_endpoint: endpoint,
        }
    }

    pub async fn aws(&self) -> Arc<Aws> {
        Self::aws_at(&self.endpoint).await
    }

    /// moto itself, without the proxy (for what moto does on its own).
    pub async fn aws_direct(&self) -> Arc<Aws> {
        Self::aws_at(&self.moto_endpoint).await
    }

    pub async fn ctx_direct(&self, env: &str) -> Ctx {
        let mut ctx = self.ctx(env).await;
        let aws = self.aws_direct().await;
        ctx.aws = aws;
        ctx
    }

    async fn aws_at(endpoint: &str) -> Arc<Aws> {
        let config = ProviderConfig::emulator(endpoint, "us-east-1");
        Arc::new(
            Aws::connect(config, &CancellationToken::new())
                .await
                .unwrap_or_else(|d| panic!("provider configuration against moto failed: {d:?}")),
        )
    }

    /// A context for environment `env`, with a 5-minute deadline and fast
    /// polls (moto makes everything available at once).
    pub async fn ctx(&self, env: &str) -> Ctx {
        let aws = self.aws().await;
        let account_id = aws.account_id().await.expect("account id");
        Ctx {
            region: aws.region.clone(),
            aws,
            env: env.to_string(),
            account_id,
            user_tags: BTreeMap::from([("team".to_string(), "platform".to_string())]),
            cancel: CancellationToken::new(),
            deadline: Instant::now() + Duration::from_secs(300),
            poll_interval: Duration::from_millis(100),
            dr_site: false,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `ensure` made holds every guard the plan wants for `spec`, and
/// the component judges exactly those: the guards a component reads are
/// the ones its description declares.
pub fn assert_guards_hold<C: terraform_provider_idis::components::describe::Component>(
    verdicts: &terraform_provider_idis::components::describe::Verdicts,
    spec: &C::Spec,
) {
    use terraform_provider_idis::components::describe::{block_type, planned_guards};
    use terraform_provider_idis::protocol::cty::{self, Value};
    let block = cty::to_value(spec, &block_type::<C>()).expect("the spec fits its block");
    let wanted = planned_guards(C::guards(), &block);
    let read = Value::string_map(verdicts.to_map(C::guards()));
    let failing: Vec<_> = verdicts.failing().collect();
    assert!(
        failing.is_empty(),
        "{}: guards that do not hold: {failing:?}",
        C::NAME
    );
    assert_eq!(
        read,
        wanted,
        "{}: judged guards differ from the planned ones",
        C::NAME
    );
}

/// [`assert_guards_hold`] for a component that judges some guards in its
/// reading (against the block as stored): the verdicts of
/// `Component::read` of what `ensure` made.
pub fn assert_read_guards_hold<C: terraform_provider_idis::components::describe::Component>(
    state: &C::State,
    spec: &C::Spec,
) {
    let reading = C::read(
        state,
        spec,
        &terraform_provider_idis::protocol::cty::Value::Null,
    );
    assert_guards_hold::<C>(&reading.verdicts, spec);
}
