"""Recovery drills (issue 17 part 4) and the point-in-time window (part 5).

On Terraform 1.15 (`IDIS_TERRAFORM=1.15`): `terraform apply
-invoke=action.idis_restore_check.weekly` restores the database into a
temporary instance, reports, and leaves none behind, also when
interrupted with SIGINT mid-wait; `idis_failover_drill` calls RebootDBInstance
with ForceFailover and TestFailover exactly once each (the proxy's
journal) and reports both times; a drill refuses an environment that is
not steady. On 1.11: the same restore check through the provider binary's
`drill` subcommand. On both: a backup retention below 7 days warns at
plan.

AWS state is checked with boto3 against moto directly. The proxy plays
AWS where moto does not (awsproxy.py, `_drill_request`, `_drill_answer`,
`_test_failover`): a restored instance is `creating` for its first reads,
a forced failover `rebooting` / `modifying`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import (
    AWS_ACCESS_KEY_ID,
    AWS_REGION,
    AWS_SECRET_ACCESS_KEY,
    REPO_ROOT,
    REQUIRED_PROVIDERS,
    TERRAFORM_115,
    Terraform,
    _kill_group,
    _live_process_groups,
    _proxy_in_front_of,
    _stop_proxy,
    terraform_argv,
)

NAME = "drill"
SOURCE = f"idis-{NAME}-db"
TEMPORARY = f"idis-{NAME}-restore-check-"
ACTIONS = REQUIRED_PROVIDERS + f"""
provider "idis" {{}}

action "idis_restore_check" "weekly" {{
  config {{
    environment    = "{NAME}"
    instance_class = "db.t4g.medium"
  }}
}}

