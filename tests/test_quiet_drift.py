"""Drift that means something, and teardown that finishes.

What AWS does on its own, as designed, keeps the daily
`terraform plan -refresh-only -detailed-exitcode` at exit 0; a real change
next to it still exits 2 and names the attribute. Each change is made with
boto3 directly against moto, the way AWS (or someone with the console)
would make it. Destroy removes what EKS and the cluster's controllers left
in the VPC, and skips a component someone already deleted by hand.
"""

from __future__ import annotations

import time

import boto3
import botocore.config
import botocore.exceptions
import pytest

from test_environment import ENV, PREFIX, state_of, sweep_after_destroy, tagged

NODE_GROUP = {"clusterName": PREFIX, "nodegroupName": f"{PREFIX}-default"}


def refresh_only(tf):
    return tf.plan("-refresh-only", "-detailed-exitcode", check=False)


def assert_quiet(tf, after: str) -> None:
    """Neither the drift job nor a normal plan sees a change."""
    __tracebackhide__ = True
    drift = refresh_only(tf)
    assert drift.returncode == 0, drift.describe(f"plan -refresh-only -detailed-exitcode after {after}")
    plan = tf.plan("-detailed-exitcode", check=False)
    assert plan.returncode == 0, plan.describe(f"plan -detailed-exitcode after {after}")


def assert_loud(tf, *attributes: str):
    """The drift job exits 2 and names every attribute."""
    __tracebackhide__ = True
    drift = refresh_only(tf)
    assert drift.returncode == 2, drift.describe("plan -refresh-only -detailed-exitcode")
    for attribute in attributes:
        assert attribute in drift.stdout, f"{attribute} not named in the drift report:\n{drift.stdout}"
    return drift


def scaling(aws) -> dict:
    return aws("eks").describe_nodegroup(**NODE_GROUP)["nodegroup"]["scalingConfig"]


# ---------------------------------------------------------------------------
# Quiet drift, and its loud neighbours


def test_the_autoscaler_resizing_the_node_group_within_bounds_is_not_drift(production, aws):
    production.apply()
    assert_quiet(production, "the apply itself")
    eks = aws("eks")

    # The cluster autoscaler scales out to 7 nodes, later back in to 4.
    for size in (7, 4):
        eks.update_nodegroup_config(**NODE_GROUP, scalingConfig={"minSize": 3, "maxSize": 10, "desiredSize": size})
        assert scaling(aws)["desiredSize"] == size
        assert_quiet(production, f"the autoscaler set {size} nodes")

    # Loud neighbour: someone raises the minimum out of band.
    eks.update_nodegroup_config(**NODE_GROUP, scalingConfig={"minSize": 5, "maxSize": 10, "desiredSize": 5})
    drift = assert_loud(production, "node_min_size")
    assert "node_desired_size" not in drift.stdout, "5 nodes is within [3, 10]: the size is not drift"
    production.apply()
    after = scaling(aws)
    assert (after["minSize"], after["maxSize"]) == (3, 10)
    assert after["desiredSize"] == 5, "repairing the minimum leaves the autoscaler's count alone"
    assert_quiet(production, "the repair")

    # Outside the bounds the size is drift, and the plan says why it goes back.
    eks.update_nodegroup_config(**NODE_GROUP, scalingConfig={"minSize": 3, "maxSize": 20, "desiredSize": 15})
    assert_loud(production, "node_desired_size", "node_max_size")
    plan = production.plan("-detailed-exitcode", check=False)
    assert plan.returncode == 2, plan.describe("terraform plan")
    text = " ".join((plan.stdout + plan.stderr).split())
    assert "Node group size outside its bounds" in text, plan.describe("terraform plan")
    assert "runs 15 nodes" in text and "sets it to 10" in text, plan.describe("terraform plan")
    production.apply()
    after = scaling(aws)
    assert (after["minSize"], after["maxSize"], after["desiredSize"]) == (3, 10, 10)
    assert_quiet(production, "the repair")


