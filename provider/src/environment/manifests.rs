//! `kubernetes_manifests`: what the application needs in the cluster, as
//! YAML the user can `kubectl apply` or feed to the kubernetes provider:
//!
//! - `config_map`: the ConfigMap `idis-config` holding `app_config`;
//! - `service_account`: the API and workers' service account, annotated
//!   with their IAM role (`eks.amazonaws.com/role-arn`);
//! - `external_secrets_service_account` and `secret_store`: the service
//!   account the external-secrets `SecretStore` authenticates as (with the
//!   external-secrets role), and that store (AWS Secrets Manager, the
//!   environment's region);
//! - `external_secret`: the `ExternalSecret` that writes the Secret
//!   `idis-secrets` with the four required settings. Its template builds
//!   `IDIS_DATABASE_URL` from the RDS-managed master secret (`username`,
//!   `password`, URL-escaped with Go's `urlquery`) and the endpoint, and
//!   `IDIS_REDIS_URL` (`rediss://`, TLS) from the cache's auth token
//!   secret, so RDS's rotation of the managed password reaches the URL at
//!   the next refresh; `IDIS_JWT_SECRET` and `IDIS_ENCRYPTION_KEY` are the
//!   generated secrets as stored.
//!
//! No secret value is in them: only ARNs, names and endpoints.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::protocol::cty::Value;

/// The Secret the ExternalSecret writes, and the names of the objects.
pub const SECRET_NAME: &str = "idis-secrets";
pub const CONFIG_MAP_NAME: &str = "idis-config";
/// How often external-secrets reads the secrets again: a rotated database
/// password reaches the Secret within this interval.
pub const REFRESH_INTERVAL: &str = "5m";

/// A YAML scalar: JSON's quoting is YAML's double-quoted style.
fn scalar(v: &Json) -> String {
    v.to_string()
}

/// A key, plain when YAML reads it back as the same string.
fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plain {
        k.to_string()
    } else {
        Json::String(k.to_string()).to_string()
    }
}

fn emit(v: &Json, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Json::Object(map) => {
            for (k, v) in map {
                match v {
                    Json::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        emit(v, indent + 2, out);
                    }
                    Json::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", key(k)));
                        emit(v, indent, out);
                    }
                    Json::Object(_) => out.push_str(&format!("{pad}{}: {{}}\n", key(k))),
                    Json::Array(_) => out.push_str(&format!("{pad}{}: []\n", key(k))),
                    scalar_value => {
                        out.push_str(&format!("{pad}{}: {}\n", key(k), scalar(scalar_value)))
                    }
                }
            }
        }
        Json::Array(items) => {
            for item in items {
                let mut inner = String::new();
                emit(item, indent + 2, &mut inner);
                let body = inner.trim_start_matches(' ');
                match item {
                    Json::Object(_) | Json::Array(_) => {
                        out.push_str(&format!("{pad}- {body}"));
                    }
                    other => out.push_str(&format!("{pad}- {}\n", scalar(other))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// A manifest as YAML text.
pub fn yaml(doc: &Json) -> String {
    let mut out = String::new();
    emit(doc, 0, &mut out);
    out
}

/// Everything the manifests are made of, all known and present.
pub struct Inputs {
    pub env: String,
    pub region: String,
    pub namespace: String,
    pub api_service_account: String,
    pub external_secrets_service_account: String,
    pub api_role_arn: String,
    pub external_secrets_role_arn: String,
    pub database_host: String,
    pub database_port: String,
    pub database_name: String,
    pub database_secret_arn: String,
    pub cache_host: String,
    pub cache_port: String,
    pub cache_secret_arn: String,
    pub jwt_secret_arn: String,
    pub encryption_key_secret_arn: String,
    pub app_config: BTreeMap<String, String>,
}

/// The manifests by name (see the module documentation).
pub fn manifests(i: &Inputs) -> BTreeMap<String, String> {
    let labels = json!({
        "app.kubernetes.io/part-of": "idis",
        "app.kubernetes.io/managed-by": "terraform-provider-idis",
        "idis.io/environment": i.env,
    });
    let meta = |name: &str| json!({ "name": name, "namespace": i.namespace, "labels": labels });
    let store = format!("idis-{}", i.env);
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(CONFIG_MAP_NAME),
        "data": i.app_config,
    });
    let service_account = |name: &str, role: &str| {
        let mut m = meta(name);
        m["annotations"] = json!({ "eks.amazonaws.com/role-arn": role });
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": m })
    };
    let secret_store = json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": meta(&store),
        "spec": { "provider": { "aws": {
            "service": "SecretsManager",
            "region": i.region,
            "auth": { "jwt": { "serviceAccountRef": { "name": i.external_secrets_service_account } } },
        }}},
    });
    let remote = |secret_key: &str, arn: &str, property: Option<&str>| {
        let mut r = json!({ "key": arn });
        if let Some(p) = property {
            r["property"] = json!(p);
        }
        json!({ "secretKey": secret_key, "remoteRef": r })
    };
    let database_url = format!(
        "postgresql://{{{{ .db_username | urlquery }}}}:{{{{ .db_password | urlquery }}}}@{}:{}/{}?sslmode=require",
        i.database_host, i.database_port, i.database_name
    );
    let redis_url = format!(
        "rediss://:{{{{ .redis_auth_token | urlquery }}}}@{}:{}",
        i.cache_host, i.cache_port
    );
    let external_secret = json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": meta(SECRET_NAME),
        "spec": {
            "refreshInterval": REFRESH_INTERVAL,
            "secretStoreRef": { "kind": "SecretStore", "name": store },
            "target": {
                "name": SECRET_NAME,
                "creationPolicy": "Owner",
                "template": {
                    "engineVersion": "v2",
                    "type": "Opaque",
                    "data": {
                        "IDIS_DATABASE_URL": database_url,
                        "IDIS_REDIS_URL": redis_url,
                        "IDIS_JWT_SECRET": "{{ .jwt_secret }}",
                        "IDIS_ENCRYPTION_KEY": "{{ .encryption_key }}",
                    },
                },
            },
            "data": [
                remote("db_username", &i.database_secret_arn, Some("username")),
                remote("db_password", &i.database_secret_arn, Some("password")),
                remote("redis_auth_token", &i.cache_secret_arn, None),
                remote("jwt_secret", &i.jwt_secret_arn, None),
                remote("encryption_key", &i.encryption_key_secret_arn, None),
            ],
        },
    });
    [
        ("config_map", config_map),
        (
            "service_account",
            service_account(&i.api_service_account, &i.api_role_arn),
        ),
        (
            "external_secrets_service_account",
            service_account(
                &i.external_secrets_service_account,
                &i.external_secrets_role_arn,
            ),
        ),
        ("secret_store", secret_store),
        ("external_secret", external_secret),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), yaml(&v)))
    .collect()
}

