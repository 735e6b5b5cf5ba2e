//! `ephemeral "idis_cluster_auth"`: what the `kubernetes` and `helm`
//! providers need to reach the environment's cluster, as the AWS
//! provider's `aws_eks_cluster_auth` gives it: endpoint, CA data and a
//! bearer token (see [`access`] for how it is made).
//!
//! The token is accepted for 15 minutes after signing and reported valid
//! for 14. Terraform calls RenewEphemeralResource a minute before it
//! expires when the run still uses it; a presigned token cannot be
//! extended, and Terraform cannot hand consumers a new value within a run,
//! so renew checks the cluster is still there and warns that consumers
//! connecting after the expiry will be refused.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::{arguments, context, failed, not_found, rfc3339, Private};
use crate::components::access;
use crate::environment::orchestrate;
use crate::logging;
use crate::protocol::cty::{Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{Attribute, Schema};
use crate::protocol::server::{Opened, Renewed};
use crate::provider::config::Aws;

pub const TYPE_NAME: &str = "idis_cluster_auth";

pub fn schema() -> Schema {
    Schema::new(
        0,
        arguments("Endpoint, CA data and a short-lived bearer token for the environment's EKS cluster, to configure the `kubernetes` and `helm` providers. Ephemeral: never in state or plan. The token is the one `aws eks get-token` makes (a presigned STS GetCallerIdentity bound to the cluster), signed with the provider's credentials; EKS maps that IAM identity to Kubernetes permissions.")
            .attr(Attribute::computed("cluster_name", Type::String, "EKS cluster name (`idis-<name>`)."))
            .attr(Attribute::computed("endpoint", Type::String, "Kubernetes API server endpoint."))
            .attr(Attribute::computed("certificate_authority_data", Type::String, "Base64 CA certificate of the API server."))
            .attr(Attribute::computed("token", Type::String, "Bearer token (`k8s-aws-v1.` ...), accepted by the cluster for 15 minutes after it was made.").sensitive())
            .attr(Attribute::computed("expiration", Type::String, "When the token stops being valid (RFC 3339, 14 minutes after it was made, as `aws eks get-token` reports).")),
    )
}

/// How long a token is reported valid: 14 minutes, or
/// `IDIS_CLUSTER_TOKEN_LIFETIME_SECONDS` (for tests that watch a renewal,
/// as `IDIS_POLL_INTERVAL_MS` shortens waits).
fn lifetime() -> Duration {
    std::env::var("IDIS_CLUSTER_TOKEN_LIFETIME_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(access::TOKEN_LIFETIME)
}

/// When Terraform should call renew: a minute (at most a quarter of the
/// lifetime) before the token expires.
fn renew_at(expires_at: SystemTime, lifetime: Duration) -> SystemTime {
    expires_at - Duration::from_secs(60).min(lifetime / 4)
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub async fn open(
    aws: &Arc<Aws>,
    config: Value,
    cancel: &CancellationToken,
) -> Result<Opened, Diagnostics> {
    let (ctx, mut result) = context(aws, &config, cancel).await?;
    let server = match access::api_server(&ctx).await {
        Ok(Some(server)) => server,
        Ok(None) => return Err(not_found(TYPE_NAME, "EKS cluster", &ctx)),
        Err(e) => return Err(failed(TYPE_NAME, &e)),
    };
    let lifetime = lifetime();
    let token = access::cluster_token(&ctx, &server.cluster_name, lifetime)
        .await
        .map_err(|e| failed(TYPE_NAME, &e))?;
    logging::debug(&format!(
        "OpenEphemeralResource {TYPE_NAME}: token for cluster {} in {} made, expires at {}",
        server.cluster_name,
        ctx.region,
        rfc3339(token.expires_at)
    ));
    result.set_attr("cluster_name", Value::string(&server.cluster_name));
    result.set_attr("endpoint", Value::string(&server.endpoint));
    result.set_attr(
        "certificate_authority_data",
        Value::string(&server.certificate_authority_data),
    );
    result.set_attr("token", Value::string(&token.token));
    result.set_attr("expiration", Value::string(rfc3339(token.expires_at)));
    let private = Private {
        name: ctx.env.clone(),
        region: ctx.region.clone(),
        object: server.cluster_name,
        expires_at: Some(seconds(token.expires_at)),
    };
    Ok(Opened {
        result,
        renew_at: Some(renew_at(token.expires_at, lifetime)),
        private: private.encode(),
        diagnostics: Diagnostics::new(),
    })
}

pub async fn renew(
    aws: &Arc<Aws>,
    private: Private,
    cancel: &CancellationToken,
) -> Result<Renewed, Diagnostics> {
    let expires_at = UNIX_EPOCH + Duration::from_secs(private.expires_at.unwrap_or_default());
    logging::debug(&format!(
        "RenewEphemeralResource {TYPE_NAME}: token for cluster {} still in use, expires at {}",
        private.object,
        rfc3339(expires_at)
    ));
    let ctx = orchestrate::context_of(aws, &private.name, &private.region, cancel).await?;
    let mut diagnostics = Diagnostics::new();
    match access::api_server(&ctx).await {
        // Terraform (1.11 to 1.15) keeps a renewal's diagnostics to itself
        // unless it fails; the log says it too.
        Ok(Some(_)) => diagnostics.push(warn(Diagnostic::warning(
            format!("{TYPE_NAME}: the cluster token expires during this run"),
            format!(
                "The token for EKS cluster {} expires at {}, and this run still uses it. A presigned token cannot be extended and Terraform cannot give consumers a new one within a run: a consumer that connects to the cluster after that time is refused (401). Split the run, or let the kubernetes provider fetch tokens itself (an `exec` block running `aws eks get-token`).",
                private.object,
                rfc3339(expires_at)
            ),
        ))),
        Ok(None) => diagnostics.push(Diagnostic::warning(
            format!("{TYPE_NAME}: the cluster is gone"),
            format!(
                "EKS cluster {} no longer exists in {}; its token is useless.",
                private.object, private.region
            ),
        )),
        Err(e) => diagnostics.push(Diagnostic::warning(
            format!("{TYPE_NAME}: cannot check the cluster"),
            e.to_string(),
        )),
    }
    Ok(Renewed {
        renew_at: None,
        private: private.encode(),
        diagnostics,
    })
}

fn warn(d: Diagnostic) -> Diagnostic {
    logging::warn(&format!("{}: {}", d.summary, d.detail));
    d
}

pub fn close(private: &Private) -> Diagnostics {
    logging::debug(&format!(
        "CloseEphemeralResource {TYPE_NAME}: token for cluster {} released; nothing to revoke, it lapses by itself",
        private.object
    ));
    Diagnostics::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_asked_a_minute_before_expiry_or_a_quarter_of_a_short_lifetime() {
        let t = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            renew_at(t, Duration::from_secs(840)),
            UNIX_EPOCH + Duration::from_secs(940)
        );
        assert_eq!(
            renew_at(t, Duration::from_secs(8)),
            UNIX_EPOCH + Duration::from_secs(998)
        );
    }

    #[test]
    fn the_token_is_sensitive_and_the_schema_says_so() {
        let s = schema();
        assert!(s.block.attribute("token").unwrap().sensitive);
        assert!(!s.block.attribute("endpoint").unwrap().sensitive);
        assert!(s.block.attribute("name").unwrap().required);
    }
}
