//! The EKS managed add-ons a cluster needs before a pod can run: the VPC
//! CNI (pod networking), CoreDNS (names) and kube-proxy (services)
//! ("Amazon EKS add-ons", EKS User Guide). They are made with the cluster
//! at the version EKS marks as the default for its Kubernetes version
//! (`DescribeAddonVersions`), moved to a compatible version after every
//! control-plane upgrade (EKS does not move them itself: "Update an Amazon
//! EKS add-on", EKS User Guide), and read back: an add-on removed, failed,
//! or left on a version its Kubernetes version does not support shows as
//! drift of the cluster's `enforced["addons"]`.

use std::collections::BTreeMap;

use aws_sdk_eks::types::{Addon, AddonStatus, ResolveConflicts};

use super::{aws_error, is_not_found, ComponentError, Ctx};

const COMPONENT: &str = "cluster";

/// The add-ons every environment's cluster runs, made and upgraded
/// together: the three a pod needs, and metrics-server.
pub const ADDONS: &[&str] = &["vpc-cni", "coredns", "kube-proxy", METRICS_SERVER];

/// The add-ons a pod needs to run, judged by the cluster's `addons` guard.
pub const CORE: &[&str] = &["vpc-cni", "coredns", "kube-proxy"];

/// metrics-server, an EKS community add-on ("Community add-ons", EKS User
/// Guide): the resource metrics API (`metrics.k8s.io`) that the
/// HorizontalPodAutoscaler and `kubectl top` read. EKS does not run it by
/// default. Judged by the cluster's `metrics_server` guard.
pub const METRICS_SERVER: &str = "metrics-server";

/// The EBS CSI driver ("Store Kubernetes volumes with Amazon EBS", EKS
/// User Guide): persistent volumes for the platform's stateful workloads.
/// It runs with an IAM role for its service account, so it is installed by
/// the cluster's follow-up, once `workload_identity` made that role.
pub const EBS_CSI: &str = "aws-ebs-csi-driver";

/// One add-on as EKS reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    pub version: Option<String>,
    pub status: Option<String>,
    /// The IAM role its service account runs with (`serviceAccountRoleArn`).
    pub role_arn: Option<String>,
    /// Its configuration values, as JSON text.
    pub configuration: Option<String>,
}

fn seen_of(a: Addon) -> Seen {
    Seen {
        version: a.addon_version().map(str::to_string),
        status: a.status().map(|s| s.as_str().to_string()),
        role_arn: a.service_account_role_arn().map(str::to_string),
        configuration: a.configuration_values().map(str::to_string),
    }
}

/// The versions of one add-on EKS supports on a Kubernetes version, and
/// its default there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Supported {
    pub versions: Vec<String>,
    pub default: Option<String>,
}

async fn describe(ctx: &Ctx, cluster: &str, addon: &str) -> Result<Option<Addon>, ComponentError> {
    match ctx
        .aws
        .eks()
        .describe_addon()
        .cluster_name(cluster)
        .addon_name(addon)
        .send()
        .await
    {
        Ok(out) => Ok(out.addon),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("read the add-on {addon} of the EKS cluster {cluster}"),
            e,
        )),
    }
}

/// Every add-on of `ADDONS` as EKS reports it (None: not installed).
pub async fn read(
    ctx: &Ctx,
    cluster: &str,
) -> Result<BTreeMap<String, Option<Seen>>, ComponentError> {
    let found =
        futures_util::future::try_join_all(ADDONS.iter().map(|a| describe(ctx, cluster, a)))
            .await?;
    Ok(ADDONS
        .iter()
        .zip(found)
        .map(|(name, addon)| (name.to_string(), addon.map(seen_of)))
        .collect())
}

/// The EBS CSI driver add-on as EKS reports it, and what EKS supports of
/// it on `kubernetes`.
pub async fn read_ebs_csi(
    ctx: &Ctx,
    cluster: &str,
    kubernetes: &str,
) -> Result<(Option<Seen>, Supported), ComponentError> {
    let (seen, supported) = tokio::try_join!(
        describe(ctx, cluster, EBS_CSI),
        supported_one(ctx, EBS_CSI, kubernetes)
    )?;
    Ok((seen.map(seen_of), supported))
}

/// The configuration the provider gives the EBS CSI driver: it tags the
/// volumes and snapshots it makes `kubernetes.io/cluster/<cluster>: owned`
/// (its `k8sTagClusterId` option), which its role's policy requires.
pub fn ebs_csi_configuration(cluster: &str) -> String {
    serde_json::json!({ "controller": { "k8sTagClusterId": cluster } }).to_string()
}

