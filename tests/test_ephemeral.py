"""Ephemeral resources on the Terraform under test (1.11 and 1.15):
`idis_cluster_auth` fed through a child module's ephemeral output into a
consumer (a local-exec provisioner, which Terraform 1.10+ lets use
ephemeral values), and `idis_database_credentials` beside it.

The consumer checks what a Kubernetes client would: the token is a
presigned STS GetCallerIdentity bound to the cluster, and STS (moto)
answers it with the caller's identity; the database URL holds the
password the RDS-managed secret holds. Neither the token nor the password
is in the state, the plan's JSON or the TF_LOG=trace output; the
provider's debug log shows Open, Renew (the token's lifetime is cut to 8 s
so the run outlasts it) and Close.
"""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from conftest import REQUIRED_PROVIDERS, Terraform, _proxy_in_front_of, _stop_proxy

pytestmark = pytest.mark.both_clis

NAME = "eph"
TOKEN_PREFIX = "k8s-aws-v1."

CHILD = REQUIRED_PROVIDERS + """
variable "name" {
  type = string
}

ephemeral "idis_cluster_auth" "this" {
  name = var.name
}

# One output per value: Terraform takes an ephemeral output only when the
# value itself is ephemeral, not an object holding ephemeral attributes.
output "host" {
  value     = ephemeral.idis_cluster_auth.this.endpoint
  ephemeral = true
}

output "token" {
  value     = ephemeral.idis_cluster_auth.this.token
  ephemeral = true
}

output "expiration" {
  value     = ephemeral.idis_cluster_auth.this.expiration
  ephemeral = true
}

output "cluster" {
  value     = ephemeral.idis_cluster_auth.this.cluster_name
  ephemeral = true
}
"""

ROOT = REQUIRED_PROVIDERS + """
provider "idis" {}

module "cluster" {
  source = "./cluster"
  name   = "%(name)s"
}

ephemeral "idis_database_credentials" "db" {
  name = "%(name)s"
}

resource "terraform_data" "consumer" {
  input = "once"

  provisioner "local-exec" {
    command = "python3 consumer.py"
    environment = {
      HOST       = module.cluster.host
      TOKEN      = module.cluster.token
      CLUSTER    = module.cluster.cluster
      EXPIRATION = module.cluster.expiration
      DB_URL     = ephemeral.idis_database_credentials.db.url
      DB_USER    = ephemeral.idis_database_credentials.db.username
      DB_SECRET  = ephemeral.idis_database_credentials.db.secret_arn
      SEEN       = "seen.json"
    }
  }
}
"""

# What a Kubernetes client (and EKS's authenticator) does with the token:
# decode it, and replay the presigned request to STS with the cluster
# header. Writes what it saw for the test; prints nothing.
CONSUMER = r'''
import base64, json, os, time, urllib.parse, urllib.request
token = os.environ["TOKEN"]
url = base64.urlsafe_b64decode(token[len("k8s-aws-v1."):] + "==").decode()
request = urllib.request.Request(url, headers={"x-k8s-aws-id": os.environ["CLUSTER"]})
with urllib.request.urlopen(request, timeout=10) as answer:
    status, body = answer.status, answer.read().decode()
seen = {k: os.environ[k] for k in ["HOST", "TOKEN", "CLUSTER", "EXPIRATION", "DB_URL", "DB_USER", "DB_SECRET"]}
seen.update(url=url, sts_status=status, sts_body=body)
open(os.environ["SEEN"], "w").write(json.dumps(seen))
time.sleep(10)  # outlive the token (8 s in this test), so Terraform renews it
'''


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
    tf.apply()
    return tf


