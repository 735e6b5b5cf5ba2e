"""Resource identity, `terraform query` and configuration generation, on
the Terraform under test (`IDIS_TERRAFORM`): identity and query need 1.12
and 1.14, so those tests run on 1.15 only; `plan -generate-config-out`
runs on both.

One apply per module makes three environments: `alpha` and `beta` in
us-east-1, `gamma` in us-west-2 (same names in the tags, another region).
Each test then works in a directory of its own with its own state, so
they do not disturb one another. AWS is checked with boto3 against moto.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import REQUIRED_PROVIDERS, TERRAFORM_115, Terraform, _proxy_in_front_of, _stop_proxy

pytestmark = pytest.mark.both_clis

needs_115 = pytest.mark.skipif(
    not TERRAFORM_115, reason="resource identity and terraform query need Terraform 1.12/1.14: run with IDIS_TERRAFORM=1.15"
)

ENVIRONMENTS = {"alpha": "us-east-1", "beta": "us-east-1", "gamma": "us-west-2"}

# Every setting at its default, as an import (which cannot read them all
# from AWS) plans it.
def resource_block(label: str, name: str, region: str | None = None) -> str:
    region_line = f'\n  region = "{region}"' if region else ""
    return f'resource "idis_environment" "{label}" {{\n  name = "{name}"{region_line}\n}}\n'


@pytest.fixture(scope="module")
def proxy(moto):
    """One proxy for the module: what it plays of AWS (EKS add-ons) is seen
    by every directory, as one AWS account would be."""
    moto.reset()
    p = _proxy_in_front_of(moto)
    yield p
    _stop_proxy(moto, p)


@pytest.fixture(scope="module")
def made(tmp_path_factory, terraform_rc, proxy):
    """The three environments, applied once for the module."""
    root = tmp_path_factory.mktemp("made")
    tf = Terraform(root, terraform_rc, proxy.endpoint)
    tf.env["IDIS_POLL_INTERVAL_MS"] = "50"
    body = "".join(
        resource_block(name, name, region if region != "us-east-1" else None)
        for name, region in ENVIRONMENTS.items()
    )
    tf.write(REQUIRED_PROVIDERS + 'provider "idis" {}\n' + body)
    tf.init()
    tf.apply(timeout=600)
    return tf


def workdir(tmp_path: Path, terraform_rc: Path, proxy, name: str) -> Terraform:
    path = tmp_path / name
    path.mkdir()
    tf = Terraform(path, terraform_rc, proxy.endpoint)
    tf.env["IDIS_POLL_INTERVAL_MS"] = "50"
    return tf


def vpc_of(aws, name: str, region: str) -> str:
    vpcs = aws("ec2", region).describe_vpcs(
        Filters=[{"Name": "tag:idis:environment", "Values": [name]}]
    )["Vpcs"]
    assert len(vpcs) == 1, vpcs
    return vpcs[0]["VpcId"]


@needs_115
def test_state_records_each_environments_identity(made):
    shown = json.loads(made.run("show", "-json").stdout)
    raw = json.loads((made.workdir / "terraform.tfstate").read_text())
    identities = {
        r["name"]: (r["instances"][0].get("identity"), r["instances"][0].get("identity_schema_version"))
        for r in raw["resources"]
    }
    assert identities == {
        name: ({"name": name, "region": region}, 0) for name, region in ENVIRONMENTS.items()
    }, identities
    assert {r["name"] for r in shown["values"]["root_module"]["resources"]} == set(ENVIRONMENTS)


@needs_115
def test_import_by_identity_then_plan_is_clean(made, aws, tmp_path, terraform_rc, proxy):
    tf = workdir(tmp_path, terraform_rc, proxy, "by-identity")
    tf.write(
        REQUIRED_PROVIDERS
        + 'provider "idis" {}\n'
        + resource_block("imported", "gamma", "us-west-2")
        + """
import {
  to       = idis_environment.imported
  identity = { name = "gamma", region = "us-west-2" }
}
"""
    )
    tf.init()
    plan = tf.plan("-detailed-exitcode", check=False)
    assert plan.returncode == 2, plan.describe("plan with an import block")
    assert "1 to import, 0 to add, 0 to change, 0 to destroy" in plan.stdout, plan.stdout
    tf.apply()
    state = json.loads(tf.run("show", "-json").stdout)["values"]["root_module"]["resources"][0]["values"]
    assert state["vpc_id"] == vpc_of(aws, "gamma", "us-west-2")
    assert state["region"] == "us-west-2"
    clean = tf.plan("-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan -detailed-exitcode after import by identity")
    # The identity came from the provider, not only from the import block.
    raw = json.loads((tf.workdir / "terraform.tfstate").read_text())
    assert raw["resources"][0]["instances"][0]["identity"] == {"name": "gamma", "region": "us-west-2"}


@needs_115
def test_import_by_identity_of_a_missing_environment_names_it(made, tmp_path, terraform_rc, proxy):
    tf = workdir(tmp_path, terraform_rc, proxy, "missing")
    tf.write(
        REQUIRED_PROVIDERS
        + 'provider "idis" {}\n'
        + resource_block("ghost", "delta")
        + 'import {\n  to       = idis_environment.ghost\n  identity = { name = "delta" }\n}\n'
    )
    tf.init()
    plan = tf.plan(check=False)
    assert plan.returncode == 1, plan.describe("plan importing what does not exist")
    assert "Environment not found" in plan.stderr and '"delta"' in plan.stderr, plan.stderr


QUERY = """\
list "idis_environment" "east_ids" {
  provider = idis
  config {
    region = "us-east-1"
  }
}

