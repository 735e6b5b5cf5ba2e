"""The drift report (tools/drift_report.py) on real refresh-only plans of
examples/production: what a daily drift job posts to an issue."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Terraform, _clean_environment, run_command
from fake_gh import FakeGh

TOOL = REPO_ROOT / "tools" / "drift_report.py"
ENV = "production"
PREFIX = f"idis-{ENV}"
ADDRESS = "module.idis_production.idis_environment.this"



def refresh_only_plan_json(tf: Terraform, name: str) -> tuple[int, Path]:
    """`plan -refresh-only -detailed-exitcode -out`, then `show -json`, as the drift job does."""
    plan = tf.plan("-refresh-only", "-detailed-exitcode", f"-out={name}.tfplan", check=False)
    assert plan.returncode in (0, 2), plan.describe("terraform plan -refresh-only")
    path = tf.workdir / f"{name}.json"
    path.write_text(tf.run("show", "-json", f"{name}.tfplan").stdout)
    if os.environ.get("IDIS_KEEP_PLAN_JSON"):
        shutil.copy(path, Path(os.environ["IDIS_KEEP_PLAN_JSON"]) / path.name)
    return plan.returncode, path


def drift_report(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Runs tools/drift_report.py as the drift job does."""
    return subprocess.run([sys.executable, str(TOOL), *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=_clean_environment())


def table_rows(markdown: str) -> list[list[str]]:
    """The data rows of every Markdown table: cells without the inline-code ticks."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| attribute") and not line.startswith("|---"):
            rows.append([cell.strip().strip("`") for cell in line.strip("|").split(" | ")])
    return rows


def sections(markdown: str) -> dict[str, list[str]]:
    """Component heading -> attribute paths listed under it."""
    out: dict[str, list[str]] = {}
    current = None
    for line in markdown.splitlines():
        if line.startswith("#### "):
            current = line[5:].strip()
            out[current] = []
        elif current and line.startswith("| `"):
            out[current].append(line.split(" | ")[0].strip("| `"))
    return out


def test_three_attributes_drifted_in_two_components_are_reported_with_both_values(production, aws):
    production.apply()

    # Right after apply: nothing drifted, the report is one line.
    code, clean = refresh_only_plan_json(production, "clean")
    assert code == 0
    quiet = drift_report(str(clean))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "No drift: 1 environment checked.\n", quiet.stdout

    # Three changes behind Terraform's back, in the database and the cluster.
    aws("rds").modify_db_instance(DBInstanceIdentifier=f"{PREFIX}-db", BackupRetentionPeriod=7,
                                  MultiAZ=False, ApplyImmediately=True)
    aws("eks").update_nodegroup_config(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default",
                                       scalingConfig={"minSize": 2, "maxSize": 10, "desiredSize": 3})

    code, drifted = refresh_only_plan_json(production, "drift")
    assert code == 2
    result = drift_report("--detailed-exitcode", str(drifted))
    assert result.returncode == 2, result.stderr
    report = result.stdout
    print(report)

    assert sorted(table_rows(report)) == sorted([
        ["database.backup_retention_days", "30", "7"],
        ["database.multi_az", "true", "false"],
        ["cluster.node_min_size", "3", "2"],
    ]), report
    assert sections(report) == {
        "cluster": ["cluster.node_min_size"],
        "database": ["database.backup_retention_days", "database.multi_az"],
    }, report
    assert f"### {ENV}" in report and ADDRESS in report

    # The same plan through stdin, and both plans in one report.
    piped = drift_report(stdin=drifted.read_text())
    assert piped.returncode == 0 and table_rows(piped.stdout) == table_rows(report)
    both = drift_report(str(clean), str(drifted))
    assert both.returncode == 0
    assert sorted(table_rows(both.stdout)) == sorted(table_rows(report))
    assert "3 drifted attributes in 1 of 2 environments checked" in both.stdout, both.stdout


def test_a_setting_without_a_knob_is_reported_in_words_under_its_component(production, aws):
    production.apply()
    bucket = production.output_json()["audit_bucket_name"]
    aws("s3").delete_public_access_block(Bucket=bucket)
    code, drifted = refresh_only_plan_json(production, "public")
    assert code == 2
    result = drift_report(str(drifted))
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert [r for r in rows if r[0].startswith("audit_storage.enforced")] == [
        ["audit_storage.enforced.public_access_block", '"all public access blocked"', '"removed"'],
    ], result.stdout
    assert sections(result.stdout) == {"audit_storage": ["audit_storage.enforced.public_access_block"]}, result.stdout


# ---------------------------------------------------------------------------
# Small hand-written plans: what real runs here do not produce (sensitive
# values, a resource deleted outside Terraform, module instances).
# ---------------------------------------------------------------------------


def plan_with(drift: list[dict], environments: list[str]) -> dict:
    """The parts of `terraform show -json` the tool reads, in Terraform 1.11's shape."""
    resources = [
        {"address": f'module.idis["{name}"].idis_environment.this', "mode": "managed",
         "type": "idis_environment", "name": "this", "values": {"name": name}}
        for name in environments
    ]
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "planned_values": {"root_module": {}},
        "resource_drift": drift,
        "prior_state": {"values": {"root_module": {"child_modules": [{"resources": resources}]}}},
    }


