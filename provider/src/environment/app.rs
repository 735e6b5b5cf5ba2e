//! What the application running on the environment is given: the
//! non-secret `IDIS_*` settings for its ConfigMap (`app_config`), the
//! secret ones as Secrets Manager ARNs (`secret_refs`), and the Kubernetes
//! manifests that deliver both (`kubernetes_manifests`, see
//! `manifests`), derived from the components' outputs.

use std::collections::BTreeMap;

use crate::components::edge::ANNOTATION_WAF;
use crate::protocol::cty::Value;

/// The attribute `name` of the site that serves: once the DR site is
/// promoted, the DR region's endpoints, buckets, key, secrets and
/// service-account roles (the `dr_*` outputs) instead of the primary's;
/// otherwise, and for what the DR site has no copy of, the attribute
/// itself.
pub fn serving(state: &Value, name: &str) -> Value {
    if !promoted(state) {
        return state.get_attr(name).clone();
    }
    match name {
        "region" => state.get_attr("dr").get_attr("region").clone(),
        "documents_bucket_name"
        | "audit_bucket_name"
        | "platform_key_arn"
        | "database_endpoint"
        | "database_replica_endpoints"
        | "database_master_secret_arn"
        | "cache_primary_endpoint"
        | "cache_reader_endpoint"
        | "cache_auth_secret_arn"
        | "jwt_secret_arn"
        | "encryption_key_secret_arn"
        | "api_role_arn"
        | "external_secrets_role_arn"
        | "web_acl_arn" => state.get_attr(&format!("dr_{name}")).clone(),
        // Ports: the DR database and cache are made as the primary's.
        _ => state.get_attr(name).clone(),
    }
}

/// Whether the DR site serves.
fn promoted(state: &Value) -> bool {
    let dr = state.get_attr("dr");
    dr.get_attr("promote").as_bool() == Some(true) && !dr.get_attr("region").is_null()
}

/// Once the DR site serves, `ingress_annotations` attach the DR region's
/// web ACL: WAF attaches a regional web ACL only to load balancers of its
/// own region. Unknown while that ACL is.
fn serve_ingress_annotations(state: &mut Value) {
    if !promoted(state) {
        return;
    }
    let Some(mut annotations) = state.get_attr("ingress_annotations").as_string_map() else {
        return;
    };
    match serving(state, "web_acl_arn") {
        Value::String(arn) => {
            annotations.insert(ANNOTATION_WAF.to_string(), arn);
        }
        Value::Null => {
            annotations.remove(ANNOTATION_WAF);
        }
        _ => {
            state.set_attr("ingress_annotations", Value::Unknown);
            return;
        }
    }
    state.set_attr("ingress_annotations", Value::string_map(annotations));
}

