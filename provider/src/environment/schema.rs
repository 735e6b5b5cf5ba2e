//! The schema of `idis_environment`, composed from the components'
//! descriptions: a few top-level arguments, one GROUP block per component
//! (always present, so defaults are planned inside), the `timeouts` block,
//! and top-level computed attributes for everything learnt from AWS.

use crate::components::describe::{Component, Default, Guard, Setting, Visit, When, ENFORCED};
use crate::components::{self, describe::Check};
use std::collections::BTreeMap;

use crate::protocol::cty::{Type, Value};
use crate::protocol::schema::{
    Attribute, Block, IdentityAttribute, IdentitySchema, Nesting, Schema,
};

pub const TYPE_NAME: &str = "idis_environment";
/// 1: every component block has `enforced`; 2: `cache.engine`, the edge's
/// ingress annotations and associations (see `upgrade`).
pub const SCHEMA_VERSION: i64 = 2;

/// Version of the identity `{ name, region }` (Terraform 1.12+): what
/// names one environment in an account, whatever its settings.
pub const IDENTITY_VERSION: i64 = 0;

pub fn identity_schema() -> IdentitySchema {
    IdentitySchema {
        version: IDENTITY_VERSION,
        attributes: vec![
            IdentityAttribute::required("name", Type::String, "The environment name (`name`)."),
            IdentityAttribute::optional(
                "region",
                Type::String,
                "The region the environment is in (`region`). Default when importing: the provider's region.",
            ),
        ],
    }
}

/// The identity of an environment's state: its `name` and `region`.
pub fn identity(state: &Value) -> Value {
    Value::Object(BTreeMap::from([
        ("name".to_string(), state.get_attr("name").clone()),
        ("region".to_string(), state.get_attr("region").clone()),
    ]))
}

/// The block that bounds how long apply may wait.
pub const TIMEOUTS: &str = "timeouts";
pub const DEFAULT_TIMEOUT: &str = "90m";

/// The arguments of the `timeouts` block.
pub fn timeouts() -> Vec<Setting> {
    let check = Check::Text(
        |v| super::validate::parse_duration(v).is_some_and(|s| s > 0),
        "use a duration such as \"90m\", \"1h30m\" or \"45s\"",
    );
    [
        ("create", "Longest a create may wait for AWS before it fails (the next apply resumes)."),
        ("update", "Longest an update may wait for AWS before it fails (the next apply resumes)."),
        ("delete", "Longest a destroy may wait for AWS, including what the cluster left in the VPC, before it fails (destroy can be run again)."),
    ]
    .into_iter()
    .map(|(op, what)| {
        Setting::new(
            op,
            Type::String,
            Default::Str(DEFAULT_TIMEOUT),
            format!("{what} Default `{DEFAULT_TIMEOUT}`."),
        )
        .check(check)
        .not_recorded()
    })
    .collect()
}

/// The sentence the description of every replacing argument ends with;
/// the docs generator reads it.
pub const FORCES_REPLACEMENT: &str = "Changing this forces replacement.";

fn argument(setting: &Setting) -> Attribute {
    let mut description = setting.description.clone();
    if setting.replaces {
        description = format!("{description} {FORCES_REPLACEMENT}");
    }
    match setting.default {
        // Nothing planned in its place: the configuration's value or null.
        Default::Null => Attribute::optional(setting.name, setting.ty.clone(), &description),
        _ => Attribute::optional_computed(setting.name, setting.ty.clone(), &description),
    }
}

/// The description of a block's `enforced` map, from its guards.
fn enforced_description(guards: &[Guard]) -> String {
    let mut text = String::from(
        "Settings the provider makes in AWS without an argument of yours, as AWS has them: \
         each key holds the value below while AWS keeps what the provider made, or words that \
         say what is wrong. The plan always wants the values below, so a change made outside \
         Terraform shows in `terraform plan -refresh-only` and `terraform apply` puts it back.",
    );
    for g in guards {
        let when = match g.when {
            When::Always => String::new(),
            When::On(attr) => format!(" (while `{attr}` is true)"),
            When::Set(attr) => format!(" (while `{attr}` is set)"),
            When::OnOrSet(on, set) => format!(" (while `{on}` is true or `{set}` is set)"),
        };
        text.push_str(&format!(
            "\n  - `{}` = `\"{}\"`{when}: {}",
            g.key, g.made, g.doc
        ));
    }
    text
}

/// A component's block: its arguments and its `enforced` map.
pub fn component_block<C: Component>() -> Block {
    let mut block = Block::new(C::DOC);
    for setting in C::settings() {
        block = block.attr(argument(&setting));
    }
    block.attr(Attribute::computed(
        ENFORCED,
        Type::map(Type::String),
        &enforced_description(C::guards()),
    ))
}

/// Adds every component's block and outputs.
struct Compose(Block);

