"""Provider logs under TF_LOG_PROVIDER (at the requested level, never a
secret), and --debug mode that Terraform attaches to with
TF_REATTACH_PROVIDERS."""

import json
import os
import signal
import subprocess
import time

from conftest import REQUIRED_PROVIDERS as TERRAFORM_BLOCK

SECRET = "s3cr3t-VALUE-that-must-never-be-logged-7f3a"

STATIC_CREDENTIALS = f"""\
provider "idis" {{
  access_key = "AKIAIOSFODNN7EXAMPLE"
  secret_key = "{SECRET}"
}}

data "idis_account" "this" {{}}

output "account_id" {{ value = data.idis_account.this.account_id }}
"""

FROM_ENVIRONMENT = """\
provider "idis" {}

data "idis_account" "this" {}

output "account_id" { value = data.idis_account.this.account_id }
"""

PROVIDER_LINE = "provider.terraform-provider-idis"


def test_debug_logs_show_under_tf_log_provider_without_the_secret(terraform):
    terraform.write(TERRAFORM_BLOCK + STATIC_CREDENTIALS)
    terraform.init()

    result = terraform.apply(env={"TF_LOG_PROVIDER": "DEBUG"})

    provider_lines = [line for line in result.stderr.splitlines() if PROVIDER_LINE in line]
    assert any("[DEBUG]" in line and "credentials valid for account" in line for line in provider_lines), (
        "no provider DEBUG line in stderr:\n" + result.stderr[-3000:]
    )
    assert SECRET not in result.stdout + result.stderr
    state = (terraform.workdir / "terraform.tfstate").read_text()
    assert SECRET not in state


def test_trace_logs_never_contain_the_secret(terraform):
    terraform.write(TERRAFORM_BLOCK + STATIC_CREDENTIALS)
    terraform.init()

    result = terraform.plan(env={"TF_LOG": "TRACE"})

    assert PROVIDER_LINE in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_the_level_is_honoured(terraform):
    terraform.write(TERRAFORM_BLOCK + STATIC_CREDENTIALS)
    terraform.init()

    result = terraform.plan(env={"TF_LOG_PROVIDER": "ERROR"})

    debug_lines = [l for l in result.stderr.splitlines() if PROVIDER_LINE in l and "[DEBUG]" in l]
    assert debug_lines == [], "\n".join(debug_lines)


def test_terraform_attaches_to_a_provider_started_with_debug(terraform, provider_binary, moto):
    terraform.write(TERRAFORM_BLOCK + FROM_ENVIRONMENT)
    terraform.init()
    env = {k: v for k, v in terraform.env.items() if not k.startswith("TF_")}
    process = subprocess.Popen(
        [str(provider_binary), "--debug"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        reattach = None
        deadline = time.monotonic() + 20
        while reattach is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if "TF_REATTACH_PROVIDERS=" in line:
                reattach = line.split("TF_REATTACH_PROVIDERS=", 1)[1].strip().strip("'")
        assert reattach, "the debug provider printed no TF_REATTACH_PROVIDERS value"
        info = json.loads(reattach)["registry.terraform.io/idis/idis"]
        assert info["Pid"] == process.pid and info["ProtocolVersion"] == 5

        result = terraform.apply(env={"TF_REATTACH_PROVIDERS": reattach})

        assert "account_id" in result.stdout
        assert process.poll() is None, "a debug provider keeps serving after Terraform is done"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
