"""The docs generator's own guarantees (scripts/docs.py), without Terraform:
a default a description states that the provider does not plan stops
generation; the IAM list attributes each SDK call to the right service."""

from __future__ import annotations

import sys

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import docs  # noqa: E402


def planned(after: dict, unknown: dict | None = None) -> docs.Defaults:
    return docs.Defaults({"after": after, "unknown": unknown or {}})


def test_a_default_the_description_states_must_be_the_one_the_provider_plans():
    d = planned({"database": {"multi_az": True, "engine_version": "16", "instance_class": "db.r6g.xlarge"},
                 "cluster": {"node_min_size": 3, "node_desired_size": 3, "node_instance_types": ["m6i.xlarge"]}})
    assert d.sentence("database", "multi_az", "Standby. Default `true`.") == ""
    assert d.sentence("database", "engine_version", 'Version. Default `"16"`.') == ""
    assert d.sentence("database", "instance_class", "Class. Default `db.r6g.xlarge`.") == ""
    assert d.sentence("cluster", "node_instance_types", 'Types. Default `["m6i.xlarge"]`.') == ""
    assert d.sentence("cluster", "node_desired_size", "Initial. Default: `node_min_size`. Then ...") == ""
    assert d.errors == []

    stale = planned({"database": {"multi_az": False}, "cluster": {"node_min_size": 3, "node_desired_size": 5}})
    stale.sentence("database", "multi_az", "Standby. Default `true`.")
    stale.sentence("cluster", "node_desired_size", "Initial. Default: `node_min_size`.")
    assert stale.errors == [
        "idis_environment database.multi_az: the description says Default `true`, the provider plans false",
        "idis_environment cluster.node_desired_size: the description says Default `node_min_size`, the provider plans 5",
    ]


def test_an_optional_attribute_without_a_stated_default_gets_the_planned_one():
    d = planned({"network": {"nat_gateway_per_az": True, "availability_zones": None}},
                {"network": {"availability_zones": True}})
    assert d.sentence("network", "nat_gateway_per_az", "One NAT gateway per zone.") == " Default `true`."
    # Chosen at apply: nothing to state but what the description says.
    assert d.sentence("network", "availability_zones", "Three zones.") == ""
    assert d.errors == []


def test_each_sdk_call_is_the_action_of_the_client_it_is_made_on():
    actions, callers = docs.iam_actions()
    # ELBv2 and EC2 both have DescribeTags; leftovers.rs calls it on `elb`.
    assert "elasticloadbalancing:DescribeTags" in actions
    assert "ec2:DescribeTags" not in actions
    # S3 actions are named after the resource, not the API call.
    assert {"s3:PutBucketObjectLockConfiguration", "s3:ListBucketVersions"} <= set(actions)
    assert "s3:PutObjectLockConfiguration" not in actions
    assert "sts:GetCallerIdentity" not in actions
    assert callers["rds:CreateDBInstance"] == {"provider/src/components/database.rs"}
    assert actions == sorted(actions, key=str.lower)
