//! The `provider "idis"` block: its schema, its validation, and the AWS
//! configuration and clients it produces.
//!
//! With no arguments the provider reads the standard AWS environment
//! (`AWS_REGION`, `AWS_PROFILE`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
//! `AWS_ENDPOINT_URL`), like the AWS provider. Secrets (`secret_key`,
//! `token`) are held only inside the SDK's credentials provider: no `Debug`
//! impl, log line or diagnostic here ever prints them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::logging;
use crate::protocol::cty::{Path, Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Nesting, Schema};

/// Services whose endpoint can be overridden one by one in `endpoints`.
pub const SERVICES: &[&str] = &[
    "cloudfront",
    "cloudtrail",
    "cloudwatch",
    "ec2",
    "eks",
    "elasticache",
    "elasticloadbalancingv2",
    "iam",
    "kms",
    "logs",
    "rds",
    "resourcegroupstaggingapi",
    "s3",
    "secretsmanager",
    "shield",
    "sns",
    "sts",
    "wafv2",
];

/// Retries after a failed AWS call when `max_retries` is not set.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Backoff between retries: exponential with jitter from 1 s, at most 20 s
/// (AWS's recommendation for long-running clients). With the default five
/// retries a call gives up after about a minute of throttling.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// The credentials check at configure time gives up sooner than normal
/// calls: a wrong endpoint should fail `plan` in seconds, not minutes.
const VALIDATION_ATTEMPTS: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one attempt of an AWS call may take: 60 s, or
/// `IDIS_AWS_ATTEMPT_TIMEOUT_SECONDS` (for tests against an emulator that
/// hold an answer back, as `IDIS_POLL_INTERVAL_MS` shortens waits).
fn attempt_timeout() -> Duration {
    std::env::var("IDIS_AWS_ATTEMPT_TIMEOUT_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(ATTEMPT_TIMEOUT)
}
const VALIDATION_DEADLINE: Duration = Duration::from_secs(45);

pub fn schema() -> Schema {
    let str_ty = || Type::String;
    let mut endpoints = Block::new(
        "Endpoint URLs for single AWS services, overriding `endpoint_url` for that service.",
    );
    for service in SERVICES {
        endpoints = endpoints.attr(Attribute::optional(
            service,
            str_ty(),
            &format!("Endpoint URL for {service}."),
        ));
    }
    Schema::new(
        0,
        Block::new("Configures how terraform-provider-idis reaches AWS. With no arguments it uses the standard AWS environment variables and shared config files.")
            .attr(Attribute::optional("region", str_ty(), "AWS region, e.g. `us-east-1`. Default: `AWS_REGION` or the profile's region."))
            .attr(Attribute::optional("profile", str_ty(), "Named profile from the shared AWS config and credentials files. Default: `AWS_PROFILE`."))
            .attr(Attribute::optional("access_key", str_ty(), "AWS access key id. Must be set together with `secret_key`. Default: the standard credentials chain.").sensitive())
            .attr(Attribute::optional("secret_key", str_ty(), "AWS secret access key. Must be set together with `access_key`.").sensitive())
            .attr(Attribute::optional("token", str_ty(), "Session token for temporary credentials.").sensitive())
            .attr(Attribute::optional("endpoint_url", str_ty(), "Endpoint URL for every AWS service, e.g. an emulator at `http://127.0.0.1:5000`. Default: `AWS_ENDPOINT_URL`, else AWS's public endpoints."))
            .attr(Attribute::optional("max_retries", Type::Number, "How many times a failed AWS call is retried (throttling, 5xx, dropped connections), 0 to 100. Default: 5."))
            .attr(Attribute::optional("skip_credentials_validation", Type::Bool, "Skip the STS GetCallerIdentity check when the provider is configured. Default: false."))
            .block(
                "assume_role",
                Nesting::Single,
                Block::new("Assume an IAM role with the credentials found, and use the role's credentials for every call.")
                    .attr(Attribute::required("role_arn", str_ty(), "ARN of the role to assume."))
                    .attr(Attribute::optional("session_name", str_ty(), "Session name recorded in CloudTrail. Default: `terraform-provider-idis`."))
                    .attr(Attribute::optional("external_id", str_ty(), "External id the role's trust policy requires.")),
            )
            .block("endpoints", Nesting::Single, endpoints)
            .block(
                "default_tags",
                Nesting::Single,
                Block::new("Tags added to every AWS object the provider creates.")
                    .attr(Attribute::optional("tags", Type::map(Type::String), "Tag keys and values.")),
            ),
    )
}

/// The provider block once every value is known.
#[derive(Default, Deserialize)]
pub struct ProviderConfig {
    pub region: Option<String>,
    pub profile: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    token: Option<String>,
    pub endpoint_url: Option<String>,
    pub max_retries: Option<u32>,
    pub skip_credentials_validation: Option<bool>,
    pub assume_role: Option<AssumeRole>,
    pub endpoints: Option<BTreeMap<String, Option<String>>>,
    pub default_tags: Option<DefaultTags>,
}

impl ProviderConfig {
    /// A configuration for an AWS emulator with dummy static credentials,
    /// as tests and benchmarks use it.
    pub fn emulator(endpoint_url: &str, region: &str) -> Self {
        ProviderConfig {
            region: Some(region.to_string()),
            endpoint_url: Some(endpoint_url.to_string()),
            access_key: Some("testing".to_string()),
            secret_key: Some("testing".to_string()),
            ..ProviderConfig::default()
        }
    }
}

#[derive(Default, Deserialize)]
pub struct AssumeRole {
    pub role_arn: String,
    pub session_name: Option<String>,
    pub external_id: Option<String>,
}

#[derive(Default, Deserialize)]
pub struct DefaultTags {
    pub tags: Option<BTreeMap<String, String>>,
}

/// Checks what can be checked before AWS is called. Unknown values (from
/// other resources) are skipped: they are checked again when known.
pub fn validate(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let root = Path::default();
    let str_at = |name: &str| config.get_attr(name).as_str().map(str::to_string);

    if let Some(region) = str_at("region") {
        if !is_region_name(&region) {
            diags.push(
                Diagnostic::error(
                    "Invalid AWS region",
                    format!("region = {region:?} is not an AWS region name; expected something like \"us-east-1\" or \"eu-central-1\"."),
                )
                .at(root.attr("region")),
            );
        }
    }
    let access = config.get_attr("access_key");
    let secret = config.get_attr("secret_key");
    if access.is_known() && secret.is_known() && access.is_null() != secret.is_null() {
        let (set, missing) = if access.is_null() {
            ("secret_key", "access_key")
        } else {
            ("access_key", "secret_key")
        };
        diags.push(
            Diagnostic::error(
                "Incomplete static credentials",
                format!("{set} is set but {missing} is not: set both, or neither to use the standard AWS credentials chain."),
            )
            .at(root.attr(missing)),
        );
    }
    if let Some(url) = str_at("endpoint_url") {
        check_url(&url, root.attr("endpoint_url"), &mut diags);
    }
    if let Value::Object(endpoints) = config.get_attr("endpoints") {
        for (service, url) in endpoints {
            if let Some(url) = url.as_str() {
                check_url(url, root.attr("endpoints").attr(service), &mut diags);
            }
        }
    }
    let retries = config.get_attr("max_retries");
    if retries.is_known() && !retries.is_null() {
        let ok = retries
            .as_f64()
            .is_some_and(|n| n.fract() == 0.0 && (0.0..=100.0).contains(&n));
        if !ok {
            diags.push(
                Diagnostic::error(
                    "Invalid max_retries",
                    format!(
                        "max_retries = {} is not allowed: use a whole number from 0 to 100.",
                        retries.as_f64().map(|n| n.to_string()).unwrap_or_default()
                    ),
                )
                .at(root.attr("max_retries")),
            );
        }
    }
    if let Some(arn) = config.get_attr("assume_role").get_attr("role_arn").as_str() {
        if !(arn.starts_with("arn:") && arn.contains(":iam::") && arn.contains(":role/")) {
            diags.push(
                Diagnostic::error(
                    "Invalid role ARN",
                    format!("assume_role.role_arn = {arn:?} is not an IAM role ARN; expected arn:aws:iam::<account>:role/<name>."),
                )
                .at(root.attr("assume_role").attr("role_arn")),
            );
        }
    }
    diags
}

fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn check_url(url: &str, path: Path, diags: &mut Diagnostics) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
        diags.push(
            Diagnostic::error(
                "Invalid endpoint URL",
                format!("{path} = {url:?} is not an endpoint URL; expected http://host[:port] or https://host[:port]."),
            )
            .at(path),
        );
    }
}