action "idis_failover_drill" "quarterly" {{
  config {{
    environment = "{NAME}"
  }}
}}
"""

needs_actions = pytest.mark.skipif(not TERRAFORM_115, reason="actions need Terraform 1.14+ (IDIS_TERRAFORM=1.15)")
only_111 = pytest.mark.skipif(TERRAFORM_115, reason="the 1.11 alternative (the drill subcommand) runs once, on 1.11")


@pytest.fixture(scope="module")
def proxy(moto):
    moto.reset()
    p = _proxy_in_front_of(moto)
    yield p
    _stop_proxy(moto, p)


@pytest.fixture(scope="module")
def environment(tmp_path_factory, terraform_rc, proxy):
    tf = Terraform(tmp_path_factory.mktemp("env"), terraform_rc, proxy.endpoint)
    tf.env["IDIS_POLL_INTERVAL_MS"] = "50"
    tf.write(REQUIRED_PROVIDERS + f'provider "idis" {{}}\nresource "idis_environment" "env" {{\n  name = "{NAME}"\n}}\n')
    tf.init()
    tf.apply(timeout=600)
    return tf


@pytest.fixture
def drills(environment, tmp_path, terraform_rc, proxy):
    """A working directory holding only the action blocks; the proxy
    journals calls from here on."""
    proxy.finish_creating()
    tf = Terraform(tmp_path / "drills", terraform_rc, proxy.endpoint)
    tf.workdir.mkdir()
    tf.env["IDIS_POLL_INTERVAL_MS"] = "50"
    tf.write(ACTIONS)
    tf.init()
    with proxy._lock:
        proxy.journal.clear()
        proxy.calls.clear()  # `requests()` reads them
    proxy.record = True
    yield tf
    proxy.record = False
    proxy.finish_creating()


def temporaries(aws) -> list[str]:
    return [d["DBInstanceIdentifier"] for d in aws("rds").describe_db_instances()["DBInstances"]
            if d["DBInstanceIdentifier"].startswith(TEMPORARY)]


def journaled(proxy, service: str, operation: str) -> int:
    with proxy._lock:
        return sum(1 for e in proxy.journal if e.service == service and e.operation == operation)


def result_line(text: str, kind: str) -> dict[str, str]:
    lines = re.findall(rf"{kind} env=\S+.*", text)
    assert len(lines) == 1, f"expected one {kind} line:\n{text[-4000:]}"
    return dict(pair.split("=", 1) for pair in lines[0].strip().rstrip('"').split()[1:])


@pytest.mark.both_clis
@needs_actions
def test_restore_check_restores_into_a_temporary_instance_reports_and_deletes_it(drills, proxy, aws):
    proxy.creating_reads = {"rds": 3}
    run = drills.apply("-invoke=action.idis_restore_check.weekly", timeout=300)
    out = run.stdout

    line = result_line(out, "restore_check")
    assert line["env"] == NAME and line["region"] == AWS_REGION and line["ok"] == "true", out
    assert float(line["restore_seconds"]) > 0, out
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", line["restore_point"]), out
    assert line["instance"].startswith(TEMPORARY), out
    # Progress streamed while it waited (the proxy keeps it creating).
    assert f"{line['instance']}: creating" in out and "match the source" in out, out

    restores = proxy.requests("rds", "RestoreDBInstanceToPointInTime")
    assert journaled(proxy, "rds", "RestoreDBInstanceToPointInTime") == 1 and len(restores) == 1
    asked = restores[0]
    assert asked["SourceDBInstanceIdentifier"] == SOURCE
    assert asked["TargetDBInstanceIdentifier"] == line["instance"]
    assert asked["UseLatestRestorableTime"] == "true" and asked["DBInstanceClass"] == "db.t4g.medium"
    assert asked["MultiAZ"] == "false" and asked["DeletionProtection"] == "false"
    tags = {asked[k]: asked[k.replace(".Key", ".Value")] for k in asked if re.fullmatch(r"Tags\.Tag\.\d+\.Key", k)}
    assert tags["idis:drill"] == "restore-check" and tags["idis:environment"] == NAME, asked
    deletes = proxy.requests("rds", "DeleteDBInstance")
    assert [d["DBInstanceIdentifier"] for d in deletes] == [line["instance"]], deletes
    assert deletes[0]["SkipFinalSnapshot"] == "true"

    # AWS (moto, asked directly): no temporary instance, the source untouched.
    assert temporaries(aws) == []
    source = aws("rds").describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]
    assert source["DBInstanceStatus"] == "available" and source["MultiAZ"] is True


@pytest.mark.both_clis
@needs_actions
def test_restore_check_interrupted_mid_wait_still_deletes_the_temporary_instance(drills, proxy, aws):
    proxy.creating_reads = {"rds": 10**6}  # the restore never finishes
    log = drills.workdir / "invoke.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*terraform_argv(), "apply", "-no-color", "-input=false", "-auto-approve",
             "-invoke=action.idis_restore_check.weekly"],
            cwd=drills.workdir, env=drills.env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    _live_process_groups.add(proc.pid)
    try:
        deadline = time.monotonic() + 120
        while not temporaries(aws):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no temporary instance appeared:\n" + log.read_text()
            time.sleep(0.2)
        time.sleep(1.0)  # well inside the wait for it
        assert proc.poll() is None, log.read_text()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
        code = proc.wait(timeout=120)
    finally:
        _kill_group(proc.pid)
        _live_process_groups.discard(proc.pid)
    text = log.read_text()
    assert code != 0, text
    assert temporaries(aws) == [], text
    assert journaled(proxy, "rds", "RestoreDBInstanceToPointInTime") == 1, text
    deletes = [d["DBInstanceIdentifier"] for d in proxy.requests("rds", "DeleteDBInstance")]
    assert journaled(proxy, "rds", "DeleteDBInstance") == 1
    assert len(deletes) == 1 and deletes[0].startswith(TEMPORARY), deletes
    flat = " ".join(text.split())
    assert "idis_restore_check: stopped" in flat and "was deleted" in flat, text
    assert "TERRAFORM CRASH" not in text, text
    assert aws("rds").describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["DBInstanceStatus"] == "available"


@pytest.mark.both_clis
@needs_actions
def test_failover_drill_fails_over_database_and_cache_once_each_and_reports_times(drills, proxy, aws):
    run = drills.apply("-invoke=action.idis_failover_drill.quarterly", timeout=300)
    out = run.stdout
    line = result_line(out, "failover_drill")
    assert line["ok"] == "true" and line["env"] == NAME, out
    assert float(line["database_failover_seconds"]) > 0 and float(line["cache_failover_seconds"]) > 0, out
    assert f"{SOURCE} rebooting" in out and "modifying" in out, out

    assert journaled(proxy, "rds", "RebootDBInstance") == 1
    assert journaled(proxy, "elasticache", "TestFailover") == 1
    reboot = proxy.requests("rds", "RebootDBInstance")
    assert reboot == [{**reboot[0], "DBInstanceIdentifier": SOURCE, "ForceFailover": "true"}], reboot
    failover = proxy.requests("elasticache", "TestFailover")
    assert failover[0]["ReplicationGroupId"] == f"idis-{NAME}-cache" and failover[0]["NodeGroupId"], failover
    # Both serve again (moto, directly).
    assert aws("rds").describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["DBInstanceStatus"] == "available"
    group = aws("elasticache").describe_replication_groups(ReplicationGroupId=f"idis-{NAME}-cache")["ReplicationGroups"][0]
    assert group["Status"] == "available" and group["AutomaticFailover"] == "enabled"


@pytest.mark.both_clis
@needs_actions
def test_a_drill_refuses_an_environment_that_is_not_steady(drills, proxy, aws):
    # The database reads as rebooting (a change in progress) for a while.
    with proxy._lock:
        proxy._creating[("rds-reboot", AWS_REGION, SOURCE)] = 10**6
    try:
        run = drills.apply("-invoke=action.idis_failover_drill.quarterly", check=False, timeout=300)
    finally:
        with proxy._lock:
            proxy._creating.pop(("rds-reboot", AWS_REGION, SOURCE), None)
    text = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 1, run.describe("invoke against a rebooting database")
    assert "not ready for a failover drill" in text and f'Database {SOURCE} is "rebooting"' in text, text
    assert journaled(proxy, "rds", "RebootDBInstance") == 0
    assert journaled(proxy, "elasticache", "TestFailover") == 0


@pytest.mark.both_clis
def test_a_backup_retention_below_seven_days_warns_that_the_pitr_window_is_not_met(tmp_path, terraform_rc, proxy):
    tf = Terraform(tmp_path / "short", terraform_rc, proxy.endpoint)
    tf.workdir.mkdir()
    tf.write(REQUIRED_PROVIDERS + 'provider "idis" {}\nresource "idis_environment" "env" {\n'
             '  name = "shortpitr"\n  database {\n    backup_retention_days = 3\n  }\n}\n')
    tf.init()
    plan = tf.plan()
    text = " ".join((plan.stdout + plan.stderr).split())
    assert "Warning: Point-in-time recovery window below 7 days" in text, text
    assert "database.backup_retention_days = 3" in text and "REQ-T236" in text, text
    tf.write(REQUIRED_PROVIDERS + 'provider "idis" {}\nresource "idis_environment" "env" {\n  name = "shortpitr"\n}\n')
    assert "Point-in-time recovery" not in tf.plan().stdout


@only_111
def test_the_drill_subcommand_runs_the_restore_check_for_terraform_1_11(environment, proxy, aws, provider_binary):
    proxy.creating_reads = {"rds": 2}
    with proxy._lock:
        proxy.journal.clear()
        proxy.calls.clear()
    proxy.record = True
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_", "PLUGIN_"))}
    env.update(AWS_ENDPOINT_URL=proxy.endpoint, AWS_REGION=AWS_REGION, AWS_ACCESS_KEY_ID=AWS_ACCESS_KEY_ID,
               AWS_SECRET_ACCESS_KEY=AWS_SECRET_ACCESS_KEY, AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               IDIS_POLL_INTERVAL_MS="50")
    try:
        run = subprocess.run([str(provider_binary), "drill", "restore-check", "--environment", NAME],
                             env=env, capture_output=True, text=True, timeout=300)
    finally:
        proxy.record = False
        proxy.finish_creating()
    assert run.returncode == 0, run.stdout + run.stderr
    # The result line alone on stdout; progress on stderr.
    assert run.stdout.count("\n") == 1, run.stdout
    line = result_line(run.stdout, "restore_check")
    assert line["ok"] == "true" and float(line["restore_seconds"]) > 0, run.stdout
    assert "creating" in run.stderr and "deleted" in run.stderr, run.stderr
    assert journaled(proxy, "rds", "RestoreDBInstanceToPointInTime") == 1
    assert temporaries(aws) == []


@pytest.mark.both_clis
@needs_actions
def test_the_drills_example_validates_and_its_workflow_schedules_both_drills(tmp_path, terraform_rc, proxy):
    yaml = pytest.importorskip("yaml")
    example = REPO_ROOT / "examples" / "drills"
    tf = Terraform(tmp_path / "drills-example", terraform_rc, proxy.endpoint)
    shutil.copytree(example, tf.workdir)
    # The mirror serves the provider at the tests' version.
    tf.write((example / "main.tf").read_text().replace('source = "idis/idis"', 'source  = "idis/idis"\n      version = "0.1.0"'))
    tf.init()
    tf.validate()

    workflow = yaml.safe_load((REPO_ROOT / "examples" / "drift-detection" / "drills.yml").read_text())
    crons = [s["cron"] for s in workflow[True]["schedule"]]  # YAML 1.1 reads `on` as true
    assert len(crons) == 2
    weekly, quarterly = crons
    assert weekly.split()[2:] == ["*", "*", "1"], weekly
    assert quarterly.split()[3] == "1,4,7,10", quarterly
    job = workflow["jobs"]["drill"]
    assert f"'{quarterly}'" in job["env"]["ACTION"] and "action.idis_failover_drill.quarterly" in job["env"]["ACTION"]
    assert "action.idis_restore_check.weekly" in job["env"]["ACTION"]
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'terraform apply -input=false -auto-approve' in runs and '-invoke="$ACTION"' in runs
    versions = [s["with"]["terraform_version"] for s in job["steps"] if s.get("uses", "").startswith("hashicorp/setup-terraform")]
    assert versions and tuple(int(x) for x in versions[0].split(".")[:2]) >= (1, 14)
