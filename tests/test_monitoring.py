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
