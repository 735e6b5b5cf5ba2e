//! Who may use the cluster's Kubernetes API: the cluster's authentication
//! mode and its access entries ("Grant IAM users access to Kubernetes with
//! EKS access entries", EKS User Guide).
//!
//! - The mode is `API_AND_CONFIG_MAP`: access entries work, and so does the
//!   `aws-auth` ConfigMap of older tooling. A cluster is created with it
//!   (`accessConfig`), an older one is moved there (`UpdateClusterConfig`).
//!   EKS only moves forward (CONFIG_MAP, then API_AND_CONFIG_MAP, then
//!   API): a cluster someone moved to `API` stays there, and that is
//!   accepted (access entries work the same; only the ConfigMap is ignored).
//! - The cluster is created without the creator's bootstrap admin entry
//!   (`bootstrapClusterCreatorAdminPermissions = false`): who administers
//!   the cluster is `admin_principals`, not whoever ran the first apply.
//! - Each of `admin_principals` has a STANDARD access entry with
//!   `AmazonEKSClusterAdminPolicy`, each of `viewer_principals` one with
//!   `AmazonEKSViewPolicy`, both at cluster scope ("Associate access
//!   policies with access entries", EKS User Guide).
//! - Read back as drift (`enforced["access_entries"]`): a configured entry
//!   missing or without its policy, another policy on it, and a STANDARD
//!   entry nobody configured. Apply removes such an entry: who may
//!   administer or read a production cluster is this configuration's to
//!   say (as the cluster's IAM roles hold no policy the provider did not
//!   attach), and a principal that needs access belongs in the lists.
//! - Quiet: the entries EKS makes itself. Entries of any type but STANDARD
//!   (`EC2_LINUX` for a managed node group's role, `FARGATE_LINUX`, ...),
//!   and, on a cluster created with the creator's bootstrap admin entry
//!   (one made before this version, or by hand), that entry: the earliest
//!   STANDARD entry, made within [`CREATOR_WINDOW_SECONDS`] of the cluster.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_eks::types::{AccessScope, AccessScopeType, Cluster};
use serde::{Deserialize, Serialize};

use super::{aws_error, is_not_found, partition, ComponentError, Ctx};

const COMPONENT: &str = "cluster";

/// The authentication mode the provider sets.
pub const MODE: &str = "API_AND_CONFIG_MAP";
/// The one mode further on, which EKS cannot move back from.
pub const MODE_API: &str = "API";

/// The access policies of the two lists (EKS User Guide, "Access policy
/// permissions": `arn:aws:eks::aws:cluster-access-policy/<name>`).
pub const ADMIN_POLICY: &str = "AmazonEKSClusterAdminPolicy";
pub const VIEW_POLICY: &str = "AmazonEKSViewPolicy";

/// How long after the cluster's creation EKS may have made the creator's
/// bootstrap entry (it makes it while it creates the cluster, which takes
/// about 10 to 15 minutes).
pub const CREATOR_WINDOW_SECONDS: f64 = 30.0 * 60.0;

/// The ARN of an EKS access policy in a partition (`aws`, `aws-cn`, ...).
pub fn policy_arn(partition: &str, name: &str) -> String {
    format!("arn:{partition}:eks::aws:cluster-access-policy/{name}")
}

/// An IAM role or user ARN, as access entries take them ("You can't use
/// the STS session principal type", CreateAccessEntry `principalArn`).
pub fn is_principal_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 {
        return false;
    }
    let resource = parts[5];
    let name = resource
        .strip_prefix("role/")
        .or_else(|| resource.strip_prefix("user/"));
    parts[0] == "arn"
        && matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && name.is_some_and(|n| {
            !n.is_empty()
                && !n.ends_with('/')
                && n.len() <= 512
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
        })
}

/// One access entry as EKS reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// STANDARD, EC2_LINUX, FARGATE_LINUX, ...
    pub kind: String,
    /// When EKS made it, in seconds since the epoch.
    pub created_at: Option<f64>,
    /// Its access policies: the policy ARN, and the namespaces of a
    /// namespace-scoped association (empty: cluster scope).
    pub policies: BTreeMap<String, Vec<String>>,
}

