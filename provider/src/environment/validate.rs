//! Checks of an `idis_environment` configuration that need no AWS call.
//! Each diagnostic names the attribute path, the value and what is allowed.
//! Unknown values (from other resources) are skipped; they are checked
//! again once known, at plan or apply.

use std::collections::BTreeSet;

use crate::protocol::cty::{Path, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

/// Kubernetes versions EKS offers that this provider accepts.
pub const KUBERNETES_VERSIONS: &[&str] = &["1.28", "1.29", "1.30", "1.31", "1.32", "1.33"];
pub const DB_MAJORS: &[&str] = &["15", "16"];
pub const CACHE_MAJORS: &[&str] = &["7"];

struct Checker<'a> {
    config: &'a Value,
    diags: Diagnostics,
}

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

impl<'a> Checker<'a> {
    fn value(&self, block: Option<&str>, attr: &str) -> (&'a Value, Path) {
        match block {
            Some(b) => (
                self.config.get_attr(b).get_attr(attr),
                Path::root().attr(b).attr(attr),
            ),
            None => (self.config.get_attr(attr), Path::root().attr(attr)),
        }
    }

    fn fail(&mut self, path: Path, value: &Value, allowed: &str) {
        self.diags.push(
            Diagnostic::error(
                format!("Invalid {path}"),
                format!("{path} = {} is not allowed: {allowed}.", show(value)),
            )
            .at(path),
        );
    }

    /// A known string that must satisfy `ok`.
    fn string(
        &mut self,
        block: Option<&str>,
        attr: &str,
        ok: impl Fn(&str) -> bool,
        allowed: &str,
    ) {
        let (v, path) = self.value(block, attr);
        if let Some(s) = v.as_str() {
            if !ok(s) {
                self.fail(path, v, allowed);
            }
        }
    }

    /// A known whole number within [min, max].
    fn int(&mut self, block: Option<&str>, attr: &str, min: i64, max: i64) {
        let (v, path) = self.value(block, attr);
        if let Value::Number(n) = v {
            let whole = n.as_f64().is_some_and(|f| f.fract() == 0.0);
            match n.as_i64() {
                Some(i) if whole && (min..=max).contains(&i) => {}
                _ => self.fail(path, v, &format!("use a whole number from {min} to {max}")),
            }
        }
    }

    fn known_i64(&self, block: &str, attr: &str) -> Option<i64> {
        self.config.get_attr(block).get_attr(attr).as_i64()
    }

    fn known_bool(&self, block: &str, attr: &str) -> Option<bool> {
        self.config.get_attr(block).get_attr(attr).as_bool()
    }
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

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Parses `a.b.c.d/n`; returns the address and prefix length.
pub fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    let octets: Vec<u8> = addr
        .split('.')
        .map(|o| {
            if o.is_empty() || o.len() > 3 || (o.len() > 1 && o.starts_with('0')) {
                None
            } else {
                o.parse().ok()
            }
        })
        .collect::<Option<_>>()?;
    if octets.len() != 4 || prefix > 32 {
        return None;
    }
    let ip = u32::from_be_bytes([octets[0], octets[1], octets[2], octets[3]]);
    Some((ip, prefix))
}

