//! Checks of an `idis_environment` configuration that need no AWS call.
//! Each diagnostic names the attribute path, the value and what is allowed.
//! Unknown values (from other resources) are skipped; they are checked
//! again once known, at plan or apply.
//!
//! The rules of each component's block come from its description
//! (`components::describe`): every argument's own check, then the
//! component's rules across arguments. The environment adds its own:
//! `name`, `region`, `tags` and `timeouts`.

use crate::components::describe::{Check, Component, Problem, Setting, Visit};
use crate::components::{self};
use crate::protocol::cty::{Path, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

use super::schema::{timeouts, TIMEOUTS};

/// A value as a diagnostic quotes it.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Unknown => "(known after apply)".into(),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
            format!(
                "[{}]",
                items.iter().map(show).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Map(m) | Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k} = {}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The diagnostic for a value that breaks a rule.
fn invalid(path: Path, value: &Value, allowed: &str) -> Diagnostic {
    Diagnostic::error(
        format!("Invalid {path}"),
        format!("{path} = {} is not allowed: {allowed}.", show(value)),
    )
    .at(path)
}

/// The problems of the known values of `block` against each argument's
/// own check, as paths relative to the block.
fn check_settings(settings: &[Setting], block: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    for s in settings {
        let v = block.get_attr(s.name);
        match s.check {
            Check::None => {}
            Check::Range(min, max) => {
                if let Value::Number(n) = v {
                    let whole = n.as_f64().is_some_and(|f| f.fract() == 0.0);
                    if !matches!(n.as_i64(), Some(i) if whole && (min..=max).contains(&i)) {
                        problems.push(Problem::at(
                            s.name,
                            v,
                            format!("use a whole number from {min} to {max}"),
                        ));
                    }
                }
            }
            Check::Text(ok, allowed) => {
                if v.as_str().is_some_and(|t| !ok(t)) {
                    problems.push(Problem::at(s.name, v, allowed));
                }
            }
            Check::EachText(ok, allowed) => {
                if let Value::List(items) | Value::Set(items) = v {
                    for (i, item) in items.iter().enumerate() {
                        if item.as_str().is_some_and(|t| !ok(t)) {
                            problems.push(Problem::at_index(s.name, i, item, allowed));
                        }
                    }
                }
            }
        }
    }
    problems
}

/// Diagnostics for problems found in the block `block`.
fn report(diags: &mut Diagnostics, block: &str, problems: Vec<Problem>) {
    for p in problems {
        let mut path = Path::root().attr(block);
        path.0.extend(p.path.0);
        diags.push(invalid(path, &p.value, &p.allowed));
    }
}

struct Validate<'a> {
    config: &'a Value,
    diags: Diagnostics,
}

impl Visit for Validate<'_> {
    fn visit<C: Component>(&mut self) {
        let block = self.config.get_attr(C::NAME);
        report(
            &mut self.diags,
            C::NAME,
            check_settings(&C::settings(), block),
        );
        report(&mut self.diags, C::NAME, C::check(self.config));
    }
}

/// Validates a configuration (or a planned value) of `idis_environment`.
pub fn validate(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let name = config.get_attr("name");
    if name.as_str().is_some_and(|n| !is_env_name(n)) {
        diags.push(invalid(
            Path::root().attr("name"),
            name,
            &format!("use {ENV_NAME_RULE} (e.g. \"production\")"),
        ));
    }
    let region = config.get_attr("region");
    if region.as_str().is_some_and(|r| !is_region(r)) {
        diags.push(invalid(
            Path::root().attr("region"),
            region,
            "use an AWS region name such as \"us-east-1\"",
        ));
    }
    check_tags(config, &mut diags);
    let mut components = Validate {
        config,
        diags: Diagnostics::new(),
    };
    components::each(&mut components);
    diags.extend(components.diags);
    if let Some(w) = point_in_time_window(config) {
        diags.push(w);
    }
    report(
        &mut diags,
        TIMEOUTS,
        check_settings(&timeouts(), config.get_attr(TIMEOUTS)),
    );
    diags
}

