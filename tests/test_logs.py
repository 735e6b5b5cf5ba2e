"""Logs kept and encrypted (issue 16 part 3, issue 15's control-plane
logs): every writer of the environment has its CloudWatch Logs group,
encrypted with the platform key and kept `log_retention_days`, and is
pointed at it.

examples/production applied through the proxy. AWS is checked with boto3
directly against moto; the two things moto 5.2.5 does not keep (a log
group's key changed by AssociateKmsKey/DisassociateKmsKey, and
ElastiCache's log delivery) are emulated by tests/awsproxy.py as AWS
documents them and are read through the proxy, as the provider reads them.
"""

from __future__ import annotations

import json

import boto3
import pytest

from conftest import Terraform, example_with_module
from test_environment import PREFIX
from test_monitoring import platform_key_arn

RETENTION = 30


def production(tmp_path, terraform_rc, aws_proxy, inputs: str) -> Terraform:
    tf = example_with_module(tmp_path / "repo", "production", terraform_rc, aws_proxy.endpoint)
    main = tf.workdir / "main.tf"
    text = main.read_text()
    assert "  # Beyond the contract\n" in text
    main.write_text(text.replace("  # Beyond the contract\n", "  # Beyond the contract\n" + inputs, 1))
    tf.init()
    return tf


def through_proxy(aws_proxy, service: str):
    return boto3.client(service, region_name="us-east-1", endpoint_url=aws_proxy.endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def groups(logs) -> dict[str, dict]:
    found = {}
    for prefix in ("/aws/eks/", "/aws/rds/", "/aws/elasticache/", "/aws/vpc/"):
        for g in logs.describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]:
            found[g["logGroupName"]] = g
    return found


WANTED_GROUPS = {
    f"/aws/eks/{PREFIX}/cluster",
    f"/aws/rds/instance/{PREFIX}-db/postgresql",
    f"/aws/rds/instance/{PREFIX}-db/upgrade",
    f"/aws/elasticache/{PREFIX}-cache/slow-log",
    f"/aws/elasticache/{PREFIX}-cache/engine-log",
    f"/aws/vpc/{PREFIX}/flow-logs",
}


