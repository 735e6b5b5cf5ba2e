//! Ephemeral resources (Terraform 1.10+): values Terraform holds for one
//! run and never writes to state or plan. `idis_cluster_auth` gives a
//! Kubernetes client the cluster's endpoint, CA and a short-lived token;
//! `idis_database_credentials` the database master user from the secret
//! RDS manages. Both are looked up by environment name, as
//! `data "idis_environment"` is.
//!
//! Terraform hands back the private data of an opened resource on renew
//! and close; it holds names and times only, never a secret.

pub mod cluster_auth;
pub mod database_credentials;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::components::{ComponentError, Ctx};
use crate::environment::{orchestrate, validate};
use crate::protocol::cty::{Path, Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Schema};
use crate::protocol::server::{Opened, Renewed};
use crate::provider::config::Aws;

/// The arguments both ephemeral resources take.
fn arguments(description: &str) -> Block {
    Block::new(description)
        .attr(Attribute::required("name", Type::String, "Name of the environment: the `name` of its `idis_environment` (the module's `environment` input)."))
        .attr(Attribute::optional_computed("region", Type::String, "Region the environment is in. Default: the provider's region."))
}

/// The same checks as the resource's `name` and `region`.
pub fn validate(config: &Value) -> Diagnostics {
    let mut key = Value::Object(BTreeMap::new());
    key.set_attr("name", config.get_attr("name").clone());
    key.set_attr("region", config.get_attr("region").clone());
    validate::validate(&key)
}

/// Names and times an opened resource keeps for renew and close.
#[derive(Serialize, Deserialize, Debug, Default, PartialEq)]
pub struct Private {
    pub name: String,
    pub region: String,
    /// The object the value came from (cluster name, secret ARN).
    pub object: String,
    /// Seconds since the epoch when the value stops working, if it does.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl Private {
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Result<Private, Diagnostics> {
        serde_json::from_slice(bytes).map_err(|e| {
            Diagnostic::error(
                "Invalid private data",
                format!("Terraform handed back private data this provider did not write ({e}); open the ephemeral resource again."),
            )
            .into()
        })
    }
}

/// The environment a configuration names, and a context to read it.
async fn context(
    aws: &Arc<Aws>,
    config: &Value,
    cancel: &CancellationToken,
) -> Result<(Ctx, Value), Diagnostics> {
    let name = config
        .get_attr("name")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let region = config
        .get_attr("region")
        .as_str()
        .unwrap_or(&aws.region)
        .to_string();
    let ctx = orchestrate::context_of(aws, &name, &region, cancel).await?;
    let mut result = config.clone();
    result.set_attr("region", Value::string(&region));
    Ok((ctx, result))
}

fn failed(type_name: &str, e: &ComponentError) -> Diagnostics {
    Diagnostic::error(
        format!("{type_name}: {} failed", e.component()),
        e.to_string(),
    )
    .into()
}

fn not_found(type_name: &str, what: &str, ctx: &Ctx) -> Diagnostics {
    Diagnostic::error(
        format!("{type_name}: no {what}"),
        format!(
            "Environment {:?} has no {what} in {}: check `name` and `region`, and that the provider's credentials are for the account that holds the environment (terraform apply makes it).",
            ctx.env, ctx.region
        ),
    )
    .at(Path::root().attr("name"))
    .into()
}

fn rfc3339(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

pub fn schemas() -> BTreeMap<String, Schema> {
    BTreeMap::from([
        (cluster_auth::TYPE_NAME.to_string(), cluster_auth::schema()),
        (
            database_credentials::TYPE_NAME.to_string(),
            database_credentials::schema(),
        ),
    ])
}

pub async fn open(
    aws: &Arc<Aws>,
    type_name: &str,
    config: Value,
    cancel: &CancellationToken,
) -> Result<Opened, Diagnostics> {
    match type_name {
        cluster_auth::TYPE_NAME => cluster_auth::open(aws, config, cancel).await,
        database_credentials::TYPE_NAME => database_credentials::open(aws, config, cancel).await,
        other => Err(crate::protocol::server::unknown_type("ephemeral resource", other).into()),
    }
}

pub async fn renew(
    aws: &Arc<Aws>,
    type_name: &str,
    private: &[u8],
    cancel: &CancellationToken,
) -> Result<Renewed, Diagnostics> {
    let private = Private::decode(private)?;
    match type_name {
        cluster_auth::TYPE_NAME => cluster_auth::renew(aws, private, cancel).await,
        database_credentials::TYPE_NAME => Ok(database_credentials::renew(private)),
        other => Err(crate::protocol::server::unknown_type("ephemeral resource", other).into()),
    }
}

pub fn close(type_name: &str, private: &[u8]) -> Diagnostics {
    let private = match Private::decode(private) {
        Ok(p) => p,
        Err(d) => return d,
    };
    match type_name {
        cluster_auth::TYPE_NAME => cluster_auth::close(&private),
        database_credentials::TYPE_NAME => database_credentials::close(&private),
        other => crate::protocol::server::unknown_type("ephemeral resource", other).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_data_round_trips_and_refuses_what_it_did_not_write() {
        let p = Private {
            name: "prod".into(),
            region: "us-east-1".into(),
            object: "idis-prod".into(),
            expires_at: Some(10),
        };
        assert_eq!(Private::decode(&p.encode()).unwrap(), p);
        assert!(Private::decode(b"\x00garbage").is_err());
    }

    #[test]
    fn times_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600);
        assert_eq!(rfc3339(t), "2026-01-01T00:00:00Z");
    }
}
