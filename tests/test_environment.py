"""`idis_environment` end to end through the module and examples/production:
the real Terraform CLI, the provider, moto, and AWS state checked with boto3."""

from __future__ import annotations

import json
import time

import pytest

from conftest import AWS_REGION, REPO_ROOT, REQUIRED_PROVIDERS, Terraform

ENV = "production"
PREFIX = f"idis-{ENV}"
RESOURCE = "module.idis_production.idis_environment.this"



def state_of(tf: Terraform) -> dict:
    """The idis_environment's attributes from `terraform show -json`."""
    shown = json.loads(tf.run("show", "-json").stdout)
    for module in shown["values"]["root_module"].get("child_modules", []):
        for resource in module.get("resources", []):
            if resource["type"] == "idis_environment":
                return resource["values"]
    raise AssertionError("no idis_environment in state")


def tagged(aws, env: str = ENV, region: str = "us-east-1") -> list[str]:
    """ARNs the resource groups tagging API finds for the environment."""
    pages = aws("resourcegroupstaggingapi", region).get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "idis:environment", "Values": [env]}]
    )
    return [r["ResourceARN"] for page in pages for r in page["ResourceTagMappingList"]]


def sweep_after_destroy(aws, aws_proxy, bucket: str, region: str = "us-east-1") -> tuple[dict[str, list[str]], list[str]]:
    """After a destroy: everything the tagging API still finds for the
    environment in `region`, sorted into what is kept on purpose (checked
    to be in the state it should be) and leftovers (which should be none)."""
    ec2, sm = aws("ec2", region), aws("secretsmanager", region)
    kept = {"bucket": [], "documents bucket": [], "access-log bucket": [], "keys": [], "final snapshot": [], "automated backups": [], "secret pending deletion": [],
            "NAT gateways (deleted)": [], "cache (moto: deleting)": [], "cache subnet group (moto: cannot delete)": []}
    leftovers = []
    keys: list[tuple[str, str, bool]] = []
    for arn in tagged(aws, region=region):
        if arn.endswith(f":::{bucket}"):
            kept["bucket"].append(arn)
        elif arn.startswith(f"arn:aws:s3:::{PREFIX}-access-logs-"):
            # The S3 server access logs (moto delivers them): a log bucket
            # is kept only while it holds logs.
            name = arn.rsplit(":", 1)[1]
            assert aws("s3", region).list_objects_v2(Bucket=name, MaxKeys=1).get("KeyCount"), f"empty log bucket kept: {arn}"
            kept["access-log bucket"].append(arn)
        elif arn.startswith(f"arn:aws:s3:::{PREFIX}-documents-"):
            # The application's documents: kept (retain_on_destroy).
            kept["documents bucket"].append(arn)
        elif ":kms:" in arn:
            # moto's tagging API lists other regions' keys too: each is
            # asked of its own region, and those outside the environment's
            # region are a DR site's replicas.
            key_region = arn.split(":")[3]
            meta = aws("kms", key_region).describe_key(KeyId=arn)["KeyMetadata"]
            keys.append((arn, meta["KeyState"], key_region != AWS_REGION))
            kept["keys"].append(arn)
        elif f":snapshot:{PREFIX}-db-final-" in arn:
            kept["final snapshot"].append(arn)
        elif f":snapshot:rds:{PREFIX}-db-" in arn:
            # Automated backups are kept for their retention period
            # (DeleteAutomatedBackups = false), for point-in-time restore.
            kept["automated backups"].append(arn)
        elif ":secretsmanager:" in arn:
            assert sm.describe_secret(SecretId=arn).get("DeletedDate"), f"secret not scheduled for deletion: {arn}"
            kept["secret pending deletion"].append(arn)
        elif ":natgateway/" in arn:
            # AWS (and moto) keep deleted NAT gateways visible for a while.
            nat = arn.rsplit("/", 1)[1]
            state = ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]["State"]
            assert state == "deleted", f"{arn} is {state}"
            kept["NAT gateways (deleted)"].append(arn)
        elif ":elasticache:" in arn and ":replicationgroup:" in arn:
            # moto 5.2.5 never finishes deleting a replication group.
            group = arn.rsplit(":", 1)[1]
            status = aws("elasticache", region).describe_replication_groups(ReplicationGroupId=group)["ReplicationGroups"][0]["Status"]
            assert status == "deleting", f"{arn} is {status}"
            kept["cache (moto: deleting)"].append(arn)
        elif ":elasticache:" in arn and ":subnetgroup:" in arn:
            # moto 5.2.5 has no DeleteCacheSubnetGroup; the proxy answered it.
            assert arn.rsplit(":", 1)[1] in aws_proxy.deleted_cache_subnet_groups, arn
            kept["cache subnet group (moto: cannot delete)"].append(arn)
        else:
            leftovers.append(arn)
    # The environment's keys stay, enabled, while what the destroy kept is
    # encrypted with them (a kept bucket or a final snapshot, here or a DR
    # copy elsewhere); otherwise they are pending deletion. A DR site's
    # replicas are scheduled either way: the primary makes them again.
    data_kept = any(kept[k] for k in ("bucket", "documents bucket", "final snapshot")) or any(
        b["Name"].startswith((f"{PREFIX}-audit-", f"{PREFIX}-documents-"))
        for b in aws("s3", region).list_buckets()["Buckets"])
    for arn, state, replica in keys:
        wanted = "PendingDeletion" if replica or not data_kept else "Enabled"
        assert state == wanted, f"{arn} is {state}, not {wanted} (data kept: {data_kept})"
    return kept, leftovers


