"""Every credential source of the standard chain reaches AWS with
`provider "idis" {}` and only that source set: a `credential_process`
profile, and web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`,
as CI gets it from GitHub's OIDC token) against moto's STS. Each runs
`terraform plan` of `data "idis_account"`, whose configure step proves the
credentials with STS GetCallerIdentity. (SSO needs an SSO portal, which
moto does not have: a Rust unit test shows an SSO profile resolves through
the SDK's SSO provider.)"""

from __future__ import annotations

import json
import stat
import sys

from conftest import REQUIRED_PROVIDERS

CONFIG = REQUIRED_PROVIDERS + """
provider "idis" {}

data "idis_account" "this" {}

output "account_id" { value = data.idis_account.this.account_id }
"""


def _only(tf, **env: str) -> dict:
    """The directory's environment without static credentials, plus `env`."""
    base = {k: v for k, v in tf.env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    base.update(env)
    return base


def test_a_credential_process_profile_is_used(terraform, tmp_path):
    marker = tmp_path / "process-ran"
    script = tmp_path / "credentials.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': 'testing', 'SecretAccessKey': 'testing'}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    config = tmp_path / "aws-config"
    config.write_text(f"[profile ops]\ncredential_process = {script}\nregion = us-east-1\n")
    terraform.write(CONFIG)
    terraform.env = _only(terraform, AWS_CONFIG_FILE=str(config), AWS_PROFILE="ops")
    terraform.init()
    result = terraform.plan()
    assert "account_id" in result.stdout, result.describe("terraform plan")
    assert marker.read_text() == "ran", "the credential process was not run"


def test_web_identity_assumes_the_role_through_sts(terraform, tmp_path, aws_proxy):
    token = tmp_path / "oidc-token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmlkaXMvaW5mcmEifQ.c2lnbmF0dXJl")
    terraform.write(CONFIG)
    terraform.env = _only(
        terraform,
        AWS_ENDPOINT_URL=aws_proxy.endpoint,
        AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
        AWS_ROLE_ARN="arn:aws:iam::123456789012:role/ci-deploy",
        AWS_ROLE_SESSION_NAME="github-actions",
    )
    terraform.init()
    result = terraform.plan()
    assert "account_id" in result.stdout, result.describe("terraform plan")
    assumed = aws_proxy.requests("sts", "AssumeRoleWithWebIdentity")
    assert [a.get("RoleArn") for a in assumed] == ["arn:aws:iam::123456789012:role/ci-deploy"], assumed
    assert aws_proxy.requests("sts", "GetCallerIdentity"), "credentials were not checked with STS"