impl Visit for Compose {
    fn visit<C: Component>(&mut self) {
        let mut block = std::mem::take(&mut self.0);
        for output in C::outputs() {
            block = block.attr(Attribute::computed(
                output.name,
                output.ty,
                output.description,
            ));
        }
        self.0 = block.block(C::NAME, Nesting::Group, component_block::<C>());
    }
}

pub fn schema() -> Schema {
    let top = Block::new("A whole IDIS environment on AWS: network, KMS keys, EKS, RDS PostgreSQL, ElastiCache Redis, the WORM audit bucket, the documents bucket, the application's generated secrets, workload identity (IRSA), the edge (WAF, Shield, CloudFront) and monitoring (the alarm topic), built, read, repaired and destroyed as one unit.")
        .attr(Attribute::required("name", Type::String, &format!("Environment name: lowercase letters, digits and dashes, starting with a letter, at most 23 characters. Every AWS name derives from it (`idis-<name>-...`). {FORCES_REPLACEMENT}")))
        .attr(Attribute::optional_computed("region", Type::String, &format!("AWS region. Default: the provider's. {FORCES_REPLACEMENT}")))
        .attr(Attribute::optional("tags", Type::map(Type::String), "Tags for every AWS object, on top of the provider's `default_tags` and the ownership tags `idis:environment`, `idis:component`, `managed-by`. Read back from the VPC; tags AWS manages (`aws:*`) and `kubernetes.io/cluster/<name>` tags that EKS and Kubernetes tooling add (unless set here) are not drift."))
        .attr(Attribute::computed("id", Type::String, "The environment name."))
        .attr(Attribute::computed("cluster_name", Type::String, "EKS cluster name."))
        .attr(Attribute::computed("app_config", Type::map(Type::String), "Non-secret `IDIS_*` settings for the application's ConfigMap."))
        .attr(Attribute::computed("secret_refs", Type::map(Type::String), "Secret `IDIS_*` settings mapped to the Secrets Manager ARNs that hold them, for external-secrets: the four required ones (`IDIS_DATABASE_URL` and `IDIS_REDIS_URL` name the secret each URL is composed from), and the raw database credentials and Redis auth token."))
        .attr(Attribute::computed("kubernetes_manifests", Type::map(Type::String), "Kubernetes manifests (YAML) that deliver the settings to the application: `config_map` (`app_config` as the ConfigMap `idis-config`), `service_account` (the API and workers' service account, annotated with `api_role_arn`), `external_secrets_service_account` and `secret_store` (an external-secrets `SecretStore` reading Secrets Manager with `external_secrets_role_arn`), and `external_secret` (the Secret `idis-secrets` with `IDIS_DATABASE_URL`, `IDIS_REDIS_URL`, `IDIS_JWT_SECRET` and `IDIS_ENCRYPTION_KEY`, the URLs composed by its template from the secrets, so a rotated database password reaches them). No secret value is in them."));
    let mut compose = Compose(top);
    components::each(&mut compose);
    let mut timeouts_block =
        Block::new("How long apply may wait for AWS, as Go-style durations (`90m`, `1h30m`).");
    for setting in timeouts() {
        timeouts_block = timeouts_block.attr(argument(&setting));
    }
    Schema::new(
        SCHEMA_VERSION,
        compose.0.block(TIMEOUTS, Nesting::Group, timeouts_block),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (block, attribute) of every attribute whose description says it
    /// forces replacement.
    fn marked(block: &Block, under: Option<&str>, out: &mut Vec<(Option<String>, String)>) {
        for a in &block.attributes {
            if a.description.contains(FORCES_REPLACEMENT) {
                out.push((under.map(str::to_string), a.name.clone()));
            }
        }
        for b in &block.blocks {
            marked(&b.block, Some(&b.name), out);
        }
    }

    #[test]
    fn exactly_the_attributes_the_plan_replaces_say_they_force_replacement() {
        let mut found = Vec::new();
        marked(&schema().block, None, &mut found);
        let mut expected: Vec<(Option<String>, String)> = super::super::plan::replacing()
            .iter()
            .map(|p| match p.0.as_slice() {
                [crate::protocol::cty::PathStep::Attr(a)] => (None, a.clone()),
                [crate::protocol::cty::PathStep::Attr(b), crate::protocol::cty::PathStep::Attr(a)] => {
                    (Some(b.clone()), a.clone())
                }
                other => panic!("unexpected path {other:?}"),
            })
            .collect();
        found.sort();
        expected.sort();
        assert_eq!(found, expected);
        assert_eq!(found.len(), 4);
    }

    #[test]
    fn no_description_speaks_of_replacement_in_its_own_words() {
        let text = format!("{:?}", schema().block);
        assert!(!text.contains("replaces the environment"));
    }

    #[test]
    fn every_component_block_has_its_enforced_map() {
        let schema = schema();
        for nested in &schema.block.blocks {
            if nested.name == TIMEOUTS {
                continue;
            }
            let enforced = nested.block.attribute(ENFORCED).expect("enforced");
            assert!(enforced.computed && !enforced.optional, "{}", nested.name);
        }
        assert_eq!(schema.block.blocks.len(), 14);
    }
}
