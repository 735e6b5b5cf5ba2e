//! `ephemeral "idis_database_credentials"`: the database master user
//! and password, read at apply time from the secret RDS manages
//! (`ManageMasterUserPassword`), so a migration job or a `postgresql`
//! provider can connect without the password ever reaching state.
//!
//! RDS rotates that secret on its own schedule (7 days by default); the
//! value read stays valid until then, so nothing is renewed.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{arguments, context, failed, not_found, Private};
use crate::components::access;
use crate::logging;
use crate::protocol::cty::{Type, Value};
use crate::protocol::diag::Diagnostics;
use crate::protocol::schema::{Attribute, Schema};
use crate::protocol::server::{Opened, Renewed};
use crate::provider::config::Aws;

pub const TYPE_NAME: &str = "idis_database_credentials";

pub fn schema() -> Schema {
    Schema::new(
        0,
        arguments("The database master user of an environment, read from the Secrets Manager secret RDS manages for it. Ephemeral: never in state or plan.")
            .attr(Attribute::computed("username", Type::String, "Master user name."))
            .attr(Attribute::computed("password", Type::String, "Master password, as the secret holds it now (RDS rotates it).").sensitive())
            .attr(Attribute::computed("host", Type::String, "Endpoint address of the primary."))
            .attr(Attribute::computed("port", Type::Number, "Port of the primary."))
            .attr(Attribute::computed("database", Type::String, "Initial database name."))
            .attr(Attribute::computed("secret_arn", Type::String, "ARN of the secret the credentials were read from."))
            .attr(Attribute::computed("url", Type::String, "`postgresql://user:password@host:port/database` (user and password percent-encoded), as `IDIS_DATABASE_URL` takes it.").sensitive()),
    )
}

/// Percent-encodes a URL's user information (RFC 3986 unreserved
/// characters stay as they are).
fn userinfo(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn connection_url(c: &access::MasterCredentials) -> String {
    format!(
        "postgresql://{}:{}@{}:{}/{}",
        userinfo(&c.username),
        userinfo(&c.password),
        c.host.as_deref().unwrap_or_default(),
        c.port,
        c.database.as_deref().unwrap_or("postgres")
    )
}

pub async fn open(
    aws: &Arc<Aws>,
    config: Value,
    cancel: &CancellationToken,
) -> Result<Opened, Diagnostics> {
    let (ctx, mut result) = context(aws, &config, cancel).await?;
    let credentials = match access::master_credentials(&ctx).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(not_found(TYPE_NAME, "database", &ctx)),
        Err(e) => return Err(failed(TYPE_NAME, &e)),
    };
    logging::debug(&format!(
        "OpenEphemeralResource {TYPE_NAME}: master credentials of {} read from {}",
        crate::components::database::identifier(&ctx),
        credentials.secret_arn
    ));
    result.set_attr("username", Value::string(&credentials.username));
    result.set_attr("password", Value::string(&credentials.password));
    result.set_attr("host", Value::opt_string(credentials.host.clone()));
    result.set_attr("port", Value::int(credentials.port));
    result.set_attr("database", Value::opt_string(credentials.database.clone()));
    result.set_attr("secret_arn", Value::string(&credentials.secret_arn));
    result.set_attr("url", Value::string(connection_url(&credentials)));
    let private = Private {
        name: ctx.env.clone(),
        region: ctx.region.clone(),
        object: credentials.secret_arn,
        expires_at: None,
    };
    Ok(Opened {
        result,
        renew_at: None,
        private: private.encode(),
        diagnostics: Diagnostics::new(),
    })
}

/// Never asked for (open sets no renewal time); answers all the same.
pub fn renew(private: Private) -> Renewed {
    logging::debug(&format!(
        "RenewEphemeralResource {TYPE_NAME}: nothing to renew for {}",
        private.object
    ));
    Renewed {
        renew_at: None,
        private: private.encode(),
        diagnostics: Diagnostics::new(),
    }
}

pub fn close(private: &Private) -> Diagnostics {
    logging::debug(&format!(
        "CloseEphemeralResource {TYPE_NAME}: credentials from {} released",
        private.object
    ));
    Diagnostics::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_encodes_what_a_password_may_hold() {
        let c = access::MasterCredentials {
            username: "idis".into(),
            password: "a:b#c?d%e".into(),
            host: Some("db.example".into()),
            port: 5432,
            database: Some("idis".into()),
            secret_arn: "arn".into(),
        };
        assert_eq!(
            connection_url(&c),
            "postgresql://idis:a%3Ab%23c%3Fd%25e@db.example:5432/idis"
        );
    }

    #[test]
    fn the_password_and_url_are_sensitive() {
        let s = schema();
        for name in ["password", "url"] {
            assert!(s.block.attribute(name).unwrap().sensitive, "{name}");
        }
        assert!(!s.block.attribute("username").unwrap().sensitive);
    }
}
