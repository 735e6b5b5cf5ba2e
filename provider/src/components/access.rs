//! Short-lived access to what an environment runs, for the ephemeral
//! resources: the cluster's API server with a bearer token, and the
//! database's master credentials from the secret RDS manages.
//!
//! The token is the one `aws eks get-token` and aws-iam-authenticator
//! make: an STS `GetCallerIdentity` request presigned with the caller's
//! credentials (SigV4 in the query string, `X-Amz-Expires=60`), the
//! header `x-k8s-aws-id: <cluster>` signed with it, the URL base64url
//! encoded without padding behind `k8s-aws-v1.`. EKS's authenticator
//! replays the request to STS to learn who the caller is, and accepts a
//! token for 15 minutes after it was signed.
//!
//! Nothing here logs or formats a secret: [`ClusterToken`] and
//! [`MasterCredentials`] print their secrets as `<redacted>`.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_eks::types::ClusterStatus;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use serde::Deserialize;

use super::{aws_error, cluster, database, is_not_found, ComponentError, Ctx};

const CLUSTER: &str = "cluster";
const DATABASE: &str = "database";

/// What every EKS token starts with.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster.
const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL itself is valid, as aws-iam-authenticator
/// and `aws eks get-token` sign it.
const PRESIGNED_URL_EXPIRES: Duration = Duration::from_secs(60);
/// EKS accepts a token for 15 minutes after signing; `aws eks get-token`
/// reports it valid for 14, to leave a margin for clock skew.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

/// The cluster's API server, as a Kubernetes client needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiServer {
    pub cluster_name: String,
    pub endpoint: String,
    pub certificate_authority_data: String,
}

/// The API server of the environment's cluster; None when there is no
/// cluster, or it is being deleted.
pub async fn api_server(ctx: &Ctx) -> Result<Option<ApiServer>, ComponentError> {
    let name = cluster::cluster_name(ctx);
    let found = match ctx.aws.eks().describe_cluster().name(&name).send().await {
        Ok(out) => out.cluster,
        Err(e) if is_not_found(&e) => None,
        Err(e) => {
            return Err(aws_error(
                CLUSTER,
                format!("describe the EKS cluster {name}"),
                e,
            ))
        }
    };
    let Some(found) = found.filter(|c| c.status() != Some(&ClusterStatus::Deleting)) else {
        return Ok(None);
    };
    let (Some(endpoint), Some(ca)) = (
        found.endpoint(),
        found.certificate_authority().and_then(|c| c.data()),
    ) else {
        return Err(ComponentError::Conflict {
            component: CLUSTER,
            message: format!(
                "EKS cluster {name} has no endpoint or certificate yet (status {}); wait until it is ACTIVE",
                found.status().map_or("unknown", |s| s.as_str())
            ),
        });
    };
    Ok(Some(ApiServer {
        cluster_name: name,
        endpoint: endpoint.to_string(),
        certificate_authority_data: ca.to_string(),
    }))
}

/// A bearer token for a cluster and when it stops being accepted.
#[derive(Clone, PartialEq)]
pub struct ClusterToken {
    pub token: String,
    pub expires_at: SystemTime,
}

impl fmt::Debug for ClusterToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Signs a token for `cluster` with `credentials` at `now`, for the STS
/// endpoint `sts_endpoint` (`https://sts.<region>.amazonaws.com`, or the
/// endpoint the provider is configured with).
pub fn sign_cluster_token(
    credentials: &Credentials,
    region: &str,
    sts_endpoint: &str,
    cluster: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Result<ClusterToken, String> {
    let base = sts_endpoint.trim_end_matches('/');
    let url = format!("{base}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGNED_URL_EXPIRES);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot sign the cluster token: {e}"))?
        .into();
    let request = SignableRequest::new(
        "GET",
        &url,
        [(CLUSTER_ID_HEADER, cluster)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| format!("cannot sign the cluster token: {e}"))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| format!("cannot sign the cluster token: {e}"))?
        .into_parts();
    let mut presigned = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(())
        .map_err(|e| format!("cannot build the STS request for the cluster token: {e}"))?;
    instructions.apply_to_request_http1x(&mut presigned);
    let signed_url = presigned.uri().to_string();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed_url);
    Ok(ClusterToken {
        token: format!("{TOKEN_PREFIX}{encoded}"),
        expires_at: now + lifetime,
    })
}