def drifted(name: str, before: dict, after: dict | None, before_sensitive=None, after_sensitive=None) -> dict:
    return {
        "address": f'module.idis["{name}"].idis_environment.this',
        "module_address": f'module.idis["{name}"]',
        "mode": "managed", "type": "idis_environment", "name": "this",
        "change": {"actions": ["update"] if after is not None else ["delete"], "before": before, "after": after,
                   "after_unknown": {}, "before_sensitive": before_sensitive or {}, "after_sensitive": after_sensitive or {}},
    }


def test_sensitive_values_are_never_printed_and_computed_attributes_sit_under_their_component(tmp_path):
    before = {"name": "staging", "database_endpoint": "old.example", "tags": {"team": "core", "token": "s3cr3t-old"},
              "cache": {"node_type": "cache.r7g.large"}}
    after = {"name": "staging", "database_endpoint": "new.example", "tags": {"team": "core", "token": "s3cr3t-new"},
             "cache": {"node_type": "cache.r7g.xlarge"}}
    sensitive = {"tags": {"token": True}}
    plan = tmp_path / "staging.json"
    plan.write_text(json.dumps(plan_with([drifted("staging", before, after, sensitive, sensitive)], ["staging"])))

    result = drift_report(str(plan))
    assert result.returncode == 0, result.stderr
    assert "s3cr3t" not in result.stdout
    assert sorted(table_rows(result.stdout)) == sorted([
        ["database_endpoint", '"old.example"', '"new.example"'],
        ["tags.token", "(sensitive)", "(sensitive)"],
        ["cache.node_type", '"cache.r7g.large"', '"cache.r7g.xlarge"'],
    ]), result.stdout
    assert sections(result.stdout) == {"environment": ["tags.token"], "database": ["database_endpoint"],
                                       "cache": ["cache.node_type"]}, result.stdout


def test_plans_of_several_environments_make_one_report_and_a_deleted_one_is_named(tmp_path):
    staging = tmp_path / "staging.json"
    staging.write_text(json.dumps(plan_with(
        [drifted("staging", {"name": "staging", "edge": {"rate_limit": 2000}}, {"name": "staging", "edge": {"rate_limit": 100000}})],
        ["staging"])))
    sandbox = tmp_path / "sandbox.json"
    # Gone from AWS: the refreshed (prior) state no longer holds it.
    sandbox.write_text(json.dumps(plan_with([drifted("sandbox", {"name": "sandbox"}, None)], [])))
    production = tmp_path / "production.json"
    production.write_text(json.dumps(plan_with([], ["production"])))

    result = drift_report("--detailed-exitcode", str(staging), str(sandbox), str(production))
    assert result.returncode == 2, result.stderr
    out = result.stdout
    assert "2 drifted attributes in 2 of 3 environments checked: sandbox, staging." in out, out
    assert out.index("### sandbox") < out.index("### staging")
    assert sorted(table_rows(out)) == sorted([
        ["edge.rate_limit", "2000", "100000"],
        ["(whole resource)", "present", "absent (deleted outside Terraform)"],
    ]), out
    assert f'`module.idis["staging"].idis_environment.this` in `{staging}`' in out

    quiet = drift_report(str(production), str(production))
    assert quiet.stdout == "No drift: 2 environments checked.\n"


def test_what_is_not_plan_json_is_refused_with_what_to_give_instead(tmp_path):
    binary_plan = tmp_path / "drift.tfplan"
    binary_plan.write_bytes(b"PK\x03\x04\xff\xfe not json")
    result = drift_report(str(binary_plan))
    assert result.returncode == 1
    assert "terraform show -json" in result.stderr and str(binary_plan) in result.stderr
    state = tmp_path / "terraform.tfstate"
    state.write_text(json.dumps({"version": 4, "format_version": "1.0", "resources": []}))
    assert "not a plan" in drift_report(str(state)).stderr
    assert "missing.json" in drift_report(str(tmp_path / "missing.json")).stderr
    assert "--detailed-exitcode" in drift_report("--help").stdout


# ---------------------------------------------------------------------------
# The daily drift job (examples/drift-detection): its script against moto,
# with a stand-in for `gh`.
# ---------------------------------------------------------------------------

DRIFT_EXAMPLE = REPO_ROOT / "examples" / "drift-detection"


