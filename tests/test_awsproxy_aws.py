"""The proxy plays AWS where moto 5.2.5 has gaps: what EKS, RDS, ElastiCache
and WAF answer about versions, upgrades and add-ons, shown with boto3
against a proxy in front of the session's moto (no provider, no Terraform).
Objects the test needs that AWS would have (VPCs, roles, load balancers)
are made in moto directly, as the other tests do."""

from __future__ import annotations

import json
import re

import boto3
import botocore.config
import botocore.exceptions
import pytest

from awsproxy import AwsProxy

REGION = "us-east-1"


def client(service: str, endpoint: str):
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        service, region_name=REGION, endpoint_url=endpoint,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(autouse=True)
def empty_moto(moto):
    moto.reset(shield_subscription=False)
    yield
    # Leave moto as the session's other tests find it: empty, the account
    # subscribed to Shield Advanced (a plan with DDoS protection checks it).
    moto.reset()


@pytest.fixture
def proxy_with(moto):
    """proxy_with(**knobs): a proxy of its own in front of moto, stopped after the test."""
    made = []

    def make(**knobs) -> AwsProxy:
        proxy = AwsProxy(moto.endpoint, **knobs)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()


def refused(call, code: str, status: int | None = None) -> str:
    """Runs call(), which AWS refuses with `code`; returns the message."""
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    error = caught.value.response
    assert error["Error"]["Code"] == code, error
    if status is not None:
        assert error["ResponseMetadata"]["HTTPStatusCode"] == status, error
    return error["Error"]["Message"]


def network(moto_endpoint: str) -> tuple[str, list[str]]:
    ec2 = client("ec2", moto_endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
        for i, zone in ((1, "a"), (2, "b"))
    ]
    return vpc, subnets


