"""The provider binary run by hand, outside Terraform."""

import re

import pytest


@pytest.mark.parametrize(
    "cookie_env",
    [
        pytest.param({}, id="no-magic-cookie"),
        pytest.param({"TF_PLUGIN_MAGIC_COOKIE": "not-the-cookie"}, id="wrong-magic-cookie"),
    ],
)
def test_running_the_binary_by_hand_explains_it_is_a_terraform_plugin(run_provider, cookie_env):
    result = run_provider(env=cookie_env, timeout=15)

    context = result.describe("terraform-provider-idis")
    assert result.returncode == 1, context
    message = result.stdout + result.stderr
    assert re.search(r"terraform", message, re.IGNORECASE), context
    assert re.search(r"plugin", message, re.IGNORECASE), context
    assert not result.stdout.startswith("1|"), "printed a go-plugin handshake line: " + context


def test_version_flag_prints_the_provider_version(run_provider):
    result = run_provider("--version", timeout=15)

    context = result.describe("terraform-provider-idis --version")
    assert result.returncode == 0, context
    assert "0.1.0" in result.stdout, context