/// The innermost error message of a chain, e.g. "Connection refused (os
/// error 111)" rather than the SDK's nested debug rendering.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    if text.is_empty() || text.contains('{') {
        DisplayErrorContext(err).to_string()
    } else {
        text
    }
}

/// Retries for long applies: adaptive mode (standard retries of
/// throttling, 5xx answers, dropped connections and timeouts, plus a
/// client-side rate limiter that slows down while AWS throttles), bounded
/// by `max_retries` and by the backoff cap.
pub fn retry_config(max_retries: u32) -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(max_retries + 1)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Counts the AWS calls the SDK retried, by `service:Operation`, for the
/// summary line of each apply (and a debug line per retry).
#[derive(Debug, Default)]
pub struct RetryCount {
    total: AtomicU64,
    by_operation: Mutex<BTreeMap<String, u64>>,
}

impl RetryCount {
    fn record(&self, operation: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.by_operation.lock() {
            *map.entry(operation.to_string()).or_default() += 1;
        }
    }

    /// Retries so far in this provider process.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// "12 (ec2:DescribeVpcs 3, kms:CreateKey 1, ...)", or "0".
    pub fn summary(&self) -> String {
        let total = self.total();
        let map = match self.by_operation.lock() {
            Ok(map) => map.clone(),
            Err(_) => BTreeMap::new(),
        };
        if map.is_empty() {
            return total.to_string();
        }
        let parts: Vec<String> = map.iter().map(|(op, n)| format!("{op} {n}")).collect();
        format!("{total} ({})", parts.join(", "))
    }
}

