"""Monitoring (issue 16): the alarm topic every alarm notifies, and who it
notifies.

examples/production with alarm e-mail addresses and a webhook given to the
module, applied through the proxy; AWS is checked with boto3 directly
against moto, never through the provider's own reading.
"""

from __future__ import annotations

import json
import time

from conftest import Terraform, example_with_module
from test_environment import ENV, PREFIX, state_of

EMAILS = ["oncall@example.com", "platform-team@example.com"]
WEBHOOK = "https://hooks.example.com/sns/idis"

MONITORING_INPUTS = f"""
  alarm_emails   = {json.dumps(EMAILS)}
  alarm_webhooks = ["{WEBHOOK}"]
"""


def monitored(tmp_path, terraform_rc, aws_proxy, inputs: str = MONITORING_INPUTS) -> Terraform:
    """examples/production with `inputs` added to the module call, initialised."""
    tf = example_with_module(tmp_path / "repo", "production", terraform_rc, aws_proxy.endpoint)
    main = tf.workdir / "main.tf"
    text = main.read_text()
    assert "  # Beyond the contract\n" in text
    main.write_text(text.replace("  # Beyond the contract\n", "  # Beyond the contract\n" + inputs, 1))
    tf.init()
    return tf


def set_inputs(tf: Terraform, inputs: str) -> None:
    """Replaces the monitoring inputs of the module call with `inputs`."""
    main = tf.workdir / "main.tf"
    text = main.read_text()
    start = text.index("  # Beyond the contract\n") + len("  # Beyond the contract\n")
    end = text.index("  tenants ")
    main.write_text(text[:start] + inputs + text[end:])


def topic_arn(aws) -> str:
    account = aws("sts").get_caller_identity()["Account"]
    return f"arn:aws:sns:us-east-1:{account}:{PREFIX}-alarms"


def subscriptions(aws) -> set[tuple[str, str]]:
    sns = aws("sns")
    return {(s["Protocol"], s["Endpoint"])
            for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn(aws))["Subscriptions"]}


def platform_key_arn(aws) -> str:
    return aws("kms").describe_key(KeyId=f"alias/idis/{ENV}/platform")["KeyMetadata"]["Arn"]