def test_a_minor_engine_upgrade_by_aws_is_not_drift_but_another_major_is(production, aws):
    production.apply()
    rds = aws("rds")
    db_id = f"{PREFIX}-db"
    recorded = state_of(production)["database_engine_version_actual"]
    assert recorded.split(".")[0] == "16"

    # AWS applies a minor upgrade in the maintenance window (moto 5.2.5
    # keeps the "16" given at create; 16.4 is what AWS would report).
    rds.modify_db_instance(DBInstanceIdentifier=db_id, EngineVersion="16.4", ApplyImmediately=True)
    assert rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]["EngineVersion"] == "16.4"
    assert_quiet(production, "a minor upgrade by AWS")
    # An apply of something else afterwards: the recorded version comes
    # back as planned (no "inconsistent result after apply").
    production.env["TF_VAR_deletion_protection"] = "false"
    production.apply()
    state = state_of(production)
    assert state["database_engine_version_actual"] == recorded
    assert state["database"]["engine_version"] == "16"
    assert_quiet(production, "an apply after a minor upgrade by AWS")

    # Loud neighbour: someone upgrades the major by hand.
    rds.modify_db_instance(DBInstanceIdentifier=db_id, EngineVersion="17.2", ApplyImmediately=True)
    drift = assert_loud(production, "engine_version", "database_engine_version_actual")
    assert '"17.2"' in drift.stdout
    # Going back is a downgrade, which the plan refuses with the way out.
    plan = production.plan(check=False)
    assert plan.returncode == 1, plan.describe("terraform plan")
    assert "cannot be downgraded" in " ".join(plan.stderr.split())


