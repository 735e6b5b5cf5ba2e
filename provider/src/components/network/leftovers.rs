//! What EKS and the cluster's own controllers leave in the VPC.
//!
//! The provider never makes these, but they block the teardown of the
//! subnets and the VPC (terraform-aws-modules/terraform-aws-eks#3073):
//!
//! - security groups EKS makes for the cluster (tagged
//!   `aws:eks:cluster-name = <cluster>` and `kubernetes.io/cluster/<cluster>`)
//!   and those the AWS Load Balancer Controller or the in-tree service
//!   controller make (`elbv2.k8s.aws/cluster = <cluster>`,
//!   `kubernetes.io/cluster/<cluster>`);
//! - network interfaces tagged for the cluster (`kubernetes.io/cluster/<cluster>`,
//!   `aws:eks:cluster-name`, and the VPC CNI's
//!   `cluster.k8s.amazonaws.com/name`), which outlive their nodes when a
//!   node goes away before the CNI could clean up;
//! - ELBv2 load balancers (and their target groups) of the cluster's
//!   ingress controller (`elbv2.k8s.aws/cluster = <cluster>` or
//!   `kubernetes.io/cluster/<cluster>`), whose network interfaces sit in the
//!   public or private subnets.
//!
//! By the time the network is deleted the cluster is gone, so nothing will
//! clean these up any more. Only what lies in this environment's VPC and
//! carries this environment's cluster tag is touched. A load balancer with
//! deletion protection is refused before anything is deleted (someone
//! asked for that protection); anything else that cannot be removed within
//! the delete timeout is named in one error.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{NetworkInterface, SecurityGroup, Tag};
use aws_sdk_ec2::Client;
use aws_sdk_elasticloadbalancingv2::Client as Elb;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures_util::future::join_all;

use super::{absent, filter, COMPONENT};
use crate::components::{aws_error, ComponentError, Ctx};

/// ELBv2 DescribeTags takes at most 20 ARNs per call.
const TAGS_PER_CALL: usize = 20;

/// True when `tags` mark an object EKS, the VPC CNI or a load balancer
/// controller made for `cluster`.
pub(super) fn made_for_cluster<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    cluster: &str,
) -> bool {
    let cluster_key = format!("kubernetes.io/cluster/{cluster}");
    tags.into_iter().any(|(key, value)| {
        key == cluster_key
            || (matches!(
                key,
                "aws:eks:cluster-name" | "elbv2.k8s.aws/cluster" | "cluster.k8s.amazonaws.com/name"
            ) && value == cluster)
    })
}

fn ec2_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
}

/// A load balancer or target group of the cluster's ingress controller.
#[derive(Clone, Debug)]
struct Balancer {
    arn: String,
    name: String,
}

/// What EKS and the cluster's controllers left in one VPC.
pub(super) struct Leftovers {
    vpc_id: String,
    cluster: String,
    load_balancers: Vec<Balancer>,
    target_groups: Vec<Balancer>,
    network_interfaces: Vec<NetworkInterface>,
    security_groups: Vec<SecurityGroup>,
}

impl Leftovers {
    pub(super) fn is_empty(&self) -> bool {
        self.load_balancers.is_empty()
            && self.target_groups.is_empty()
            && self.network_interfaces.is_empty()
            && self.security_groups.is_empty()
    }

    /// One line for the log: what will be removed.
    pub(super) fn describe(&self) -> String {
        let mut parts = Vec::new();
        for b in &self.load_balancers {
            parts.push(format!("load balancer {}", b.name));
        }
        for t in &self.target_groups {
            parts.push(format!("target group {}", t.name));
        }
        for n in &self.network_interfaces {
            parts.push(format!(
                "network interface {}",
                n.network_interface_id().unwrap_or_default()
            ));
        }
        for g in &self.security_groups {
            parts.push(format!(
                "security group {} ({})",
                g.group_id().unwrap_or_default(),
                g.group_name().unwrap_or_default()
            ));
        }
        parts.join(", ")
    }
}