/// Creates AWS does not make idempotent: repeating one whose answer may
/// have followed its execution can make a second object. That is any
/// answer but one that proves the call was not executed: no answer at all
/// (a dropped connection, a timeout), and a 5xx answer, which AWS may send
/// after the request took effect (an `InternalError` or `Unavailable`).
/// Only throttling, and a 4xx the SDK does not retry anyway, say nothing
/// was done. The SDK does not repeat these after such an answer; the
/// component looks for what the first call made and adopts it
/// (`components::create_or_adopt`). Creates that carry a client token or
/// a unique name are repeated as usual: AWS answers the repeat with the
/// same object or "already exists".
pub const NOT_IDEMPOTENT: &[&str] = &[
    "kms:CreateKey",
    "ec2:CreateVpc",
    "ec2:CreateSubnet",
    "ec2:CreateInternetGateway",
    "ec2:AllocateAddress",
];

/// Marks an operation whose last attempt may have taken effect without
/// the client knowing: no answer, or a 5xx that is not throttling.
#[derive(Debug, Clone)]
struct LostAnswer;

impl Storable for LostAnswer {
    type Storer = StoreReplace<Self>;
}

/// `service:Operation` of the call in flight, e.g. `secretsmanager:DescribeSecret`.
fn operation_name(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>().map_or_else(
        || "unknown".to_string(),
        |m| {
            format!(
                "{}:{}",
                m.service().to_lowercase().replace(' ', ""),
                m.name()
            )
        },
    )
}

/// Whether the SDK's own classifiers call this failed attempt throttling
/// (S3's 503 SlowDown, EC2's RequestLimitExceeded, ...): AWS did not
/// execute it.
fn throttled(
    context: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    components: &RuntimeComponents,
) -> bool {
    use aws_smithy_runtime_api::client::retries::classifiers::{
        ClassifyRetry, RetryAction, RetryReason,
    };
    components.retry_classifiers().any(|c| {
        matches!(
            c.classify_retry(context),
            RetryAction::RetryIndicated(RetryReason::RetryableError {
                kind: aws_smithy_types::retry::ErrorKind::ThrottlingError,
                ..
            })
        )
    })
}