def _statements(doc: dict) -> list[dict]:
    statements = doc["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _list(v) -> list:
    return v if isinstance(v, list) else [v]


def test_the_alarm_topic_is_encrypted_notifies_the_subscribers_and_is_read_back(tmp_path, terraform_rc, moto,
                                                                                aws_proxy, aws):
    moto.reset()
    tf = monitored(tmp_path, terraform_rc, aws_proxy)
    started = time.monotonic()
    tf.apply()
    print(f"apply: {time.monotonic() - started:.1f} s")
    sns, kms = aws("sns"), aws("kms")
    arn = topic_arn(aws)
    assert state_of(tf)["alarm_topic_arn"] == arn

    # The topic, encrypted with the platform key, tagged as the provider's.
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["KmsMasterKeyId"] == platform_key_arn(aws)
    tags = {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=arn)["Tags"]}
    assert tags["idis:environment"] == ENV and tags["idis:component"] == "monitoring"
    assert tags["managed-by"] == "terraform-provider-idis"

    # CloudWatch may use the platform key (else it cannot publish to the
    # encrypted topic); tenant keys keep KMS's default policy.
    policy = json.loads(kms.get_key_policy(KeyId=platform_key_arn(aws), PolicyName="default")["Policy"])
    cloudwatch = [s for s in _statements(policy)
                  if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"]
    assert len(cloudwatch) == 1 and cloudwatch[0]["Effect"] == "Allow"
    assert sorted(_list(cloudwatch[0]["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    acme = kms.describe_key(KeyId=f"alias/idis/{ENV}/acme")["KeyMetadata"]["KeyId"]
    assert len(_statements(json.loads(kms.get_key_policy(KeyId=acme, PolicyName="default")["Policy"]))) == 1

    # Exactly the subscriptions asked for.
    assert subscriptions(aws) == {("email", e) for e in EMAILS} | {("https", WEBHOOK)}

    clean = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan -refresh-only right after apply")

    # Out of band: an address unsubscribed, a stranger subscribed, the
    # topic's encryption removed. Each shows; apply puts it back.
    gone = next(s for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
                if s["Endpoint"] == EMAILS[1])
    sns.unsubscribe(SubscriptionArn=gone["SubscriptionArn"])
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="stranger@example.net")
    sns.set_topic_attributes(TopicArn=arn, AttributeName="KmsMasterKeyId", AttributeValue="")
    drift = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("plan -refresh-only after the out-of-band changes")
    assert "stranger@example.net" in drift.stdout and EMAILS[1] in drift.stdout
    assert "alarm_emails" in drift.stdout
    assert '"alarm_topic"' in drift.stdout
    assert "monitoring: alarm_topic changed outside Terraform" in drift.stdout + drift.stderr
    tf.apply()
    assert subscriptions(aws) == {("email", e) for e in EMAILS} | {("https", WEBHOOK)}
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["KmsMasterKeyId"] == platform_key_arn(aws)
    again = tf.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("plan after the repair")

    # The configuration changes: one address left, no webhook.
    set_inputs(tf, f'  alarm_emails = ["{EMAILS[0]}"]\n')
    tf.apply()
    assert subscriptions(aws) == {("email", EMAILS[0])}
    final = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert final.returncode == 0, final.describe("plan -refresh-only after the change")


# ---------------------------------------------------------------- alarms

ALARM_INPUTS = MONITORING_INPUTS + """
  db_read_replicas  = 1
  alarm_thresholds  = { database_cpu_percent = 75 }
"""


def alarms_of(aws) -> dict[str, dict]:
    cw = aws("cloudwatch")
    found = {}
    for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{PREFIX}-"):
        for alarm in page["MetricAlarms"]:
            found[alarm["AlarmName"]] = alarm
    return found


def dims(alarm: dict) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def expected_alarms(aws, replicas: list[str]) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Alarm name -> (namespace, metric, dimensions), from what boto3 finds
    of the environment in moto."""
    ec2, cloudfront, waf = aws("ec2"), aws("cloudfront"), aws("wafv2")
    want = {}
    for db in [f"{PREFIX}-db", *replicas]:
        for what, metric in [("cpu", "CPUUtilization"), ("free-storage", "FreeStorageSpace"),
                             ("freeable-memory", "FreeableMemory"), ("connections", "DatabaseConnections")]:
            want[f"{db}-{what}"] = ("AWS/RDS", metric, {"DBInstanceIdentifier": db})
    for replica in replicas:
        want[f"{replica}-lag"] = ("AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": replica})
    group = aws("elasticache").describe_replication_groups(ReplicationGroupId=f"{PREFIX}-cache")["ReplicationGroups"][0]
    # ElastiCache names the member clusters <group>-001, ...; moto lists
    # none, so the count is the module's cache_node_count (2).
    members = group.get("MemberClusters") or [f"{PREFIX}-cache-{i:03}" for i in (1, 2)]
    for i in range(1, len(members) + 1):
        node = f"{PREFIX}-cache-{i:03}"
        for what, metric in [("engine-cpu", "EngineCPUUtilization"), ("memory", "DatabaseMemoryUsagePercentage"),
                             ("evictions", "Evictions"), ("replication-lag", "ReplicationLag"),
                             ("connections", "CurrConnections")]:
            want[f"{node}-{what}"] = ("AWS/ElastiCache", metric, {"CacheClusterId": node})
    acl = next(a for a in waf.list_web_acls(Scope="REGIONAL")["WebACLs"] if a["Name"].startswith(PREFIX))
    metric_name = waf.get_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"])["WebACL"]["VisibilityConfig"]["MetricName"]
    want[f"{PREFIX}-waf-blocked-requests"] = ("AWS/WAFV2", "BlockedRequests",
                                              {"WebACL": metric_name, "Region": "us-east-1", "Rule": "ALL"})
    distributions = [d for d in cloudfront.list_distributions()["DistributionList"].get("Items", [])
                     if any(o["DomainName"] == "api.production.idis.example.com" for o in d["Origins"]["Items"])]
    assert len(distributions) == 1
    want[f"{PREFIX}-cdn-5xx-rate"] = ("AWS/CloudFront", "5xxErrorRate",
                                      {"DistributionId": distributions[0]["Id"], "Region": "Global"})
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"][0]["VpcId"]
    nats = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                              {"Name": "state", "Values": ["available"]}])["NatGateways"]
    assert len(nats) == 3
    want["__nats__"] = ("AWS/NATGateway", "ErrorPortAllocation", {n["NatGatewayId"]: "" for n in nats})
    return want


def check_alarms(aws, replicas: list[str], cpu_threshold: float) -> dict[str, dict]:
    """Every alarm the environment should have exists, watching this
    environment's resources and notifying the topic; nothing else of ours."""
    __tracebackhide__ = True
    found = alarms_of(aws)
    want = expected_alarms(aws, replicas)
    nats = want.pop("__nats__")
    nat_alarms = {n: a for n, a in found.items() if "-nat-" in n}
    assert sorted(dims(a)["NatGatewayId"] for a in nat_alarms.values()) == sorted(nats[2])
    assert all(a["MetricName"] == "ErrorPortAllocation" and a["Namespace"] == "AWS/NATGateway"
               for a in nat_alarms.values())
    others = {n: a for n, a in found.items() if n not in nat_alarms}
    assert sorted(others) == sorted(want), f"alarms differ:\n{sorted(set(others) ^ set(want))}"
    topic = topic_arn(aws)
    for name, alarm in found.items():
        if name in want:
            namespace, metric, dimensions = want[name]
            assert (alarm["Namespace"], alarm["MetricName"], dims(alarm)) == (namespace, metric, dimensions), name
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic], name
        assert alarm["ActionsEnabled"] is True, name
        assert alarm["TreatMissingData"] in ("breaching", "notBreaching", "missing"), name
    assert found[f"{PREFIX}-db-cpu"]["Threshold"] == cpu_threshold
    for replica in replicas:
        lag = found[f"{replica}-lag"]
        assert (lag["Threshold"], lag["ComparisonOperator"], lag["TreatMissingData"]) == (
            5.0, "GreaterThanThreshold", "breaching")
    storage = found[f"{PREFIX}-db-free-storage"]
    allocated = aws("rds").describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]["AllocatedStorage"]
    assert storage["Threshold"] == allocated * 1024 ** 3 * 0.10 and storage["ComparisonOperator"] == "LessThanThreshold"
    return found


def test_alarms_watch_what_breaks_production_follow_the_replicas_and_are_read_back(tmp_path, terraform_rc, moto,
                                                                                 aws_proxy, aws):
    moto.reset()
    tf = monitored(tmp_path, terraform_rc, aws_proxy, ALARM_INPUTS)
    started = time.monotonic()
    tf.apply()
    print(f"apply: {time.monotonic() - started:.1f} s")
    found = check_alarms(aws, [f"{PREFIX}-db-replica-1"], 75.0)
    print(f"{len(found)} alarms")
    clean = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan -refresh-only right after apply")

    # Out of band: the replica's lag alarm deleted, the CPU alarm's
    # threshold raised. Both show; apply puts both back.
    cw = aws("cloudwatch")
    cw.delete_alarms(AlarmNames=[f"{PREFIX}-db-replica-1-lag"])
    cpu = found[f"{PREFIX}-db-cpu"]
    cw.put_metric_alarm(AlarmName=cpu["AlarmName"], AlarmDescription=cpu["AlarmDescription"],
                        Namespace=cpu["Namespace"], MetricName=cpu["MetricName"], Statistic=cpu["Statistic"],
                        Dimensions=cpu["Dimensions"], Period=cpu["Period"],
                        EvaluationPeriods=cpu["EvaluationPeriods"], Threshold=95.0,
                        ComparisonOperator=cpu["ComparisonOperator"], TreatMissingData=cpu["TreatMissingData"],
                        AlarmActions=cpu["AlarmActions"], OKActions=cpu["OKActions"])
    drift = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("plan -refresh-only after the alarms were changed")
    assert '"alarms"' in drift.stdout
    warnings = drift.stdout + drift.stderr
    assert "monitoring: alarms changed outside Terraform" in warnings
    assert f"{PREFIX}-db-replica-1-lag is missing" in " ".join(warnings.split())
    assert "95" in warnings
    tf.apply()
    check_alarms(aws, [f"{PREFIX}-db-replica-1"], 75.0)
    again = tf.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("plan after the repair")

    # A replica added gets its alarms in the same apply; removed, it loses them.
    text = (tf.workdir / "main.tf").read_text()
    (tf.workdir / "main.tf").write_text(text.replace("db_read_replicas  = 1", "db_read_replicas  = 2"))
    started = time.monotonic()
    tf.apply()
    print(f"apply with a second replica: {time.monotonic() - started:.1f} s")
    check_alarms(aws, [f"{PREFIX}-db-replica-1", f"{PREFIX}-db-replica-2"], 75.0)
    text = (tf.workdir / "main.tf").read_text()
    (tf.workdir / "main.tf").write_text(text.replace("db_read_replicas  = 2", "db_read_replicas  = 0"))
    started = time.monotonic()
    tf.apply()
    print(f"apply without replicas: {time.monotonic() - started:.1f} s")
    check_alarms(aws, [], 75.0)
    final = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert final.returncode == 0, final.describe("plan -refresh-only after the replicas were removed")