/// Reads what the cluster's makers left in the VPC. `groups` are the VPC's
/// security groups as already observed; `ours` tells the provider's own.
pub(super) async fn find(
    ctx: &Ctx,
    ec2: &Client,
    vpc_id: &str,
    groups: &[SecurityGroup],
    ours: impl Fn(&[Tag]) -> bool,
) -> Result<Leftovers, ComponentError> {
    let cluster = crate::components::cluster::cluster_name(ctx);
    let elb = ctx.aws.elbv2();
    let (load_balancers, target_groups, network_interfaces) = tokio::try_join!(
        cluster_load_balancers(&elb, vpc_id, &cluster),
        cluster_target_groups(&elb, vpc_id, &cluster),
        cluster_network_interfaces(ec2, vpc_id, &cluster),
    )?;
    let security_groups = groups
        .iter()
        .filter(|g| g.vpc_id() == Some(vpc_id))
        .filter(|g| g.group_name() != Some("default"))
        .filter(|g| !ours(g.tags()))
        .filter(|g| made_for_cluster(ec2_pairs(g.tags()), &cluster))
        .cloned()
        .collect();
    Ok(Leftovers {
        vpc_id: vpc_id.to_string(),
        cluster,
        load_balancers,
        target_groups,
        network_interfaces,
        security_groups,
    })
}

/// ARN -> tags of ELBv2 resources, 20 at a time.
async fn elb_tags(
    elb: &Elb,
    arns: &[String],
) -> Result<Vec<(String, Vec<(String, String)>)>, ComponentError> {
    let mut out = Vec::new();
    for chunk in arns.chunks(TAGS_PER_CALL) {
        let page = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            // One of them went away meanwhile: ask one by one.
            Err(e) if elb_gone(&e) && chunk.len() > 1 => {
                for arn in chunk {
                    out.extend(Box::pin(elb_tags(elb, std::slice::from_ref(arn))).await?);
                }
                continue;
            }
            Err(e) if elb_gone(&e) => continue,
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    "read the tags of the load balancers in the VPC",
                    e,
                ))
            }
        };
        for d in page.tag_descriptions() {
            let tags = d
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect();
            out.push((d.resource_arn().unwrap_or_default().to_string(), tags));
        }
    }
    Ok(out)
}

fn elb_gone<E: ProvideErrorMetadata, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    matches!(
        err.code(),
        Some("LoadBalancerNotFound" | "TargetGroupNotFound" | "ListenerNotFound")
    )
}

/// Keeps those of `candidates` (ARN, name) tagged for `cluster`.
async fn tagged_for(
    elb: &Elb,
    candidates: Vec<Balancer>,
    cluster: &str,
) -> Result<Vec<Balancer>, ComponentError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let arns: Vec<String> = candidates.iter().map(|b| b.arn.clone()).collect();
    let tagged: BTreeSet<String> = elb_tags(elb, &arns)
        .await?
        .into_iter()
        .filter(|(_, tags)| {
            made_for_cluster(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), cluster)
        })
        .map(|(arn, _)| arn)
        .collect();
    Ok(candidates
        .into_iter()
        .filter(|b| tagged.contains(&b.arn))
        .collect())
}

async fn cluster_load_balancers(
    elb: &Elb,
    vpc_id: &str,
    cluster: &str,
) -> Result<Vec<Balancer>, ComponentError> {
    let mut in_vpc = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = elb
            .describe_load_balancers()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, "list the load balancers", e))?;
        in_vpc.extend(
            page.load_balancers()
                .iter()
                .filter(|lb| lb.vpc_id() == Some(vpc_id))
                .filter_map(|lb| {
                    Some(Balancer {
                        arn: lb.load_balancer_arn()?.to_string(),
                        name: lb.load_balancer_name().unwrap_or_default().to_string(),
                    })
                }),
        );
        match page.next_marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => break,
        }
    }
    tagged_for(elb, in_vpc, cluster).await
}

