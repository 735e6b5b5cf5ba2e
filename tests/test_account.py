"""`data "idis_account"` end to end: the real Terraform CLI, the provider, moto."""

import re
import time

import pytest

from conftest import REQUIRED_PROVIDERS as TERRAFORM_BLOCK

ACCOUNT_WITH_OUTPUTS = """\
data "idis_account" "this" {}

output "account_id"            { value = data.idis_account.this.account_id }
output "partition"             { value = data.idis_account.this.partition }
output "region"                { value = data.idis_account.this.region }
output "availability_zones"    { value = data.idis_account.this.availability_zones }
output "availability_zone_ids" { value = data.idis_account.this.availability_zone_ids }
output "id"                    { value = data.idis_account.this.id }
"""

# No arguments: endpoint, region and credentials all come from the environment.
PROVIDER_FROM_ENVIRONMENT = 'provider "idis" {}\n'


def account_config(provider_block: str = PROVIDER_FROM_ENVIRONMENT) -> str:
    return "\n".join([TERRAFORM_BLOCK, provider_block, ACCOUNT_WITH_OUTPUTS])


def usable_zones_sorted_by_name(ec2) -> list[dict]:
    """The region's available availability zones (no Local or Wavelength Zones), by name."""
    zones = [
        zone
        for zone in ec2.describe_availability_zones()["AvailabilityZones"]
        if zone["State"] == "available" and zone["ZoneType"] == "availability-zone"
    ]
    return sorted(zones, key=lambda zone: zone["ZoneName"])


def test_init_installs_the_provider_from_the_local_mirror_offline(terraform):
    terraform.write(account_config())

    result = terraform.init()

    assert "idis/idis v0.1.0" in result.stdout, result.describe("terraform init")
    lock = terraform.lock_file.read_text()
    assert 'provider "registry.terraform.io/idis/idis"' in lock, lock
    assert re.search(r'version\s*=\s*"0\.1\.0"', lock), lock
    installed = terraform.workdir / ".terraform/providers/registry.terraform.io/idis/idis/0.1.0/linux_amd64"
    assert installed.is_dir(), f"{installed} missing after init"


def test_validate_accepts_the_account_data_source(terraform):
    terraform.write(account_config())
    terraform.init()

    result = terraform.validate()

    assert "Success!" in result.stdout, result.describe("terraform validate")


def test_account_data_source_matches_sts_and_ec2(terraform, aws):
    # `provider "idis" {}` with no arguments: the environment alone is enough.
    terraform.write(account_config())
    terraform.init()
    terraform.apply()

    outputs = terraform.output_json()

    assert outputs["account_id"] == aws("sts").get_caller_identity()["Account"]
    assert outputs["partition"] == "aws"
    assert outputs["region"] == "us-east-1"
    assert isinstance(outputs["id"], str) and outputs["id"], outputs

    # Zones are listed sorted by name; the ids list is aligned with the names
    # list (ids[i] is the id of zones[i]), as in the AWS provider.
    zones = usable_zones_sorted_by_name(aws("ec2"))
    assert len(zones) >= 3, zones
    assert outputs["availability_zones"] == [zone["ZoneName"] for zone in zones]
    assert outputs["availability_zone_ids"] == [zone["ZoneId"] for zone in zones]


def test_plan_after_apply_reports_no_changes(terraform):
    terraform.write(account_config())
    terraform.init()
    terraform.apply()

    result = terraform.plan("-detailed-exitcode", check=False)

    assert result.returncode == 0, result.describe("terraform plan -detailed-exitcode")
    assert "No changes" in result.stdout, result.describe("terraform plan -detailed-exitcode")


def test_provider_region_argument_overrides_the_environment(terraform, aws):
    terraform.write(account_config('provider "idis" {\n  region = "eu-west-1"\n}\n'))
    terraform.init()
    terraform.apply()

    outputs = terraform.output_json()

    assert outputs["region"] == "eu-west-1"
    zones = usable_zones_sorted_by_name(aws("ec2", region="eu-west-1"))
    assert outputs["availability_zones"] == [zone["ZoneName"] for zone in zones]
    assert outputs["availability_zone_ids"] == [zone["ZoneId"] for zone in zones]


@pytest.mark.parametrize("endpoint_from", ["provider_block", "environment"])
def test_unreachable_endpoint_fails_plan_quickly_and_says_so(
    terraform, closed_port, endpoint_from
):
    closed_endpoint = f"http://127.0.0.1:{closed_port}"
    if endpoint_from == "provider_block":
        provider_block = f'provider "idis" {{\n  endpoint_url = "{closed_endpoint}"\n}}\n'
    else:
        provider_block = PROVIDER_FROM_ENVIRONMENT
        terraform.env["AWS_ENDPOINT_URL"] = closed_endpoint
    terraform.write(account_config(provider_block))
    terraform.init()

    started = time.monotonic()
    result = terraform.plan(check=False, timeout=120)
    elapsed = time.monotonic() - started

    context = result.describe("terraform plan")
    assert result.returncode == 1, context
    assert elapsed < 60, f"took {elapsed:.1f} s\n{context}"
    # Terraform wraps diagnostics, so compare with the line breaks folded.
    stderr = " ".join(result.stderr.split())
    assert str(closed_port) in stderr, context
    assert re.search(r"unreachable|cannot reach|connect", stderr, re.IGNORECASE), context