/// The cluster's access as read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Access {
    /// `accessConfig.authenticationMode` (None: not reported).
    pub mode: Option<String>,
    /// `accessConfig.bootstrapClusterCreatorAdminPermissions`.
    pub bootstrap_creator: bool,
    /// The cluster's `createdAt`, in seconds since the epoch.
    pub cluster_created_at: Option<f64>,
    /// Access entries by principal ARN (none while the mode is CONFIG_MAP).
    pub entries: BTreeMap<String, Entry>,
}

impl Access {
    /// The entries EKS made itself, judged by nobody.
    pub fn quiet(&self) -> BTreeSet<&str> {
        let mut quiet: BTreeSet<&str> = self
            .entries
            .iter()
            .filter(|(_, e)| e.kind != "STANDARD")
            .map(|(p, _)| p.as_str())
            .collect();
        if self.bootstrap_creator {
            let creator = self
                .entries
                .iter()
                .filter(|(_, e)| e.kind == "STANDARD")
                .filter(|(_, e)| match (e.created_at, self.cluster_created_at) {
                    (Some(made), Some(cluster)) => made - cluster <= CREATOR_WINDOW_SECONDS,
                    _ => false,
                })
                .min_by(|a, b| {
                    a.1.created_at
                        .partial_cmp(&b.1.created_at)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            quiet.extend(creator.map(|(p, _)| p.as_str()));
        }
        quiet
    }
}

/// What the lists ask for: principal to policy ARN.
pub fn wanted(partition: &str, admins: &[String], viewers: &[String]) -> BTreeMap<String, String> {
    let mut want = BTreeMap::new();
    for p in viewers {
        want.insert(p.clone(), policy_arn(partition, VIEW_POLICY));
    }
    for p in admins {
        want.insert(p.clone(), policy_arn(partition, ADMIN_POLICY));
    }
    want
}

fn short(policy: &str) -> &str {
    policy.rsplit('/').next().unwrap_or(policy)
}

/// The lists as AWS has them: every STANDARD entry EKS did not make
/// itself that holds the admin policy at cluster scope is an admin, else
/// one holding the view policy at cluster scope a viewer. Principals keep
/// the order of `stored` (the lists as the state holds them); others
/// follow, sorted.
pub fn lists(
    access: &Access,
    partition: &str,
    stored_admins: &[String],
    stored_viewers: &[String],
) -> (Vec<String>, Vec<String>) {
    let (admin, view) = (
        policy_arn(partition, ADMIN_POLICY),
        policy_arn(partition, VIEW_POLICY),
    );
    let quiet = access.quiet();
    let holds = |entry: &Entry, policy: &str| {
        entry.kind == "STANDARD" && entry.policies.get(policy).is_some_and(Vec::is_empty)
    };
    let mut admins = Vec::new();
    let mut viewers = Vec::new();
    for (principal, entry) in &access.entries {
        if quiet.contains(principal.as_str()) {
            continue;
        }
        if holds(entry, &admin) {
            admins.push(principal.clone());
        } else if holds(entry, &view) {
            viewers.push(principal.clone());
        }
    }
    let ordered = |found: Vec<String>, stored: &[String]| {
        let mut out: Vec<String> = stored
            .iter()
            .filter(|p| found.contains(p))
            .cloned()
            .collect();
        out.extend(found.into_iter().filter(|p| !stored.contains(p)));
        out
    };
    (
        ordered(admins, stored_admins),
        ordered(viewers, stored_viewers),
    )
}

/// What is wrong with the authentication mode.
pub fn mode_problems(access: &Access) -> Vec<String> {
    match access.mode.as_deref() {
        Some(MODE) | Some(MODE_API) => Vec::new(),
        Some(other) => vec![format!(
            "authentication mode {other}: access entries do not work"
        )],
        None => vec!["authentication mode not reported (CONFIG_MAP)".to_string()],
    }
}

/// What is wrong with the access entries against the lists.
pub fn entry_problems(access: &Access, want: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (principal, policy) in want {
        match access.entries.get(principal) {
            None => problems.push(format!("access entry {principal} is missing")),
            Some(entry) => {
                if entry.kind != "STANDARD" {
                    problems.push(format!(
                        "access entry {principal} is of type {}, not STANDARD",
                        entry.kind
                    ));
                }
                match entry.policies.get(policy) {
                    None => {
                        problems.push(format!("access entry {principal} lacks {}", short(policy)))
                    }
                    Some(namespaces) if !namespaces.is_empty() => problems.push(format!(
                        "access entry {principal} has {} only in namespaces {}, not cluster-wide",
                        short(policy),
                        namespaces.join(", ")
                    )),
                    Some(_) => {}
                }
                for other in entry.policies.keys().filter(|p| *p != policy) {
                    problems.push(format!(
                        "access entry {principal} has {} as well",
                        short(other)
                    ));
                }
            }
        }
    }
    let quiet = access.quiet();
    for (principal, entry) in &access.entries {
        if want.contains_key(principal) || quiet.contains(principal.as_str()) {
            continue;
        }
        let policies: Vec<&str> = entry.policies.keys().map(|p| short(p)).collect();
        problems.push(format!(
            "access entry {principal} is not configured ({})",
            if policies.is_empty() {
                "no access policy".to_string()
            } else {
                policies.join(", ")
            }
        ));
    }
    problems
}

/// The access configuration of a cluster as `DescribeCluster` reports it.
pub fn config_of(cluster: &Cluster) -> (Option<String>, bool, Option<f64>) {
    let config = cluster.access_config();
    (
        config
            .and_then(|c| c.authentication_mode())
            .map(|m| m.as_str().to_string()),
        config
            .and_then(|c| c.bootstrap_cluster_creator_admin_permissions())
            .unwrap_or(false),
        cluster.created_at().map(|t| t.as_secs_f64()),
    )
}

/// Reads the cluster's access entries and their policies. A cluster still
/// in CONFIG_MAP mode has none (EKS refuses the listing).
pub async fn read(ctx: &Ctx, cluster: &Cluster) -> Result<Access, ComponentError> {
    let (mode, bootstrap_creator, cluster_created_at) = config_of(cluster);
    let mut access = Access {
        mode,
        bootstrap_creator,
        cluster_created_at,
        entries: BTreeMap::new(),
    };
    if !matches!(access.mode.as_deref(), Some(MODE) | Some(MODE_API)) {
        return Ok(access);
    }
    let name = cluster.name().unwrap_or_default().to_string();
    let eks = ctx.aws.eks();
    let mut principals = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = match eks
            .list_access_entries()
            .cluster_name(&name)
            .set_next_token(token.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) if is_not_found(&e) => return Ok(access),
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("list the access entries of the EKS cluster {name}"),
                    e,
                ))
            }
        };
        principals.extend(page.access_entries().iter().cloned());
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    let read_one = |principal: String| {
        let eks = eks.clone();
        let name = name.clone();
        async move {
            let (entry, policies) = tokio::join!(
                eks.describe_access_entry()
                    .cluster_name(&name)
                    .principal_arn(&principal)
                    .send(),
                associated(&eks, &name, &principal),
            );
            let entry = match entry {
                Ok(out) => out.access_entry,
                // Deleted between the listing and now.
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!("read the access entry {principal} of the EKS cluster {name}"),
                        e,
                    ))
                }
            };
            let Some(entry) = entry else { return Ok(None) };
            Ok(Some((
                principal,
                Entry {
                    kind: entry.r#type().unwrap_or("STANDARD").to_string(),
                    created_at: entry.created_at().map(|t| t.as_secs_f64()),
                    policies: policies?,
                },
            )))
        }
    };
    let found = futures_util::future::try_join_all(principals.into_iter().map(read_one)).await?;
    access.entries = found.into_iter().flatten().collect();
    Ok(access)
}

