"""Versions follow what AWS offers, and upgrades finish.

- The plan asks AWS what it offers in the region (EKS
  `DescribeClusterVersions`, RDS `DescribeDBEngineVersions`, ElastiCache
  `DescribeCacheEngineVersions`; moto lacks them, the proxy answers them
  from AWS's documented shapes) and refuses a version AWS does not offer,
  with the list AWS gave.
- A Kubernetes minor bump upgrades the control plane, then the node group
  (`UpdateNodegroupVersion`), then the managed add-ons vpc-cni, coredns and
  kube-proxy; a skip of a minor is refused at plan, as EKS refuses it.
- A PostgreSQL minor upgrade goes to the read replicas before the primary;
  a major one to the primary with the new family's parameter group, the
  replicas following, with a plan warning that states the downtime.

EKS is checked with boto3 through the proxy, which plays EKS where moto
cannot; RDS and ElastiCache with boto3 against moto directly."""

from __future__ import annotations

import boto3

from test_environment import PREFIX, state_of


def _override(tf, **inputs) -> None:
    body = "\n".join(f'  {k} = "{v}"' for k, v in inputs.items())
    tf.write(f'module "idis_production" {{\n{body}\n}}\n', "versions_override.tf")


def _eks(proxy):
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "eks", region_name="us-east-1", endpoint_url=proxy.endpoint)


def test_a_version_aws_does_not_offer_is_refused_at_plan_with_what_it_offers(production, aws_proxy):
    _override(production, kubernetes_version="1.27", db_engine_version="12", cache_engine_version="6.0")
    plan = production.plan(check=False)
    assert plan.returncode == 1, plan.describe("terraform plan")
    text = " ".join(plan.stderr.split())
    for words in ('cluster.kubernetes_version = "1.27" is not offered by EKS', "eks:DescribeClusterVersions lists 1.29",
                  'database.engine_version = "12" is not offered by RDS for PostgreSQL', "17.",
                  'cache.engine_version = "6.0" is not offered by ElastiCache for Redis OSS', "7.1"):
        assert words in text, f"{words!r} not in:\n{plan.stderr}"
    assert aws_proxy.requests("rds", "DescribeDBEngineVersions"), "the plan asked RDS"


def test_postgresql_17_and_a_valkey_cache_apply_and_plan_clean(production, aws):
    _override(production, db_engine_version="17", cache_engine="valkey", cache_engine_version="8.0")
    production.apply()
    db = aws("rds").describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert db["EngineVersion"].split(".")[0] == "17", db["EngineVersion"]
    group = aws("elasticache").describe_replication_groups(ReplicationGroupId=f"{PREFIX}-cache")["ReplicationGroups"][0]
    assert group.get("Engine", "valkey") == "valkey", group
    state = state_of(production)
    assert state["cache"]["engine"] == "valkey"
    assert state["database"]["engine_version"] == "17"
    again = production.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("terraform plan -detailed-exitcode")


def test_a_kubernetes_upgrade_moves_control_plane_nodes_and_add_ons_and_a_skip_is_refused(production, aws_proxy):
    _override(production, kubernetes_version="1.31")
    production.apply()
    eks = _eks(aws_proxy)
    addons = sorted(eks.list_addons(clusterName=PREFIX)["addons"])
    assert addons == ["aws-ebs-csi-driver", "coredns", "kube-proxy", "metrics-server", "vpc-cni"]

    def versions() -> tuple[str, str, dict[str, str]]:
        cluster = eks.describe_cluster(name=PREFIX)["cluster"]["version"]
        nodes = eks.describe_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")["nodegroup"]["version"]
        installed = {a: eks.describe_addon(clusterName=PREFIX, addonName=a)["addon"]["addonVersion"] for a in addons}
        return cluster, nodes, installed

    def compatible(addon: str, version: str, kubernetes: str) -> bool:
        listed = eks.describe_addon_versions(addonName=addon, kubernetesVersion=kubernetes)["addons"]
        return any(v["addonVersion"] == version and any(c["clusterVersion"] == kubernetes for c in v["compatibilities"])
                   for a in listed for v in a["addonVersions"])

    cluster, nodes, installed = versions()
    assert (cluster, nodes) == ("1.31", "1.31")
    assert all(compatible(a, v, "1.31") for a, v in installed.items()), installed

    # A skip is refused at plan, naming the way.
    _override(production, kubernetes_version="1.33")
    skip = production.plan(check=False)
    assert skip.returncode == 1, skip.describe("terraform plan")
    text = " ".join(skip.stderr.split())
    assert "one minor version at a time" in text and 'kubernetes_version = "1.32"' in text, skip.stderr

    _override(production, kubernetes_version="1.32")
    plan = production.plan(check=False)
    assert plan.returncode == 0, plan.describe("terraform plan")
    assert "UpdateNodegroupVersion" in " ".join(plan.stdout.split() + plan.stderr.split()), plan.stdout
    production.apply()
    cluster, nodes, installed = versions()
    assert (cluster, nodes) == ("1.32", "1.32")
    assert all(compatible(a, v, "1.32") for a, v in installed.items()), installed
    assert aws_proxy.counters.by_operation.get("eks:UpdateNodegroupVersion"), aws_proxy.counters.by_operation
    again = production.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("terraform plan -detailed-exitcode")

    # An add-on removed out of band shows as drift and apply puts it back.
    eks.delete_addon(clusterName=PREFIX, addonName="coredns")
    drift = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    shown = " ".join(drift.stdout.split())
    assert drift.returncode == 2, drift.describe("refresh-only")
    assert "add-on coredns is DELETING" in shown or "add-on coredns is not installed" in shown, drift.stdout
    production.apply()
    assert "coredns" in eks.list_addons(clusterName=PREFIX)["addons"]