def test_tags_aws_puts_on_the_vpc_are_not_drift_but_a_changed_user_tag_is(production, aws):
    main = production.workdir / "main.tf"
    main.write_text(
        main.read_text().replace(
            "  deletion_protection = var.deletion_protection\n",
            '  deletion_protection = var.deletion_protection\n  tags                = { cost-center = "idis-platform" }\n',
        )
    )
    production.apply()
    ec2 = aws("ec2")
    vpc = state_of(production)["vpc_id"]

    # Tags AWS manages (aws:*; only AWS can set them, moto lets boto3
    # play AWS), and the cluster tag EKS and Kubernetes tooling put on a
    # cluster's VPC.
    ec2.create_tags(
        Resources=[vpc],
        Tags=[
            {"Key": "aws:cloudformation:stack-name", "Value": "shared-networking"},
            {"Key": f"kubernetes.io/cluster/{PREFIX}", "Value": "shared"},
        ],
    )
    assert_quiet(production, "AWS-managed and EKS tags on the VPC")

    # Loud neighbour: someone changes the user's own tag.
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "cost-center", "Value": "someone-else"}])
    assert_loud(production, "tags", "cost-center", "someone-else")
    production.apply()
    tags = {t["Key"]: t["Value"] for t in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"]}
    assert tags["cost-center"] == "idis-platform"
    assert_quiet(production, "the repair")


# ---------------------------------------------------------------------------
# Teardown that finishes


def cluster_tagged(aws) -> list[str]:
    """ARNs the tagging API finds with any tag EKS or the controllers use for the cluster."""
    found = []
    client = aws("resourcegroupstaggingapi")
    for tag_filter in (
        {"Key": f"kubernetes.io/cluster/{PREFIX}"},
        {"Key": "aws:eks:cluster-name", "Values": [PREFIX]},
        {"Key": "elbv2.k8s.aws/cluster", "Values": [PREFIX]},
        {"Key": "cluster.k8s.amazonaws.com/name", "Values": [PREFIX]},
    ):
        for page in client.get_paginator("get_resources").paginate(TagFilters=[tag_filter]):
            found.extend(r["ResourceARN"] for r in page["ResourceTagMappingList"])
    return sorted(set(found))


def spec(kind: str, tags: dict[str, str]) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def leave_what_eks_and_the_ingress_controller_leave(aws, state: dict) -> dict[str, list[str]]:
    """Makes in the environment's VPC what EKS, the AWS Load Balancer
    Controller and the VPC CNI make for cluster idis-production, and what
    they leave once the cluster is gone."""
    ec2, elb = aws("ec2"), aws("elbv2")
    vpc = state["vpc_id"]

    def group(name: str, tags: dict[str, str]) -> str:
        return ec2.create_security_group(
            GroupName=name, Description=f"{name} (made outside the provider)", VpcId=vpc,
            TagSpecifications=spec("security-group", tags),
        )["GroupId"]

    def allow(group_id: str, source: str) -> None:
        ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": source}]}]
        )

    # EKS: the cluster security group, open to itself.
    eks_group = group(f"eks-cluster-sg-{PREFIX}-1234567890",
                      {"aws:eks:cluster-name": PREFIX, f"kubernetes.io/cluster/{PREFIX}": "owned"})
    allow(eks_group, eks_group)
    # The AWS Load Balancer Controller: frontend and backend groups, the
    # nodes' group open to the backend group, an internet-facing ALB with a
    # listener and a target group for an Ingress.
    controller = {"elbv2.k8s.aws/cluster": PREFIX, "ingress.k8s.aws/stack": "default/web"}
    frontend = group("k8s-default-web-0a1b2c3d4e", controller)
    backend = group("k8s-traffic-idisproduction-5f6a7b8c9d", {"elbv2.k8s.aws/cluster": PREFIX, "elbv2.k8s.aws/resource": "backend-sg"})
    allow(eks_group, backend)
    elb_tags = [{"Key": k, "Value": v} for k, v in controller.items()]
    lb = elb.create_load_balancer(
        Name="k8s-default-web-0a1b2c3d4e", Subnets=state["public_subnet_ids"],
        SecurityGroups=[frontend, backend], Scheme="internet-facing", Type="application", Tags=elb_tags,
    )["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(
        Name="k8s-default-web-80-1a2b3c", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip", Tags=elb_tags,
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    # The VPC CNI: an interface for pods of a node that is gone.
    eni = ec2.create_network_interface(
        SubnetId=state["private_subnet_ids"][0], Groups=[eks_group], Description="aws-K8S-i-0123456789abcdef0",
        TagSpecifications=spec("network-interface", {
            "cluster.k8s.amazonaws.com/name": PREFIX,
            "node.k8s.amazonaws.com/instance_id": "i-0123456789abcdef0",
        }),
    )["NetworkInterface"]["NetworkInterfaceId"]
    return {"security groups": [eks_group, frontend, backend], "load balancers": [lb],
            "target groups": [tg], "network interfaces": [eni]}


def proxied(service: str, endpoint: str):
    """boto3 on the proxy: AWS as the provider sees it."""
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        service, region_name="us-east-1", endpoint_url=endpoint,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def test_destroy_removes_what_eks_and_the_ingress_controller_left_in_the_vpc(production, aws, aws_proxy):
    production.apply("-var", "deletion_protection=false")
    state = state_of(production)
    bucket = state["audit_bucket_name"]
    made = leave_what_eks_and_the_ingress_controller_leave(aws, state)
    seen = cluster_tagged(aws)
    assert {arn.split(":")[2] for arn in seen} == {"ec2", "elasticloadbalancing"}, seen
    print(f"tagged for the cluster before destroy: {len(seen)}")
    # As on AWS: while the load balancer and the interface are in them, the
    # subnets cannot go (the proxy refuses as AWS does; moto alone would not).
    with pytest.raises(botocore.exceptions.ClientError, match="DependencyViolation"):
        proxied("ec2", aws_proxy.endpoint).delete_subnet(SubnetId=state["public_subnet_ids"][0])

    # Someone asked for deletion protection on the load balancer: destroy
    # refuses before it deletes anything, and names it.
    elb = aws("elbv2")
    lb = made["load balancers"][0]
    protection = lambda on: elb.modify_load_balancer_attributes(  # noqa: E731
        LoadBalancerArn=lb, Attributes=[{"Key": "deletion_protection.enabled", "Value": str(on).lower()}])
    protection(True)
    before = sorted(tagged(aws))
    refused = production.destroy("-var", "deletion_protection=false", check=False)
    assert refused.returncode == 1, refused.describe("terraform destroy")
    flat = " ".join(refused.stderr.split())
    assert "deletion protection" in flat and lb in flat, refused.describe("terraform destroy")
    assert sorted(tagged(aws)) == before, "a refused destroy deleted something"
    protection(False)

    started = time.monotonic()
    production.destroy("-var", "deletion_protection=false", timeout=300)
    print(f"destroy with EKS and controller leftovers took {time.monotonic() - started:.1f} s")

    ec2 = aws("ec2")
    assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [state["vpc_id"]]}])["Vpcs"]
    for group_id in made["security groups"]:
        assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroups"], group_id
    for eni in made["network interfaces"]:
        assert not ec2.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": [eni]}])["NetworkInterfaces"], eni
    assert not ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [state["vpc_id"]]}])["SecurityGroups"]
    assert not ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [state["vpc_id"]]}])["Subnets"]
    assert not [lb for lb in elb.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerArn"] in made["load balancers"]]
    assert not [tg for tg in elb.describe_target_groups()["TargetGroups"] if tg["TargetGroupArn"] in made["target groups"]]
    assert cluster_tagged(aws) == [], "nothing tagged for the cluster is left"
    kept, leftovers = sweep_after_destroy(aws, aws_proxy, bucket)
    assert leftovers == [], f"tagged leftovers after destroy: {leftovers}"
    print(f"deletions the proxy refused with DependencyViolation: {aws_proxy.refused}")


def test_destroy_after_the_cache_was_deleted_by_hand_skips_it_promptly(production, aws, aws_proxy):
    production.apply("-var", "deletion_protection=false")
    bucket = state_of(production)["audit_bucket_name"]
    group_id = f"{PREFIX}-cache"
    # Someone deletes the cache by hand. Through the proxy, which finishes
    # the deletion as AWS does (moto alone keeps the group "deleting").
    by_hand = proxied("elasticache", aws_proxy.endpoint)
    by_hand.delete_replication_group(ReplicationGroupId=group_id, RetainPrimaryCluster=False)
    with pytest.raises(botocore.exceptions.ClientError, match="ReplicationGroupNotFound"):
        by_hand.describe_replication_groups(ReplicationGroupId=group_id)

    # At the production poll interval (5 s): any wait would show.
    production.env.pop("IDIS_POLL_INTERVAL_MS", None)
    describes_before = aws_proxy.counters.by_action.get("DescribeReplicationGroups", 0)
    started = time.monotonic()
    production.destroy("-var", "deletion_protection=false")
    took = time.monotonic() - started
    describes = aws_proxy.counters.by_action.get("DescribeReplicationGroups", 0) - describes_before
    print(f"destroy after the cache was deleted by hand took {took:.1f} s ({describes} DescribeReplicationGroups calls)")

    # Read twice by the refresh before destroy (the cache, and monitoring's
    # reading of its log delivery) and once by the delete: no polling.
    # (The count proves it, not the time printed above: tests run two at a
    # time on two cores.)
    assert describes <= 3, describes
    assert not aws("ec2").describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"]
    assert PREFIX not in aws("eks").list_clusters()["clusters"]
    kept, leftovers = sweep_after_destroy(aws, aws_proxy, bucket)
    assert leftovers == [], f"tagged leftovers after destroy: {leftovers}"
    assert tagged(aws), "the kept bucket and keys are still found"


def test_what_others_rightly_add_to_the_environment_is_not_drift(production, aws):
    """Guards judge what the provider makes, not everything near it: a VPC
    gateway endpoint's routes in the private route tables, a tag someone
    adds to a subnet, a log-delivery statement in the bucket policy keep the
    drift job at exit 0. A public statement beside it is drift."""
    production.apply()
    ec2, s3 = aws("ec2"), aws("s3")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"][0]["VpcId"]
    private_tables = [t["RouteTableId"] for t in ec2.describe_route_tables(
        Filters=[{"Name": "tag:Name", "Values": [f"{PREFIX}-private-*"]}])["RouteTables"]]
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3",
                            VpcEndpointType="Gateway", RouteTableIds=private_tables)
    routes = ec2.describe_route_tables(RouteTableIds=private_tables[:1])["RouteTables"][0]["Routes"]
    assert any(r.get("DestinationPrefixListId") for r in routes), routes
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": [f"{PREFIX}-public-us-east-1a"]}])["Subnets"][0]
    ec2.create_tags(Resources=[subnet["SubnetId"]], Tags=[{"Key": "kubernetes.io/role/elb", "Value": "1"}])
    bucket = state_of(production)["audit_bucket_name"]
    import json
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    policy["Statement"].append({"Sid": "LogDelivery", "Effect": "Allow",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                                "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/logs/*"})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert_quiet(production, "an S3 gateway endpoint, a subnet tag and a log-delivery statement")

    # Loud neighbour: a statement that lets everyone in.
    policy["Statement"].append({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                                "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    drift = assert_loud(production, "bucket_policy", "statement PublicRead allows s3:GetObject to everyone")
    production.apply()
    kept = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    # The provider's own statements (TLS only, CloudTrail's delivery) and the
    # neighbour's log delivery stay; only the public statement went.
    assert sorted(s.get("Sid") for s in kept) == [
        "AWSCloudTrailAclCheck", "AWSCloudTrailWrite", "DenyInsecureTransport", "LogDelivery"], kept
    assert_quiet(production, "the repair")
