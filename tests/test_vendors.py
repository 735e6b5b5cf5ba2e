"""The monitoring vendor wired in (issue 16 part 6): the IAM roles
Datadog's and New Relic's AWS integrations assume.

examples/production with `datadog` and `newrelic` given to the module,
applied through the proxy; the roles are checked with boto3 directly
against moto (trust policies parsed as JSON), never through the
provider's own reading.
"""

from __future__ import annotations

import json
import urllib.parse

from test_environment import PREFIX, state_of
from test_monitoring import monitored, set_inputs

DATADOG_ID = "3c0a9e5f2b7d4e18a6f1c9d0b2e4a7c5"
NEWRELIC_ID = "4412345"
VENDOR_INPUTS = f"""
  datadog  = {{ external_id = "{DATADOG_ID}" }}
  newrelic = {{ external_id = "{NEWRELIC_ID}" }}
"""


def role(aws, name: str) -> dict:
    iam = aws("iam")
    got = iam.get_role(RoleName=name)["Role"]
    trust = got["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(urllib.parse.unquote(trust))
    attached = sorted(p["PolicyArn"] for p in
                      iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
    inline = {}
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        inline[policy] = json.loads(urllib.parse.unquote(doc)) if isinstance(doc, str) else doc
    return {"arn": got["Arn"], "trust": trust, "attached": attached, "inline": inline}


def trusted(trust: dict) -> tuple[str, str]:
    """(principal, external id) of a trust policy of exactly one statement."""
    statements = trust["Statement"] if isinstance(trust["Statement"], list) else [trust["Statement"]]
    assert len(statements) == 1, trust
    s = statements[0]
    assert s["Effect"] == "Allow" and s["Action"] in ("sts:AssumeRole", ["sts:AssumeRole"]), s
    assert list(s["Condition"]) == ["StringEquals"], s
    principal = s["Principal"]["AWS"]
    external = s["Condition"]["StringEquals"]["sts:ExternalId"]
    return (principal[0] if isinstance(principal, list) else principal,
            external[0] if isinstance(external, list) else external)


def gone(aws, name: str) -> bool:
    try:
        aws("iam").get_role(RoleName=name)
    except aws("iam").exceptions.NoSuchEntityException:
        return True
    return False


def test_each_vendor_gets_the_role_its_integration_documents_and_it_is_read_back(tmp_path, terraform_rc, moto,
                                                                                  aws_proxy, aws):
    moto.reset()
    tf = monitored(tmp_path, terraform_rc, aws_proxy, VENDOR_INPUTS)
    tf.apply()

    datadog, newrelic = role(aws, f"{PREFIX}-datadog"), role(aws, f"{PREFIX}-newrelic")
    assert trusted(datadog["trust"]) == ("arn:aws:iam::464622532012:root", DATADOG_ID)
    assert trusted(newrelic["trust"]) == ("arn:aws:iam::754728514883:root", NEWRELIC_ID)
    assert datadog["attached"] == ["arn:aws:iam::aws:policy/SecurityAudit"]
    assert newrelic["attached"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    assert newrelic["inline"] == {}
    assert list(datadog["inline"]) == ["idis-datadog-integration"]
    actions = [a for s in datadog["inline"]["idis-datadog-integration"]["Statement"] for a in s["Action"]]
    assert "cloudwatch:GetMetricData" not in actions  # covered by cloudwatch:Get*
    assert {"cloudwatch:Get*", "cloudwatch:List*", "tag:GetResources", "rds:Describe*",
            "elasticache:Describe*", "eks:Describe*"} <= set(actions)
    # Read-only: no verb that changes anything.
    assert all(a.split(":")[1].startswith(("Describe", "Get", "List", "Lookup", "Filter", "Test"))
               for a in actions), actions
    state = state_of(tf)
    assert (state["datadog_role_arn"], state["newrelic_role_arn"]) == (datadog["arn"], newrelic["arn"])

    clean = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan -refresh-only right after apply")

    # Out of band: Datadog's role now trusts another external id, New
    # Relic's gets administrator rights. Both show; apply puts them back.
    iam = aws("iam")
    other = json.loads(json.dumps(datadog["trust"]).replace(DATADOG_ID, "someone-elses-id"))
    iam.update_assume_role_policy(RoleName=f"{PREFIX}-datadog", PolicyDocument=json.dumps(other))
    iam.attach_role_policy(RoleName=f"{PREFIX}-newrelic", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    drift = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("plan -refresh-only after the out-of-band changes")
    assert "someone-elses-id" in drift.stdout and DATADOG_ID in drift.stdout
    assert '"vendor_roles"' in drift.stdout
    assert "AdministratorAccess" in drift.stdout + drift.stderr
    tf.apply()
    assert trusted(role(aws, f"{PREFIX}-datadog")["trust"])[1] == DATADOG_ID
    assert role(aws, f"{PREFIX}-newrelic")["attached"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    again = tf.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("plan after the repair")

    # New Relic no longer wanted: its role goes, Datadog's stays.
    set_inputs(tf, f'  datadog = {{ external_id = "{DATADOG_ID}" }}\n')
    tf.apply()
    assert gone(aws, f"{PREFIX}-newrelic")
    assert not gone(aws, f"{PREFIX}-datadog")
    assert state_of(tf)["newrelic_role_arn"] is None
    final = tf.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert final.returncode == 0, final.describe("plan -refresh-only after the change")

    tf.apply("-var", "deletion_protection=false")
    tf.destroy("-var", "deletion_protection=false")
    assert gone(aws, f"{PREFIX}-datadog")