def test_a_postgresql_upgrade_moves_primary_and_replicas_as_rds_requires(production, aws, aws_proxy):
    """Minor: replicas first (RDS refuses the primary with
    DBUpgradeDependencyFailure while a replica runs an older version).
    Major: the primary with AllowMajorVersionUpgrade and the new family's
    default parameter group; RDS upgrades the replicas with it; the plan
    warns with the downtime."""
    rds = aws("rds")

    def versions() -> tuple[str, str, str]:
        primary = rds.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
        replica = rds.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db-replica-1")["DBInstances"][0]
        return primary["EngineVersion"], replica["EngineVersion"], primary["DBParameterGroups"][0]["DBParameterGroupName"]

    _override(production, db_engine_version="16.6", db_read_replicas="1")
    production.apply()
    assert versions()[:2] == ("16.6", "16.6")

    # A minor upgrade: the replica goes first, then the primary.
    _override(production, db_engine_version="16.8", db_read_replicas="1")
    plan = production.plan(check=False)
    assert plan.returncode == 0 and "PostgreSQL minor upgrade" in plan.stdout + plan.stderr, plan.describe("plan")
    before = len(aws_proxy.requests("rds", "ModifyDBInstance"))
    production.apply()
    upgrades = [p["DBInstanceIdentifier"] for p in aws_proxy.requests("rds", "ModifyDBInstance")[before:]
                if p.get("EngineVersion")]
    assert upgrades == [f"{PREFIX}-db-replica-1", f"{PREFIX}-db"], upgrades
    assert versions()[:2] == ("16.8", "16.8")

    # A major upgrade: warned at plan with the downtime, replicas follow.
    _override(production, db_engine_version="17", db_read_replicas="1")
    plan = production.plan(check=False)
    assert plan.returncode == 0, plan.describe("plan")
    warning = " ".join((plan.stdout + plan.stderr).split())
    for words in ("Major PostgreSQL upgrade", "upgrading 16.8 to 17", "minutes of downtime",
                  "Multi-AZ does not shorten it", "The read replica is upgraded with it"):
        assert words in warning, f"{words!r} not in:\n{warning}"
    before = len(aws_proxy.requests("rds", "ModifyDBInstance"))
    production.apply()
    asked = [p for p in aws_proxy.requests("rds", "ModifyDBInstance")[before:] if p.get("EngineVersion")]
    assert [p["DBInstanceIdentifier"] for p in asked] == [f"{PREFIX}-db"], asked
    assert asked[0].get("AllowMajorVersionUpgrade") == "true" and asked[0].get("DBParameterGroupName") == "default.postgres17", asked
    primary, replica, group = versions()
    assert primary.split(".")[0] == "17" and replica == primary and group == "default.postgres17", (primary, replica, group)
    for args in (("-refresh-only", "-detailed-exitcode"), ("-detailed-exitcode",)):
        again = production.plan(*args, check=False)
        assert again.returncode == 0, again.describe(f"terraform plan {' '.join(args)}")