/// The SDK interceptor behind [`RetryCount`]: every attempt after the
/// first is a retry.
#[derive(Debug, Clone)]
struct CountRetries(Arc<RetryCount>);

impl Intercept for CountRetries {
    fn name(&self) -> &'static str {
        "CountRetries"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt > 1 {
            let operation = operation_name(cfg);
            if cfg.load::<LostAnswer>().is_some() && NOT_IDEMPOTENT.contains(&operation.as_str()) {
                logging::debug(&format!(
                    "AWS call not repeated: {operation} got no answer, or a server error, and may have taken effect"
                ));
                return Err(format!(
                    "{operation} got no answer (the connection dropped or timed out) or a server error, and may have taken effect, so it was not repeated"
                )
                .into());
            }
            self.0.record(&operation);
            logging::debug(&format!("AWS call retried: {operation} attempt {attempt}"));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Err(e)) = context.output_or_error() {
            let server_error = context
                .response()
                .is_some_and(|r| r.status().is_server_error());
            if context.response().is_none()
                || (server_error && !throttled(context.inner(), components))
            {
                cfg.interceptor_state().store_put(LostAnswer);
            }
            if logging::enabled(logging::Level::Debug) {
                let operation = operation_name(cfg);
                let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
                let why = match context.response() {
                    Some(r) => format!("HTTP {}", r.status().as_u16()),
                    None if e.is_timeout_error() => "timeout".to_string(),
                    None if e.is_connector_error() => "connection failed or dropped".to_string(),
                    None => "no answer".to_string(),
                };
                logging::debug(&format!(
                    "AWS call attempt failed: {operation} attempt {attempt}: {why}"
                ));
            }
        }
        Ok(())
    }
}

/// A client for one service, honouring `endpoints.<service>`, then
/// `endpoint_url` / `AWS_ENDPOINT_URL`.
macro_rules! client {
    ($name:ident, $sdk:ident, $service:literal) => {
        pub fn $name(&self) -> $sdk::Client {
            let mut conf = $sdk::config::Builder::from(&self.sdk);
            conf.set_endpoint_url(self.endpoint_override($service));
            conf.push_interceptor($sdk::config::SharedInterceptor::new(CountRetries(
                self.retries.clone(),
            )));
            $sdk::Client::from_conf(conf.build())
        }
    };
}

/// AWS as configured: the SDK configuration, per-service endpoints, tags,
/// and who we are.
pub struct Aws {
    sdk: SdkConfig,
    endpoints: BTreeMap<String, String>,
    pub region: String,
    pub default_tags: BTreeMap<String, String>,
    account_id: tokio::sync::OnceCell<String>,
    /// AWS calls retried so far (shared by every region's clients).
    pub retries: Arc<RetryCount>,
}

