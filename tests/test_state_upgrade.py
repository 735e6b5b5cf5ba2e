"""A state written by the 0.1.0 provider (schema version 0,
tests/fixtures/state-v0, see its README) is upgraded by this provider and,
against the environment it describes, refreshes and plans clean; a state
from a schema version this provider does not know is refused, and left
as it is.

moto keeps nothing between runs, so the test first builds the environment
the fixture describes (the same configuration, applied by this provider),
then puts the fixture in place of that state, with the identifiers AWS
generated (ids, ARNs with random parts, endpoints, the CA) swapped for the
new environment's: every one of them is paired by attribute, listed, and
must be one AWS generates. Everything else is as the 0.1.0 binary wrote
it, schema version 0 included.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO_ROOT, Terraform

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "state-v0"

# What AWS generates for an environment; nothing else may differ between
# the fixture and the environment rebuilt here.
GENERATED = {
    "vpc_id", "private_subnet_ids", "public_subnet_ids", "platform_key_arn",
    "tenant_key_arns", "cluster_endpoint", "cluster_certificate_authority_data",
    "cluster_oidc_issuer_url", "node_group_arn", "database_endpoint",
    "database_master_secret_arn", "cache_primary_endpoint", "cache_auth_secret_arn",
    "web_acl_arn", "app_config", "secret_refs",
}


# Settings whose meaning changed since 0.1.0, so that their values differ
# without AWS having generated anything: IDIS_S3_BUCKET named the audit
# bucket then and names the documents bucket now (issue 15).
MEANING_CHANGED = {"app_config.IDIS_S3_BUCKET"}


def pairs(old, new, path: str, out: dict[str, str], where: list[str]) -> None:
    """Pairs the differing strings of two values of the same shape."""
    if path in MEANING_CHANGED:
        return
    if isinstance(old, str) and isinstance(new, str):
        if old != new:
            out[old] = new
            where.append(path)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            pairs(a, b, f"{path}[{i}]", out, where)
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() & new.keys():
            pairs(old[key], new[key], f"{path}.{key}", out, where)


@pytest.fixture
def legacy(tmp_path, terraform_rc, moto) -> Terraform:
    """The fixture's environment rebuilt, and the fixture in place of its state."""
    moto.reset()
    tf = Terraform(tmp_path / "legacy", terraform_rc, moto.endpoint)
    tf.workdir.mkdir()
    tf.env["IDIS_POLL_INTERVAL_MS"] = "50"
    shutil.copy(FIXTURE / "main.tf", tf.workdir / "main.tf")
    tf.init()
    tf.apply()
    current = json.loads((tf.workdir / "terraform.tfstate").read_text())
    fixture_text = (FIXTURE / "terraform.tfstate").read_text()
    fixture = json.loads(fixture_text)
    old_attrs = fixture["resources"][0]["instances"][0]["attributes"]
    new_attrs = current["resources"][0]["instances"][0]["attributes"]
    table: dict[str, str] = {}
    where: list[str] = []
    for name in old_attrs.keys() & new_attrs.keys():
        pairs(old_attrs[name], new_attrs[name], name, table, where)
    print("identifiers swapped:", *sorted(where), sep="\n  ")
    assert {w.split(".")[0].split("[")[0] for w in where} <= GENERATED, where
    for old in sorted(table, key=len, reverse=True):
        fixture_text = fixture_text.replace(old, table[old])
    state = json.loads(fixture_text)
    assert state["resources"][0]["instances"][0]["schema_version"] == 0
    state["lineage"] = current["lineage"]
    state["serial"] = current["serial"] + 1
    (tf.workdir / "terraform.tfstate").write_text(json.dumps(state, indent=2))
    return tf