fn is_private(ip: u32, prefix: u8) -> bool {
    let within = |net: u32, bits: u8| prefix >= bits && (ip >> (32 - bits)) == (net >> (32 - bits));
    within(0x0A00_0000, 8) || within(0xAC10_0000, 12) || within(0xC0A8_0000, 16)
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

fn is_instance_type(s: &str, prefix: &str) -> bool {
    let Some(rest) = s.strip_prefix(prefix) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('.').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

fn is_version(s: &str, majors: &[&str]) -> bool {
    let mut parts = s.split('.');
    let major = parts.next().unwrap_or_default();
    majors.contains(&major) && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn is_hostname(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Validates a configuration (or a planned value) of `idis_environment`.
pub fn validate(config: &Value) -> Diagnostics {
    let mut c = Checker {
        config,
        diags: Diagnostics::new(),
    };

    c.string(
        None,
        "name",
        is_env_name,
        &format!("use {ENV_NAME_RULE} (e.g. \"production\")"),
    );
    c.string(
        None,
        "region",
        is_region,
        "use an AWS region name such as \"us-east-1\"",
    );
    check_tags(&mut c);

    // network
    let (cidr_value, cidr_path) = c.value(Some("network"), "vpc_cidr");
    if let Some(cidr) = cidr_value.as_str() {
        match parse_cidr(cidr) {
            None => c.fail(cidr_path, cidr_value, "use an IPv4 CIDR block such as \"10.0.0.0/16\""),
            Some((_, prefix)) if !(16..=24).contains(&prefix) => c.fail(
                cidr_path,
                cidr_value,
                "the VPC needs a prefix from /16 (largest AWS allows) to /24 (smallest that holds six subnets)",
            ),
            Some((ip, prefix)) if ip & !(u32::MAX << (32 - prefix)) != 0 => c.fail(
                cidr_path,
                cidr_value,
                "the address has host bits set; use the network address of the block",
            ),
            Some((ip, prefix)) if !is_private(ip, prefix) => c.fail(
                cidr_path,
                cidr_value,
                "use a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)",
            ),
            Some(_) => {}
        }
    }
    let (zones_value, zones_path) = c.value(Some("network"), "availability_zones");
    if let Some(zones) = zones_value.as_strings() {
        let distinct: BTreeSet<&String> = zones.iter().collect();
        if zones.len() != 3 || distinct.len() != 3 {
            c.fail(
                zones_path.clone(),
                zones_value,
                "list exactly three different availability zones",
            );
        }
        if let Some(region) = config.get_attr("region").as_str() {
            if let Some(bad) = zones.iter().find(|z| !z.starts_with(region)) {
                c.fail(
                    zones_path,
                    zones_value,
                    &format!("zone {bad:?} is not in region {region:?}"),
                );
            }
        }
    }

    // keys
    let (tenants_value, tenants_path) = c.value(Some("keys"), "tenants");
    if let Value::List(items) | Value::Set(items) = tenants_value {
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let Some(t) = item.as_str() else { continue };
            let path = tenants_path.index(i as i64);
            let ok = !t.is_empty()
                && t.len() <= 32
                && t.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && t.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
                && t != "platform";
            if !ok {
                c.fail(path.clone(), item, "tenant names are 1 to 32 lowercase letters, digits and dashes, and \"platform\" is reserved");
            }
            if !seen.insert(t) {
                c.fail(
                    path,
                    item,
                    "each tenant may appear only once (duplicate tenant)",
                );
            }
        }
    }
    c.int(Some("keys"), "deletion_window_days", 7, 30);

    // cluster
    c.string(
        Some("cluster"),
        "kubernetes_version",
        |v| KUBERNETES_VERSIONS.contains(&v),
        &format!("use one of {}", KUBERNETES_VERSIONS.join(", ")),
    );
    let (types_value, types_path) = c.value(Some("cluster"), "node_instance_types");
    if let Value::List(items) = types_value {
        if items.is_empty() {
            c.fail(
                types_path.clone(),
                types_value,
                "list at least one EC2 instance type",
            );
        }
        for (i, item) in items.iter().enumerate() {
            if let Some(t) = item.as_str() {
                if !is_instance_type(t, "") {
                    c.fail(
                        types_path.index(i as i64),
                        item,
                        "use an EC2 instance type such as \"m6i.xlarge\"",
                    );
                }
            }
        }
    }
    c.int(Some("cluster"), "node_min_size", 1, 450);
    c.int(Some("cluster"), "node_max_size", 1, 450);
    c.int(Some("cluster"), "node_desired_size", 0, 450);
    if let (Some(min), Some(max)) = (
        c.known_i64("cluster", "node_min_size"),
        c.known_i64("cluster", "node_max_size"),
    ) {
        if min > max {
            let (v, path) = c.value(Some("cluster"), "node_min_size");
            c.fail(
                path,
                v,
                &format!("node_min_size must not exceed node_max_size ({max})"),
            );
        }
        if let Some(desired) = c.known_i64("cluster", "node_desired_size") {
            if desired < min || desired > max {
                let (v, path) = c.value(Some("cluster"), "node_desired_size");
                c.fail(path, v, &format!("node_desired_size must be within node_min_size ({min}) and node_max_size ({max})"));
            }
        }
    }

    // database
    c.string(
        Some("database"),
        "engine_version",
        |v| is_version(v, DB_MAJORS),
        "use PostgreSQL \"16\" or \"15\", or a full version such as \"16.4\"",
    );
    c.string(
        Some("database"),
        "instance_class",
        |v| is_instance_type(v, "db."),
        "use an RDS instance class such as \"db.r6g.xlarge\"",
    );
    c.int(Some("database"), "allocated_storage_gb", 20, 65536);
    c.int(Some("database"), "backup_retention_days", 1, 35);
    c.int(Some("database"), "read_replicas", 0, 5);
    c.string(Some("database"), "master_username", |v| {
        (1..=16).contains(&v.len())
            && v.starts_with(|ch: char| ch.is_ascii_alphabetic())
            && v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && !["postgres", "rdsadmin", "admin", "root"].contains(&v)
    }, "use 1 to 16 letters, digits or underscores starting with a letter, not a reserved name (postgres, rdsadmin, admin, root)");
    c.string(
        Some("database"),
        "database_name",
        |v| {
            (1..=63).contains(&v.len())
                && v.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        },
        "use 1 to 63 letters, digits or underscores starting with a letter",
    );

    // cache
    c.string(
        Some("cache"),
        "engine_version",
        |v| is_version(v, CACHE_MAJORS),
        "use Redis \"7\" or a full 7.x version such as \"7.1\"",
    );
    c.string(
        Some("cache"),
        "node_type",
        |v| is_instance_type(v, "cache."),
        "use an ElastiCache node type such as \"cache.r6g.large\"",
    );
    c.int(Some("cache"), "node_count", 1, 6);
    c.int(Some("cache"), "snapshot_retention_days", 0, 35);
    if let (Some(true), Some(count)) = (
        c.known_bool("cache", "multi_az"),
        c.known_i64("cache", "node_count"),
    ) {
        if count < 2 {
            let (v, path) = c.value(Some("cache"), "node_count");
            c.fail(path, v, "Multi-AZ with automatic failover needs at least 2 nodes (set cache.multi_az = false for a single node)");
        }
    }

    // audit storage
    c.string(
        Some("audit_storage"),
        "retention_mode",
        |v| v == "COMPLIANCE" || v == "GOVERNANCE",
        "use \"COMPLIANCE\" or \"GOVERNANCE\"",
    );
    c.int(Some("audit_storage"), "retention_days", 1, 36500);
    if let (Some(true), Some(false)) = (
        c.known_bool("audit_storage", "worm"),
        c.known_bool("audit_storage", "versioning"),
    ) {
        let (v, path) = c.value(Some("audit_storage"), "versioning");
        c.fail(path, v, "WORM (Object Lock) requires versioning: set audit_storage.versioning = true, or worm = false");
    }

    // edge
    c.int(Some("edge"), "rate_limit", 100, 2_000_000_000);
    c.string(
        Some("edge"),
        "origin_domain",
        is_hostname,
        "use a DNS name such as \"app.example.com\" (no scheme, no path)",
    );

    // timeouts
    for op in ["create", "update", "delete"] {
        c.string(
            Some("timeouts"),
            op,
            |v| parse_duration(v).is_some_and(|s| s > 0),
            "use a duration such as \"90m\", \"1h30m\" or \"45s\"",
        );
    }
    c.diags
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

fn check_tags(c: &mut Checker) {
    let (tags, path) = c.value(None, "tags");
    if let Value::Map(items) = tags {
        let most = AWS_TAG_LIMIT - PROVIDER_TAGS;
        if items.len() > most {
            c.diags.push(
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
                c.fail(
                    path.key(key),
                    &Value::string(key.clone()),
                    "tag keys may hold only letters, digits, spaces and _ . : / = + - @ (the characters every AWS service accepts)",
                );
            }
            if value.as_str().is_some_and(|v| !is_tag_text(v)) {
                c.fail(
                    path.key(key),
                    value,
                    "tag values may hold only letters, digits, spaces and _ . : / = + - @ (the characters every AWS service accepts)",
                );
            }
            // `Name` is set by the provider on every object (idis-<name>-...).
            let reserved = key.starts_with("aws:")
                || key.starts_with("idis:")
                || key == "managed-by"
                || key == "Name";
            if key.is_empty() || key.len() > 128 || reserved {
                c.fail(
                    path.key(key),
                    &Value::string(key.clone()),
                    "tag keys are 1 to 128 characters and may not use the reserved prefixes \"aws:\" and \"idis:\" or the keys \"managed-by\" and \"Name\" (the provider names every object)",
                );
            }
            if value.as_str().is_some_and(|v| v.len() > 256) {
                c.fail(
                    path.key(key),
                    value,
                    "tag values are at most 256 characters",
                );
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
        assert_eq!(
            error(&[("database", "engine_version", Value::string("14"))]).0,
            "database.engine_version"
        );
        assert_eq!(
            error(&[("cache", "engine_version", Value::string("6.2"))]).0,
            "cache.engine_version"
        );
        assert_eq!(
            error(&[("cluster", "kubernetes_version", Value::string("1.20"))]).0,
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