/// What is wrong with the EBS CSI driver add-on against what the provider
/// makes: installed, healthy, supported, running with `role_arn`, and
/// tagging volumes for `cluster`.
pub fn ebs_csi_problems(
    seen: Option<&Seen>,
    supported: &Supported,
    kubernetes: &str,
    role_arn: &str,
    cluster: &str,
) -> Vec<String> {
    let Some(addon) = seen else {
        return vec![format!("add-on {EBS_CSI} is not installed")];
    };
    let mut problems = Vec::new();
    let status = addon.status.as_deref().unwrap_or("unknown");
    if !matches!(status, "ACTIVE" | "CREATING" | "UPDATING") {
        problems.push(format!("add-on {EBS_CSI} is {status}"));
    }
    let version = addon.version.as_deref().unwrap_or_default();
    if !supported.versions.is_empty() && !supported.versions.iter().any(|v| v == version) {
        problems.push(format!(
            "add-on {EBS_CSI} {version} is not supported on Kubernetes {kubernetes}"
        ));
    }
    match addon.role_arn.as_deref() {
        Some(r) if r == role_arn => {}
        Some(r) => problems.push(format!("add-on {EBS_CSI} runs as {r}, not {role_arn}")),
        None => problems.push(format!(
            "add-on {EBS_CSI} has no service account role (it would run with the nodes' role)"
        )),
    }
    let tagged = addon
        .configuration
        .as_deref()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .is_some_and(|c| c["controller"]["k8sTagClusterId"] == cluster);
    if !tagged {
        problems.push(format!(
            "add-on {EBS_CSI} does not tag its volumes for the cluster {cluster} (k8sTagClusterId)"
        ));
    }
    problems
}

/// Installs the EBS CSI driver add-on with its role and configuration, or
/// brings it back to them (and to a version its Kubernetes version
/// supports); waits until it is ACTIVE.
pub async fn ensure_ebs_csi(
    ctx: &Ctx,
    cluster: &str,
    kubernetes: &str,
    role_arn: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), ComponentError> {
    let (mut seen, supported) = read_ebs_csi(ctx, cluster, kubernetes).await?;
    if seen.as_ref().and_then(|s| s.status.as_deref()) == Some("DELETING") {
        ctx.wait_for(
            COMPONENT,
            &format!("add-on {EBS_CSI} of the EKS cluster {cluster} to be deleted"),
            || async {
                Ok(describe(ctx, cluster, EBS_CSI)
                    .await?
                    .is_none()
                    .then_some(()))
            },
        )
        .await?;
        seen = None;
    }
    let Some(version) = supported.default.clone() else {
        return Err(ComponentError::Conflict {
            component: COMPONENT,
            message: format!(
                "EKS lists no version of the add-on {EBS_CSI} for Kubernetes {kubernetes}"
            ),
        });
    };
    let configuration = ebs_csi_configuration(cluster);
    let eks = ctx.aws.eks();
    match seen {
        None => {
            match eks
                .create_addon()
                .cluster_name(cluster)
                .addon_name(EBS_CSI)
                .addon_version(&version)
                .service_account_role_arn(role_arn)
                .configuration_values(&configuration)
                .resolve_conflicts(ResolveConflicts::Overwrite)
                .set_tags(Some(tags.clone().into_iter().collect()))
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_in_use_exception()) => {}
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!(
                            "install the add-on {EBS_CSI} {version} on the EKS cluster {cluster}"
                        ),
                        e,
                    ))
                }
            }
        }
        Some(addon) => {
            if ebs_csi_problems(Some(&addon), &supported, kubernetes, role_arn, cluster).is_empty()
            {
                return wait_active(ctx, cluster, EBS_CSI).await;
            }
            let current = addon.version.clone().unwrap_or_default();
            let target = if supported.versions.contains(&current) {
                current
            } else {
                version
            };
            eks.update_addon()
                .cluster_name(cluster)
                .addon_name(EBS_CSI)
                .addon_version(&target)
                .service_account_role_arn(role_arn)
                .configuration_values(&configuration)
                .resolve_conflicts(ResolveConflicts::Overwrite)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("update the add-on {EBS_CSI} of the EKS cluster {cluster} ({target}, its role and configuration)"),
                        e,
                    )
                })?;
        }
    }
    wait_active(ctx, cluster, EBS_CSI).await
}