async fn cluster_target_groups(
    elb: &Elb,
    vpc_id: &str,
    cluster: &str,
) -> Result<Vec<Balancer>, ComponentError> {
    let mut in_vpc = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = elb
            .describe_target_groups()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, "list the target groups", e))?;
        in_vpc.extend(
            page.target_groups()
                .iter()
                .filter(|tg| tg.vpc_id() == Some(vpc_id))
                .filter_map(|tg| {
                    Some(Balancer {
                        arn: tg.target_group_arn()?.to_string(),
                        name: tg.target_group_name().unwrap_or_default().to_string(),
                    })
                }),
        );
        match page.next_marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => break,
        }
    }
    tagged_for(elb, in_vpc, cluster).await
}

async fn cluster_network_interfaces(
    ec2: &Client,
    vpc_id: &str,
    cluster: &str,
) -> Result<Vec<NetworkInterface>, ComponentError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ec2
            .describe_network_interfaces()
            .filters(filter("vpc-id", vpc_id))
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("list the network interfaces of VPC {vpc_id}"),
                    e,
                )
            })?;
        out.extend(
            page.network_interfaces()
                .iter()
                .filter(|n| made_for_cluster(ec2_pairs(n.tag_set()), cluster))
                .cloned(),
        );
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// Fails, before anything is deleted, when a load balancer of the cluster
/// has deletion protection: someone asked for it, so the provider does not
/// turn it off.
pub(super) async fn refuse_protected(
    ctx: &Ctx,
    leftovers: &Leftovers,
) -> Result<(), ComponentError> {
    let elb = ctx.aws.elbv2();
    let mut protected = Vec::new();
    for lb in &leftovers.load_balancers {
        let attributes = match elb
            .describe_load_balancer_attributes()
            .load_balancer_arn(&lb.arn)
            .send()
            .await
        {
            Ok(a) => a,
            Err(e) if elb_gone(&e) => continue,
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("read the attributes of load balancer {}", lb.name),
                    e,
                ))
            }
        };
        if attributes
            .attributes()
            .iter()
            .any(|a| a.key() == Some("deletion_protection.enabled") && a.value() == Some("true"))
        {
            protected.push(lb.arn.clone());
        }
    }
    if protected.is_empty() {
        return Ok(());
    }
    Err(ComponentError::Conflict {
        component: COMPONENT,
        message: format!(
            "VPC {} holds load balancer(s) of cluster {} with deletion protection on: {}, so the VPC cannot be deleted and its deletion was not started. \
             Turn deletion protection off (aws elbv2 modify-load-balancer-attributes --attributes Key=deletion_protection.enabled,Value=false) \
             or delete them, then destroy again",
            leftovers.vpc_id,
            leftovers.cluster,
            protected.join(", ")
        ),
    })
}

/// Removes the load balancers (waiting until AWS no longer lists them),
/// then their target groups, and the network interfaces: everything that
/// must go before subnets can. Security groups come later
/// ([`remove_security_groups`]), with the provider's own.
pub(super) async fn remove_before_subnets(
    ctx: &Ctx,
    ec2: &Client,
    leftovers: &Leftovers,
) -> Result<(), ComponentError> {
    let elb = ctx.aws.elbv2();
    let balancers = async {
        let mut results = join_all(
            leftovers
                .load_balancers
                .iter()
                .map(|lb| remove_load_balancer(ctx, &elb, lb)),
        )
        .await;
        if results.iter().all(Result::is_ok) {
            results.extend(
                join_all(
                    leftovers
                        .target_groups
                        .iter()
                        .map(|tg| remove_target_group(ctx, &elb, tg)),
                )
                .await,
            );
        }
        results
    };
    let interfaces = join_all(
        leftovers
            .network_interfaces
            .iter()
            .map(|n| remove_network_interface(ctx, ec2, n)),
    );
    let (mut results, more) = tokio::join!(balancers, interfaces);
    results.extend(more);
    summarize(leftovers, results)
}

