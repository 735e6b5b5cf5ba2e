//! What AWS offers in a region: Kubernetes versions (EKS
//! `DescribeClusterVersions`), PostgreSQL versions (RDS
//! `DescribeDBEngineVersions`) and Redis/Valkey versions (ElastiCache
//! `DescribeCacheEngineVersions`). The plan checks a version the
//! configuration asks for against these lists; the built-in tables below
//! are used only when AWS cannot be asked (the call is not allowed, or AWS
//! does not answer), and the plan says so.

use super::{aws_error, ComponentError, Ctx};

/// Kubernetes versions in EKS standard or extended support when this
/// table was written (EKS User Guide, "Kubernetes version lifecycle on
/// EKS", 2026-12).
pub const BUILT_IN_KUBERNETES: &[&str] = &["1.29", "1.30", "1.31", "1.32", "1.33", "1.34"];

/// RDS for PostgreSQL majors offered when this table was written (RDS
/// User Guide, "Supported PostgreSQL major versions on Amazon RDS",
/// 2026-12).
pub const BUILT_IN_POSTGRES: &[&str] = &["13", "14", "15", "16", "17"];

/// ElastiCache versions offered per engine when this table was written
/// (ElastiCache User Guide, "Supported engines and versions", 2026-12).
pub const BUILT_IN_REDIS: &[&str] = &["6.2", "7.0", "7.1"];
pub const BUILT_IN_VALKEY: &[&str] = &["7.2", "8.0"];

/// True when `written` names `offered`: equal, or a prefix of it at a
/// dot ("16" names "16.4", "7" names "7.1", "1.32" names "1.32").
pub fn names(written: &str, offered: &str) -> bool {
    offered == written
        || offered
            .strip_prefix(written)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether an error means "you may not ask" rather than "AWS is wrong":
/// then the built-in table stands in.
pub fn not_allowed(e: &ComponentError) -> bool {
    matches!(
        e.code(),
        Some(
            "AccessDenied"
                | "AccessDeniedException"
                | "UnauthorizedOperation"
                | "UnrecognizedClientException"
        )
    )
}

/// Kubernetes versions EKS offers for new clusters and upgrades
/// (standard and extended support), oldest first.
pub async fn kubernetes(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .aws
            .eks()
            .describe_cluster_versions()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "cluster",
                    "list the Kubernetes versions EKS offers (eks:DescribeClusterVersions)",
                    e,
                )
            })?;
        versions.extend(
            page.cluster_versions()
                .iter()
                .filter_map(|v| v.cluster_version().map(str::to_string)),
        );
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    sort_versions(&mut versions);
    Ok(versions)
}

/// PostgreSQL versions RDS offers, oldest first.
pub async fn postgres(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    let mut versions = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = ctx
            .aws
            .rds()
            .describe_db_engine_versions()
            .engine("postgres")
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "database",
                    "list the PostgreSQL versions RDS offers (rds:DescribeDBEngineVersions)",
                    e,
                )
            })?;
        versions.extend(
            page.db_engine_versions()
                .iter()
                .filter(|v| v.status().is_none_or(|s| s == "available"))
                .filter_map(|v| v.engine_version().map(str::to_string)),
        );
        match page.marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => break,
        }
    }
    sort_versions(&mut versions);
    Ok(versions)
}

/// Versions ElastiCache offers for `engine` (`redis`, `valkey`), oldest first.
pub async fn cache(ctx: &Ctx, engine: &str) -> Result<Vec<String>, ComponentError> {
    let mut versions = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = ctx
            .aws
            .elasticache()
            .describe_cache_engine_versions()
            .engine(engine)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "cache",
                    format!("list the {engine} versions ElastiCache offers (elasticache:DescribeCacheEngineVersions)"),
                    e,
                )
            })?;
        versions.extend(
            page.cache_engine_versions()
                .iter()
                .filter_map(|v| v.engine_version().map(str::to_string)),
        );
        match page.marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => break,
        }
    }
    sort_versions(&mut versions);
    Ok(versions)
}

fn sort_versions(versions: &mut Vec<String>) {
    let key = |v: &String| {
        v.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    versions.sort_by_key(key);
    versions.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_major_names_its_minors_and_nothing_else() {
        assert!(names("16", "16.4"));
        assert!(names("16.4", "16.4"));
        assert!(!names("16.4", "16.40"));
        assert!(!names("1", "16.4"));
        assert!(names("1.32", "1.32"));
        assert!(!names("1.3", "1.32"));
        assert!(names("7", "7.1"));
    }

    #[test]
    fn versions_sort_numerically() {
        let mut v: Vec<String> = ["1.10", "1.9", "1.32", "1.9"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sort_versions(&mut v);
        assert_eq!(v, ["1.9", "1.10", "1.32"]);
    }
}