def test_cluster_auth_feeds_a_consumer_and_no_secret_is_kept_or_logged(environment, aws, tmp_path, terraform_rc, proxy):
    tf = Terraform(tmp_path / "consumer", terraform_rc, proxy.endpoint)
    tf.workdir.mkdir()
    (tf.workdir / "cluster").mkdir()
    tf.write(CHILD, filename="cluster/main.tf")
    tf.write(ROOT % {"name": NAME})
    tf.write(CONSUMER, filename="consumer.py")
    tf.env["IDIS_CLUSTER_TOKEN_LIFETIME_SECONDS"] = "8"
    tf.init()

    plan = tf.plan("-out=tfplan", env={"TF_LOG": "trace"})
    plan_json = tf.run("show", "-json", "tfplan").stdout
    apply = tf.apply("tfplan", env={"TF_LOG": "trace"}, timeout=300)

    seen = json.loads((tf.workdir / "seen.json").read_text())
    cluster = aws("eks").describe_cluster(name=f"idis-{NAME}")["cluster"]
    assert seen["HOST"] == cluster["endpoint"]
    assert seen["CLUSTER"] == f"idis-{NAME}"
    # The token: a presigned GetCallerIdentity with the cluster header
    # signed in it, which STS answers with the caller.
    token = seen["TOKEN"]
    assert token.startswith(TOKEN_PREFIX) and "=" not in token
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(seen["url"]).query)
    assert query["Action"] == ["GetCallerIdentity"] and query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    assert query["X-Amz-Credential"][0].startswith("testing/") and "/us-east-1/sts/aws4_request" in query["X-Amz-Credential"][0]
    assert seen["sts_status"] == 200 and "<Arn>arn:aws:sts::123456789012:user/moto</Arn>" in seen["sts_body"], seen["sts_body"]
    # The database credentials are the RDS-managed secret's.
    db = aws("rds").describe_db_instances(DBInstanceIdentifier=f"idis-{NAME}-db")["DBInstances"][0]
    secret = json.loads(aws("secretsmanager").get_secret_value(SecretId=db["MasterUserSecret"]["SecretArn"])["SecretString"])
    password = secret["password"]
    assert seen["DB_SECRET"] == db["MasterUserSecret"]["SecretArn"]
    assert seen["DB_USER"] == secret["username"]
    assert seen["DB_URL"].startswith(f"postgresql://{secret['username']}:")
    assert seen["DB_URL"].endswith(f"@{db['Endpoint']['Address']}:5432/idis")
    assert urllib.parse.unquote(urllib.parse.urlsplit(seen["DB_URL"]).password) == password

    # No token (this run's or the plan's: any k8s-aws-v1.) and no password
    # anywhere Terraform keeps or logs things.
    state = (tf.workdir / "terraform.tfstate").read_text()
    places = {
        "tfstate": state,
        "plan JSON": plan_json,
        "plan TF_LOG=trace": plan.stdout + plan.stderr,
        "apply TF_LOG=trace": apply.stdout + apply.stderr,
    }
    for place, text in places.items():
        assert TOKEN_PREFIX not in text, f"a cluster token in the {place}"
        assert token.split(".", 1)[1][:40] not in text, f"the cluster token in the {place}"
        assert password not in text, f"the database password in the {place}"
    assert "ephemeral" not in json.loads(state).get("resources", [{}])[0].get("mode", ""), state

    log = apply.stderr
    for rpc in ["OpenEphemeralResource", "RenewEphemeralResource", "CloseEphemeralResource"]:
        assert f"{rpc} idis_cluster_auth:" in log, f"no {rpc} in the provider's debug log"
    assert "OpenEphemeralResource idis_database_credentials:" in log
    assert "CloseEphemeralResource idis_database_credentials:" in log
    # Renew says what it cannot do (in the log: Terraform shows a renewal's
    # diagnostics only when it fails).
    assert "idis_cluster_auth: the cluster token expires during this run" in log


def test_an_environment_without_a_cluster_is_named(environment, tmp_path, terraform_rc, proxy):
    tf = Terraform(tmp_path / "missing", terraform_rc, proxy.endpoint)
    tf.workdir.mkdir()
    tf.write(REQUIRED_PROVIDERS + 'provider "idis" {}\nephemeral "idis_cluster_auth" "x" {\n  name = "nothere"\n}\n')
    tf.init()
    plan = tf.plan(check=False)
    assert plan.returncode == 1, plan.describe("plan with a missing cluster")
    text = " ".join(plan.stderr.split())
    assert "idis_cluster_auth: no EKS cluster" in text and '"nothere"' in text, plan.stderr