/// Revokes the group rules by which the leftover groups reference each
/// other, then deletes them, retrying while something still uses them (a
/// load balancer's interfaces are released minutes after it is deleted).
pub(super) async fn remove_security_groups(
    ctx: &Ctx,
    ec2: &Client,
    leftovers: &Leftovers,
) -> Result<(), ComponentError> {
    let groups: Vec<&SecurityGroup> = leftovers.security_groups.iter().collect();
    let results = super::delete_groups(ctx, ec2, &groups, "made for the cluster").await;
    summarize(leftovers, results)
}

/// Ok when everything went; else one error naming each thing that did
/// not, and why. A stop by Terraform stays a stop.
fn summarize(
    leftovers: &Leftovers,
    results: Vec<Result<(), ComponentError>>,
) -> Result<(), ComponentError> {
    let mut problems = Vec::new();
    for result in results {
        match result {
            Ok(()) => {}
            Err(e @ ComponentError::Cancelled { .. }) => return Err(e),
            Err(ComponentError::Timeout { what, waited, .. }) => problems.push(format!(
                "gave up after {}s waiting for {what}",
                waited.as_secs()
            )),
            Err(ComponentError::Aws {
                action, message, ..
            }) => problems.push(format!("AWS refused to {action}: {message}")),
            Err(ComponentError::Conflict { message, .. }) => problems.push(message),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(ComponentError::Conflict {
        component: COMPONENT,
        message: format!(
            "VPC {} still holds what EKS or the controllers of cluster {} made in it, and it could not be removed: {}. \
             Remove these by hand, then destroy again",
            leftovers.vpc_id,
            leftovers.cluster,
            problems.join("; ")
        ),
    })
}

async fn remove_load_balancer(ctx: &Ctx, elb: &Elb, lb: &Balancer) -> Result<(), ComponentError> {
    match elb
        .delete_load_balancer()
        .load_balancer_arn(&lb.arn)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if elb_gone(&e) => return Ok(()),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("delete load balancer {}", lb.arn),
                e,
            ))
        }
    }
    ctx.wait_for(
        COMPONENT,
        &format!("load balancer {} to be deleted", lb.arn),
        || async {
            match elb
                .describe_load_balancers()
                .load_balancer_arns(&lb.arn)
                .send()
                .await
            {
                Ok(out) => Ok(out.load_balancers().is_empty().then_some(())),
                Err(e) if elb_gone(&e) => Ok(Some(())),
                Err(e) => Err(aws_error(
                    COMPONENT,
                    format!("read load balancer {}", lb.arn),
                    e,
                )),
            }
        },
    )
    .await
}

async fn remove_target_group(ctx: &Ctx, elb: &Elb, tg: &Balancer) -> Result<(), ComponentError> {
    ctx.wait_for(
        COMPONENT,
        &format!("target group {} to be deletable", tg.arn),
        || async {
            match elb
                .delete_target_group()
                .target_group_arn(&tg.arn)
                .send()
                .await
            {
                Ok(_) => Ok(Some(())),
                Err(e) if elb_gone(&e) => Ok(Some(())),
                // Still used by a listener of a load balancer being deleted.
                Err(e) if e.code() == Some("ResourceInUse") => Ok(None),
                Err(e) => Err(aws_error(
                    COMPONENT,
                    format!("delete target group {}", tg.arn),
                    e,
                )),
            }
        },
    )
    .await
}

fn interface_gone<E: ProvideErrorMetadata, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    absent(err)
        || matches!(
            err.code(),
            Some("InvalidNetworkInterfaceID.NotFound" | "InvalidAttachmentID.NotFound")
        )
}

