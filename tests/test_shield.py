"""DDoS protection needs a Shield Advanced subscription, which AWS checks
only when the protection is made, after everything else: the plan checks
it first (`DescribeSubscription`) and refuses before anything is built."""

from __future__ import annotations

from test_environment import ENV


def test_ddos_protection_without_a_subscription_is_refused_at_plan_and_nothing_is_built(production, moto, aws):
    moto.reset(shield_subscription=False)
    plan = production.plan(check=False)
    assert plan.returncode == 1, plan.describe("terraform plan")
    text = " ".join(plan.stderr.split())
    for words in ("Shield Advanced is not subscribed", "edge.ddos_protection", "enable_ddos_protection",
                  "DescribeSubscription", "create-subscription"):
        assert words in text, f"{words!r} not in:\n{plan.stderr}"
    apply = production.apply(check=False)
    assert apply.returncode == 1
    assert aws("ec2").describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"] == []
    assert aws("kms").list_aliases()["Aliases"] == [] or not any(
        a["AliasName"].startswith(f"alias/idis/{ENV}/") for a in aws("kms").list_aliases()["Aliases"])
    # Once the account is subscribed, the same plan goes through.
    aws("shield").create_subscription()
    again = production.plan(check=False)
    assert again.returncode == 0, again.describe("terraform plan after subscribing")
    # The subscription was read, not skipped with a warning.
    assert "subscription not checked" not in again.stdout + again.stderr, again.describe("terraform plan")
