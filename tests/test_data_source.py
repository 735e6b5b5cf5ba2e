"""`data "idis_environment"` end to end: one stack applies examples/production;
an application stack in another directory, with its own state, reads the
environment by name through examples/data-source. What it reads must be what
the managing stack has in its state, and what AWS (moto, asked directly with
boto3) has."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO_ROOT, REQUIRED_PROVIDERS, Terraform, example_with_module

ENV = "production"
PREFIX = f"idis-{ENV}"

# Every output of the data source, as one object, beside the example's own
# outputs: the test compares all of them, not a chosen few.
ALL_OUTPUTS_TF = """\
output "everything" {
  value = data.idis_environment.platform
}
"""


@pytest.fixture
def stacks(tmp_path, terraform_rc, moto, aws_proxy) -> tuple[Terraform, Terraform]:
    """(managing stack, application stack): examples/production with the
    module beside it, and examples/data-source in a separate directory with
    a separate state; both initialised, moto emptied, both talking to AWS
    through our proxy."""
    moto.reset()
    platform = example_with_module(tmp_path / "platform", "production", terraform_rc, aws_proxy.endpoint)
    platform.init()

    app_dir = tmp_path / "app"
    shutil.copytree(REPO_ROOT / "examples" / "data-source", app_dir)
    app = Terraform(app_dir, terraform_rc, aws_proxy.endpoint)
    app.write(ALL_OUTPUTS_TF, "everything.tf")
    app.init()
    return platform, app


def managed_state(tf: Terraform) -> dict:
    """The idis_environment's attributes in the managing stack's state."""
    shown = json.loads(tf.run("show", "-json").stdout)
    for module in shown["values"]["root_module"].get("child_modules", []):
        for resource in module.get("resources", []):
            if resource["type"] == "idis_environment":
                return resource["values"]
    raise AssertionError("no idis_environment in the managing stack's state")


def test_an_application_stack_reads_the_same_outputs_the_managing_stack_has(stacks, aws, aws_proxy):
    platform, app = stacks
    platform.apply()
    managed = managed_state(platform)

    before = dict(aws_proxy.counters.by_operation)
    app.apply()
    called = {op for op, n in aws_proxy.counters.by_operation.items() if n != before.get(op, 0)}
    # A lookup only reads: it changes nothing in AWS.
    writes = sorted(op for op in called if not op.split(":")[1].startswith(("Describe", "Get", "List", "Head")))
    assert writes == []
    assert {"ec2:DescribeVpcs", "eks:DescribeCluster", "rds:DescribeDBInstances"} <= called
    read = app.output_json()
    everything = read["everything"]

    # Every output of the resource, and nothing the data source invents.
    outputs = sorted(k for k in everything if k not in ("name", "region"))
    assert len(outputs) == 77, outputs
    differing = {k: (everything[k], managed[k]) for k in outputs if everything[k] != managed[k]}
    assert differing == {}
    assert (everything["name"], everything["region"]) == (ENV, "us-east-1")
    # The outputs that matter to an application are really there.
    for key in ("vpc_id", "cluster_endpoint", "cluster_arn", "node_group_arn", "database_arn",
                "database_endpoint", "database_master_secret_arn", "cache_primary_endpoint",
                "cache_auth_secret_arn", "audit_bucket_arn", "platform_key_arn", "web_acl_arn",
                "ingress_annotations", "documents_bucket_arn", "jwt_secret_arn", "encryption_key_secret_arn",
                "oidc_provider_arn", "api_role_arn", "external_secrets_role_arn", "kubernetes_manifests"):
        assert everything[key], key
    assert len(everything["private_subnet_ids"]) == 3
    assert set(everything["tenant_key_arns"]) == {"acme", "globex"}
    # The example's own outputs are the same values.
    for key in ("cluster_endpoint", "database_endpoint", "cache_primary_endpoint", "audit_bucket_arn",
                "app_config", "secret_refs"):
        assert read[key] == managed[key], key

    # Spot checks against AWS itself.
    vpcs = aws("ec2").describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"]
    assert [v["VpcId"] for v in vpcs] == [everything["vpc_id"]]
    cluster = aws("eks").describe_cluster(name=PREFIX)["cluster"]
    assert (cluster["arn"], cluster["endpoint"]) == (everything["cluster_arn"], everything["cluster_endpoint"])
    db = aws("rds").describe_db_instances(DBInstanceIdentifier=f"{PREFIX}-db")["DBInstances"][0]
    assert db["DBInstanceArn"] == everything["database_arn"]
    assert db["Endpoint"]["Address"] == everything["database_endpoint"]
    assert db["MasterUserSecret"]["SecretArn"] == everything["database_master_secret_arn"]
    assert everything["secret_refs"]["IDIS_DATABASE_CREDENTIALS"] == db["MasterUserSecret"]["SecretArn"]
    group = aws("elasticache").describe_replication_groups(ReplicationGroupId=f"{PREFIX}-cache")["ReplicationGroups"][0]
    assert group["NodeGroups"][0]["PrimaryEndpoint"]["Address"] == everything["cache_primary_endpoint"]
    acls = aws("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]
    assert [a["ARN"] for a in acls] == [everything["web_acl_arn"]]
    kms = aws("kms")
    alias = next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == f"alias/idis/{ENV}/acme")
    assert kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"] == everything["tenant_key_arns"]["acme"]
    assert everything["app_config"]["IDIS_S3_BUCKET"] == everything["documents_bucket_name"]
    assert everything["app_config"]["IDIS_AUDIT_S3_BUCKET"] == everything["audit_bucket_name"]

    # Reading again changes nothing, and the managing stack is untouched.
    again = app.plan("-detailed-exitcode", check=False)
    assert again.returncode == 0, again.describe("terraform plan -detailed-exitcode (application stack)")
    untouched = platform.plan("-detailed-exitcode", check=False)
    assert untouched.returncode == 0, untouched.describe("terraform plan -detailed-exitcode (managing stack)")

    # The same name in another region is another environment: not found there.
    app.write('data "idis_environment" "elsewhere" {\n  name   = "production"\n  region = "eu-west-1"\n}\n', "elsewhere.tf")
    elsewhere = app.plan(check=False)
    assert elsewhere.returncode == 1, elsewhere.describe("terraform plan")
    assert "Environment not found" in elsewhere.stderr
    assert '"production" was found in eu-west-1' in " ".join(elsewhere.stderr.split())


def test_an_environment_that_does_not_exist_fails_naming_it_and_what_to_check(stacks):
    _, app = stacks
    result = app.plan("-var", "environment=billing", check=False)
    assert result.returncode == 1, result.describe("terraform plan")
    text = " ".join(result.stderr.split())
    assert "Error: Environment not found" in text
    assert 'No IDIS environment named "billing" was found in us-east-1' in text
    assert "idis-billing-*" in text
    assert "credentials" in text
    assert 'data "idis_environment" "platform"' in text  # Terraform points at the block


@pytest.mark.parametrize("name", ["Production", "prod--1", "a-name-that-is-far-too-long"])
def test_a_name_no_environment_can_have_is_refused_naming_the_attribute(terraform, name):
    terraform.write(REQUIRED_PROVIDERS + f'provider "idis" {{}}\n\ndata "idis_environment" "x" {{\n  name = "{name}"\n}}\n')
    terraform.init()
    result = terraform.plan(check=False)
    assert result.returncode == 1, result.describe("terraform plan")
    text = " ".join(result.stderr.split())
    assert f'"{name}"' in text and "name" in text
    assert "lowercase letters, digits and single dashes" in text