/// `kubernetes_manifests` from the resource's other attributes: unknown
/// while anything it is made of is unknown, null while any is missing.
pub fn derive(state: &Value) -> Value {
    // The site that serves: the DR site's once promoted.
    let top = |name: &str| super::app::serving(state, name);
    let identity = state.get_attr("workload_identity");
    let values = [
        top("name"),
        top("region"),
        identity.get_attr("namespace").clone(),
        identity.get_attr("api_service_account").clone(),
        identity
            .get_attr("external_secrets_service_account")
            .clone(),
        top("api_role_arn"),
        top("external_secrets_role_arn"),
        top("database_endpoint"),
        top("database_port"),
        state.get_attr("database").get_attr("database_name").clone(),
        top("database_master_secret_arn"),
        top("cache_primary_endpoint"),
        top("cache_port"),
        top("cache_auth_secret_arn"),
        top("jwt_secret_arn"),
        top("encryption_key_secret_arn"),
        top("app_config"),
    ];
    if values.iter().any(|v| !v.is_wholly_known()) {
        return Value::Unknown;
    }
    if values.iter().any(Value::is_null) {
        return Value::Null;
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => format!("{other:?}"),
    };
    let t: Vec<String> = values[..16].iter().map(text).collect();
    let inputs = Inputs {
        env: t[0].clone(),
        region: t[1].clone(),
        namespace: t[2].clone(),
        api_service_account: t[3].clone(),
        external_secrets_service_account: t[4].clone(),
        api_role_arn: t[5].clone(),
        external_secrets_role_arn: t[6].clone(),
        database_host: t[7].clone(),
        database_port: t[8].clone(),
        database_name: t[9].clone(),
        database_secret_arn: t[10].clone(),
        cache_host: t[11].clone(),
        cache_port: t[12].clone(),
        cache_secret_arn: t[13].clone(),
        jwt_secret_arn: t[14].clone(),
        encryption_key_secret_arn: t[15].clone(),
        app_config: values[16].as_string_map().unwrap_or_default(),
    };
    Value::string_map(manifests(&inputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_quotes_every_string_and_nests_lists_of_maps() {
        let doc = json!({
            "a": { "b/c.d": "x: y", "n": [ { "k": "v", "l": "w" }, "s" ] },
            "IDIS_X": "{{ .p | urlquery }}",
            "e": {},
        });
        assert_eq!(
            yaml(&doc),
            "IDIS_X: \"{{ .p | urlquery }}\"\na:\n  b/c.d: \"x: y\"\n  n:\n  - k: \"v\"\n    l: \"w\"\n  - \"s\"\ne: {}\n"
        );
    }

    #[test]
    fn the_urls_are_templates_over_the_secrets_and_hold_no_value() {
        let inputs = Inputs {
            env: "production".into(),
            region: "us-east-1".into(),
            namespace: "idis".into(),
            api_service_account: "idis-api".into(),
            external_secrets_service_account: "idis-external-secrets".into(),
            api_role_arn: "arn:api".into(),
            external_secrets_role_arn: "arn:es".into(),
            database_host: "db.example".into(),
            database_port: "5432".into(),
            database_name: "idis".into(),
            database_secret_arn: "arn:db".into(),
            cache_host: "cache.example".into(),
            cache_port: "6379".into(),
            cache_secret_arn: "arn:cache".into(),
            jwt_secret_arn: "arn:jwt".into(),
            encryption_key_secret_arn: "arn:key".into(),
            app_config: BTreeMap::from([("IDIS_ENV".into(), "production".into())]),
        };
        let m = manifests(&inputs);
        let es = &m["external_secret"];
        assert!(es.contains("\"postgresql://{{ .db_username | urlquery }}:{{ .db_password | urlquery }}@db.example:5432/idis?sslmode=require\""), "{es}");
        assert!(
            es.contains("\"rediss://:{{ .redis_auth_token | urlquery }}@cache.example:6379\""),
            "{es}"
        );
        assert!(m["service_account"].contains("eks.amazonaws.com/role-arn: \"arn:api\""));
        assert_eq!(m.len(), 5);
    }
}
