"""examples/remote-state: the production environment with its state in S3,
locked through DynamoDB, against moto. Two people apply at once: one gets
the lock, the other is refused on it, and the state in S3 stays whole.

The backend (Terraform's own S3 and DynamoDB clients) talks to moto
directly; the provider talks to moto through our proxy, whose delay table
makes the first apply slow enough for the second to arrive while it runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO_ROOT, Terraform, example_with_module

BUCKET = "idis-terraform-state"
KEY = "idis/production/terraform.tfstate"
TABLE = "idis-terraform-locks"
LOCK_ID = f"{BUCKET}/{KEY}"
DIGEST_ID = f"{LOCK_ID}-md5"
# Held in the proxy: keeps the first apply running, lock held, for a while.
SLOW_CALL = {"rds:CreateDBInstance": 12.0}


def backend_config(endpoint: str) -> str:
    """examples/remote-state/moto.s3.tfbackend, pointed at this test's moto."""
    text = (REPO_ROOT / "examples" / "remote-state" / "moto.s3.tfbackend").read_text()
    assert "http://127.0.0.1:5000" in text
    return text.replace("http://127.0.0.1:5000", endpoint)


@pytest.fixture
def two_operators(tmp_path, terraform_rc, moto, aws, aws_proxy):
    """Two checkouts of examples/remote-state (two people), both
    initialised against one bucket and one lock table in moto, created as
    the example's README says."""
    moto.reset()
    s3 = aws("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    aws("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    operators = []
    for who in ("alice", "bob"):
        tf = example_with_module(tmp_path / who, "remote-state", terraform_rc, aws_proxy.endpoint)
        (tf.workdir / "test.s3.tfbackend").write_text(backend_config(moto.endpoint))
        tf.init("-backend-config=test.s3.tfbackend")
        operators.append(tf)
    return operators


def lock_items(aws) -> dict[str, dict]:
    items = aws("dynamodb").scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {item["LockID"]["S"]: item for item in items}


def wait_for_lock(aws, running, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lock = lock_items(aws).get(LOCK_ID)
        if lock is not None:
            return lock
        assert not running.done(), "the first apply ended before taking the lock:\n" + running.result().describe("apply")
        time.sleep(0.1)
    raise AssertionError(f"no lock item {LOCK_ID!r} within {timeout} s")


def test_a_second_apply_is_refused_on_the_lock_and_the_remote_state_stays_whole(two_operators, aws, aws_proxy):
    alice, bob = two_operators
    aws_proxy.delays.update(SLOW_CALL)

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(alice.apply, check=False, timeout=300)
        lock = wait_for_lock(aws, first)
        info = json.loads(lock["Info"]["S"])
        assert info["Operation"] == "OperationTypeApply", info

        started = time.monotonic()
        second = bob.apply(check=False, timeout=120)
        refused_after = time.monotonic() - started
        assert not first.done(), "the applies did not overlap: the first had already finished"
        applied = first.result()

    assert applied.returncode == 0, applied.describe("terraform apply (alice)")
    assert second.returncode == 1, second.describe("terraform apply (bob)")
    text = " ".join(second.stderr.split())
    assert "Error acquiring the state lock" in text, second.describe("terraform apply (bob)")
    assert "ConditionalCheckFailed" in text, second.describe("terraform apply (bob)")
    # Terraform names who holds the lock, with the lock's id.
    assert info["ID"] in text, second.describe("terraform apply (bob)")
    assert aws_proxy.counters.injected_delays >= 1
    print(f"second apply refused after {refused_after:.1f} s while the first held the lock: {text[:300]}")

    # The lock is released; the digest Terraform keeps matches the object.
    items = lock_items(aws)
    assert LOCK_ID not in items, f"lock still held after both applies: {items[LOCK_ID]}"
    body = aws("s3").get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    assert items[DIGEST_ID]["Digest"]["S"] == hashlib.md5(body).hexdigest()

    # The state object is whole: one write, by the apply that held the lock.
    state = json.loads(body)
    assert state["serial"] >= 1 and state["lineage"]
    resources = [r for r in state["resources"] if r["type"] == "idis_environment"]
    assert len(resources) == 1 and resources[0]["module"] == "module.idis_production"
    attributes = resources[0]["instances"][0]["attributes"]
    assert attributes["name"] == "production"
    assert attributes["vpc_id"] in {v["VpcId"] for v in aws("ec2").describe_vpcs()["Vpcs"]}

    # No secret in the remote state object (nor in the lock table).
    sm = aws("secretsmanager")
    secrets = []
    for arn in (attributes["database_master_secret_arn"], attributes["cache_auth_secret_arn"]):
        value = sm.get_secret_value(SecretId=arn)["SecretString"]
        try:
            secrets.extend(v for v in json.loads(value).values() if isinstance(v, str) and len(v) >= 12)
        except (json.JSONDecodeError, AttributeError):
            secrets.append(value)
    assert secrets, "no secret value found to look for"
    locks = json.dumps(aws("dynamodb").scan(TableName=TABLE)["Items"])
    for secret in secrets:
        assert secret.encode() not in body, "a secret is in the remote state object"
        assert secret not in locks, "a secret is in the lock table"

    # Bob, refused before, now plans against the state Alice wrote: nothing to do.
    aws_proxy.delays.clear()
    replanned = bob.plan("-detailed-exitcode", check=False)
    assert replanned.returncode == 0, replanned.describe("terraform plan -detailed-exitcode (bob)")
    assert LOCK_ID not in lock_items(aws)