list "idis_environment" "east" {
  provider         = idis
  include_resource = true
  config {
    region = "us-east-1"
  }
}
"""


@needs_115
def test_query_lists_exactly_the_environments_of_the_region_and_its_config_imports_clean(
    made, aws, tmp_path, terraform_rc, proxy
):
    tf = workdir(tmp_path, terraform_rc, proxy, "query")
    tf.write(REQUIRED_PROVIDERS + 'provider "idis" {}\n')
    tf.write(QUERY, filename="environments.tfquery.hcl")
    tf.init()
    listed = tf.run("query", "-json", env={"TF_LOG_PROVIDER": "debug"})
    results = [
        json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")
    ]
    found = [r for r in results if r.get("type") == "list_resource_found"]
    by_list: dict[str, list] = {}
    for r in found:
        identity = r["list_resource_found"]["identity"]
        by_list.setdefault(r["list_resource_found"]["address"], []).append((identity["name"], identity["region"]))
    # Exactly the two of us-east-1, with and without the resource object.
    # gamma (us-west-2) is not listed, though moto's us-east-1 tagging API
    # returns its audit bucket (S3 ARNs name no region).
    assert {k: sorted(v) for k, v in by_list.items()} == {
        "list.idis_environment.east_ids": [("alpha", "us-east-1"), ("beta", "us-east-1")],
        "list.idis_environment.east": [("alpha", "us-east-1"), ("beta", "us-east-1")],
    }, listed.stdout
    found = [r for r in found if r["list_resource_found"]["address"] == "list.idis_environment.east"]
    assert "page 1 in us-east-1: 2 new environment(s)" in listed.stderr, listed.stderr[-3000:]
    tagged = aws("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "idis:environment", "Values": ["gamma"]}]
    )["ResourceTagMappingList"]
    # What moto's us-east-1 tagging API returns of gamma: its buckets only
    # (the audit and the documents bucket), which name no region.
    arns = sorted(t["ResourceARN"] for t in tagged)
    assert "arn:aws:s3:::idis-gamma-audit-123456789012-us-west-2" in arns, arns
    assert all(arn.startswith("arn:aws:s3:::idis-gamma-") for arn in arns), arns
    for r in found:
        name = r["list_resource_found"]["identity"]["name"]
        assert r["list_resource_found"]["display_name"] == f"{name} (us-east-1)"
        values = r["list_resource_found"].get("resource_object") or {}
        assert values.get("vpc_id") == vpc_of(aws, name, "us-east-1"), r

    # Configuration from the list with the resource objects only (both
    # lists would import each environment twice).
    tf.write(QUERY[QUERY.index('list "idis_environment" "east" {'):], filename="environments.tfquery.hcl")
    generated = tf.run("query", "-generate-config-out=generated.tf")
    text = (tf.workdir / "generated.tf").read_text()
    assert text.count("import {") == 2 and text.count('resource "idis_environment"') == 2, text
    assert '"gamma"' not in text

    # The generated file in a directory of its own: imports, then plans clean.
    adopt = workdir(tmp_path, terraform_rc, proxy, "adopt")
    adopt.write(REQUIRED_PROVIDERS + 'provider "idis" {}\n')
    adopt.write(text, filename="generated.tf")
    adopt.init()
    adopt.validate()
    plan = adopt.plan("-detailed-exitcode", check=False)
    assert plan.returncode == 2 and "2 to import, 0 to add, 0 to change, 0 to destroy" in plan.stdout, (
        plan.describe("plan of the generated configuration") + "\n--- generated.tf ---\n" + text
    )
    adopt.apply()
    clean = adopt.plan("-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan after importing what query found")
    assert generated.returncode == 0


def test_plan_generate_config_out_for_an_import_block_validates_and_plans_clean(
    made, aws, tmp_path, terraform_rc, proxy
):
    tf = workdir(tmp_path, terraform_rc, proxy, "generate")
    tf.write(
        REQUIRED_PROVIDERS
        + 'provider "idis" {}\n'
        + 'import {\n  to = idis_environment.beta\n  id = "beta"\n}\n'
    )
    tf.init()
    first = tf.plan("-generate-config-out=generated.tf", check=False)
    text = (tf.workdir / "generated.tf").read_text()
    assert first.returncode == 0, first.describe("plan -generate-config-out") + "\n" + text
    assert re.search(r'resource "idis_environment" "beta"', text), text
    assert 'name   = "beta"' in text or 'name = "beta"' in text, text
    tf.validate()
    tf.apply()
    state = json.loads(tf.run("show", "-json").stdout)["values"]["root_module"]["resources"][0]["values"]
    assert state["vpc_id"] == vpc_of(aws, "beta", "us-east-1")
    clean = tf.plan("-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan after importing with generated config") + "\n" + text