def eks_cluster(moto_endpoint: str, eks, name: str = "shop", version: str = "1.31") -> dict:
    """A cluster made through the proxy, in a VPC and with a role made in moto."""
    _, subnets = network(moto_endpoint)
    role = client("iam", moto_endpoint).create_role(RoleName=f"{name}-eks", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    eks.create_cluster(name=name, version=version, roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
    return {"name": name, "role": role, "subnets": subnets}


# -- EKS: Kubernetes versions --------------------------------------------------------


def test_eks_lists_the_kubernetes_versions_it_offers(aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    versions = eks.describe_cluster_versions()["clusterVersions"]
    assert [(v["clusterVersion"], v["versionStatus"]) for v in versions] == [
        ("1.34", "STANDARD_SUPPORT"), ("1.33", "STANDARD_SUPPORT"), ("1.32", "STANDARD_SUPPORT"),
        ("1.31", "STANDARD_SUPPORT"), ("1.30", "EXTENDED_SUPPORT"), ("1.29", "EXTENDED_SUPPORT"),
    ]
    one = next(v for v in versions if v["clusterVersion"] == "1.32")
    assert one["clusterType"] == "eks" and one["defaultPlatformVersion"] == "eks.25"
    assert one["kubernetesPatchVersion"] == "1.32.9" and one["defaultVersion"] is False
    assert one["endOfStandardSupportDate"].date().isoformat() == "2026-03-23"
    assert [v["clusterVersion"] for v in eks.describe_cluster_versions(defaultOnly=True)["clusterVersions"]] == ["1.33"]
    extended = eks.describe_cluster_versions(versionStatus="EXTENDED_SUPPORT")["clusterVersions"]
    assert [v["clusterVersion"] for v in extended] == ["1.30", "1.29"]
    asked = eks.describe_cluster_versions(clusterVersions=["1.31", "1.34"])["clusterVersions"]
    assert [v["clusterVersion"] for v in asked] == ["1.34", "1.31"]
    # Pages of maxResults with an opaque nextToken.
    first = eks.describe_cluster_versions(maxResults=4)
    second = eks.describe_cluster_versions(maxResults=4, nextToken=first["nextToken"])
    assert [v["clusterVersion"] for v in first["clusterVersions"] + second["clusterVersions"]] == [
        "1.34", "1.33", "1.32", "1.31", "1.30", "1.29"]
    assert "nextToken" not in second or second["nextToken"] is None


def test_versions_out_of_support_are_listed_only_with_include_all(proxy_with):
    from awsproxy import DEFAULT_EKS_VERSIONS

    old = {"clusterVersion": "1.28", "releaseDate": "2023-09-26", "endOfStandardSupportDate": "2024-11-26",
           "endOfExtendedSupportDate": "2025-11-26", "versionStatus": "UNSUPPORTED",
           "defaultPlatformVersion": "eks.50", "kubernetesPatchVersion": "1.28.15"}
    eks = client("eks", proxy_with(eks_versions=DEFAULT_EKS_VERSIONS + [old]).endpoint)
    assert "1.28" not in [v["clusterVersion"] for v in eks.describe_cluster_versions()["clusterVersions"]]
    assert "1.28" in [v["clusterVersion"] for v in eks.describe_cluster_versions(includeAll=True)["clusterVersions"]]


# -- EKS: cluster version updates ------------------------------------------------------


def test_a_cluster_goes_up_one_minor_version_and_reports_it_once_the_update_succeeded(moto, proxy_with):
    eks = client("eks", proxy_with(update_reads=2).endpoint)
    eks_cluster(moto.endpoint, eks)
    update = eks.update_cluster_version(name="shop", version="1.32")["update"]
    assert update["status"] == "InProgress" and update["type"] == "VersionUpdate"
    assert update["params"] == [{"type": "Version", "value": "1.32"}, {"type": "PlatformVersion", "value": "eks.25"}]
    assert update["errors"] == []
    # Meanwhile the cluster is UPDATING, still on 1.31, and takes no other update.
    cluster = eks.describe_cluster(name="shop")["cluster"]
    assert (cluster["status"], cluster["version"]) == ("UPDATING", "1.31")
    message = refused(lambda: eks.update_cluster_version(name="shop", version="1.32"), "ResourceInUseException", 409)
    assert f"currently has update {update['id']} in progress" in message
    refused(lambda: eks.update_cluster_config(name="shop", logging={"clusterLogging": []}), "ResourceInUseException", 409)
    assert eks.describe_update(name="shop", updateId=update["id"])["update"]["status"] == "InProgress"
    assert eks.describe_update(name="shop", updateId=update["id"])["update"]["status"] == "Successful"
    cluster = eks.describe_cluster(name="shop")["cluster"]
    assert (cluster["status"], cluster["version"], cluster["platformVersion"]) == ("ACTIVE", "1.32", "eks.25")
    assert eks.list_updates(name="shop")["updateIds"] == [update["id"]]


def test_skipping_a_minor_version_or_staying_on_the_same_is_refused(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    eks_cluster(moto.endpoint, eks)
    message = refused(lambda: eks.update_cluster_version(name="shop", version="1.33"), "InvalidParameterException", 400)
    assert message == "Unsupported Kubernetes minor version update from 1.31 to 1.33"
    message = refused(lambda: eks.update_cluster_version(name="shop", version="1.31"), "InvalidParameterException")
    assert message == "Unsupported Kubernetes minor version update from 1.31 to 1.31"
    message = refused(lambda: eks.update_cluster_version(name="shop", version="1.28"), "InvalidParameterException")
    assert message == "unsupported Kubernetes version"
    refused(lambda: eks.update_cluster_version(name="absent", version="1.32"), "ResourceNotFoundException", 404)
    assert eks.describe_cluster(name="shop")["cluster"]["version"] == "1.31"


def test_clusters_are_made_only_on_offered_versions_and_by_default_on_the_default(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    _, subnets = network(moto.endpoint)
    role = client("iam", moto.endpoint).create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    refused(lambda: eks.create_cluster(name="old", version="1.27", roleArn=role,
                                       resourcesVpcConfig={"subnetIds": subnets}), "InvalidParameterException")
    made = eks.create_cluster(name="new", roleArn=role, resourcesVpcConfig={"subnetIds": subnets})["cluster"]
    assert (made["version"], made["platformVersion"]) == ("1.33", "eks.18")


# -- EKS: managed node groups ----------------------------------------------------------


def test_node_groups_follow_the_cluster_and_never_lead_it(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    made = eks_cluster(moto.endpoint, eks)
    group = eks.create_nodegroup(clusterName="shop", nodegroupName="apps", nodeRole=made["role"],
                                 subnets=made["subnets"])["nodegroup"]
    assert (group["version"], group["releaseVersion"]) == ("1.31", "1.31.13-20251015")
    # Not newer than the cluster.
    message = refused(lambda: eks.update_nodegroup_version(clusterName="shop", nodegroupName="apps", version="1.32"),
                      "InvalidParameterException", 400)
    assert "1.32" in message
    cluster_update = eks.update_cluster_version(name="shop", version="1.32")["update"]
    eks.describe_update(name="shop", updateId=cluster_update["id"])
    assert eks.describe_update(name="shop", updateId=cluster_update["id"])["update"]["status"] == "Successful"
    # The cluster goes no further while the node group is behind.
    message = refused(lambda: eks.update_cluster_version(name="shop", version="1.33"), "InvalidParameterException")
    assert message == "Nodegroups apps must be updated to match cluster version 1.32 before updating cluster version"
    message = refused(lambda: eks.update_nodegroup_version(clusterName="shop", nodegroupName="apps", version="1.32",
                                                           releaseVersion="1.31.13-20251015"), "InvalidParameterException")
    assert message == "Requested release version 1.31.13-20251015 is not valid for kubernetes version 1.32."
    # Without a version the node group goes to the cluster's.
    update = eks.update_nodegroup_version(clusterName="shop", nodegroupName="apps")["update"]
    assert update["type"] == "VersionUpdate" and update["status"] == "InProgress"
    assert update["params"] == [{"type": "Version", "value": "1.32"}, {"type": "ReleaseVersion", "value": "1.32.9-20251015"}]
    group = eks.describe_nodegroup(clusterName="shop", nodegroupName="apps")["nodegroup"]
    assert (group["status"], group["version"]) == ("UPDATING", "1.31")
    refused(lambda: eks.describe_update(name="shop", updateId=update["id"]), "ResourceNotFoundException", 404)
    described = eks.describe_update(name="shop", updateId=update["id"], nodegroupName="apps")["update"]
    assert described["status"] == "Successful"
    group = eks.describe_nodegroup(clusterName="shop", nodegroupName="apps")["nodegroup"]
    assert (group["status"], group["version"], group["releaseVersion"]) == ("ACTIVE", "1.32", "1.32.9-20251015")
    # No rolling back; and now the cluster may go on.
    refused(lambda: eks.update_nodegroup_version(clusterName="shop", nodegroupName="apps", version="1.31"),
            "InvalidParameterException")
    assert eks.update_cluster_version(name="shop", version="1.33")["update"]["status"] == "InProgress"


def test_a_new_node_group_runs_the_cluster_version(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    made = eks_cluster(moto.endpoint, eks)
    refused(lambda: eks.create_nodegroup(clusterName="shop", nodegroupName="old", nodeRole=made["role"],
                                         subnets=made["subnets"], version="1.30"), "InvalidParameterException")
    refused(lambda: eks.create_nodegroup(clusterName="shop", nodegroupName="stale", nodeRole=made["role"],
                                         subnets=made["subnets"], releaseVersion="1.31.13-20240101"),
            "InvalidParameterException")
    group = eks.create_nodegroup(clusterName="shop", nodegroupName="apps", nodeRole=made["role"],
                                 subnets=made["subnets"], version="1.31")["nodegroup"]
    assert group["version"] == "1.31"
    # moto holds it that way (the proxy completed the request).
    assert client("eks", moto.endpoint).describe_nodegroup(clusterName="shop", nodegroupName="apps")["nodegroup"]["version"] == "1.31"


# -- EKS: managed add-ons ---------------------------------------------------------------


def test_add_on_versions_are_listed_per_kubernetes_version(aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    addons = eks.describe_addon_versions(kubernetesVersion="1.31")["addons"]
    assert [a["addonName"] for a in addons] == [
        "aws-ebs-csi-driver", "coredns", "kube-proxy", "metrics-server", "vpc-cni"]
    for addon in addons:
        defaults = [v["addonVersion"] for v in addon["addonVersions"]
                    for c in v["compatibilities"] if c["clusterVersion"] == "1.31" and c["defaultVersion"]]
        assert len(defaults) == 1, addon
        kind = {"aws-ebs-csi-driver": "storage", "metrics-server": "observability"}.get(addon["addonName"], "networking")
        owner = "community" if addon["addonName"] == "metrics-server" else "aws"
        assert addon["owner"] == owner and addon["publisher"] == "eks" and addon["type"] == kind
    proxy_versions = next(a for a in addons if a["addonName"] == "kube-proxy")["addonVersions"]
    assert [v["addonVersion"] for v in proxy_versions] == ["v1.31.7-eksbuild.7", "v1.31.3-eksbuild.2"]
    cni = eks.describe_addon_versions(addonName="vpc-cni")["addons"][0]["addonVersions"]
    assert [c["clusterVersion"] for c in cni[0]["compatibilities"]] == ["1.29", "1.30", "1.31", "1.32", "1.33", "1.34"]
    assert cni[0]["requiresIamPermissions"] is True
    first = eks.describe_addon_versions(maxResults=3)
    second = eks.describe_addon_versions(maxResults=3, nextToken=first["nextToken"])
    assert [a["addonName"] for a in first["addons"] + second["addons"]] == [
        "aws-ebs-csi-driver", "coredns", "kube-proxy", "metrics-server", "vpc-cni"]


def test_the_ebs_csi_driver_add_on_runs_with_the_role_and_configuration_it_is_given(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    eks_cluster(moto.endpoint, eks)
    ebs = eks.describe_addon_versions(addonName="aws-ebs-csi-driver", kubernetesVersion="1.31")["addons"][0]
    assert ebs["type"] == "storage"
    assert all(v["requiresIamPermissions"] for v in ebs["addonVersions"])
    role = "arn:aws:iam::123456789012:role/shop-ebs-csi-driver"
    config = '{"controller":{"k8sTagClusterId":"shop"}}'
    eks.create_addon(clusterName="shop", addonName="aws-ebs-csi-driver", serviceAccountRoleArn=role,
                     configurationValues=config)
    eks.describe_addon(clusterName="shop", addonName="aws-ebs-csi-driver")
    addon = eks.describe_addon(clusterName="shop", addonName="aws-ebs-csi-driver")["addon"]
    assert (addon["status"], addon["addonVersion"]) == ("ACTIVE", "v1.48.0-eksbuild.2")
    assert (addon["serviceAccountRoleArn"], addon["configurationValues"]) == (role, config)
    other = "arn:aws:iam::123456789012:role/other"
    update = eks.update_addon(clusterName="shop", addonName="aws-ebs-csi-driver", serviceAccountRoleArn=other)["update"]
    assert {"type": "ServiceAccountRoleArn", "value": other} in update["params"]
    eks.describe_update(name="shop", updateId=update["id"], addonName="aws-ebs-csi-driver")
    assert eks.describe_addon(clusterName="shop", addonName="aws-ebs-csi-driver")["addon"]["serviceAccountRoleArn"] == other


def test_every_cluster_has_an_oidc_issuer_of_its_own(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    made = eks_cluster(moto.endpoint, eks, "shop")
    eks_cluster(moto.endpoint, eks, "depot")
    issuer = {n: eks.describe_cluster(name=n)["cluster"]["identity"]["oidc"]["issuer"] for n in ("shop", "depot")}
    assert issuer["shop"] != issuer["depot"]
    for url in issuer.values():
        assert re.fullmatch(r"https://oidc\.eks\.us-east-1\.amazonaws\.com/id/[0-9A-F]{32}", url), url
    # The same cluster keeps its issuer; a cluster made again gets another.
    assert eks.describe_cluster(name="shop")["cluster"]["identity"]["oidc"]["issuer"] == issuer["shop"]
    eks.delete_cluster(name="shop")
    eks.create_cluster(name="shop", version="1.31", roleArn=made["role"], resourcesVpcConfig={"subnetIds": made["subnets"]})
    assert eks.describe_cluster(name="shop")["cluster"]["identity"]["oidc"]["issuer"] != issuer["shop"]


def test_a_managed_add_on_is_created_described_updated_and_deleted(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    eks_cluster(moto.endpoint, eks)
    role = "arn:aws:iam::123456789012:role/cni"
    addon = eks.create_addon(clusterName="shop", addonName="vpc-cni", serviceAccountRoleArn=role,
                             configurationValues='{"env":{"ENABLE_PREFIX_DELEGATION":"true"}}',
                             tags={"idis:environment": "shop"})["addon"]
    assert (addon["status"], addon["addonVersion"]) == ("CREATING", "v1.19.2-eksbuild.5")
    assert addon["addonArn"].startswith("arn:aws:eks:us-east-1:123456789012:addon/shop/vpc-cni/")
    assert eks.describe_addon(clusterName="shop", addonName="vpc-cni")["addon"]["status"] == "CREATING"
    described = eks.describe_addon(clusterName="shop", addonName="vpc-cni")["addon"]
    assert described["status"] == "ACTIVE"
    assert described["serviceAccountRoleArn"] == role and described["tags"] == {"idis:environment": "shop"}
    assert described["configurationValues"] == '{"env":{"ENABLE_PREFIX_DELEGATION":"true"}}'
    assert described["createdAt"] and described["modifiedAt"]
    refused(lambda: eks.create_addon(clusterName="shop", addonName="vpc-cni"), "ResourceInUseException", 409)
    assert eks.list_addons(clusterName="shop")["addons"] == ["vpc-cni"]

    update = eks.update_addon(clusterName="shop", addonName="vpc-cni", addonVersion="v1.20.4-eksbuild.1",
                              resolveConflicts="OVERWRITE")["update"]
    assert (update["type"], update["status"]) == ("AddonUpdate", "InProgress")
    assert {"type": "AddonVersion", "value": "v1.20.4-eksbuild.1"} in update["params"]
    assert eks.describe_addon(clusterName="shop", addonName="vpc-cni")["addon"]["status"] == "UPDATING"
    refused(lambda: eks.describe_update(name="shop", updateId=update["id"]), "ResourceNotFoundException")
    assert eks.describe_update(name="shop", updateId=update["id"], addonName="vpc-cni")["update"]["status"] == "Successful"
    described = eks.describe_addon(clusterName="shop", addonName="vpc-cni")["addon"]
    assert (described["status"], described["addonVersion"]) == ("ACTIVE", "v1.20.4-eksbuild.1")
    assert eks.list_updates(name="shop", addonName="vpc-cni")["updateIds"] == [update["id"]]

    assert eks.delete_addon(clusterName="shop", addonName="vpc-cni")["addon"]["status"] == "DELETING"
    assert eks.describe_addon(clusterName="shop", addonName="vpc-cni")["addon"]["status"] == "DELETING"
    refused(lambda: eks.describe_addon(clusterName="shop", addonName="vpc-cni"), "ResourceNotFoundException", 404)
    assert eks.list_addons(clusterName="shop")["addons"] == []


def test_an_add_on_version_the_cluster_version_does_not_support_is_refused(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    eks_cluster(moto.endpoint, eks)
    message = refused(lambda: eks.create_addon(clusterName="shop", addonName="kube-proxy", addonVersion="v1.32.3-eksbuild.7"),
                      "InvalidParameterException", 400)
    assert message == "Addon version specified is not supported"
    refused(lambda: eks.create_addon(clusterName="shop", addonName="no-such-addon"), "InvalidParameterException")
    refused(lambda: eks.describe_addon(clusterName="shop", addonName="kube-proxy"), "ResourceNotFoundException", 404)
    eks.create_addon(clusterName="shop", addonName="coredns", addonVersion="v1.11.4-eksbuild.2")
    refused(lambda: eks.update_addon(clusterName="shop", addonName="coredns", addonVersion="v1.12.1-eksbuild.2"),
            "InvalidParameterException")
    refused(lambda: eks.create_addon(clusterName="absent", addonName="coredns"), "ResourceNotFoundException", 404)


def test_add_ons_go_with_their_cluster(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    made = eks_cluster(moto.endpoint, eks)
    eks.create_addon(clusterName="shop", addonName="coredns")
    eks.delete_cluster(name="shop")
    refused(lambda: eks.list_addons(clusterName="shop"), "ResourceNotFoundException", 404)
    eks.create_cluster(name="shop", version="1.31", roleArn=made["role"], resourcesVpcConfig={"subnetIds": made["subnets"]})
    assert eks.list_addons(clusterName="shop")["addons"] == []


def test_a_repeated_client_request_token_gets_the_first_answer(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    eks_cluster(moto.endpoint, eks)
    first = eks.create_addon(clusterName="shop", addonName="coredns", clientRequestToken="token-1")["addon"]
    again = eks.create_addon(clusterName="shop", addonName="coredns", clientRequestToken="token-1")["addon"]
    assert again["addonArn"] == first["addonArn"]
    refused(lambda: eks.create_addon(clusterName="shop", addonName="coredns", clientRequestToken="token-2"),
            "ResourceInUseException")


def test_moto_reset_makes_the_proxy_forget_what_it_kept(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    eks_cluster(moto.endpoint, eks)
    update = eks.update_cluster_version(name="shop", version="1.32")["update"]
    eks.create_addon(clusterName="shop", addonName="coredns")
    moto.reset(shield_subscription=False)
    eks_cluster(moto.endpoint, client("eks", moto.endpoint))
    refused(lambda: eks.describe_addon(clusterName="shop", addonName="coredns"), "ResourceNotFoundException")
    refused(lambda: eks.describe_update(name="shop", updateId=update["id"]), "ResourceNotFoundException")
    assert eks.describe_cluster(name="shop")["cluster"]["version"] == "1.31"


# -- RDS -----------------------------------------------------------------------------------


def test_rds_lists_postgres_versions_with_their_upgrade_targets(aws_proxy):
    rds = client("rds", aws_proxy.endpoint)
    listed = rds.describe_db_engine_versions(Engine="postgres")["DBEngineVersions"]
    assert [v["EngineVersion"] for v in listed] == ["13.20", "14.17", "15.10", "15.12", "16.6", "16.8", "17.2", "17.4"]
    sixteen = next(v for v in listed if v["EngineVersion"] == "16.8")
    assert (sixteen["DBParameterGroupFamily"], sixteen["Status"], sixteen["DBEngineDescription"]) == (
        "postgres16", "available", "PostgreSQL")
    assert [(t["EngineVersion"], t["IsMajorVersionUpgrade"]) for t in sixteen["ValidUpgradeTarget"]] == [
        ("17.2", True), ("17.4", True)]
    # A major version names its minors; DefaultOnly keeps the default.
    assert [v["EngineVersion"] for v in rds.describe_db_engine_versions(Engine="postgres", EngineVersion="16")["DBEngineVersions"]] == ["16.6", "16.8"]
    assert [v["EngineVersion"] for v in rds.describe_db_engine_versions(Engine="postgres", EngineVersion="16.6")["DBEngineVersions"]] == ["16.6"]
    assert [v["EngineVersion"] for v in rds.describe_db_engine_versions(
        Engine="postgres", EngineVersion="16", DefaultOnly=True)["DBEngineVersions"]] == ["16.8"]
    assert [v["EngineVersion"] for v in rds.describe_db_engine_versions(Engine="postgres", DefaultOnly=True)["DBEngineVersions"]] == ["17.4"]
    assert [v["EngineVersion"] for v in rds.describe_db_engine_versions(DBParameterGroupFamily="postgres15")["DBEngineVersions"]] == ["15.10", "15.12"]
    refused(lambda: rds.describe_db_engine_versions(MaxRecords=5), "InvalidParameterValue")


def test_rds_engine_versions_come_in_pages(proxy_with):
    many = [{"Engine": "postgres", "EngineVersion": f"16.{n}", "DBParameterGroupFamily": "postgres16"} for n in range(30)]
    rds = client("rds", proxy_with(db_engine_versions=many).endpoint)
    first = rds.describe_db_engine_versions(Engine="postgres", MaxRecords=20)
    assert len(first["DBEngineVersions"]) == 20 and first["Marker"]
    rest = rds.describe_db_engine_versions(Engine="postgres", MaxRecords=20, Marker=first["Marker"])
    assert len(rest["DBEngineVersions"]) == 10 and "Marker" not in rest
    assert len({v["EngineVersion"] for v in first["DBEngineVersions"] + rest["DBEngineVersions"]}) == 30


def postgres(rds, ident: str, version: str, **extra) -> None:
    rds.create_db_instance(DBInstanceIdentifier=ident, Engine="postgres", EngineVersion=version,
                           DBInstanceClass="db.t4g.micro", AllocatedStorage=20, MasterUsername="idis",
                           MasterUserPassword="not-a-secret-1", **extra)


def test_an_rds_managed_master_secret_holds_the_master_username_and_a_password_rds_made(moto, aws_proxy):
    rds = client("rds", aws_proxy.endpoint)
    rds.create_db_instance(DBInstanceIdentifier="orders", Engine="postgres", EngineVersion="16.8",
                           DBInstanceClass="db.t4g.micro", AllocatedStorage=20, MasterUsername="ledger_owner",
                           ManageMasterUserPassword=True)
    arn = rds.describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0]["MasterUserSecret"]["SecretArn"]
    secret = json.loads(client("secretsmanager", moto.endpoint).get_secret_value(SecretId=arn)["SecretString"])
    assert secret["username"] == "ledger_owner"
    assert len(secret["password"]) == 28 and secret["password"] != "P@55w0rd!"
    assert not set(secret["password"]) & set("/'\"@ ")


def test_a_major_upgrade_needs_allow_major_version_upgrade_and_the_new_family(moto, aws_proxy):
    rds = client("rds", aws_proxy.endpoint)
    postgres(rds, "orders", "16.8")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="orders-replica", SourceDBInstanceIdentifier="orders")
    message = refused(lambda: rds.modify_db_instance(DBInstanceIdentifier="orders", EngineVersion="17.4", ApplyImmediately=True),
                      "InvalidParameterCombination", 400)
    assert message == "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version."
    message = refused(lambda: rds.modify_db_instance(
        DBInstanceIdentifier="orders", EngineVersion="17.4", AllowMajorVersionUpgrade=True,
        DBParameterGroupName="default.postgres16", ApplyImmediately=True), "InvalidParameterCombination")
    assert message == ("The parameter group default.postgres16 with DBParameterGroupFamily postgres16 can't be used "
                       "for this instance. Use a parameter group with DBParameterGroupFamily postgres17.")
    assert refused(lambda: rds.modify_db_instance(DBInstanceIdentifier="orders", EngineVersion="17.9",
                                                  AllowMajorVersionUpgrade=True), "InvalidParameterCombination") == (
        "Cannot find version 17.9 for postgres")
    assert refused(lambda: rds.modify_db_instance(DBInstanceIdentifier="orders", EngineVersion="16.6"),
                   "InvalidParameterCombination") == "Cannot upgrade postgres from 16.8 to 16.6"
    direct = client("rds", moto.endpoint)
    assert direct.describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0]["EngineVersion"] == "16.8"

    # A major version alone goes to its default minor; the replica follows.
    done = rds.modify_db_instance(DBInstanceIdentifier="orders", EngineVersion="17", AllowMajorVersionUpgrade=True,
                                  DBParameterGroupName="default.postgres17", ApplyImmediately=True)["DBInstance"]
    assert done["EngineVersion"] == "17.4"
    versions = {d["DBInstanceIdentifier"]: d["EngineVersion"] for d in rds.describe_db_instances()["DBInstances"]}
    assert versions == {"orders": "17.4", "orders-replica": "17.4"}


def test_a_minor_upgrade_goes_to_the_read_replicas_before_the_primary(moto, aws_proxy):
    rds = client("rds", aws_proxy.endpoint)
    postgres(rds, "orders", "16.6")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="orders-replica", SourceDBInstanceIdentifier="orders")
    message = refused(lambda: rds.modify_db_instance(DBInstanceIdentifier="orders", EngineVersion="16.8", ApplyImmediately=True),
                      "DBUpgradeDependencyFailure", 400)
    assert message == "One or more of the DB Instance's read replicas need to be upgraded: orders-replica"
    direct = client("rds", moto.endpoint)
    assert direct.describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0]["EngineVersion"] == "16.6"
    rds.modify_db_instance(DBInstanceIdentifier="orders-replica", EngineVersion="16.8", ApplyImmediately=True)
    rds.modify_db_instance(DBInstanceIdentifier="orders", EngineVersion="16.8", ApplyImmediately=True)
    versions = {d["DBInstanceIdentifier"]: d["EngineVersion"] for d in direct.describe_db_instances()["DBInstances"]}
    assert versions == {"orders": "16.8", "orders-replica": "16.8"}


def test_a_custom_parameter_group_must_be_replaced_in_a_major_upgrade(aws_proxy):
    rds = client("rds", aws_proxy.endpoint)
    rds.create_db_parameter_group(DBParameterGroupName="tuned16", DBParameterGroupFamily="postgres16", Description="tuned")
    postgres(rds, "ledger", "16.8", DBParameterGroupName="tuned16")
    message = refused(lambda: rds.modify_db_instance(DBInstanceIdentifier="ledger", EngineVersion="17.4",
                                                     AllowMajorVersionUpgrade=True), "InvalidParameterCombination")
    assert message.startswith("The parameter group tuned16 with DBParameterGroupFamily postgres16 can't be used")
    # A minor upgrade keeps it.
    assert rds.modify_db_instance(DBInstanceIdentifier="ledger", EngineVersion="16.8")["DBInstance"]["EngineVersion"] == "16.8"


# -- ElastiCache ---------------------------------------------------------------------------


def test_elasticache_lists_redis_and_valkey_versions(aws_proxy):
    cache = client("elasticache", aws_proxy.endpoint)
    listed = cache.describe_cache_engine_versions()["CacheEngineVersions"]
    assert [(v["Engine"], v["EngineVersion"], v["CacheParameterGroupFamily"]) for v in listed] == [
        ("redis", "6.2", "redis6.x"), ("redis", "7.0", "redis7"), ("redis", "7.1", "redis7"),
        ("valkey", "7.2", "valkey7"), ("valkey", "8.0", "valkey8")]
    assert listed[4]["CacheEngineDescription"] == "Valkey" and listed[4]["CacheEngineVersionDescription"]
    assert [v["EngineVersion"] for v in cache.describe_cache_engine_versions(Engine="redis", EngineVersion="7")["CacheEngineVersions"]] == ["7.0", "7.1"]
    assert [v["EngineVersion"] for v in cache.describe_cache_engine_versions(Engine="redis", DefaultOnly=True)["CacheEngineVersions"]] == ["7.1"]
    assert [v["EngineVersion"] for v in cache.describe_cache_engine_versions(
        Engine="valkey", EngineVersion="7", DefaultOnly=True)["CacheEngineVersions"]] == ["7.2"]
    assert [v["Engine"] for v in cache.describe_cache_engine_versions(CacheParameterGroupFamily="valkey8")["CacheEngineVersions"]] == ["valkey"]
    refused(lambda: cache.describe_cache_engine_versions(MaxRecords=10), "InvalidParameterValue")


def test_cache_engine_versions_come_in_pages(proxy_with):
    many = [{"Engine": "valkey", "EngineVersion": f"8.{n}", "CacheParameterGroupFamily": "valkey8"} for n in range(25)]
    cache = client("elasticache", proxy_with(cache_engine_versions=many).endpoint)
    first = cache.describe_cache_engine_versions(MaxRecords=20)
    rest = cache.describe_cache_engine_versions(MaxRecords=20, Marker=first["Marker"])
    assert (len(first["CacheEngineVersions"]), len(rest["CacheEngineVersions"])) == (20, 5)
    assert "Marker" not in rest


def test_valkey_parameter_groups_and_replication_groups_are_accepted(moto, aws_proxy):
    cache = client("elasticache", aws_proxy.endpoint)
    for family in ("valkey8", "valkey7"):
        made = cache.create_cache_parameter_group(CacheParameterGroupName=f"Tuned-{family}",
                                                  CacheParameterGroupFamily=family, Description="tuned")["CacheParameterGroup"]
        assert (made["CacheParameterGroupName"], made["CacheParameterGroupFamily"]) == (f"tuned-{family}", family)
    found = cache.describe_cache_parameter_groups(CacheParameterGroupName="tuned-valkey8")["CacheParameterGroups"]
    assert [g["CacheParameterGroupFamily"] for g in found] == ["valkey8"]
    names = [g["CacheParameterGroupName"] for g in cache.describe_cache_parameter_groups()["CacheParameterGroups"]]
    assert {"default.valkey8", "default.redis7", "tuned-valkey7"} <= set(names)
    refused(lambda: cache.create_cache_parameter_group(CacheParameterGroupName="x", CacheParameterGroupFamily="valkey9",
                                                       Description="d"), "InvalidParameterValue")
    refused(lambda: cache.create_cache_parameter_group(CacheParameterGroupName="tuned-valkey8",
                                                       CacheParameterGroupFamily="valkey8", Description="d"),
            "CacheParameterGroupAlreadyExists")
    cache.delete_cache_parameter_group(CacheParameterGroupName="tuned-valkey8")
    refused(lambda: cache.describe_cache_parameter_groups(CacheParameterGroupName="tuned-valkey8"),
            "CacheParameterGroupNotFound", 404)
    refused(lambda: cache.delete_cache_parameter_group(CacheParameterGroupName="default.valkey8"),
            "InvalidCacheParameterGroupState")
    # moto itself takes Engine=valkey.
    _, subnets = network(moto.endpoint)
    cache.create_cache_subnet_group(CacheSubnetGroupName="sessions", CacheSubnetGroupDescription="d", SubnetIds=subnets)
    group = cache.create_replication_group(ReplicationGroupId="sessions", ReplicationGroupDescription="d", Engine="valkey",
                                           EngineVersion="8.0", CacheNodeType="cache.t4g.micro", NumCacheClusters=1,
                                           CacheSubnetGroupName="sessions",
                                           CacheParameterGroupName="default.valkey8")["ReplicationGroup"]
    assert group["Engine"] == "valkey"


# -- WAFv2 -------------------------------------------------------------------------------------


def test_list_resources_for_web_acl_names_the_load_balancers_it_protects(moto, aws_proxy):
    _, subnets = network(moto.endpoint)
    elb = client("elbv2", moto.endpoint)
    protected = elb.create_load_balancer(Name="web", Subnets=subnets, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    elb.create_load_balancer(Name="other", Subnets=subnets, Type="application")
    waf = client("wafv2", aws_proxy.endpoint)

    def acl(name: str) -> str:
        return waf.create_web_acl(Name=name, Scope="REGIONAL", DefaultAction={"Allow": {}}, VisibilityConfig={
            "SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": name})["Summary"]["ARN"]

    used, unused = acl("front"), acl("spare")
    waf.associate_web_acl(WebACLArn=used, ResourceArn=protected)
    assert waf.list_resources_for_web_acl(WebACLArn=used)["ResourceArns"] == [protected]
    assert waf.list_resources_for_web_acl(WebACLArn=used, ResourceType="APPLICATION_LOAD_BALANCER")["ResourceArns"] == [protected]
    assert waf.list_resources_for_web_acl(WebACLArn=unused)["ResourceArns"] == []
    assert waf.list_resources_for_web_acl(WebACLArn=used, ResourceType="API_GATEWAY")["ResourceArns"] == []
    gone = used.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    refused(lambda: waf.list_resources_for_web_acl(WebACLArn=gone), "WAFNonexistentItemException", 400)


def test_a_presigned_request_reaches_the_service_its_credential_names(moto, aws_proxy):
    """An EKS token is a presigned STS GetCallerIdentity; EKS replays it to
    STS. AWS routes it by host to STS; moto, without an Authorization
    header, answers as S3. Through the proxy it reaches STS."""
    import urllib.request

    def replay(endpoint: str) -> str:
        url = client("sts", endpoint).generate_presigned_url("get_caller_identity", ExpiresIn=60)
        assert "X-Amz-Credential=" in url and "Authorization" not in url
        with urllib.request.urlopen(urllib.request.Request(url, headers={"x-k8s-aws-id": "idis-x"}), timeout=10) as answer:
            return answer.read().decode()

    assert "<GetCallerIdentityResult>" not in replay(moto.endpoint)
    body = replay(aws_proxy.endpoint)
    assert "<GetCallerIdentityResult>" in body and "<Account>123456789012</Account>" in body, body


# -- EKS: cluster access (authentication mode, access entries) ---------------------------


def test_access_entries_need_the_api_mode_which_only_moves_forward(moto, aws_proxy):
    """CreateAccessConfigRequest: the API's default mode is CONFIG_MAP, where
    access entries are refused; UpdateClusterConfig moves it forward only;
    leaving CONFIG_MAP gives the node group's role its EC2_LINUX entry."""
    eks = client("eks", aws_proxy.endpoint)
    made = eks_cluster(moto.endpoint, eks)
    cluster = eks.describe_cluster(name="shop")["cluster"]
    assert cluster["accessConfig"] == {"authenticationMode": "CONFIG_MAP",
                                       "bootstrapClusterCreatorAdminPermissions": True}
    refused(lambda: eks.list_access_entries(clusterName="shop"), "InvalidRequestException", 400)
    nodes = client("iam", moto.endpoint).create_role(RoleName="shop-nodes", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    eks.create_nodegroup(clusterName="shop", nodegroupName="ng", nodeRole=nodes, subnets=made["subnets"])
    update = eks.update_cluster_config(name="shop", accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})["update"]
    assert update["type"] == "AccessConfigUpdate"
    eks.describe_update(name="shop", updateId=update["id"])
    eks.describe_update(name="shop", updateId=update["id"])
    assert eks.describe_cluster(name="shop")["cluster"]["accessConfig"]["authenticationMode"] == "API_AND_CONFIG_MAP"
    assert eks.list_access_entries(clusterName="shop")["accessEntries"] == [nodes]
    entry = eks.describe_access_entry(clusterName="shop", principalArn=nodes)["accessEntry"]
    assert entry["type"] == "EC2_LINUX" and entry["kubernetesGroups"] == ["system:nodes"]
    message = refused(lambda: eks.update_cluster_config(name="shop", accessConfig={"authenticationMode": "CONFIG_MAP"}),
                      "InvalidParameterException", 400)
    assert "from API_AND_CONFIG_MAP to CONFIG_MAP" in message


def test_access_entries_hold_policies_at_a_scope(moto, aws_proxy):
    eks = client("eks", aws_proxy.endpoint)
    _, subnets = network(moto.endpoint)
    role = client("iam", moto.endpoint).create_role(RoleName="shop-eks", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    eks.create_cluster(name="shop", version="1.31", roleArn=role, resourcesVpcConfig={"subnetIds": subnets},
                       accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    # The creator's bootstrap entry (bootstrapClusterCreatorAdminPermissions defaults to true).
    [creator] = eks.list_access_entries(clusterName="shop")["accessEntries"]
    assert creator == client("sts", moto.endpoint).get_caller_identity()["Arn"]
    admin_policy = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    assert [p["policyArn"] for p in eks.list_associated_access_policies(
        clusterName="shop", principalArn=creator)["associatedAccessPolicies"]] == [admin_policy]

    admins = "arn:aws:iam::123456789012:role/admins"
    entry = eks.create_access_entry(clusterName="shop", principalArn=admins)["accessEntry"]
    assert entry["type"] == "STANDARD"
    assert entry["username"] == "arn:aws:sts::123456789012:assumed-role/admins/{{SessionName}}"
    refused(lambda: eks.create_access_entry(clusterName="shop", principalArn=admins), "ResourceInUseException", 409)
    refused(lambda: eks.create_access_entry(clusterName="shop", principalArn="arn:aws:sts::123456789012:assumed-role/a/b"),
            "InvalidParameterException", 400)
    view = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
    eks.associate_access_policy(clusterName="shop", principalArn=admins, policyArn=view,
                                accessScope={"type": "namespace", "namespaces": ["idis"]})
    eks.associate_access_policy(clusterName="shop", principalArn=admins, policyArn=view, accessScope={"type": "cluster"})
    [held] = eks.list_associated_access_policies(clusterName="shop", principalArn=admins)["associatedAccessPolicies"]
    assert held["policyArn"] == view and held["accessScope"]["type"] == "cluster"
    refused(lambda: eks.associate_access_policy(clusterName="shop", principalArn=admins, policyArn="arn:aws:eks::aws:cluster-access-policy/Root",
                                                accessScope={"type": "cluster"}), "InvalidParameterException", 400)
    assert eks.list_access_entries(clusterName="shop", associatedPolicyArn=view)["accessEntries"] == [admins]
    eks.disassociate_access_policy(clusterName="shop", principalArn=admins, policyArn=view)
    refused(lambda: eks.disassociate_access_policy(clusterName="shop", principalArn=admins, policyArn=view),
            "ResourceNotFoundException", 404)
    eks.delete_access_entry(clusterName="shop", principalArn=admins)
    refused(lambda: eks.describe_access_entry(clusterName="shop", principalArn=admins), "ResourceNotFoundException", 404)


def _cbor_call(endpoint: str, operation: str, body: dict) -> tuple[int, dict, object]:
    """A CloudWatch call in Smithy RPC v2 CBOR, as the Rust SDK makes it."""
    import http.client
    import urllib.parse

    import cbor2

    url = urllib.parse.urlparse(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request("POST", f"/service/GraniteServiceVersion20100801/operation/{operation}",
                           body=cbor2.dumps(body), headers={
                               "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/monitoring/"
                                                "aws4_request, SignedHeaders=host, Signature=0",
                               "smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
                               "Accept": "application/cbor"})
        response = connection.getresponse()
        payload = response.read()
        return response.status, dict(response.getheaders()), cbor2.loads(payload) if payload else None
    finally:
        connection.close()


def test_cloudwatch_answers_in_smithy_rpc_v2_cbor_with_the_models_types(aws_proxy):
    import datetime

    status, headers, answer = _cbor_call(aws_proxy.endpoint, "PutMetricAlarm", {
        "AlarmName": "cbor-cpu", "Namespace": "AWS/RDS", "MetricName": "CPUUtilization", "Statistic": "Average",
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "db-1"}], "Period": 300, "EvaluationPeriods": 3,
        "Threshold": 80, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "missing"})
    assert status == 200 and headers["smithy-protocol"] == "rpc-v2-cbor", (status, headers, answer)
    status, headers, answer = _cbor_call(aws_proxy.endpoint, "DescribeAlarms", {"AlarmNamePrefix": "cbor-"})
    assert status == 200 and headers["Content-Type"] == "application/cbor"
    alarm = answer["MetricAlarms"][0]
    # Typed by the model: a double where it says double (the request said
    # 80), an int where it says integer, a timestamp as tag 1.
    assert isinstance(alarm["Threshold"], float) and alarm["Threshold"] == 80.0
    assert isinstance(alarm["Period"], int) and alarm["Period"] == 300
    assert isinstance(alarm["StateUpdatedTimestamp"], datetime.datetime)
    # boto3 (JSON 1.0, straight to moto) sees the same alarm.
    described = client("cloudwatch", aws_proxy.endpoint).describe_alarms(AlarmNames=["cbor-cpu"])["MetricAlarms"]
    assert described[0]["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": "db-1"}]


def test_cloudwatch_faults_are_cbor_errors_with_the_query_code(proxy_with):
    proxy = proxy_with(throttle_rate=1.0)
    status, headers, answer = _cbor_call(proxy.endpoint, "DescribeAlarms", {})
    assert status == 400 and answer["__type"] == "Throttling", (status, answer)
    assert headers["x-amzn-query-error"] == "Throttling;Sender"


def test_a_trail_needs_a_bucket_policy_and_key_policy_that_let_cloudtrail_deliver_it(aws_proxy):
    """CloudTrail API Reference, CreateTrail errors; CloudTrail User Guide,
    "Amazon S3 bucket policy for CloudTrail" and "Configure AWS KMS key
    policies for CloudTrail"."""
    s3, kms = client("s3", aws_proxy.endpoint), client("kms", aws_proxy.endpoint)
    ct = client("cloudtrail", aws_proxy.endpoint)
    account = client("sts", aws_proxy.endpoint).get_caller_identity()["Account"]
    s3.create_bucket(Bucket="trail-logs")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    trail = f"arn:aws:cloudtrail:{REGION}:{account}:trail/trail-one"

    def create():
        return ct.create_trail(Name="trail-one", S3BucketName="trail-logs", S3KeyPrefix="ct", KmsKeyId=key)

    refused(create, "InsufficientS3BucketPolicyException")
    acl = {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
           "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::trail-logs",
           "Condition": {"StringEquals": {"aws:SourceArn": trail}}}
    write = {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::trail-logs/ct/AWSLogs/{account}/*",
             "Condition": {"StringEquals": {"aws:SourceArn": f"{trail}-other"}}}
    # A statement for another trail does not count.
    s3.put_bucket_policy(Bucket="trail-logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [acl, write]}))
    refused(create, "InsufficientS3BucketPolicyException")
    write["Condition"]["StringEquals"]["aws:SourceArn"] = trail
    s3.put_bucket_policy(Bucket="trail-logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [acl, write]}))
    # The bucket admits it; KMS's default key policy does not let CloudTrail in.
    refused(create, "InsufficientEncryptionPolicyException")
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"].append({"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                "Action": "kms:GenerateDataKey*", "Resource": "*",
                                "Condition": {"StringEquals": {"aws:SourceArn": trail}}})
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    assert create()["TrailARN"] == trail


# -- recovery drills ---------------------------------------------------------------------------


def test_a_point_in_time_restore_is_single_az_unprotected_and_creating_at_first(moto, proxy_with):
    proxy = proxy_with(creating_reads={"rds": 2})
    rds = client("rds", proxy.endpoint)
    postgres(rds, "orders", "16.8", MultiAZ=True, DeletionProtection=True, BackupRetentionPeriod=7)
    rds.describe_db_instances(DBInstanceIdentifier="orders")
    rds.describe_db_instances(DBInstanceIdentifier="orders")  # the source's own creating reads
    made = rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="orders", TargetDBInstanceIdentifier="orders-check",
                                                    UseLatestRestorableTime=True)["DBInstance"]
    assert (made["DBInstanceStatus"], made["MultiAZ"], made["DeletionProtection"]) == ("creating", False, False)
    statuses = [rds.describe_db_instances(DBInstanceIdentifier="orders-check")["DBInstances"][0]["DBInstanceStatus"]
                for _ in range(3)]
    assert statuses == ["creating", "creating", "available"]
    # What AWS holds (moto, directly): deletable without a final snapshot.
    direct = client("rds", moto.endpoint)
    assert direct.describe_db_instances(DBInstanceIdentifier="orders-check")["DBInstances"][0]["MultiAZ"] is False
    direct.delete_db_instance(DBInstanceIdentifier="orders-check", SkipFinalSnapshot=True)
    # Asked for, both are kept.
    kept = rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="orders", TargetDBInstanceIdentifier="orders-copy",
                                                    UseLatestRestorableTime=True, MultiAZ=True, DeletionProtection=True)["DBInstance"]
    assert (kept["MultiAZ"], kept["DeletionProtection"]) == (True, True)


def test_a_forced_failover_needs_multi_az_and_reboots_for_a_while(moto, proxy_with):
    proxy = proxy_with(failover_reads=2)
    rds = client("rds", proxy.endpoint)
    postgres(rds, "single", "16.8")
    postgres(rds, "pair", "16.8", MultiAZ=True)
    message = refused(lambda: rds.reboot_db_instance(DBInstanceIdentifier="single", ForceFailover=True),
                      "InvalidParameterCombination", 400)
    assert "Multi-AZ" in message
    rds.reboot_db_instance(DBInstanceIdentifier="single")  # a plain reboot is fine
    assert rds.reboot_db_instance(DBInstanceIdentifier="pair", ForceFailover=True)["DBInstance"]["DBInstanceStatus"] == "rebooting"
    statuses = [rds.describe_db_instances(DBInstanceIdentifier="pair")["DBInstances"][0]["DBInstanceStatus"] for _ in range(3)]
    assert statuses == ["rebooting", "rebooting", "available"]


def test_test_failover_needs_automatic_failover_and_a_known_node_group(moto, proxy_with):
    proxy = proxy_with(failover_reads=2)
    cache = client("elasticache", proxy.endpoint)
    _, subnets = network(moto.endpoint)
    cache.create_cache_subnet_group(CacheSubnetGroupName="s", CacheSubnetGroupDescription="d", SubnetIds=subnets)
    for name, failover in (("solo", False), ("duo", True)):
        cache.create_replication_group(ReplicationGroupId=name, ReplicationGroupDescription="d", Engine="redis",
                                       CacheNodeType="cache.t4g.micro", NumCacheClusters=2, CacheSubnetGroupName="s",
                                       AutomaticFailoverEnabled=failover, MultiAZEnabled=failover)
    refused(lambda: cache.test_failover(ReplicationGroupId="solo", NodeGroupId="0001"), "InvalidReplicationGroupState", 400)
    refused(lambda: cache.test_failover(ReplicationGroupId="nowhere", NodeGroupId="0001"), "ReplicationGroupNotFoundFault", 404)
    refused(lambda: cache.test_failover(ReplicationGroupId="duo", NodeGroupId="0009"), "NodeGroupNotFoundFault", 404)
    node_group = cache.describe_replication_groups(ReplicationGroupId="duo")["ReplicationGroups"][0]["NodeGroups"][0]["NodeGroupId"]
    assert cache.test_failover(ReplicationGroupId="duo", NodeGroupId=node_group)["ReplicationGroup"]["Status"] == "modifying"
    seen = []
    for _ in range(3):
        group = cache.describe_replication_groups(ReplicationGroupId="duo")["ReplicationGroups"][0]
        seen.append((group["Status"], group["NodeGroups"][0]["Status"]))
    assert seen == [("modifying", "modifying")] * 2 + [("available", "available")]


# One read-only call per service the provider's SDK crates reach (provider/Cargo.toml).
_ONE_CALL = {
    "sts": ("get_caller_identity", {}), "ec2": ("describe_vpcs", {}), "kms": ("list_keys", {}),
    "iam": ("list_roles", {}), "eks": ("list_clusters", {}), "rds": ("describe_db_instances", {}),
    "elasticache": ("describe_replication_groups", {}), "s3": ("list_buckets", {}),
    "wafv2": ("list_web_acls", {"Scope": "REGIONAL"}), "shield": ("list_protections", {}),
    "cloudfront": ("list_distributions", {}), "secretsmanager": ("list_secrets", {}),
    "resourcegroupstaggingapi": ("get_resources", {}), "elbv2": ("describe_load_balancers", {}),
    "sns": ("list_topics", {}), "cloudtrail": ("describe_trails", {}), "logs": ("describe_log_groups", {}),
}


@pytest.mark.parametrize("kind, codes", [
    ("throttle", {"Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown"}),
    ("5xx", {"ServiceUnavailable", "ServiceUnavailableException", "Unavailable"}),
])
def test_injected_faults_are_errors_in_each_services_own_protocol(proxy_with, kind, codes):
    """A fault must read as the service's own throttling or 5xx error, in the
    protocol of its service model (botocore's), so the SDK retries it: an
    XML error from a JSON service is a parse failure, never retried (the
    CloudTrail answer of the failed CI run)."""
    proxy = proxy_with(throttle_rate=1.0) if kind == "throttle" else proxy_with(error_rate=1.0)
    for service, (method, args) in _ONE_CALL.items():
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            getattr(client(service, proxy.endpoint), method)(**args)
        error = caught.value.response["Error"]
        assert error.get("Code") in codes, (service, error)