/// A token for the environment's cluster, signed with the provider's
/// credentials.
pub async fn cluster_token(
    ctx: &Ctx,
    cluster: &str,
    lifetime: Duration,
) -> Result<ClusterToken, ComponentError> {
    let credentials = ctx
        .aws
        .credentials()
        .await
        .map_err(|message| ComponentError::Conflict {
            component: CLUSTER,
            message: format!("cannot sign a token for {cluster}: {message}"),
        })?;
    let endpoint = ctx
        .aws
        .endpoint_override("sts")
        .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", ctx.region));
    sign_cluster_token(
        &credentials,
        &ctx.region,
        &endpoint,
        cluster,
        SystemTime::now(),
        lifetime,
    )
    .map_err(|message| ComponentError::Conflict {
        component: CLUSTER,
        message,
    })
}

/// The database's master user, as the secret RDS manages holds it.
#[derive(Clone, PartialEq)]
pub struct MasterCredentials {
    pub username: String,
    pub password: String,
    pub host: Option<String>,
    pub port: i64,
    pub database: Option<String>,
    pub secret_arn: String,
}

impl fmt::Debug for MasterCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("secret_arn", &self.secret_arn)
            .finish()
    }
}

#[derive(Deserialize)]
struct SecretValue {
    username: String,
    password: String,
}

/// Reads the master credentials of the environment's database: the
/// instance's managed secret (`MasterUserSecret`), then its current
/// value. None when there is no database.
pub async fn master_credentials(ctx: &Ctx) -> Result<Option<MasterCredentials>, ComponentError> {
    let id = database::identifier(ctx);
    let instance = match ctx
        .aws
        .rds()
        .describe_db_instances()
        .db_instance_identifier(&id)
        .send()
        .await
    {
        Ok(out) => out.db_instances().first().cloned(),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(aws_error(DATABASE, format!("describe DB instance {id}"), e)),
    };
    let Some(instance) = instance else {
        return Ok(None);
    };
    let Some(secret_arn) = instance
        .master_user_secret()
        .and_then(|s| s.secret_arn())
        .map(str::to_string)
    else {
        return Err(ComponentError::Conflict {
            component: DATABASE,
            message: format!(
                "DB instance {id} has no RDS-managed master secret (ManageMasterUserPassword is off); the provider makes it with one, so someone changed it: run terraform apply to put it back"
            ),
        });
    };
    let value = ctx
        .aws
        .secretsmanager()
        .get_secret_value()
        .secret_id(&secret_arn)
        .send()
        .await
        .map_err(|e| aws_error(DATABASE, format!("read the master secret {secret_arn}"), e))?;
    let parsed: SecretValue = value
        .secret_string()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| ComponentError::Conflict {
            component: DATABASE,
            // Never the secret's text: only what was expected of it.
            message: format!(
                "the master secret {secret_arn} does not hold {{\"username\", \"password\"}} as RDS writes it"
            ),
        })?;
    let endpoint = instance.endpoint();
    Ok(Some(MasterCredentials {
        username: parsed.username,
        password: parsed.password,
        host: endpoint.and_then(|e| e.address()).map(str::to_string),
        port: endpoint
            .and_then(|e| e.port())
            .or(instance.db_instance_port())
            .map(i64::from)
            .unwrap_or(5432),
        database: instance.db_name().map(str::to_string),
        secret_arn,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_url(token: &str) -> String {
        let encoded = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .expect("base64url without padding"),
        )
        .unwrap()
    }

    #[test]
    fn a_cluster_token_is_a_presigned_get_caller_identity_bound_to_the_cluster() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "SECRETEXAMPLE",
            Some("SESSION".into()),
            None,
            "t",
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
        let t = sign_cluster_token(
            &creds,
            "eu-west-1",
            "https://sts.eu-west-1.amazonaws.com",
            "idis-prod",
            now,
            TOKEN_LIFETIME,
        )
        .unwrap();
        assert!(!t.token.contains('='), "no padding");
        let url = token_url(&t.token);
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?"),
            "{url}"
        );
        for part in [
            "Action=GetCallerIdentity",
            "Version=2011-06-15",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20260101T000000Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Security-Token=SESSION",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        assert_eq!(t.expires_at, now + Duration::from_secs(840));
        // The secret key never appears; the debug form hides the token.
        assert!(!url.contains("SECRETEXAMPLE"));
        assert!(!format!("{t:?}").contains(TOKEN_PREFIX));
        // Another cluster, another signature.
        let other = sign_cluster_token(
            &creds,
            "eu-west-1",
            "https://sts.eu-west-1.amazonaws.com",
            "idis-staging",
            now,
            TOKEN_LIFETIME,
        )
        .unwrap();
        assert_ne!(other.token, t.token);
    }

    #[test]
    fn master_credentials_never_print_the_password() {
        let c = MasterCredentials {
            username: "idis".into(),
            password: "hunter2-very-secret".into(),
            host: Some("db".into()),
            port: 5432,
            database: Some("idis".into()),
            secret_arn: "arn:secret".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