impl Aws {
    /// Builds the SDK configuration and, unless skipped, proves the
    /// credentials work with STS GetCallerIdentity in bounded time.
    pub async fn connect(
        config: ProviderConfig,
        stop: &CancellationToken,
    ) -> Result<Aws, Diagnostics> {
        let max_retries = config.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(retry_config(max_retries))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(attempt_timeout())
                    .build(),
            );
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let (Some(access), Some(secret)) = (&config.access_key, &config.secret_key) {
            loader = loader.credentials_provider(Credentials::new(
                access,
                secret,
                config.token.clone(),
                None,
                "idis-provider-block",
            ));
        }
        let mut sdk = loader.load().await;

        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            return Err(Diagnostic::error(
                "No AWS region",
                "Set region in the provider block, or AWS_REGION (or a region in the AWS profile).",
            )
            .at(Path::default().attr("region"))
            .into());
        };

        if let Some(role) = &config.assume_role {
            let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
                .session_name(
                    role.session_name
                        .clone()
                        .unwrap_or_else(|| "terraform-provider-idis".to_string()),
                )
                .configure(&sdk);
            if let Some(id) = &role.external_id {
                builder = builder.external_id(id.clone());
            }
            let provider = builder.build().await;
            sdk = sdk
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build();
        }

        let endpoints = config
            .endpoints
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(service, url)| url.map(|u| (service, u)))
            .collect();
        let aws = Aws {
            sdk,
            endpoints,
            region,
            default_tags: config.default_tags.and_then(|t| t.tags).unwrap_or_default(),
            account_id: tokio::sync::OnceCell::new(),
            retries: Arc::new(RetryCount::default()),
        };

        if !config.skip_credentials_validation.unwrap_or(false) {
            aws.validate_credentials(stop).await?;
        }
        Ok(aws)
    }

    async fn validate_credentials(&self, stop: &CancellationToken) -> Result<(), Diagnostics> {
        let mut conf = aws_sdk_sts::config::Builder::from(&self.sdk);
        conf.set_endpoint_url(self.endpoint_override("sts"));
        let conf = conf
            .retry_config(RetryConfig::standard().with_max_attempts(VALIDATION_ATTEMPTS))
            .interceptor(CountRetries(self.retries.clone()))
            .build();
        let sts = aws_sdk_sts::Client::from_conf(conf);
        let call = sts.get_caller_identity().send();
        let result = tokio::select! {
            _ = stop.cancelled() => return Err(Diagnostic::error("Stopped", "Terraform asked the provider to stop while it was checking credentials.").into()),
            r = tokio::time::timeout(VALIDATION_DEADLINE, call) => r,
        };
        match result {
            Ok(Ok(identity)) => {
                logging::debug(&format!(
                    "credentials valid for account {}",
                    identity.account().unwrap_or("?")
                ));
                if let Some(account) = identity.account() {
                    let _ = self.account_id.set(account.to_string());
                }
                Ok(())
            }
            Ok(Err(e)) => Err(self.explain("sts", "check the AWS credentials (sts:GetCallerIdentity)", &e).into()),
            Err(_) => Err(Diagnostic::error(
                "AWS did not answer",
                format!(
                    "sts:GetCallerIdentity at {} gave no answer within {} s. Check endpoint_url / AWS_ENDPOINT_URL and the network, or set skip_credentials_validation = true.",
                    self.describe_endpoint("sts"),
                    VALIDATION_DEADLINE.as_secs()
                ),
            )
            .into()),
        }
    }

    /// The same configuration in another region (an environment's `region`
    /// may differ from the provider's).
    pub fn with_region(&self, region: &str) -> Aws {
        Aws {
            sdk: self
                .sdk
                .clone()
                .into_builder()
                .region(Region::new(region.to_string()))
                .build(),
            endpoints: self.endpoints.clone(),
            region: region.to_string(),
            default_tags: self.default_tags.clone(),
            account_id: self.account_id.clone(),
            retries: self.retries.clone(),
        }
    }

    /// The endpoint set for one service (per-service, then general), if any.
    pub fn endpoint_override(&self, service: &str) -> Option<String> {
        self.endpoints
            .get(service)
            .cloned()
            .or_else(|| self.sdk.endpoint_url().map(str::to_string))
    }

    /// Where calls to `service` go, for messages.
    pub fn describe_endpoint(&self, service: &str) -> String {
        self.endpoint_override(service)
            .unwrap_or_else(|| format!("the AWS endpoint for {service} in {}", self.region))
    }

    /// Turns an SDK error into a diagnostic that says which kind of failure
    /// it was and what to do about it.
    pub fn explain<E, R>(&self, service: &str, action: &str, err: &SdkError<E, R>) -> Diagnostic
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let endpoint = self.describe_endpoint(service);
        let full = root_cause(err);
        match err {
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => Diagnostic::error(
                format!("Cannot reach AWS endpoint {endpoint}"),
                format!(
                    "The provider could not {action}: the endpoint {endpoint} is unreachable ({full}). \
                     Check endpoint_url / AWS_ENDPOINT_URL, the region and the network."
                ),
            ),
            SdkError::TimeoutError(_) => Diagnostic::error(
                format!("AWS endpoint {endpoint} timed out"),
                format!("The provider could not {action}: no answer in time from {endpoint}. Check the network and endpoint_url."),
            ),
            SdkError::ServiceError(se) => {
                let code = se.err().code().unwrap_or("unknown");
                let message = se.err().message().unwrap_or("");
                let hint = match code {
                    "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException" | "AuthFailure" | "ExpiredToken" | "ExpiredTokenException" =>
                        " The credentials are invalid or expired: check access_key/secret_key, AWS_PROFILE or the AWS_* variables.",
                    "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" =>
                        " The credentials are valid but not allowed to do this: check the IAM policy of the user or role.",
                    _ => "",
                };
                Diagnostic::error(
                    format!("AWS refused to {action}"),
                    format!("{code}: {message} (endpoint {endpoint}).{hint}"),
                )
            }
            _ if full.contains("credentials") || full.contains("Credentials") => Diagnostic::error(
                "No valid AWS credentials found",
                format!(
                    "The provider could not {action}: {full}. Set access_key and secret_key, a profile, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."
                ),
            ),
            _ => Diagnostic::error(
                format!("AWS call failed: {action}"),
                format!("{full} (endpoint {endpoint})."),
            ),
        }
    }

    client!(sts, aws_sdk_sts, "sts");
    client!(ec2, aws_sdk_ec2, "ec2");
    client!(kms, aws_sdk_kms, "kms");
    client!(iam, aws_sdk_iam, "iam");
    client!(eks, aws_sdk_eks, "eks");
    client!(rds, aws_sdk_rds, "rds");
    client!(elasticache, aws_sdk_elasticache, "elasticache");
    client!(
        elbv2,
        aws_sdk_elasticloadbalancingv2,
        "elasticloadbalancingv2"
    );
    client!(wafv2, aws_sdk_wafv2, "wafv2");
    client!(shield, aws_sdk_shield, "shield");
    client!(cloudfront, aws_sdk_cloudfront, "cloudfront");
    client!(secretsmanager, aws_sdk_secretsmanager, "secretsmanager");
    client!(sns, aws_sdk_sns, "sns");
    client!(cloudwatch, aws_sdk_cloudwatch, "cloudwatch");
    client!(cloudtrail, aws_sdk_cloudtrail, "cloudtrail");
    client!(logs, aws_sdk_cloudwatchlogs, "logs");
    client!(
        tagging,
        aws_sdk_resourcegroupstagging,
        "resourcegroupstaggingapi"
    );

    /// S3 with path-style addressing whenever an endpoint is overridden:
    /// emulators and private endpoints do not resolve bucket subdomains.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let mut conf = aws_sdk_s3::config::Builder::from(&self.sdk);
        let endpoint = self.endpoint_override("s3");
        conf.set_force_path_style(Some(endpoint.is_some()));
        conf.set_endpoint_url(endpoint);
        conf.push_interceptor(aws_sdk_s3::config::SharedInterceptor::new(CountRetries(
            self.retries.clone(),
        )));
        aws_sdk_s3::Client::from_conf(conf.build())
    }

    /// The credentials the provider calls AWS with, for a request it signs
    /// itself (the EKS token of `idis_cluster_auth`). Their `Debug` hides
    /// the secret; never log them otherwise.
    pub async fn credentials(&self) -> Result<Credentials, String> {
        use aws_credential_types::provider::ProvideCredentials;
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| "no AWS credentials are configured".to_string())?;
        provider
            .provide_credentials()
            .await
            .map_err(|e| format!("no valid AWS credentials: {}", root_cause(&e)))
    }

    /// The account id, from STS once per provider process.
    pub async fn account_id(&self) -> Result<String, Diagnostic> {
        self.account_id
            .get_or_try_init(|| async {
                let identity = self
                    .sts()
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| self.explain("sts", "read the caller identity", &e))?;
                identity.account().map(str::to_string).ok_or_else(|| {
                    Diagnostic::error(
                        "AWS returned no account id",
                        format!(
                            "sts:GetCallerIdentity at {} answered without an account id.",
                            self.describe_endpoint("sts")
                        ),
                    )
                })
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SSO profile (`sso_session`) is resolved by the SDK's SSO
    /// provider: without a token cached by `aws sso login` it fails asking
    /// for one, not for a missing feature. (moto has no SSO portal, so the
    /// credentials themselves cannot be fetched here.)
    #[tokio::test]
    async fn an_sso_profile_goes_through_the_sso_provider() {
        use aws_credential_types::provider::ProvideCredentials;
        use aws_runtime::env_config::file::{
            EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
        };
        let dir = std::env::temp_dir().join(format!("idis-sso-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config");
        std::fs::write(
            &file,
            "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Admin\nregion = us-east-1\n\n\
             [sso-session corp]\nsso_start_url = https://idis-test-never-logged-in.awsapps.com/start\nsso_region = us-east-1\n",
        )
        .unwrap();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .profile_files(
                ProfileFiles::builder()
                    .with_file(ProfileFileKind::Config, &file)
                    .build(),
            )
            .profile_name("dev")
            .load()
            .await;
        let provider = sdk.credentials_provider().expect("a credentials provider");
        let err = provider.provide_credentials().await.unwrap_err();
        let text = format!("{}", DisplayErrorContext(&err));
        assert!(!text.contains("cargo feature"), "{text}");
        assert!(text.to_lowercase().contains("sso"), "{text}");
        assert!(text.to_lowercase().contains("token"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn config(pairs: &[(&str, Value)]) -> Value {
        let mut attrs: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in pairs {
            attrs.insert((*k).to_string(), v.clone());
        }
        Value::Object(attrs)
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_string())
    }

    fn first_error(d: &Diagnostics) -> String {
        d.0.first()
            .map(|d| {
                format!(
                    "{} {}",
                    d.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                    d.detail
                )
            })
            .unwrap_or_default()
    }

    #[test]
    fn empty_provider_block_is_valid() {
        assert!(validate(&config(&[])).is_empty());
        assert!(validate(&Value::Null).is_empty());
    }

    #[test]
    fn bad_region_names_the_attribute_and_the_value() {
        let d = validate(&config(&[("region", s("US East"))]));
        assert!(first_error(&d).starts_with("region"), "{d:?}");
        assert!(first_error(&d).contains("\"US East\""));
        assert!(validate(&config(&[("region", s("eu-central-1"))])).is_empty());
        assert!(validate(&config(&[("region", s("us-gov-west-1"))])).is_empty());
    }

    #[test]
    fn half_static_credentials_are_refused() {
        let d = validate(&config(&[
            ("access_key", s("AKIA")),
            ("secret_key", Value::Null),
        ]));
        assert!(first_error(&d).starts_with("secret_key"), "{d:?}");
        // An unknown half is not judged yet.
        assert!(validate(&config(&[
            ("access_key", s("AKIA")),
            ("secret_key", Value::Unknown)
        ]))
        .is_empty());
    }

    #[test]
    fn endpoint_urls_must_be_http() {
        let d = validate(&config(&[("endpoint_url", s("localhost:5000"))]));
        assert!(first_error(&d).starts_with("endpoint_url"), "{d:?}");
        let mut eps = BTreeMap::new();
        eps.insert("s3".to_string(), s("ftp://x"));
        let d = validate(&config(&[("endpoints", Value::Object(eps))]));
        assert!(first_error(&d).starts_with("endpoints.s3"), "{d:?}");
        assert!(validate(&config(&[("endpoint_url", s("http://127.0.0.1:5000"))])).is_empty());
    }

    #[test]
    fn max_retries_is_bounded() {
        let n = |x: f64| Value::Number(crate::protocol::cty::Number::Float(x));
        assert!(!validate(&config(&[("max_retries", n(-1.0))])).is_empty());
        assert!(!validate(&config(&[("max_retries", n(2.5))])).is_empty());
        assert!(!validate(&config(&[("max_retries", n(101.0))])).is_empty());
        assert!(validate(&config(&[("max_retries", n(25.0))])).is_empty());
    }

    #[test]
    fn role_arn_must_be_a_role() {
        let mut role = BTreeMap::new();
        role.insert("role_arn".to_string(), s("my-role"));
        let d = validate(&config(&[("assume_role", Value::Object(role))]));
        assert!(first_error(&d).starts_with("assume_role.role_arn"), "{d:?}");
    }
}
