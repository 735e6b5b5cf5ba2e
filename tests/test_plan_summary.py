"""The pull request plan summary (tools/plan_summary.py) on a real plan of
examples/production whose change the provider warns about."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, Terraform, _clean_environment, run_command
from fake_gh import FakeGh

TOOL = REPO_ROOT / "tools" / "plan_summary.py"
ADDRESS = "module.idis_production.idis_environment.this"



def plan_summary(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=60,
                          env=_clean_environment())


def planned(tf: Terraform, name: str):
    """`plan -json -out` and `show -json`, as the pull request workflow runs them."""
    log = tf.plan("-json", f"-out={name}.tfplan")
    (tf.workdir / f"{name}.log").write_text(log.stdout)
    (tf.workdir / f"{name}.json").write_text(tf.run("show", "-json", f"{name}.tfplan").stdout)
    return tf.workdir / f"{name}.json", tf.workdir / f"{name}.log"


def rows(markdown: str) -> list[list[str]]:
    out = []
    for line in markdown.splitlines():
        if line.startswith("| `") :
            out.append([cell.strip().strip("`") for cell in line.strip("|").split(" | ")])
    return out


def test_a_pull_request_that_resizes_the_database_and_lowers_the_node_maximum_shows_both_warnings(production):
    production.apply()
    main_tf = production.workdir / "main.tf"
    text = main_tf.read_text()
    for old, new in [('db_instance_class   = "db.r6g.xlarge"', 'db_instance_class   = "db.r6g.2xlarge"'),
                     ("eks_node_max_count     = 10", "eks_node_max_count     = 8")]:
        assert old in text, old
        text = text.replace(old, new)
    main_tf.write_text(text)

    plan_json, plan_log = planned(production, "pr")
    result = plan_summary(str(plan_json), "--log", str(plan_log), "--title", "production")
    assert result.returncode == 0, result.stderr
    summary = result.stdout
    print(summary)

    assert summary.startswith("<!-- idis-plan-summary: production -->\n## Terraform plan: production\n")
    assert "0 to add, **1 to change**, 0 to replace, 0 to destroy." in summary
    # Every warning of the provider, summary and detail, under "Disruptive changes".
    warnings = [json.loads(line)["diagnostic"] for line in plan_log.read_text().splitlines()
                if '"type":"diagnostic"' in line]
    assert {w["summary"] for w in warnings} == {"Database instance class change", "Node group maximum lowered"}
    disruptive = summary[summary.index("### :warning: Disruptive changes (2)"):summary.index("### Changes")]
    for warning in warnings:
        assert f"**{warning['summary']}** (`{ADDRESS}`)" in disruptive
        for line in warning["detail"].strip().splitlines():
            assert line in disruptive, line
    assert "db.r6g.xlarge to db.r6g.2xlarge" in disruptive and "lowered from 10 to 8" in disruptive

    assert f"| `{ADDRESS}` | change |" in summary
    changed = rows(summary[summary.index(f"#### {ADDRESS} (change)"):])
    assert ["database.instance_class", '"db.r6g.xlarge"', '"db.r6g.2xlarge"'] in changed
    assert ["cluster.node_max_size", "10", "8"] in changed
    assert len(changed) == 2, changed

    # Cut to fit a comment: the counts and warnings stay, the note says where the rest is.
    limit = len(summary) - 60
    short = plan_summary(str(plan_json), "--log", str(plan_log), "--title", "production", "--max-length", str(limit))
    assert len(short.stdout) <= limit and disruptive in short.stdout
    assert '`"db.r6g.2xlarge"`' not in short.stdout and "full one is in the workflow run's summary" in short.stdout

    # Without the log, the summary says the warnings are missing instead of "none".
    bare = plan_summary(str(plan_json))
    assert "Warnings not shown" in bare.stdout and "Disruptive" not in bare.stdout


def test_a_plan_without_changes_says_so(production):
    production.apply()
    plan_json, plan_log = planned(production, "none")
    result = plan_summary(str(plan_json), "--log", str(plan_log))
    assert result.returncode == 0, result.stderr
    assert "0 to add, 0 to change, 0 to replace, 0 to destroy." in result.stdout
    assert "No disruptive changes: the provider gave no warning." in result.stdout
    assert "No changes. The infrastructure matches the configuration." in result.stdout


def test_a_refused_change_shows_the_error_from_the_log_alone(production):
    production.apply()
    main_tf = production.workdir / "main.tf"
    main_tf.write_text(main_tf.read_text().replace("s3_worm_enabled       = true", "s3_worm_enabled       = false"))
    failed = production.plan("-json", "-out=refused.tfplan", check=False)
    assert failed.returncode == 1, failed.describe("terraform plan -json")
    log = production.workdir / "refused.log"
    log.write_text(failed.stdout)
    # Terraform 1.11 still writes the errored plan; `show -json` marks it errored.
    shown = production.run("show", "-json", "refused.tfplan")
    plan_json = production.workdir / "refused.json"
    plan_json.write_text(shown.stdout)
    assert json.loads(shown.stdout)["errored"] is True

    for args in ([str(plan_json), "--log", str(log)], ["--log", str(log)]):
        result = plan_summary(*args, "--title", "production")
        assert result.returncode == 0, result.stderr
        assert "**The plan failed.**" in result.stdout
        errors = result.stdout[result.stdout.index("### Errors"):]
        assert "**Object Lock cannot be turned off**" in errors and "audit_storage.worm" in errors, result.stdout
        assert "No changes" not in result.stdout and "No disruptive changes" not in result.stdout


# ---------------------------------------------------------------------------
# The pull request job (examples/pr-plan): its script against moto, with a
# stand-in for `gh`.
# ---------------------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path, terraform_rc, moto, aws_proxy) -> Terraform:
    """The repository as a workflow checks it out: the drift-detection root
    configuration, the module, the tools and the pr-plan script; local state."""
    moto.reset()
    root = tmp_path / "repo"
    for part in ("modules", "tools", "examples/drift-detection", "examples/pr-plan"):
        shutil.copytree(REPO_ROOT / part, root / part)
    tf = Terraform(root / "examples" / "drift-detection", terraform_rc, aws_proxy.endpoint)
    tf.write('terraform {\n  backend "local" {}\n}\n', "backend_override.tf")
    tf.env["IDIS_POLL_INTERVAL_MS"] = "50"
    tf.init()
    return tf


def test_the_pull_request_job_posts_one_comment_per_environment_and_edits_it_on_the_next_push(checkout, tmp_path):
    tf = checkout
    gh = FakeGh(tmp_path)
    tf.apply("-var-file=production.tfvars")
    # Someone else's comment is already on the pull request.
    (gh.state / "comments.json").write_text(json.dumps([{"id": 7, "body": "LGTM"}]))
    env = gh.env({**tf.env, "PR_NUMBER": "42", "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md")})
    script = str(tf.workdir.parent / "pr-plan" / "pr-plan.sh")

    def job(*plan_args: str):
        return run_command([script, "production", "-var-file=production.tfvars", *plan_args],
                           env=env, cwd=tf.workdir, timeout=180)

    # First push: the pull request lowers the node maximum.
    first = job("-var=eks_node_max_count=8")
    assert first.returncode == 0, first.describe("pr-plan.sh")
    assert gh.commands() == ["api GET", "pr comment"], gh.calls()
    [other, ours] = gh.comments()
    assert other == {"id": 7, "body": "LGTM"}
    assert ours["body"].startswith("<!-- idis-plan-summary: production -->")
    assert "**Node group maximum lowered**" in ours["body"]
    assert "| `cluster.node_max_size` | `10` | `8` |" in ours["body"]
    assert not (tf.workdir / "plan.json").exists()

    # Second push: also a new instance class. The same comment is edited.
    second = job("-var=eks_node_max_count=8", "-var=db_instance_class=db.r6g.2xlarge")
    assert second.returncode == 0, second.describe("pr-plan.sh")
    assert gh.commands()[-2:] == ["api GET", "api PATCH"], gh.calls()
    [other, ours] = gh.comments()
    assert ours["id"] == 1001 and other["body"] == "LGTM"
    assert "### :warning: Disruptive changes (2)" in ours["body"]
    assert "**Database instance class change**" in ours["body"]

    # Third push asks for something the provider refuses: the comment shows
    # the error and the job fails.
    third = job("-var=s3_worm_enabled=false")
    assert third.returncode == 1, third.describe("pr-plan.sh")
    [_, ours] = gh.comments()
    assert "**The plan failed.**" in ours["body"] and "Object Lock cannot be turned off" in ours["body"]


def test_the_plan_workflow_runs_on_pull_requests_one_job_per_environment():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((REPO_ROOT / "examples" / "pr-plan" / "plan.yml").read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as true
    assert workflow["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    job = workflow["jobs"]["plan"]
    for environment in job["strategy"]["matrix"]["environment"]:
        assert (REPO_ROOT / "examples" / "drift-detection" / f"{environment}.tfvars").is_file()
    assert any(step.get("uses", "").startswith("aws-actions/configure-aws-credentials@") for step in job["steps"])
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "../pr-plan/pr-plan.sh ${{ matrix.environment }} -var-file=${{ matrix.environment }}.tfvars" in runs
    assert "plan -input=false -lock=false -json -out=plan.tfplan" in (REPO_ROOT / "examples" / "pr-plan" / "pr-plan.sh").read_text()


def test_a_new_environment_lists_what_the_configuration_sets(production):
    plan_json, plan_log = planned(production, "create")
    result = plan_summary(str(plan_json), "--log", str(plan_log), "--title", "production")
    assert result.returncode == 0, result.stderr
    summary = result.stdout
    assert "**1 to add**, 0 to change, 0 to replace, 0 to destroy." in summary
    created = rows(summary[summary.index(f"#### {ADDRESS} (add)"):])
    for row in (["name", "null", '"production"'], ["database.instance_class", "null", '"db.r6g.xlarge"'],
                ["cluster.node_max_size", "null", "10"], ["keys.tenants", "null", '["acme", "globex"]']):
        assert row in created, (row, summary)
    assert not [r for r in created if r[2] in ("(known after apply)", "null")], summary
    assert "more attribute(s) known after apply." in summary