async fn associated(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<BTreeMap<String, Vec<String>>, ComponentError> {
    let mut policies = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = match eks
            .list_associated_access_policies()
            .cluster_name(cluster)
            .principal_arn(principal)
            .set_next_token(token.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) if is_not_found(&e) => return Ok(policies),
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("list the access policies of {principal} on the EKS cluster {cluster}"),
                    e,
                ))
            }
        };
        for p in page.associated_access_policies() {
            let Some(arn) = p.policy_arn() else { continue };
            let namespaces = match p.access_scope() {
                Some(scope) if scope.r#type() == Some(&AccessScopeType::Namespace) => {
                    let mut n = scope.namespaces().to_vec();
                    n.sort();
                    n
                }
                _ => Vec::new(),
            };
            policies.insert(arn.to_string(), namespaces);
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(policies),
        }
    }
}

/// Makes the access entries match the lists: creates missing entries,
/// associates their policy at cluster scope, removes other policies from
/// them, and deletes STANDARD entries nobody configured (EKS's own stay).
pub async fn ensure(
    ctx: &Ctx,
    cluster: &Cluster,
    admins: &[String],
    viewers: &[String],
    tags: &BTreeMap<String, String>,
) -> Result<(), ComponentError> {
    let name = cluster.name().unwrap_or_default().to_string();
    let access = read(ctx, cluster).await?;
    let want = wanted(partition(&ctx.region), admins, viewers);
    let quiet: BTreeSet<String> = access.quiet().into_iter().map(str::to_string).collect();
    let eks = ctx.aws.eks();
    let make = want.iter().map(|(principal, policy)| {
        let eks = eks.clone();
        let name = name.clone();
        let existing = access.entries.get(principal).cloned();
        async move {
            let existing = match existing {
                Some(e) => e,
                None => {
                    match eks
                        .create_access_entry()
                        .cluster_name(&name)
                        .principal_arn(principal)
                        .r#type("STANDARD")
                        .set_tags(Some(tags.clone().into_iter().collect()))
                        .send()
                        .await
                    {
                        Ok(_) => {}
                        // Made meanwhile by a concurrent or killed run.
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
                        Err(e) => {
                            return Err(aws_error(
                                COMPONENT,
                                format!("create the access entry {principal} on the EKS cluster {name}"),
                                e,
                            ))
                        }
                    }
                    Entry::default()
                }
            };
            let holds = existing
                .policies
                .get(policy)
                .is_some_and(|namespaces| namespaces.is_empty());
            if !holds {
                eks.associate_access_policy()
                    .cluster_name(&name)
                    .principal_arn(principal)
                    .policy_arn(policy)
                    .access_scope(AccessScope::builder().r#type(AccessScopeType::Cluster).build())
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(
                            COMPONENT,
                            format!(
                                "associate {} with the access entry {principal} of the EKS cluster {name}",
                                short(policy)
                            ),
                            e,
                        )
                    })?;
            }
            for other in existing.policies.keys().filter(|p| *p != policy) {
                match eks
                    .disassociate_access_policy()
                    .cluster_name(&name)
                    .principal_arn(principal)
                    .policy_arn(other)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => {
                        return Err(aws_error(
                            COMPONENT,
                            format!(
                                "remove {} from the access entry {principal} of the EKS cluster {name}",
                                short(other)
                            ),
                            e,
                        ))
                    }
                }
            }
            Ok(())
        }
    });
    futures_util::future::try_join_all(make).await?;
    let extra: Vec<String> = access
        .entries
        .keys()
        .filter(|p| !want.contains_key(*p) && !quiet.contains(*p))
        .cloned()
        .collect();
    futures_util::future::try_join_all(extra.into_iter().map(|principal| {
        let eks = eks.clone();
        let name = name.clone();
        async move {
            crate::logging::info(&format!(
                "EKS cluster {name}: deleting the access entry {principal}, which is not in admin_principals or viewer_principals"
            ));
            match eks
                .delete_access_entry()
                .cluster_name(&name)
                .principal_arn(&principal)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(aws_error(
                    COMPONENT,
                    format!("delete the access entry {principal} of the EKS cluster {name}"),
                    e,
                )),
            }
        }
    }))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admins";
    const VIEWER: &str = "arn:aws:iam::123456789012:role/support";

    fn entry(kind: &str, at: f64, policies: &[(&str, &[&str])]) -> Entry {
        Entry {
            kind: kind.into(),
            created_at: Some(at),
            policies: policies
                .iter()
                .map(|(p, ns)| (p.to_string(), ns.iter().map(|n| n.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn principals_are_iam_roles_or_users() {
        assert!(is_principal_arn(ADMIN));
        assert!(is_principal_arn(
            "arn:aws:iam::123456789012:role/teams/platform/admins"
        ));
        assert!(is_principal_arn("arn:aws:iam::123456789012:user/alice"));
        assert!(!is_principal_arn(
            "arn:aws:sts::123456789012:assumed-role/admins/alice"
        ));
        assert!(!is_principal_arn("arn:aws:iam::123456789012:group/admins"));
        assert!(!is_principal_arn("arn:aws:iam::12345:role/admins"));
        assert!(!is_principal_arn("arn:aws:iam::123456789012:root"));
        assert!(!is_principal_arn("admins"));
    }

    #[test]
    fn entries_are_judged_against_the_lists_and_eks_own_are_quiet() {
        let admin = policy_arn("aws", ADMIN_POLICY);
        let view = policy_arn("aws", VIEW_POLICY);
        let want = wanted("aws", &[ADMIN.into()], &[VIEWER.into()]);
        let mut access = Access {
            mode: Some(MODE.into()),
            bootstrap_creator: false,
            cluster_created_at: Some(1000.0),
            entries: BTreeMap::new(),
        };
        access
            .entries
            .insert(ADMIN.into(), entry("STANDARD", 2000.0, &[(&admin, &[])]));
        access
            .entries
            .insert(VIEWER.into(), entry("STANDARD", 2000.0, &[(&view, &[])]));
        access.entries.insert(
            "arn:aws:iam::123456789012:role/idis-x-eks-nodes".into(),
            entry("EC2_LINUX", 1500.0, &[]),
        );
        assert!(entry_problems(&access, &want).is_empty());
        assert!(mode_problems(&access).is_empty());

        // A hand-added entry shows, whatever it holds.
        access.entries.insert(
            "arn:aws:iam::123456789012:user/mallory".into(),
            entry("STANDARD", 3000.0, &[(&admin, &[])]),
        );
        // The viewer's policy narrowed to a namespace, the admin's removed.
        access
            .entries
            .insert(VIEWER.into(), entry("STANDARD", 2000.0, &[(&view, &["a"])]));
        access.entries.get_mut(ADMIN).unwrap().policies.clear();
        assert_eq!(
            entry_problems(&access, &want),
            [
                format!("access entry {ADMIN} lacks AmazonEKSClusterAdminPolicy"),
                format!("access entry {VIEWER} has AmazonEKSViewPolicy only in namespaces a, not cluster-wide"),
                "access entry arn:aws:iam::123456789012:user/mallory is not configured (AmazonEKSClusterAdminPolicy)".to_string(),
            ]
        );
        access.entries.remove(ADMIN);
        assert!(
            entry_problems(&access, &want).contains(&format!("access entry {ADMIN} is missing"))
        );
    }

    #[test]
    fn the_creators_bootstrap_entry_is_quiet_only_on_a_bootstrapped_cluster() {
        let admin = policy_arn("aws", ADMIN_POLICY);
        let creator = "arn:aws:iam::123456789012:user/ci";
        let mut access = Access {
            mode: Some(MODE.into()),
            bootstrap_creator: true,
            cluster_created_at: Some(1000.0),
            entries: BTreeMap::new(),
        };
        access
            .entries
            .insert(creator.into(), entry("STANDARD", 1000.0, &[(&admin, &[])]));
        access.entries.insert(
            "arn:aws:iam::123456789012:user/later".into(),
            entry("STANDARD", 1000.0 + CREATOR_WINDOW_SECONDS + 1.0, &[]),
        );
        let want = BTreeMap::new();
        assert_eq!(
            entry_problems(&access, &want),
            ["access entry arn:aws:iam::123456789012:user/later is not configured (no access policy)"]
        );
        access.bootstrap_creator = false;
        assert_eq!(entry_problems(&access, &want).len(), 2);
    }

    #[test]
    fn config_map_mode_is_a_problem_api_is_not() {
        let mut access = Access::default();
        assert!(!mode_problems(&access).is_empty());
        access.mode = Some("CONFIG_MAP".into());
        assert_eq!(
            mode_problems(&access),
            ["authentication mode CONFIG_MAP: access entries do not work"]
        );
        access.mode = Some(MODE_API.into());
        assert!(mode_problems(&access).is_empty());
    }
}