def vpc_id(aws) -> str:
    vpcs = aws("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [PREFIX]}])["Vpcs"]
    assert len(vpcs) == 1
    return vpcs[0]["VpcId"]


def flow_logs(aws) -> list[dict]:
    return aws("ec2").describe_flow_logs(
        Filters=[{"Name": "log-group-name", "Values": [f"/aws/vpc/{PREFIX}/flow-logs"]}])["FlowLogs"]


@pytest.mark.both_clis
def test_every_writer_logs_to_its_own_encrypted_group_kept_as_asked_and_drift_is_repaired(
        tmp_path, terraform_rc, moto, aws_proxy, aws):
    moto.reset()
    tf = production(tmp_path, terraform_rc, aws_proxy, f"  log_retention_days = {RETENTION}\n")
    tf.apply()
    key = platform_key_arn(aws)
    iam, logs = aws("iam"), aws("logs")

    # Every group, kept RETENTION days, encrypted with the platform key.
    found = groups(logs)
    assert set(found) == WANTED_GROUPS
    for name, g in found.items():
        assert g.get("retentionInDays") == RETENTION, name
        assert g.get("kmsKeyId") == key, name

    # The platform key lets CloudWatch Logs use it for this account's and
    # region's log groups only.
    policy = json.loads(aws("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    account = aws("sts").get_caller_identity()["Account"]
    statements = [s for s in policy["Statement"]
                  if s.get("Principal", {}).get("Service") == "logs.us-east-1.amazonaws.com"]
    assert len(statements) == 1
    assert "kms:GenerateDataKey*" in statements[0]["Action"] and "kms:Decrypt*" in statements[0]["Action"]
    assert statements[0]["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:{account}:log-group:*"}}

    # The control plane logs api, audit and authenticator.
    cluster = aws("eks").describe_cluster(name=PREFIX)["cluster"]
    enabled = {t for s in cluster["logging"]["clusterLogging"] if s.get("enabled") for t in s["types"]}
    assert {"api", "audit", "authenticator"} <= enabled

    # The primary exports both logs, has Performance Insights with the
    # platform key and Enhanced Monitoring through its role.
    db = aws("rds").describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert sorted(db["EnabledCloudwatchLogsExports"]) == ["postgresql", "upgrade"]
    assert db["MonitoringInterval"] == 60
    role = iam.get_role(RoleName=f"{PREFIX}-rds-monitoring")["Role"]
    assert db["MonitoringRoleArn"] == role["Arn"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"]["Service"] for s in trust["Statement"]] == ["monitoring.rds.amazonaws.com"]
    attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]]
    assert attached == ["arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"]
    # Performance Insights is on with the platform key, kept 7 days (moto
    # drops all three at create: the proxy reports what was asked).
    db_seen = through_proxy(aws_proxy, "rds").describe_db_instances(
        DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert db_seen["PerformanceInsightsEnabled"] is True
    assert db_seen["PerformanceInsightsKMSKeyId"] == key
    assert db_seen["PerformanceInsightsRetentionPeriod"] == 7
    [create] = aws_proxy.requests("rds", "CreateDBInstance")
    assert (create["EnablePerformanceInsights"], create["PerformanceInsightsKMSKeyId"]) == ("true", key)

    # The replication group delivers its slow and engine logs as JSON
    # (emulated by the proxy: read through it).
    group = through_proxy(aws_proxy, "elasticache").describe_replication_groups(
        ReplicationGroupId=f"{PREFIX}-cache")["ReplicationGroups"][0]
    deliveries = {d["LogType"]: d for d in group["LogDeliveryConfigurations"]}
    assert set(deliveries) == {"slow-log", "engine-log"}
    for log_type, d in deliveries.items():
        assert d["DestinationType"] == "cloudwatch-logs" and d["LogFormat"] == "json"
        assert d["DestinationDetails"]["CloudWatchLogsDetails"]["LogGroup"] == \
            f"/aws/elasticache/{PREFIX}-cache/{log_type}"
    asked = aws_proxy.requests("elasticache", "ModifyReplicationGroup")
    assert any("LogDeliveryConfigurations.LogDeliveryConfigurationRequest.1.LogType" in r for r in asked)

    # The VPC's flow log: active, all traffic, to its group, through its role.
    vpc = vpc_id(aws)
    [flow] = flow_logs(aws)
    flow_role = iam.get_role(RoleName=f"{PREFIX}-flow-logs")["Role"]
    assert (flow["ResourceId"], flow["TrafficType"], flow["FlowLogStatus"]) == (vpc, "ALL", "ACTIVE")
    assert flow["DeliverLogsPermissionArn"] == flow_role["Arn"]
    trust = flow_role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"]["Service"] for s in trust["Statement"]] == ["vpc-flow-logs.amazonaws.com"]
    doc = iam.get_role_policy(RoleName=flow_role["RoleName"], PolicyName="deliver-flow-logs")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert sorted(doc["Statement"][0]["Action"]) == sorted([
        "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
        "logs:DescribeLogGroups", "logs:DescribeLogStreams"])

    # Each group was made before its writer was turned on.
    # (EKS is a REST API: the proxy records CreateCluster as its path,
    # `POST /clusters`, the only call to that path the provider makes.)
    order = ["CreateCluster" if (c.service, c.action) == ("eks", "/clusters") else c.action
             for c in aws_proxy.calls
             if (c.service, c.action) in {("logs", "CreateLogGroup"), ("eks", "/clusters"),
                                           ("ec2", "CreateFlowLogs"), ("elasticache", "ModifyReplicationGroup")}]
    assert order.count("CreateCluster") == 1, order
    assert order.index("CreateLogGroup") < order.index("CreateCluster")
    assert order.count("CreateLogGroup") == 6
    last_group = len(order) - 1 - order[::-1].index("CreateLogGroup")
    assert last_group < order.index("CreateFlowLogs")
    assert last_group < order.index("ModifyReplicationGroup")

    clean = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan -refresh-only right after apply")

    # Out of band: one group keeps logs 7 days, the flow log is deleted,
    # one group's key is taken away (through the proxy, which emulates it).
    eks_group = f"/aws/eks/{PREFIX}/cluster"
    logs.put_retention_policy(logGroupName=eks_group, retentionInDays=7)
    aws("ec2").delete_flow_logs(FlowLogIds=[flow["FlowLogId"]])
    slow = f"/aws/elasticache/{PREFIX}-cache/slow-log"
    through_proxy(aws_proxy, "logs").disassociate_kms_key(logGroupName=slow)
    drift = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("plan -refresh-only after the out-of-band changes")
    out = drift.stdout
    assert f"log group {eks_group} keeps logs 7 days, not {RETENTION}" in out, out
    assert f"log group {slow} is not encrypted" in out, out
    assert f"VPC {vpc} has no flow log to /aws/vpc/{PREFIX}/flow-logs" in out, out

    tf.apply()
    assert groups(logs)[eks_group]["retentionInDays"] == RETENTION
    assert groups(through_proxy(aws_proxy, "logs"))[slow]["kmsKeyId"] == key
    [flow] = flow_logs(aws)
    assert (flow["ResourceId"], flow["FlowLogStatus"], flow["DeliverLogsPermissionArn"]) == \
        (vpc, "ACTIVE", flow_role["Arn"])
    again = tf.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("plan after the repair")

    # The retention changes in the configuration: every group follows.
    main = tf.workdir / "main.tf"
    main.write_text(main.read_text().replace(f"log_retention_days = {RETENTION}", "log_retention_days = 365"))
    tf.apply()
    assert {g["retentionInDays"] for g in groups(logs).values()} == {365}

    # Destroy leaves no group, flow log or role behind.
    tf.apply("-var", "deletion_protection=false")
    tf.destroy("-var", "deletion_protection=false")
    assert groups(logs) == {}
    assert flow_logs(aws) == []
    for name in (f"{PREFIX}-rds-monitoring", f"{PREFIX}-flow-logs"):
        assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"] == name]


@pytest.mark.both_clis
def test_a_retention_cloudwatch_logs_does_not_offer_is_refused_at_plan(tmp_path, terraform_rc, aws_proxy):
    tf = production(tmp_path, terraform_rc, aws_proxy, "  log_retention_days = 45\n")
    result = tf.plan(check=False)
    assert result.returncode == 1, result.describe("plan with log_retention_days = 45")
    text = " ".join((result.stdout + result.stderr).split())
    assert "log_retention_days" in text and "45" in text, text
    assert "1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653" \
        in text, text