@pytest.fixture
def drift_job(tmp_path, terraform_rc, moto, aws_proxy) -> Terraform:
    """examples/drift-detection with the module and tools beside it, as in a
    checkout; local state instead of the S3 backend (an override file)."""
    moto.reset()
    root = tmp_path / "repo"
    for part in ("modules", "tools", "examples/drift-detection"):
        shutil.copytree(REPO_ROOT / part, root / part)
    tf = Terraform(root / "examples" / "drift-detection", terraform_rc, aws_proxy.endpoint)
    tf.write('terraform {\n  backend "local" {}\n}\n', "backend_override.tf")
    tf.env["IDIS_POLL_INTERVAL_MS"] = "50"
    tf.init()
    return tf


def test_the_drift_job_opens_updates_and_closes_the_issue_and_fails_on_errors(drift_job, aws, tmp_path, closed_port):
    tf = drift_job
    gh = FakeGh(tmp_path)
    tf.apply("-var-file=production.tfvars")
    summary = tmp_path / "step-summary.md"
    env = gh.env({**tf.env, "RUN_URL": "https://ci.example/run/1", "GITHUB_STEP_SUMMARY": str(summary)})

    def job():
        return run_command([str(tf.workdir / "drift-check.sh"), "production", "-var-file=production.tfvars"],
                           env=env, cwd=tf.workdir, timeout=180)

    clean = job()
    assert clean.returncode == 0, clean.describe("drift-check.sh")
    assert gh.commands() == ["issue list"], gh.calls()
    assert not (tf.workdir / "drift.md").exists()

    aws("rds").modify_db_instance(DBInstanceIdentifier=f"{PREFIX}-db", BackupRetentionPeriod=7, ApplyImmediately=True)
    aws("eks").update_nodegroup_config(clusterName=PREFIX, nodegroupName=f"{PREFIX}-default",
                                       scalingConfig={"minSize": 2, "maxSize": 10, "desiredSize": 3})
    drifted = job()
    assert drifted.returncode == 0, drifted.describe("drift-check.sh")
    [issue] = gh.issues()
    assert issue["title"] == "Drift: production" and issue["labels"] == ["drift"]
    assert sorted(table_rows(issue["body"])) == sorted([
        ["database.backup_retention_days", "30", "7"], ["cluster.node_min_size", "3", "2"]]), issue["body"]
    print(issue["body"])
    assert issue["body"].startswith("## Drift in production")
    assert summary.read_text() == issue["body"]
    assert not (tf.workdir / "drift.json").exists(), "the plan JSON (may hold sensitive values) is left behind"

    # The next day, still drifted: the open issue is updated, not duplicated.
    again = job()
    assert again.returncode == 0, again.describe("drift-check.sh")
    assert len(gh.issues()) == 1
    assert gh.commands()[-3:] == ["issue list", "issue edit", "issue comment"], gh.commands()
    assert "https://ci.example/run/1" in gh.calls()[-1]["body"]

    # Repaired: the issue is closed.
    tf.apply("-var-file=production.tfvars")
    repaired = job()
    assert repaired.returncode == 0, repaired.describe("drift-check.sh")
    assert gh.commands()[-2:] == ["issue list", "issue close"] and gh.issues() == []

    # AWS unreachable: the job fails and touches no issue.
    calls = len(gh.calls())
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{closed_port}"
    broken = job()
    assert broken.returncode == 1, broken.describe("drift-check.sh")
    assert "terraform plan failed (exit 1) for production" in broken.stderr
    assert len(gh.calls()) == calls


def test_the_drift_workflow_runs_daily_one_job_per_environment_with_oidc():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((DRIFT_EXAMPLE / "drift.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert "workflow_dispatch" in triggers and len(triggers["schedule"]) == 1
    minute, hour, day, month, weekday = triggers["schedule"][0]["cron"].split()
    assert (day, month, weekday) == ("*", "*", "*") and hour.isdigit() and minute.isdigit()
    assert workflow["permissions"]["id-token"] == "write" and workflow["permissions"]["issues"] == "write"
    job = workflow["jobs"]["drift"]
    environments = job["strategy"]["matrix"]["environment"]
    assert job["strategy"]["fail-fast"] is False
    for environment in environments:
        assert (DRIFT_EXAMPLE / f"{environment}.tfvars").is_file(), environment
        assert (DRIFT_EXAMPLE / f"{environment}.s3.tfbackend").is_file(), environment
    uses = [step.get("uses", "") for step in job["steps"]]
    assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "./drift-check.sh ${{ matrix.environment }} -var-file=${{ matrix.environment }}.tfvars" in runs
    script = (DRIFT_EXAMPLE / "drift-check.sh").read_text()
    assert "plan -input=false -refresh-only -detailed-exitcode" in script