/// `app_config` and `secret_refs` from the other attributes: the non-secret
/// `IDIS_*` settings, and the secret ones as Secrets Manager ARNs. Unknown
/// while anything they depend on is unknown.
pub fn derive_app_settings(state: &mut Value) {
    let s = |name: &str| serving(state, name);
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut config: Vec<(&str, Value)> = vec![
        ("IDIS_ENV", s("name")),
        ("IDIS_AWS_REGION", s("region")),
        ("IDIS_OBJECT_STORE_TYPE", Value::string("s3")),
        // Documents go to the documents bucket; the WORM audit bucket
        // has a setting of its own.
        ("IDIS_S3_BUCKET", s("documents_bucket_name")),
        ("IDIS_S3_REGION", s("region")),
        ("IDIS_S3_KMS_KEY_ARN", s("platform_key_arn")),
        ("IDIS_AUDIT_S3_BUCKET", s("audit_bucket_name")),
        (
            "IDIS_AUDIT_S3_OBJECT_LOCK",
            state.get_attr("audit_storage").get_attr("worm").clone(),
        ),
        ("IDIS_DATABASE_HOST", s("database_endpoint")),
        ("IDIS_DATABASE_PORT", s("database_port")),
        (
            "IDIS_DATABASE_NAME",
            state.get_attr("database").get_attr("database_name").clone(),
        ),
        ("IDIS_DATABASE_SSLMODE", Value::string("require")),
        ("IDIS_REDIS_HOST", s("cache_primary_endpoint")),
        ("IDIS_REDIS_READER_HOST", s("cache_reader_endpoint")),
        ("IDIS_REDIS_PORT", s("cache_port")),
        ("IDIS_REDIS_TLS", Value::string("true")),
        ("IDIS_EKS_CLUSTER_NAME", s("cluster_name")),
    ];
    if let Some(replicas) = s("database_replica_endpoints").as_strings() {
        config.push((
            "IDIS_DATABASE_READ_HOSTS",
            Value::string(replicas.join(",")),
        ));
    } else {
        config.push(("IDIS_DATABASE_READ_HOSTS", s("database_replica_endpoints")));
    }
    // The four required secret settings, by the secret each is made
    // from (the URLs are composed by the ExternalSecret of
    // `kubernetes_manifests`), and the raw credentials.
    let secrets = [
        ("IDIS_DATABASE_URL", s("database_master_secret_arn")),
        ("IDIS_REDIS_URL", s("cache_auth_secret_arn")),
        ("IDIS_JWT_SECRET", s("jwt_secret_arn")),
        ("IDIS_ENCRYPTION_KEY", s("encryption_key_secret_arn")),
        ("IDIS_DATABASE_CREDENTIALS", s("database_master_secret_arn")),
        ("IDIS_REDIS_AUTH_TOKEN", s("cache_auth_secret_arn")),
    ];
    let as_map = |items: &[(&str, Value)]| -> Value {
        let mut map = BTreeMap::new();
        for (key, value) in items {
            match value {
                Value::Bool(b) => {
                    map.insert(key.to_string(), b.to_string());
                }
                Value::Null => {}
                other => match text(other) {
                    Some(t) => {
                        map.insert(key.to_string(), t);
                    }
                    None => return Value::Unknown,
                },
            }
        }
        Value::string_map(map)
    };
    let app_config = as_map(&config);
    let secret_refs = as_map(&secrets);
    state.set_attr("app_config", app_config);
    state.set_attr("secret_refs", secret_refs);
    let manifests = super::manifests::derive(state);
    state.set_attr("kubernetes_manifests", manifests);
    serve_ingress_annotations(state);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(promote: bool, dr_acl: Value) -> Value {
        let mut s = Value::Null;
        let mut dr = Value::Null;
        dr.set_attr("region", Value::string("us-west-2"));
        dr.set_attr("promote", Value::Bool(promote));
        s.set_attr("dr", dr);
        s.set_attr("web_acl_arn", Value::string("arn:primary"));
        s.set_attr("dr_web_acl_arn", dr_acl);
        s.set_attr(
            "ingress_annotations",
            Value::string_map([
                (ANNOTATION_WAF, "arn:primary"),
                (crate::components::edge::ANNOTATION_SHIELD, "true"),
            ]),
        );
        s
    }

    fn waf(s: &Value) -> Option<String> {
        s.get_attr("ingress_annotations")
            .as_string_map()
            .and_then(|m| m.get(ANNOTATION_WAF).cloned())
    }

    #[test]
    fn the_ingress_attaches_the_web_acl_of_the_site_that_serves() {
        let mut before = state(false, Value::Null);
        serve_ingress_annotations(&mut before);
        assert_eq!(waf(&before).as_deref(), Some("arn:primary"));

        let mut promoted = state(true, Value::string("arn:dr"));
        serve_ingress_annotations(&mut promoted);
        assert_eq!(waf(&promoted).as_deref(), Some("arn:dr"));
        let shield = promoted
            .get_attr("ingress_annotations")
            .as_string_map()
            .unwrap();
        assert_eq!(
            shield
                .get(crate::components::edge::ANNOTATION_SHIELD)
                .map(String::as_str),
            Some("true")
        );

        // Promoting: the DR ACL is made by this apply.
        let mut promoting = state(true, Value::Unknown);
        serve_ingress_annotations(&mut promoting);
        assert_eq!(promoting.get_attr("ingress_annotations"), &Value::Unknown);

        // No DR ACL (edge.waf off there): no primary ACL either.
        let mut without = state(true, Value::Null);
        serve_ingress_annotations(&mut without);
        assert_eq!(waf(&without), None);
    }
}
