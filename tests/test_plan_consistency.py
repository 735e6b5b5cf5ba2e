"""What the plan says is what apply does: a replacing argument that is
unknown at plan time (it comes from another resource) is planned, not
refused, and turns out unchanged in place; a change it turns out to be is
refused at apply with nothing changed. Checked with boto3 against moto."""

from __future__ import annotations

from test_environment import ENV, state_of


def _cidr_from_another_resource(tf, cidr: str) -> None:
    main = tf.workdir / "main.tf"
    text = main.read_text()
    text = text.replace('vpc_cidr    = "10.0.0.0/16"', "vpc_cidr    = terraform_data.cidr.output")
    text += f'\nresource "terraform_data" "cidr" {{\n  input = "{cidr}"\n}}\n'
    main.write_text(text)


def vpcs(aws) -> list[dict]:
    return aws("ec2").describe_vpcs(Filters=[{"Name": "tag:idis:environment", "Values": [ENV]}])["Vpcs"]


def test_an_unknown_vpc_cidr_that_turns_out_unchanged_is_applied_in_place(production, aws):
    production.apply()
    before = state_of(production)["vpc_id"]
    _cidr_from_another_resource(production, "10.0.0.0/16")
    plan = production.plan(check=False)
    assert plan.returncode == 0, plan.describe("terraform plan")
    assert "vpc_cidr" in plan.stdout and "(known after apply)" in plan.stdout, plan.stdout
    assert "must be replaced" not in plan.stdout, plan.stdout
    production.apply()
    assert [v["VpcId"] for v in vpcs(aws)] == [before]
    clean = production.plan("-detailed-exitcode", check=False)
    assert clean.returncode == 0, clean.describe("plan after the apply")


def test_an_unknown_vpc_cidr_that_turns_out_changed_is_refused_at_apply(production, aws):
    production.apply()
    before = [(v["VpcId"], v["CidrBlock"]) for v in vpcs(aws)]
    _cidr_from_another_resource(production, "10.1.0.0/16")
    # Under deletion protection the plan Terraform makes once the value is
    # known refuses the replacement.
    result = production.apply(check=False)
    assert result.returncode != 0
    assert "Change would replace the environment and its database" in result.stderr, result.stderr
    assert "network.vpc_cidr" in result.stderr, result.stderr
    assert [(v["VpcId"], v["CidrBlock"]) for v in vpcs(aws)] == before
    # Now the value is known, the plan says what it means: a replacement,
    # refused under deletion protection.
    plan = production.plan(check=False)
    assert plan.returncode == 1 and "deletion_protection" in plan.stderr, plan.describe("terraform plan")


def test_without_deletion_protection_a_late_replacement_is_not_done_behind_the_plan(production, aws):
    unprotected = ("-var", "deletion_protection=false")
    production.apply(*unprotected)
    before = [(v["VpcId"], v["CidrBlock"]) for v in vpcs(aws)]
    _cidr_from_another_resource(production, "10.1.0.0/16")
    # Planned as an update (the value was unknown); once known it would
    # replace the environment, which the plan did not say. Terraform itself
    # refuses a plan whose action changes during apply ("inconsistent final
    # plan"), before the provider is asked to apply anything (which would
    # refuse too: `orchestrate::converge`); nothing changes, and the next
    # plan shows the replacement.
    result = production.apply(*unprotected, check=False)
    assert result.returncode != 0
    assert "from Update to DeleteThenCreate" in " ".join(result.stderr.split()), result.stderr
    assert [(v["VpcId"], v["CidrBlock"]) for v in vpcs(aws)] == before
    plan = production.plan(*unprotected)
    assert "must be replaced" in plan.stdout or "forces replacement" in plan.stdout, plan.stdout