@pytest.mark.both_clis
def test_production_contract_lands_in_aws_and_replans_clean(production, aws, aws_proxy):
    production.apply()
    out = production.output_json()

    ec2 = aws("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs] == ["10.0.0.0/16"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["Subnets"]
    assert len(subnets) == 6
    assert len({s["AvailabilityZone"] for s in subnets}) == 3

    eks = aws("eks")
    group = eks.describe_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")["nodegroup"]
    assert group["instanceTypes"] == ["m6i.xlarge"]
    assert (group["scalingConfig"]["minSize"], group["scalingConfig"]["maxSize"]) == (3, 10)
    cluster = eks.describe_cluster(name=PREFIX)["cluster"]
    state = state_of(production)
    assert cluster["encryptionConfig"][0]["provider"]["keyArn"] == state["platform_key_arn"]

    db = aws("rds").describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert db["Engine"] == "postgres" and db["EngineVersion"].startswith("16")
    assert db["DBInstanceClass"] == "db.r6g.xlarge"
    assert db["MultiAZ"] is True
    assert db["BackupRetentionPeriod"] == 30
    assert db["StorageEncrypted"] is True
    assert db["DeletionProtection"] is True
    assert db["MasterUserSecret"]["SecretArn"] == state["database_master_secret_arn"]

    group = aws("elasticache").describe_replication_groups(ReplicationGroupId=f"{PREFIX}-cache")["ReplicationGroups"][0]
    assert group["MultiAZ"] == "enabled"
    assert group["AutomaticFailover"] == "enabled"
    assert group["AtRestEncryptionEnabled"] is True
    assert group["TransitEncryptionEnabled"] is True
    # moto 5.2.5 does not report a replication group's engine version, so
    # the request is what can be checked: Redis 7 was asked for.
    created = aws_proxy.requests("elasticache", "CreateReplicationGroup")
    assert [(c.get("Engine"), c.get("EngineVersion")) for c in created] == [("redis", "7")]

    s3 = aws("s3")
    bucket = out["audit_bucket_name"]
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()), block

    kms = aws("kms")
    aliases = {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith(f"alias/idis/{ENV}/")}
    assert set(aliases) == {f"alias/idis/{ENV}/platform", f"alias/idis/{ENV}/acme", f"alias/idis/{ENV}/globex"}
    for key_id in aliases.values():
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    assert set(out["tenant_key_arns"]) == {"acme", "globex"}

    acls = aws("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]
    assert [a["Name"] for a in acls] == [PREFIX]
    # The example serves its static assets through a distribution: Shield
    # protects that distribution and nothing else of the provider's (never a
    # NAT address); the ingress annotation asks for the load balancer's
    # protection (see test_edge.py).
    [distribution] = aws("cloudfront").list_distributions()["DistributionList"]["Items"]
    protected = [p["ResourceArn"] for p in aws("shield").list_protections().get("Protections", [])]
    assert protected == [distribution["ARN"]], protected
    assert out["ingress_annotations"]["alb.ingress.kubernetes.io/wafv2-acl-arn"] == acls[0]["ARN"]

    # Documents go to the documents bucket; the WORM audit bucket has a
    # setting of its own.
    assert out["app_config"]["IDIS_S3_BUCKET"] == out["documents_bucket_name"] != bucket
    assert out["app_config"]["IDIS_AUDIT_S3_BUCKET"] == bucket
    assert out["secret_refs"]["IDIS_DATABASE_CREDENTIALS"] == state["database_master_secret_arn"]

    again = production.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("terraform plan -detailed-exitcode")


@pytest.mark.both_clis
def test_out_of_band_changes_show_as_drift_and_apply_repairs_them(production, aws):
    production.apply()
    bucket = production.output_json()["audit_bucket_name"]
    kms, rds, eks, s3, waf = aws("kms"), aws("rds"), aws("eks"), aws("s3"), aws("wafv2")
    key_of = {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]}

    # Six changes across five components, made behind Terraform's back.
    rds.modify_db_instance(DBInstanceIdentifier=f"{PREFIX}-db", MultiAZ=False, ApplyImmediately=True)
    eks.update_nodegroup_config(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default",
                                scalingConfig={"minSize": 2, "maxSize": 10, "desiredSize": 3})
    kms.disable_key_rotation(KeyId=key_of[f"alias/idis/{ENV}/acme"])
    kms.delete_alias(AliasName=f"alias/idis/{ENV}/globex")
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}}})
    acl = waf.list_web_acls(Scope="REGIONAL")["WebACLs"][0]
    current = waf.get_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"])
    rules = current["WebACL"]["Rules"]
    for rule in rules:
        if "RateBasedStatement" in rule["Statement"]:
            rule["Statement"]["RateBasedStatement"]["Limit"] = 100000
    waf.update_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"], LockToken=current["LockToken"],
                       DefaultAction=current["WebACL"]["DefaultAction"], Rules=rules,
                       VisibilityConfig=current["WebACL"]["VisibilityConfig"])

    drift = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("terraform plan -refresh-only -detailed-exitcode")
    for attribute in ["multi_az", "node_min_size", "rotation_enabled", "globex", "retention_days", "rate_limit"]:
        assert attribute in drift.stdout, f"{attribute} not named in the drift report:\n{drift.stdout}"

    production.apply()

    db = rds.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert db["MultiAZ"] is True
    group = eks.describe_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")["nodegroup"]
    assert group["scalingConfig"]["minSize"] == 3
    assert kms.get_key_rotation_status(KeyId=key_of[f"alias/idis/{ENV}/acme"])["KeyRotationEnabled"] is True
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert f"alias/idis/{ENV}/globex" in aliases
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["Rule"]["DefaultRetention"]["Days"] == 365
    current = waf.get_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"])
    limits = [r["Statement"]["RateBasedStatement"]["Limit"] for r in current["WebACL"]["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert limits == [2000]

    clean = production.plan("-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("terraform plan -detailed-exitcode")


def test_a_component_deleted_out_of_band_is_recreated_alone(production, aws):
    production.apply()
    before = state_of(production)
    rds = aws("rds")
    # Someone deletes the database by hand (moto finishes deletions at once;
    # it never finishes an ElastiCache one, so the cache cannot serve here).
    rds.modify_db_instance(DBInstanceIdentifier=f"{PREFIX}-db", DeletionProtection=False, ApplyImmediately=True)
    rds.delete_db_instance(DBInstanceIdentifier=f"{PREFIX}-db", SkipFinalSnapshot=True)
    assert not [d for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"] == f"{PREFIX}-db"]

    drift = production.plan("-refresh-only", "-detailed-exitcode", check=False)
    assert drift.returncode == 2, drift.describe("plan -refresh-only")
    assert "database_endpoint" in drift.stdout

    production.apply()

    db = rds.describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert db["DeletionProtection"] is True and db["MultiAZ"] is True
    after = state_of(production)
    for kept in ["vpc_id", "cluster_arn", "cache_replication_group_id", "platform_key_arn", "audit_bucket_arn", "web_acl_arn"]:
        assert after[kept] == before[kept], kept
    assert after["database_arn"] == db["DBInstanceArn"]
    assert production.plan("-detailed-exitcode", check=False).returncode == 0


@pytest.mark.both_clis
def test_import_of_an_existing_environment_plans_no_change(production, aws):
    production.apply()
    (production.workdir / "terraform.tfstate").unlink()
    for backup in production.workdir.glob("terraform.tfstate*"):
        backup.unlink()

    production.run("import", "-input=false", RESOURCE, ENV)

    plan = production.plan("-detailed-exitcode", check=False)
    assert plan.returncode == 0, plan.describe("terraform plan -detailed-exitcode after import")


def test_destroy_is_refused_while_protected_then_removes_all_but_the_kept_bucket_and_keys(production, aws, aws_proxy):
    production.apply()
    bucket = production.output_json()["audit_bucket_name"]
    before = sorted(tagged(aws))

    refused = production.destroy(check=False)
    assert refused.returncode == 1
    assert "deletion protection" in refused.stderr.replace("\n", " ")
    assert sorted(tagged(aws)) == before, "a refused destroy deleted something"
    assert aws("rds").describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"]

    production.apply("-var", "deletion_protection=false")
    destroyed = production.destroy("-var", "deletion_protection=false")
    # The kept audit bucket, documents bucket and final snapshot are
    # encrypted with the environment's keys: the keys stay, enabled and
    # aliased, and the destroy says why.
    said = " ".join((destroyed.stdout + destroyed.stderr).split())
    assert f"kept the KMS keys of environment {ENV}" in said and f"bucket {bucket}" in said, said[-3000:]
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in aws("kms").list_aliases()["Aliases"]}
    for name in ("platform", "acme", "globex"):
        key = aliases[f"alias/idis/{ENV}/{name}"]
        assert aws("kms").describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled", name

    ec2 = aws("ec2")
    assert not ec2.describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"]
    assert not [d for d in aws("rds").describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"].startswith(PREFIX)]
    # moto 5.2.5 never finishes deleting a replication group: it stays in
    # "deleting". That the deletion was asked for is what moto can show.
    groups = aws("elasticache").describe_replication_groups()["ReplicationGroups"]
    assert [g["Status"] for g in groups] in ([], ["deleting"]), groups
    assert PREFIX not in aws("eks").list_clusters()["clusters"]
    assert not aws("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]
    assert not aws("shield").list_protections().get("Protections")
    assert bucket in [b["Name"] for b in aws("s3").list_buckets()["Buckets"]], "the audit bucket is kept"
    # Workload identity holds no data: its roles and OIDC provider are gone.
    iam = aws("iam")
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(PREFIX)]
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    # The tagging sweep: what is left must be kept on purpose.
    kept, leftovers = sweep_after_destroy(aws, aws_proxy, bucket)
    assert leftovers == [], f"tagged leftovers after destroy: {leftovers}"
    assert len(kept["keys"]) == 3, kept
    assert len(kept["documents bucket"]) == 1, kept
    # The cache auth token, IDIS_JWT_SECRET and IDIS_ENCRYPTION_KEY.
    assert len(kept["secret pending deletion"]) == 3, kept
    assert len(kept["final snapshot"]) == 1, "the final snapshot was taken"
    print("kept after destroy:", {k: len(v) for k, v in kept.items()})


def test_no_secret_reaches_state_plan_or_trace_logs(production, aws):
    # The first apply generates the JWT secret and the encryption key: its
    # trace is where they would leak.
    created_logs = production.apply(env={"TF_LOG": "TRACE"})
    applied_logs = production.run("apply", "-input=false", "-auto-approve", env={"TF_LOG": "TRACE"})
    state = state_of(production)
    sm = aws("secretsmanager")
    secrets = [
        sm.get_secret_value(SecretId=state[arn])["SecretString"]
        for arn in ("database_master_secret_arn", "cache_auth_secret_arn", "jwt_secret_arn",
                    "encryption_key_secret_arn")
    ]
    values = []
    for secret in secrets:
        try:
            values.extend(v for v in json.loads(secret).values() if isinstance(v, str) and len(v) >= 12)
        except (json.JSONDecodeError, AttributeError):
            values.append(secret)
    assert values, "no secret value found to look for"

    production.run("plan", "-input=false", "-out=plan.tfplan", env={"TF_LOG": "TRACE"})
    plan_json = production.run("show", "-json", "plan.tfplan").stdout
    tfstate = (production.workdir / "terraform.tfstate").read_text()
    # Diagnostics: a plan that warns (instance class change) and a destroy
    # refused with an error (deletion protection), both at TRACE.
    main_tf = production.workdir / "main.tf"
    main_tf.write_text(main_tf.read_text().replace('"db.r6g.xlarge"', '"db.r6g.2xlarge"'))
    warned = production.run("plan", "-input=false", env={"TF_LOG": "TRACE"})
    assert "Database instance class change" in warned.stdout, warned.describe("terraform plan")
    refused = production.run("destroy", "-input=false", "-auto-approve", check=False, env={"TF_LOG": "TRACE"})
    assert refused.returncode == 1 and "deletion protection" in refused.stderr, refused.describe("terraform destroy")
    diagnostics = warned.stdout + warned.stderr + refused.stdout + refused.stderr
    for value in values:
        assert value not in tfstate, "a secret is in terraform.tfstate"
        assert value not in plan_json, "a secret is in the plan JSON"
        assert value not in created_logs.stdout + created_logs.stderr, "a secret is in TF_LOG=trace output"
        assert value not in applied_logs.stdout + applied_logs.stderr, "a secret is in TF_LOG=trace output"
        assert value not in diagnostics, "a secret is in a warning or error diagnostic"


BAD_MODULE_INPUTS = [
    ('vpc_cidr = "10.0.0.0/28"', "vpc_cidr"),
    ('vpc_cidr = "not-a-cidr"', "vpc_cidr"),
    ("db_backup_retention = 40", "db_backup_retention"),
    ('environment = "Prod_1"', "environment"),
    ("eks_node_min_count = 5\n  eks_node_max_count = 3", "eks_node_min_count"),
    ("s3_worm_enabled = true\n  s3_versioning_enabled = false", "s3_versioning_enabled"),
    ('tenants = ["acme", "acme"]', "tenants"),
]


@pytest.mark.parametrize("inputs,attribute", BAD_MODULE_INPUTS, ids=[a for _, a in BAD_MODULE_INPUTS])
def test_bad_module_input_fails_plan_naming_the_input(terraform, inputs, attribute):
    (terraform.workdir / "modules").symlink_to(REPO_ROOT / "modules")
    defaults = {"environment": '"production"', "region": '"us-east-1"', "vpc_cidr": '"10.0.0.0/16"'}
    for line in inputs.splitlines():
        defaults.pop(line.split("=")[0].strip(), None)
    required = "\n  ".join(f"{k} = {v}" for k, v in defaults.items())
    terraform.write(REQUIRED_PROVIDERS + f"""
provider "idis" {{}}

module "idis" {{
  source = "./modules/idis"
  {required}
  {inputs}
}}
""")
    terraform.init()
    result = terraform.plan(check=False)
    assert result.returncode == 1, result.describe("terraform plan")
    assert attribute in result.stderr, result.describe("terraform plan")
    assert "plugin crashed" not in result.stderr.lower()


BAD_RESOURCE_ATTRIBUTES = [
    ('name = "Production"', "name"),
    ('name = "production"\n  network {\n    vpc_cidr = "10.0.0.0/8"\n  }', "network.vpc_cidr"),
    ('name = "production"\n  network {\n    vpc_cidr = "10.0.0.1/16"\n  }', "network.vpc_cidr"),
    ('name = "production"\n  cluster {\n    node_min_size = 4\n    node_max_size = 2\n  }', "cluster.node_min_size"),
    ('name = "production"\n  database {\n    backup_retention_days = 0\n  }', "database.backup_retention_days"),
    ('name = "production"\n  database {\n    engine_version = "12"\n  }', "database.engine_version"),
    ('name = "production"\n  audit_storage {\n    worm = true\n    versioning = false\n  }', "audit_storage.versioning"),
    ('name = "production"\n  keys {\n    tenants = ["a", "a"]\n  }', "keys.tenants[1]"),
    ('name = "production"\n  cache {\n    node_count = 1\n  }', "cache.node_count"),
    ('name = "production"\n  edge {\n    rate_limit = 5\n  }', "edge.rate_limit"),
]


@pytest.mark.parametrize("body,path", BAD_RESOURCE_ATTRIBUTES, ids=[p for _, p in BAD_RESOURCE_ATTRIBUTES])
def test_bad_resource_attribute_fails_plan_naming_the_attribute(terraform, body, path):
    terraform.write(REQUIRED_PROVIDERS + f"""
provider "idis" {{}}

resource "idis_environment" "this" {{
  {body}
}}
""")
    terraform.init()
    result = terraform.plan(check=False)
    assert result.returncode == 1, result.describe("terraform plan")
    flat = " ".join(result.stderr.split())
    assert f"{path} =" in flat, result.describe("terraform plan")
    assert "plugin crashed" not in flat.lower()


def test_config_changes_are_planned_with_warnings_and_applied_in_place(production, aws):
    production.apply()
    before = state_of(production)
    main_tf = production.workdir / "main.tf"
    text = main_tf.read_text()
    for old, new in [
        ('db_instance_class   = "db.r6g.xlarge"', 'db_instance_class   = "db.r6g.2xlarge"'),
        ("eks_node_max_count     = 10", "eks_node_max_count     = 12"),
        ("enable_waf             = true", "enable_waf             = false"),
        ('tenants             = ["acme", "globex"]', 'tenants             = ["acme", "initech"]'),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    main_tf.write_text(text)

    plan = production.plan()
    flat = " ".join((plan.stdout + plan.stderr).split())
    assert "1 to change, 0 to destroy" in flat, plan.describe("terraform plan")
    for warning in ["Database instance class change", "Tenant key will be scheduled for deletion", "WAF will be removed"]:
        assert warning in flat, f"missing warning {warning!r}:\n{plan.stdout}{plan.stderr}"
    assert "globex" in flat and "failover" in flat

    production.apply()

    db = aws("rds").describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert db["DBInstanceClass"] == "db.r6g.2xlarge"
    group = aws("eks").describe_nodegroup(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default")["nodegroup"]
    assert group["scalingConfig"]["maxSize"] == 12
    assert aws("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    kms = aws("kms")
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert f"alias/idis/{ENV}/initech" in aliases and f"alias/idis/{ENV}/globex" not in aliases
    globex_key = before["tenant_key_arns"]["globex"]
    assert kms.describe_key(KeyId=globex_key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    after = state_of(production)
    assert after["web_acl_arn"] is None
    assert after["database_arn"] == before["database_arn"] and after["vpc_id"] == before["vpc_id"]
    assert production.plan("-detailed-exitcode", check=False).returncode == 0
