"""Pods reach PostgreSQL and Redis, and nothing else does, by the rules AWS
enforces: a managed node group without a launch template runs its nodes
with the security group EKS made for the cluster
(`resourcesVpcConfig.clusterSecurityGroupId`), not with the additional
groups given to the control plane ("Amazon EKS security group requirements
and considerations", EKS User Guide). moto makes no such group; the proxy
makes it as EKS does (see `awsproxy.py`). The rules are evaluated with
boto3 from the groups actually attached to the nodes."""

from __future__ import annotations

import boto3

from test_environment import PREFIX


def _covers(permission: dict, port: int) -> bool:
    if permission.get("IpProtocol") in ("-1", "all"):
        return True
    return permission.get("IpProtocol") in ("tcp", "6") and permission.get("FromPort", -1) <= port <= permission.get("ToPort", -1)


def reachable_from_groups(group: dict, port: int, sources: set[str]) -> bool:
    return any(_covers(p, port) and any(pair.get("GroupId") in sources for pair in p.get("UserIdGroupPairs", []))
               for p in group["IpPermissions"])


def open_to_addresses(group: dict, port: int) -> list[str]:
    return [r["CidrIp"] for p in group["IpPermissions"] if _covers(p, port) for r in p.get("IpRanges", [])] + \
           [r["CidrIpv6"] for p in group["IpPermissions"] if _covers(p, port) for r in p.get("Ipv6Ranges", [])]


def test_pods_on_the_node_group_reach_the_database_and_the_cache_and_nothing_else_does(production, aws, aws_proxy):
    production.apply()
    # EKS as the provider sees it (through the proxy, which plays EKS).
    eks = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "eks", region_name="us-east-1", endpoint_url=aws_proxy.endpoint)
    cluster = eks.describe_cluster(name=PREFIX)["cluster"]
    group = eks.describe_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")["nodegroup"]
    assert "launchTemplate" not in group, "a launch template would decide the nodes' groups"
    node_groups = {cluster["resourcesVpcConfig"]["clusterSecurityGroupId"]}

    ec2 = aws("ec2")
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [cluster["resourcesVpcConfig"]["vpcId"]]}])["SecurityGroups"]} \
        if cluster["resourcesVpcConfig"].get("vpcId") else {g["GroupName"]: g for g in ec2.describe_security_groups()["SecurityGroups"]}
    database, cache = groups[f"{PREFIX}-database"], groups[f"{PREFIX}-cache"]

    assert reachable_from_groups(database, 5432, node_groups), database["IpPermissions"]
    assert reachable_from_groups(cache, 6379, node_groups), cache["IpPermissions"]
    # Nothing by address: neither the internet nor the whole VPC.
    assert open_to_addresses(database, 5432) == []
    assert open_to_addresses(cache, 6379) == []
    # And from no group but the nodes'.
    others = {g["GroupId"] for g in groups.values()} - node_groups
    assert not reachable_from_groups(database, 5432, others)
    assert not reachable_from_groups(cache, 6379, others)

    # A second plan is empty: what the provider made is what it wants.
    again = production.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("plan after apply")