/// REQ-T236: point-in-time recovery for 7 days. RDS restores to any
/// second within the backup retention period, so a shorter retention is a
/// shorter window: allowed (staging may want it), but said at plan.
pub const PITR_DAYS_REQUIRED: i64 = 7;

fn point_in_time_window(config: &Value) -> Option<Diagnostic> {
    let retention = config
        .get_attr("database")
        .get_attr("backup_retention_days");
    // Out of range or fractional is an error of its own (1 to 35 days).
    let whole =
        matches!(retention, Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0));
    let days = retention.as_i64().filter(|_| whole)?;
    (1..PITR_DAYS_REQUIRED).contains(&days).then(|| {
        let path = Path::root().attr("database").attr("backup_retention_days");
        Diagnostic::warning(
            "Point-in-time recovery window below 7 days",
            format!(
                "{path} = {days}: RDS can restore the database only to a point within the last {days} day(s), so REQ-T236's 7-day point-in-time recovery window is not met. Use {PITR_DAYS_REQUIRED} or more (the module's db_backup_retention; default 30) where the requirement applies."
            ),
        )
        .at(path)
    })
}

const ENV_NAME_RULE: &str =
    "1 to 23 lowercase letters, digits and single dashes, starting with a letter and not ending with a dash";

pub fn is_env_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !s.is_empty()
        && s.len() <= 23
        && bytes[0].is_ascii_lowercase()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// The id of `terraform import idis_environment.<label> <id>`: `<name>` (in
/// the provider's region) or `<region>/<name>`. Returns (region, name).
pub fn parse_import_id(id: &str, default_region: &str) -> Result<(String, String), Diagnostic> {
    let usage = "Use `terraform import idis_environment.<label> <name>` or `<region>/<name>`, for example `us-east-1/prod`.";
    let (region, name) = match id.split_once('/') {
        Some((region, _)) if !is_region(region) => {
            return Err(Diagnostic::error(
                "Invalid import id",
                format!(
                    "{id:?}: {region:?} is not an AWS region name such as \"us-east-1\". {usage}"
                ),
            ))
        }
        Some((region, name)) => (region, name),
        None => (default_region, id),
    };
    if !is_env_name(name) {
        return Err(Diagnostic::error(
            "Invalid import id",
            format!("{id:?}: {name:?} is not an environment name ({ENV_NAME_RULE}). {usage}"),
        ));
    }
    Ok((region.to_string(), name.to_string()))
}

/// The environment an import identity names (Terraform 1.12+,
/// `import { identity = { name = ..., region = ... } }`): (region, name).
pub fn parse_import_identity(
    identity: &Value,
    default_region: &str,
) -> Result<(String, String), Diagnostic> {
    let usage = "Write `identity = { name = \"production\", region = \"us-east-1\" }` (region defaults to the provider's).";
    let name = match identity.get_attr("name") {
        Value::String(name) if is_env_name(name) => name.clone(),
        Value::String(name) => {
            return Err(Diagnostic::error(
                "Invalid import identity",
                format!(
                "identity.name = {name:?} is not an environment name ({ENV_NAME_RULE}). {usage}"
            ),
            ))
        }
        _ => {
            return Err(Diagnostic::error(
                "Invalid import identity",
                format!(
                    "identity.name is required: the name of the environment to import. {usage}"
                ),
            ))
        }
    };
    let region = match identity.get_attr("region") {
        Value::String(region) if is_region(region) => region.clone(),
        Value::String(region) => {
            return Err(Diagnostic::error(
                "Invalid import identity",
                format!("identity.region = {region:?} is not an AWS region name such as \"us-east-1\". {usage}"),
            ))
        }
        _ => default_region.to_string(),
    };
    Ok((region, name))
}

pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Durations as Terraform's timeouts blocks write them: `90m`, `1h30m`,
/// `45s`. Returns seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut digits = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        })?)?;
        any = true;
    }
    (digits.is_empty() && any).then_some(total)
}

/// Tags the provider sets itself on every object: `idis:environment`,
/// `idis:component`, `managed-by` and `Name`.
const PROVIDER_TAGS: usize = 4;
/// AWS allows 50 user tags per resource (EC2, EKS, RDS, ElastiCache, S3,
/// KMS alike).
const AWS_TAG_LIMIT: usize = 50;