async fn supported_one(
    ctx: &Ctx,
    addon: &str,
    kubernetes: &str,
) -> Result<Supported, ComponentError> {
    let mut supported = Supported::default();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .aws
            .eks()
            .describe_addon_versions()
            .addon_name(addon)
            .kubernetes_version(kubernetes)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("list the versions of the add-on {addon} for Kubernetes {kubernetes}"),
                    e,
                )
            })?;
        for info in page
            .addons()
            .iter()
            .filter(|a| a.addon_name() == Some(addon))
        {
            for v in info.addon_versions() {
                let Some(version) = v.addon_version() else {
                    continue;
                };
                let compatible: Vec<_> = v
                    .compatibilities()
                    .iter()
                    .filter(|c| c.cluster_version() == Some(kubernetes))
                    .collect();
                if compatible.is_empty() {
                    continue;
                }
                supported.versions.push(version.to_string());
                if compatible.iter().any(|c| c.default_version()) {
                    supported.default = Some(version.to_string());
                }
            }
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    if supported.default.is_none() {
        supported.default = supported
            .versions
            .iter()
            .max_by(|a, b| newer(a, b))
            .cloned();
    }
    Ok(supported)
}

/// Orders `v1.19.2-eksbuild.1`-style versions by their numbers.
fn newer(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |v: &str| {
        v.split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    key(a).cmp(&key(b))
}

/// What EKS supports of every add-on on `kubernetes`.
pub async fn supported(
    ctx: &Ctx,
    kubernetes: &str,
) -> Result<BTreeMap<String, Supported>, ComponentError> {
    let found = futures_util::future::try_join_all(
        ADDONS.iter().map(|a| supported_one(ctx, a, kubernetes)),
    )
    .await?;
    Ok(ADDONS.iter().map(|a| a.to_string()).zip(found).collect())
}

/// What is wrong with the add-ons `names` against what the provider makes.
pub fn problems(
    seen: &BTreeMap<String, Option<Seen>>,
    supported: &BTreeMap<String, Supported>,
    kubernetes: &str,
    names: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    for name in names {
        match seen.get(*name).and_then(Option::as_ref) {
            None => problems.push(format!("add-on {name} is not installed")),
            Some(addon) => {
                let status = addon.status.as_deref().unwrap_or("unknown");
                if !matches!(status, "ACTIVE" | "CREATING" | "UPDATING") {
                    problems.push(format!("add-on {name} is {status}"));
                }
                let version = addon.version.as_deref().unwrap_or_default();
                let known = supported.get(*name).is_some_and(|s| !s.versions.is_empty());
                if known && !supported[*name].versions.iter().any(|v| v == version) {
                    problems.push(format!(
                        "add-on {name} {version} is not supported on Kubernetes {kubernetes}"
                    ));
                }
            }
        }
    }
    problems
}

async fn wait_active(ctx: &Ctx, cluster: &str, addon: &str) -> Result<(), ComponentError> {
    ctx.wait_for(
        COMPONENT,
        &format!("add-on {addon} of the EKS cluster {cluster} to become ACTIVE"),
        || async {
            let got = describe(ctx, cluster, addon).await?;
            match got.as_ref().and_then(Addon::status) {
                Some(AddonStatus::Active) => Ok(Some(())),
                Some(AddonStatus::CreateFailed | AddonStatus::UpdateFailed) => Err(ComponentError::Conflict {
                    component: COMPONENT,
                    message: format!(
                        "add-on {addon} of the EKS cluster {cluster} failed ({}): see `aws eks describe-addon --cluster-name {cluster} --addon-name {addon}`",
                        got.as_ref()
                            .and_then(|a| a.health())
                            .map(|h| h
                                .issues()
                                .iter()
                                .filter_map(|i| i.message())
                                .collect::<Vec<_>>()
                                .join("; "))
                            .unwrap_or_default()
                    ),
                }),
                _ => Ok(None),
            }
        },
    )
    .await
}

/// Installs what is missing and moves what its Kubernetes version does
/// not support to the default version there; waits until all are ACTIVE.
pub async fn ensure(
    ctx: &Ctx,
    cluster: &str,
    kubernetes: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), ComponentError> {
    let (seen, supported) = tokio::try_join!(read(ctx, cluster), supported(ctx, kubernetes))?;
    futures_util::future::try_join_all(ADDONS.iter().map(|name| {
        let seen = seen.get(*name).cloned().flatten();
        let target = supported.get(*name).cloned().unwrap_or_default();
        async move {
            // One being deleted (out of band) is let go, then made again.
            let seen = match seen {
                Some(s) if s.status.as_deref() == Some("DELETING") => {
                    ctx.wait_for(
                        COMPONENT,
                        &format!("add-on {name} of the EKS cluster {cluster} to be deleted"),
                        || async { Ok(describe(ctx, cluster, name).await?.is_none().then_some(())) },
                    )
                    .await?;
                    None
                }
                other => other,
            };
            let Some(version) = target.default.clone() else {
                return Err(ComponentError::Conflict {
                    component: COMPONENT,
                    message: format!(
                        "EKS lists no version of the add-on {name} for Kubernetes {kubernetes}"
                    ),
                });
            };
            let eks = ctx.aws.eks();
            match seen {
                None => {
                    let created = eks
                        .create_addon()
                        .cluster_name(cluster)
                        .addon_name(*name)
                        .addon_version(&version)
                        // A new cluster runs self-managed copies of these;
                        // the managed add-on takes their place.
                        .resolve_conflicts(ResolveConflicts::Overwrite)
                        .set_tags(Some(tags.clone().into_iter().collect()))
                        .send()
                        .await;
                    match created {
                        Ok(_) => {}
                        // Made meanwhile by a concurrent or killed run.
                        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
                        Err(e) => {
                            return Err(aws_error(
                                COMPONENT,
                                format!("install the add-on {name} {version} on the EKS cluster {cluster}"),
                                e,
                            ))
                        }
                    }
                }
                Some(addon) => {
                    let current = addon.version.unwrap_or_default();
                    let failed = addon
                        .status
                        .as_deref()
                        .is_some_and(|s| s.ends_with("FAILED") || s == "DEGRADED");
                    if target.versions.contains(&current) && !failed {
                        return wait_active(ctx, cluster, name).await;
                    }
                    eks.update_addon()
                        .cluster_name(cluster)
                        .addon_name(*name)
                        .addon_version(&version)
                        // Keep configuration users made in the cluster.
                        .resolve_conflicts(ResolveConflicts::Preserve)
                        .send()
                        .await
                        .map_err(|e| {
                            aws_error(
                                COMPONENT,
                                format!("update the add-on {name} of the EKS cluster {cluster} from {current} to {version}"),
                                e,
                            )
                        })?;
                }
            }
            wait_active(ctx, cluster, name).await
        }
    }))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ebs_csi_driver_needs_its_role_and_its_cluster_tag() {
        let supported = Supported {
            versions: vec!["v1.48.0-eksbuild.2".into()],
            default: Some("v1.48.0-eksbuild.2".into()),
        };
        let role = "arn:aws:iam::1:role/idis-x-ebs-csi-driver";
        let good = Seen {
            version: Some("v1.48.0-eksbuild.2".into()),
            status: Some("ACTIVE".into()),
            role_arn: Some(role.into()),
            configuration: Some(ebs_csi_configuration("idis-x")),
        };
        assert!(ebs_csi_problems(Some(&good), &supported, "1.31", role, "idis-x").is_empty());
        let nodes_role = Seen {
            role_arn: None,
            configuration: None,
            ..good.clone()
        };
        assert_eq!(
            ebs_csi_problems(Some(&nodes_role), &supported, "1.31", role, "idis-x"),
            [
                "add-on aws-ebs-csi-driver has no service account role (it would run with the nodes' role)",
                "add-on aws-ebs-csi-driver does not tag its volumes for the cluster idis-x (k8sTagClusterId)",
            ]
        );
        assert_eq!(
            ebs_csi_problems(None, &supported, "1.31", role, "idis-x"),
            ["add-on aws-ebs-csi-driver is not installed"]
        );
    }

    #[test]
    fn eksbuild_versions_order_by_their_numbers() {
        assert_eq!(
            newer("v1.19.10-eksbuild.1", "v1.19.2-eksbuild.3"),
            std::cmp::Ordering::Greater
        );
        assert_eq!(
            newer("v1.11.4-eksbuild.2", "v1.11.4-eksbuild.10"),
            std::cmp::Ordering::Less
        );
    }

    #[test]
    fn missing_failed_and_unsupported_add_ons_are_problems() {
        let mut seen = BTreeMap::new();
        seen.insert(
            "vpc-cni".to_string(),
            Some(Seen {
                version: Some("v1.19.2-eksbuild.1".into()),
                status: Some("ACTIVE".into()),
                ..Seen::default()
            }),
        );
        seen.insert(
            "coredns".to_string(),
            Some(Seen {
                version: Some("v1.11.1-eksbuild.1".into()),
                status: Some("DEGRADED".into()),
                ..Seen::default()
            }),
        );
        let mut supported = BTreeMap::new();
        supported.insert(
            "coredns".to_string(),
            Supported {
                versions: vec!["v1.11.4-eksbuild.2".into()],
                default: Some("v1.11.4-eksbuild.2".into()),
            },
        );
        let p = problems(&seen, &supported, "1.32", CORE);
        assert_eq!(
            p,
            [
                "add-on coredns is DEGRADED",
                "add-on coredns v1.11.1-eksbuild.1 is not supported on Kubernetes 1.32",
                "add-on kube-proxy is not installed",
            ]
        );
        assert_eq!(
            problems(&seen, &supported, "1.32", &[METRICS_SERVER]),
            ["add-on metrics-server is not installed"]
        );
    }
}