def kept(old, new, path: str, changed: list[str]) -> None:
    """Collects where `new` does not keep what `old` held: every key of a
    map with its value (new keys may be added), lists and strings equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            if value is not None:
                kept(value, new.get(key), f"{path}.{key}", changed)
    elif old != new:
        changed.append(f"{path}: {old!r} -> {new!r}")


def test_a_0_1_0_state_upgrades_and_plans_clean_against_its_environment(legacy):
    """The first refresh keeps everything the 0.1.0 state held but the
    settings whose meaning changed (CHANGELOG), and adds what this version
    makes beside it (the documents bucket, the generated secrets, the
    workload identity roles: the rebuilt environment has them, since this
    provider built it); then the plan is clean."""
    upgraded = json.loads((legacy.workdir / "terraform.tfstate").read_text())
    before = upgraded["resources"][0]["instances"][0]["attributes"]
    refresh = legacy.plan("-refresh-only", "-detailed-exitcode", check=False, env={"TF_LOG_PROVIDER": "debug"})
    assert refresh.returncode in (0, 2), refresh.describe("plan -refresh-only of the 0.1.0 state")
    legacy.apply("-refresh-only")
    after = json.loads((legacy.workdir / "terraform.tfstate").read_text())["resources"][0]["instances"][0]["attributes"]
    # IDIS_S3_BUCKET names the documents bucket now, the audit bucket has
    # IDIS_AUDIT_S3_BUCKET, and IDIS_S3_OBJECT_LOCK became
    # IDIS_AUDIT_S3_OBJECT_LOCK (issue 15).
    old_config = dict(before["app_config"])
    assert old_config.pop("IDIS_S3_BUCKET") == after["app_config"]["IDIS_AUDIT_S3_BUCKET"] == before["audit_bucket_name"]
    assert after["app_config"]["IDIS_S3_BUCKET"] == after["documents_bucket_name"]
    assert old_config.pop("IDIS_S3_OBJECT_LOCK") == after["app_config"]["IDIS_AUDIT_S3_OBJECT_LOCK"]
    before = {**before, "app_config": old_config}
    changed: list[str] = []
    kept(before, after, "", changed)
    assert changed == [], "the first refresh changed what the 0.1.0 state held:\n" + "\n".join(changed)
    plan = legacy.plan("-detailed-exitcode", check=False)
    assert plan.returncode == 0, plan.describe("plan -detailed-exitcode of the 0.1.0 state")
    # Written back, the state is of the current version, with what
    # version 0 lacked.
    raw = json.loads((legacy.workdir / "terraform.tfstate").read_text())
    instance = raw["resources"][0]["instances"][0]
    assert instance["schema_version"] == 2
    attrs = instance["attributes"]
    assert attrs["cache"]["engine"] == "redis"
    for block in ["network", "keys", "cluster", "database", "cache", "audit_storage", "edge"]:
        assert attrs[block]["enforced"], block
    assert attrs["ingress_annotations"]["alb.ingress.kubernetes.io/wafv2-acl-arn"] == attrs["web_acl_arn"]


def test_a_state_from_a_newer_schema_is_refused_and_left_alone(legacy):
    """Terraform itself refuses a state whose schema version is above the
    provider's, before asking it anything (the provider's own refusal,
    "Schema written by a newer provider" with both versions, is shown over
    gRPC by provider/tests/grpc_protocol_510.rs)."""
    path = legacy.workdir / "terraform.tfstate"
    raw = json.loads(path.read_text())
    raw["resources"][0]["instances"][0]["schema_version"] = 9
    path.write_text(json.dumps(raw))
    before = path.read_text()
    for args in (["plan"], ["plan", "-refresh-only"], ["apply", "-auto-approve"]):
        run = legacy.run(*args, "-input=false", check=False)
        assert run.returncode == 1, run.describe(" ".join(args))
        text = " ".join(run.stderr.split())
        assert "Resource instance managed by newer provider version" in text, run.stderr
        assert "idis_environment.legacy was created by a newer provider version" in text, run.stderr
    assert path.read_text() == before