/// The characters every AWS service accepts in tag keys and values: EC2
/// takes anything, but RDS, ElastiCache, EKS and S3 only letters, digits
/// and spaces (any script) and `_ . : / = + - @`.
fn is_tag_text(s: &str) -> bool {
    s.chars()
        .all(|ch| ch.is_alphanumeric() || ch == ' ' || "_.:/=+-@".contains(ch))
}

fn check_tags(config: &Value, diags: &mut Diagnostics) {
    let path = Path::root().attr("tags");
    if let Value::Map(items) = config.get_attr("tags") {
        let most = AWS_TAG_LIMIT - PROVIDER_TAGS;
        if items.len() > most {
            diags.push(
                Diagnostic::error(
                    format!("Invalid {path}"),
                    format!(
                        "{path} has {} tags; at most {most} are allowed: AWS takes {AWS_TAG_LIMIT} tags per resource and the provider sets {PROVIDER_TAGS} itself (idis:environment, idis:component, managed-by, Name). The provider's default_tags count against the same limit.",
                        items.len()
                    ),
                )
                .at(path.clone()),
            );
        }
        for (key, value) in items {
            if !is_tag_text(key) {
                diags.push(invalid(path.key(key), &Value::string(key.clone()), "tag keys may hold only letters, digits, spaces and _ . : / = + - @ (the characters every AWS service accepts)"));
            }
            if value.as_str().is_some_and(|v| !is_tag_text(v)) {
                diags.push(invalid(path.key(key), value, "tag values may hold only letters, digits, spaces and _ . : / = + - @ (the characters every AWS service accepts)"));
            }
            // `Name` is set by the provider on every object (idis-<name>-...).
            let reserved = key.starts_with("aws:")
                || key.starts_with("idis:")
                || key == "managed-by"
                || key == "Name";
            if key.is_empty() || key.len() > 128 || reserved {
                diags.push(invalid(path.key(key), &Value::string(key.clone()), "tag keys are 1 to 128 characters and may not use the reserved prefixes \"aws:\" and \"idis:\" or the keys \"managed-by\" and \"Name\" (the provider names every object)"));
            }
            if value.as_str().is_some_and(|v| v.len() > 256) {
                diags.push(invalid(
                    path.key(key),
                    value,
                    "tag values are at most 256 characters",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(blocks: &[(&str, &str, Value)]) -> Value {
        let mut root = Value::Object(BTreeMap::new());
        root.set_attr("name", Value::string("production"));
        for (block, attr, value) in blocks {
            if block.is_empty() {
                root.set_attr(attr, value.clone());
            } else {
                root.attr_mut(block).set_attr(attr, value.clone());
            }
        }
        root
    }

    #[test]
    fn a_retention_below_seven_days_warns_that_the_pitr_window_is_not_met() {
        let d = validate(&config(&[(
            "database",
            "backup_retention_days",
            Value::int(3),
        )]));
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert!(!d.has_errors());
        assert_eq!(
            d.0[0].path.as_ref().unwrap().to_string(),
            "database.backup_retention_days"
        );
        assert!(
            d.0[0].detail.contains("= 3") && d.0[0].detail.contains("REQ-T236"),
            "{d:?}"
        );
        for days in [7, 30] {
            let d = validate(&config(&[(
                "database",
                "backup_retention_days",
                Value::int(days),
            )]));
            assert!(d.0.is_empty(), "{days}: {d:?}");
        }
        // Out of range is the range check's error alone.
        let d = validate(&config(&[(
            "database",
            "backup_retention_days",
            Value::int(0),
        )]));
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert!(d.has_errors());
    }

    /// The single error's path and detail.
    fn error(blocks: &[(&str, &str, Value)]) -> (String, String) {
        let d = validate(&config(blocks));
        assert_eq!(d.0.len(), 1, "expected exactly one diagnostic: {d:?}");
        let first = &d.0[0];
        (
            first
                .path
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            first.detail.clone(),
        )
    }

    #[test]
    fn the_production_contract_is_valid() {
        let v = config(&[
            ("network", "vpc_cidr", Value::string("10.0.0.0/16")),
            ("database", "instance_class", Value::string("db.r6g.xlarge")),
            ("database", "multi_az", Value::Bool(true)),
            ("database", "backup_retention_days", Value::int(30)),
            (
                "cluster",
                "node_instance_types",
                Value::strings(["m6i.xlarge"]),
            ),
            ("cluster", "node_min_size", Value::int(3)),
            ("cluster", "node_max_size", Value::int(10)),
            ("audit_storage", "versioning", Value::Bool(true)),
            ("audit_storage", "worm", Value::Bool(true)),
            ("edge", "waf", Value::Bool(true)),
            ("edge", "ddos_protection", Value::Bool(true)),
        ]);
        assert!(validate(&v).is_empty(), "{:?}", validate(&v));
    }

    #[test]
    fn bad_names_are_refused_with_the_rule() {
        for bad in [
            "Production",
            "prod_1",
            "1prod",
            "a-very-long-environment-name",
            "prod-",
            "pr--od",
            "",
        ] {
            let (path, detail) = error(&[("", "name", Value::string(bad))]);
            assert_eq!(path, "name");
            assert!(detail.contains("lowercase letters"), "{detail}");
        }
    }

    #[test]
    fn cidrs_must_be_private_aligned_and_sized() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/8",
            "10.0.0.0/28",
            "10.0.1.0/16",
            "8.8.0.0/16",
            "300.0.0.0/16",
            "10.00.0.0/16",
        ] {
            let (path, _) = error(&[("network", "vpc_cidr", Value::string(bad))]);
            assert_eq!(path, "network.vpc_cidr", "{bad}");
        }
        for good in ["10.0.0.0/16", "172.20.0.0/20", "192.168.10.0/24"] {
            assert!(
                validate(&config(&[("network", "vpc_cidr", Value::string(good))])).is_empty(),
                "{good}"
            );
        }
    }

    #[test]
    fn min_above_max_names_node_min_size() {
        let (path, detail) = error(&[
            ("cluster", "node_min_size", Value::int(5)),
            ("cluster", "node_max_size", Value::int(3)),
        ]);
        assert_eq!(path, "cluster.node_min_size");
        assert!(detail.contains("node_max_size (3)"), "{detail}");
    }

    #[test]
    fn ranges_name_the_attribute_and_the_bounds() {
        let (path, detail) = error(&[("database", "backup_retention_days", Value::int(40))]);
        assert_eq!(path, "database.backup_retention_days");
        assert!(detail.contains("from 1 to 35"));
        let (path, _) = error(&[("database", "read_replicas", Value::int(6))]);
        assert_eq!(path, "database.read_replicas");
        let (path, _) = error(&[("keys", "deletion_window_days", Value::int(3))]);
        assert_eq!(path, "keys.deletion_window_days");
        let (path, _) = error(&[("edge", "rate_limit", Value::int(10))]);
        assert_eq!(path, "edge.rate_limit");
    }

    #[test]
    fn worm_without_versioning_is_refused() {
        let (path, detail) = error(&[
            ("audit_storage", "worm", Value::Bool(true)),
            ("audit_storage", "versioning", Value::Bool(false)),
        ]);
        assert_eq!(path, "audit_storage.versioning");
        assert!(detail.contains("requires versioning"));
    }

    #[test]
    fn duplicate_tenants_point_at_the_second() {
        let (path, detail) = error(&[(
            "keys",
            "tenants",
            Value::strings(["acme", "globex", "acme"]),
        )]);
        assert_eq!(path, "keys.tenants[2]");
        assert!(detail.contains("duplicate"));
    }

    #[test]
    fn versions_and_types() {
        // The shape here; whether AWS offers it is asked at plan
        // (environment::preflight).
        assert_eq!(
            error(&[("database", "engine_version", Value::string("16.x"))]).0,
            "database.engine_version"
        );
        assert_eq!(
            error(&[("cache", "engine_version", Value::string("v7"))]).0,
            "cache.engine_version"
        );
        assert_eq!(
            error(&[("cache", "engine", Value::string("memcached"))]).0,
            "cache.engine"
        );
        assert_eq!(
            error(&[("cluster", "kubernetes_version", Value::string("1.32.1"))]).0,
            "cluster.kubernetes_version"
        );
        assert_eq!(
            error(&[("database", "instance_class", Value::string("r6g.xlarge"))]).0,
            "database.instance_class"
        );
        assert!(validate(&config(&[(
            "database",
            "engine_version",
            Value::string("16.4")
        )]))
        .is_empty());
    }

    #[test]
    fn multi_az_cache_needs_two_nodes() {
        let (path, _) = error(&[
            ("cache", "multi_az", Value::Bool(true)),
            ("cache", "node_count", Value::int(1)),
        ]);
        assert_eq!(path, "cache.node_count");
    }

    #[test]
    fn reserved_tag_keys_are_refused() {
        let (path, _) = error(&[("", "tags", Value::string_map([("idis:environment", "x")]))]);
        assert_eq!(path, "tags[\"idis:environment\"]");
        let (path, _) = error(&[("", "tags", Value::string_map([("Name", "x")]))]);
        assert_eq!(path, "tags[\"Name\"]");
    }

    #[test]
    fn tags_use_only_characters_every_service_accepts() {
        let (path, detail) = error(&[("", "tags", Value::string_map([("cost center!", "x")]))]);
        assert_eq!(path, "tags[\"cost center!\"]");
        assert!(
            detail.contains("tags[\"cost center!\"] = \"cost center!\""),
            "{detail}"
        );
        assert!(detail.contains("_ . : / = + - @"), "{detail}");
        let (path, detail) = error(&[("", "tags", Value::string_map([("team", "a;b")]))]);
        assert_eq!(path, "tags[\"team\"]");
        assert!(detail.contains("= \"a;b\""), "{detail}");
        let fine = Value::string_map([
            ("kubernetes.io/cluster/x", "owned"),
            ("Owner", "équipe données@example.com"),
            ("cost-centre", "R+D = 42"),
        ]);
        assert!(validate(&config(&[("", "tags", fine)])).is_empty());
    }

    #[test]
    fn at_most_46_tags_leave_room_for_the_providers_own() {
        let tags = |n: usize| Value::string_map((0..n).map(|i| (format!("k{i}"), "v".to_string())));
        assert!(validate(&config(&[("", "tags", tags(46))])).is_empty());
        let (path, detail) = error(&[("", "tags", tags(47))]);
        assert_eq!(path, "tags");
        assert!(detail.contains("has 47 tags; at most 46"), "{detail}");
    }

    #[test]
    fn unknown_values_are_not_judged() {
        let v = config(&[
            ("network", "vpc_cidr", Value::Unknown),
            ("cluster", "node_min_size", Value::Unknown),
            ("cluster", "node_max_size", Value::int(1)),
        ]);
        assert!(validate(&v).is_empty());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90m"), Some(5400));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("45s"), Some(45));
        assert_eq!(parse_duration("90"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(
            error(&[("timeouts", "create", Value::string("soon"))]).0,
            "timeouts.create"
        );
    }

    #[test]
    fn import_ids_name_the_region_and_the_name() {
        assert_eq!(
            parse_import_id("prod", "eu-west-1").unwrap(),
            ("eu-west-1".to_string(), "prod".to_string())
        );
        assert_eq!(
            parse_import_id("us-east-2/prod-2", "eu-west-1").unwrap(),
            ("us-east-2".to_string(), "prod-2".to_string())
        );
        for (id, says) in [
            ("useast1/prod", "\"useast1\" is not an AWS region"),
            ("us-east-1/Prod", "\"Prod\" is not an environment name"),
        ] {
            let error = parse_import_id(id, "eu-west-1").unwrap_err();
            assert!(error.detail.contains(says), "{id}: {}", error.detail);
        }
        assert!(parse_import_id("us-east-1/", "eu-west-1").is_err());
        assert!(parse_import_id("a/b/c", "eu-west-1").is_err());
    }
}