/// Detaches the interface if it is attached, waits until it is free, and
/// deletes it. One that belongs to an AWS service (requester-managed) is
/// only waited for: its owner releases it. One that cannot be detached
/// (the primary interface of an instance that still exists) is named.
async fn remove_network_interface(
    ctx: &Ctx,
    ec2: &Client,
    eni: &NetworkInterface,
) -> Result<(), ComponentError> {
    let id = eni.network_interface_id().unwrap_or_default().to_string();
    let managed = eni.requester_managed() == Some(true);
    let id = id.as_str();
    let what = if managed {
        format!(
            "network interface {id} (managed by {}) to be released",
            eni.requester_id().unwrap_or("an AWS service")
        )
    } else {
        format!("network interface {id} to be detached and deleted")
    };
    ctx.wait_for(COMPONENT, &what, || async move {
        let current = match ec2
            .describe_network_interfaces()
            .network_interface_ids(id)
            .send()
            .await
        {
            Ok(out) => out.network_interfaces().first().cloned(),
            Err(e) if interface_gone(&e) => None,
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("read network interface {id}"),
                    e,
                ))
            }
        };
        let Some(current) = current else {
            return Ok(Some(()));
        };
        if managed {
            return Ok(None);
        }
        let attachment = current
            .attachment()
            .filter(|a| a.status().is_none_or(|s| s.as_str() != "detached"));
        if let Some(attachment) = attachment {
            if attachment.status().map(|s| s.as_str()) == Some("attached") {
                let attachment_id = attachment.attachment_id().unwrap_or_default();
                match ec2
                    .detach_network_interface()
                    .attachment_id(attachment_id)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e) if interface_gone(&e) => {}
                    Err(e) if e.code() == Some("OperationNotPermitted") => {
                        return Err(ComponentError::Conflict {
                            component: COMPONENT,
                            message: format!(
                                "network interface {id} cannot be detached from instance {} ({}); \
                                 that instance is not part of this environment: terminate it first",
                                attachment.instance_id().unwrap_or("?"),
                                e.message().unwrap_or("OperationNotPermitted")
                            ),
                        })
                    }
                    Err(e) => {
                        return Err(aws_error(
                            COMPONENT,
                            format!("detach network interface {id}"),
                            e,
                        ))
                    }
                }
            }
            // Attaching, detaching, or just asked to detach: look again.
            return Ok(None);
        }
        match ec2
            .delete_network_interface()
            .network_interface_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(Some(())),
            Err(e) if interface_gone(&e) => Ok(Some(())),
            Err(e) if e.code() == Some("InvalidNetworkInterface.InUse") => Ok(None),
            Err(e) => Err(aws_error(
                COMPONENT,
                format!("delete network interface {id}"),
                e,
            )),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::made_for_cluster;

    #[test]
    fn the_tags_of_eks_the_cni_and_the_load_balancer_controller_count() {
        let c = "idis-production";
        for tags in [
            vec![("kubernetes.io/cluster/idis-production", "owned")],
            vec![("kubernetes.io/cluster/idis-production", "shared")],
            vec![("aws:eks:cluster-name", "idis-production")],
            vec![("elbv2.k8s.aws/cluster", "idis-production")],
            vec![("cluster.k8s.amazonaws.com/name", "idis-production")],
        ] {
            assert!(made_for_cluster(tags.clone(), c), "{tags:?}");
        }
    }

    #[test]
    fn another_cluster_or_no_cluster_tag_does_not() {
        let c = "idis-production";
        for tags in [
            vec![("kubernetes.io/cluster/idis-staging", "owned")],
            vec![("aws:eks:cluster-name", "idis-staging")],
            vec![("elbv2.k8s.aws/cluster", "idis-production-2")],
            vec![("Name", "idis-production")],
            vec![],
        ] {
            assert!(!made_for_cluster(tags.clone(), c), "{tags:?}");
        }
    }
}
