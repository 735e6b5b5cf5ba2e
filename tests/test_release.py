"""Release artifacts: what `make release` writes into dist/ installs with
`terraform init` from that directory alone, offline, and its checksums verify.

The packaging code is the one `make release` runs (scripts/package.py); the
tests feed it the binary under test (a debug build unless IDIS_PROVIDER_BIN
names a release build), because a release build takes many minutes here.
To check the dist/ of a real `make release` instead:

    make release
    IDIS_DIST_DIR=dist IDIS_PROVIDER_BIN=target/release/terraform-provider-idis \
        .venv/bin/pytest tests/test_release.py
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from conftest import (
    PROVIDER_ADDRESS,
    PROVIDER_VERSION,
    REPO_ROOT,
    _clean_environment,
    free_loopback_port,
    run_command,
)

PACKAGE = REPO_ROOT / "scripts" / "package.py"
PLATFORM = "linux_amd64"
ZIP = f"terraform-provider-idis_{PROVIDER_VERSION}_{PLATFORM}.zip"
SUMS = f"terraform-provider-idis_{PROVIDER_VERSION}_SHA256SUMS"
MANIFEST = f"terraform-provider-idis_{PROVIDER_VERSION}_manifest.json"
MIRROR = Path("registry.terraform.io", "idis", "idis")

# A configuration that needs the provider's schema: validate starts it.
CONFIG = f"""\
terraform {{
  required_providers {{
    idis = {{
      source  = "idis/idis"
      version = "{PROVIDER_VERSION}"
    }}
  }}
}}

provider "idis" {{
  region                      = "us-east-1"
  skip_credentials_validation = true
}}

resource "idis_environment" "this" {{
  name = "staging"
}}
"""


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def h1_of_zip(path: Path) -> str:
    """Terraform's h1: hash of a provider package: SHA256 over the lines
    "<sha256 of each file>  <name>\\n" of the sorted entries, base64."""
    with zipfile.ZipFile(path) as z:
        lines = "".join(
            f"{hashlib.sha256(z.read(name)).hexdigest()}  {name}\n" for name in sorted(z.namelist())
        )
    return "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()


def package(binary: Path, dist: Path, *extra: str, env: dict | None = None):
    return run_command(
        [sys.executable, str(PACKAGE), "--binary", str(binary), "--version", PROVIDER_VERSION,
         "--platform", PLATFORM, "--dist", str(dist), *extra],
        env={**_clean_environment(), **(env or {})}, timeout=300,
    )


@pytest.fixture(scope="module")
def dist(provider_binary, tmp_path_factory) -> Path:
    """dist/ as `make release` writes it, from the binary under test; or, with
    IDIS_DIST_DIR, the dist/ that `make release` wrote (then IDIS_PROVIDER_BIN
    must name the release binary it packaged)."""
    given = os.environ.get("IDIS_DIST_DIR")
    if given:
        dist = Path(given).resolve()
        if not (dist / ZIP).is_file():
            pytest.fail(f"IDIS_DIST_DIR={given} holds no {ZIP}; run `make release` first")
        return dist
    dist = tmp_path_factory.mktemp("release") / "dist"
    result = package(provider_binary, dist)
    assert result.returncode == 0, result.describe("scripts/package.py")
    return dist


def terraform_env(workdir: Path, cli_config: str, **extra: str) -> dict:
    rc = workdir / "terraform.rc"
    rc.write_text(cli_config)
    return {
        **_clean_environment(),
        "TF_CLI_CONFIG_FILE": str(rc),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        # No plugin cache, no implied local mirror: only what the CLI config says.
        "HOME": str(workdir / "home"),
        **extra,
    }


def terraform(workdir: Path, env: dict, *args: str, timeout: float = 120):
    return run_command(["terraform", *args], env=env, cwd=workdir, timeout=timeout)


def locked_hashes(workdir: Path) -> list[str]:
    text = (workdir / ".terraform.lock.hcl").read_text()
    block = text[text.index(f'provider "{PROVIDER_ADDRESS}"'):]
    return re.findall(r'"((?:h1|zh):[^"]+)"', block[: block.index("}")])


def test_dist_holds_the_zip_sums_manifest_and_mirror_index(dist, provider_binary):
    top = sorted(p.name for p in dist.iterdir() if p.is_file() and p.name != f"{SUMS}.sig")
    assert top == sorted([ZIP, SUMS, MANIFEST]), top

    # SHA256SUMS verifies with the standard tool, and lists both files.
    check = run_command(["sha256sum", "-c", SUMS], env=_clean_environment(), cwd=dist, timeout=60)
    assert check.returncode == 0, check.describe("sha256sum -c")
    assert sorted(check.stdout.split()) == sorted([f"{ZIP}:", "OK", f"{MANIFEST}:", "OK"]), check.stdout

    # The zip holds the binary alone, named as HashiCorp's releases do, executable.
    with zipfile.ZipFile(dist / ZIP) as z:
        [entry] = z.infolist()
        assert entry.filename == f"terraform-provider-idis_v{PROVIDER_VERSION}"
        assert (entry.external_attr >> 16) & 0o777 == 0o755
        assert hashlib.sha256(z.read(entry)).hexdigest() == sha256_file(provider_binary)

    # The manifest declares protocol 5 and is the repository's own.
    manifest = json.loads((dist / MANIFEST).read_text())
    assert manifest == {"version": 1, "metadata": {"protocol_versions": ["5.0"]}}
    assert (dist / MANIFEST).read_text() == (REPO_ROOT / "terraform-registry-manifest.json").read_text()

    # Network mirror protocol files, with the zip's hashes.
    mirror = dist / MIRROR
    assert json.loads((mirror / "index.json").read_text()) == {"versions": {PROVIDER_VERSION: {}}}
    archives = json.loads((mirror / f"{PROVIDER_VERSION}.json").read_text())["archives"]
    assert list(archives) == [PLATFORM]
    assert archives[PLATFORM]["url"] == ZIP
    assert sorted(archives[PLATFORM]["hashes"]) == sorted([h1_of_zip(dist / ZIP), f"zh:{sha256_file(dist / ZIP)}"])
    assert sha256_file(mirror / ZIP) == sha256_file(dist / ZIP)


def test_packaging_is_reproducible_and_rejects_bad_input(dist, provider_binary, tmp_path):
    again = package(provider_binary, tmp_path / "again")
    assert again.returncode == 0, again.describe("scripts/package.py")
    assert (tmp_path / "again" / SUMS).read_text() == (dist / SUMS).read_text()

    bad = run_command(
        [sys.executable, str(PACKAGE), "--binary", str(provider_binary), "--version", "v1",
         "--dist", str(tmp_path / "bad")],
        env=_clean_environment(), timeout=60,
    )
    assert bad.returncode == 1 and "--version 'v1' is not a semantic version" in bad.stderr, bad.stderr
    missing = package(tmp_path / "nothing-here", tmp_path / "bad")
    assert missing.returncode == 1 and "does not exist" in missing.stderr, missing.stderr
    assert not (tmp_path / "bad").exists()


def test_terraform_init_installs_the_provider_from_dist_as_a_filesystem_mirror_offline(dist, provider_binary, tmp_path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "main.tf").write_text(CONFIG)
    closed = f"http://127.0.0.1:{free_loopback_port()}"
    # dist/ is the only installation method; any network access goes to a
    # closed port and fails.
    env = terraform_env(workdir, f"""\
disable_checkpoint = true
provider_installation {{
  filesystem_mirror {{
    path    = {json.dumps(str(dist))}
    include = ["{PROVIDER_ADDRESS}"]
  }}
}}
""", HTTPS_PROXY=closed, HTTP_PROXY=closed, NO_PROXY="")

    init = terraform(workdir, env, "init", "-no-color", "-input=false")
    assert init.returncode == 0, init.describe("terraform init")
    print(init.stdout)
    assert f"Installed idis/idis v{PROVIDER_VERSION}" in init.stdout, init.stdout

    installed = workdir / ".terraform" / "providers" / MIRROR / PROVIDER_VERSION / PLATFORM / f"terraform-provider-idis_v{PROVIDER_VERSION}"
    assert sha256_file(installed) == sha256_file(provider_binary)
    # The lock file records the hash of the zip's contents, which matches the
    # zip in dist/ (Terraform records zh: hashes only from a signed registry).
    assert locked_hashes(workdir) == [h1_of_zip(dist / ZIP)]

    providers = terraform(workdir, env, "providers")
    assert providers.returncode == 0 and f"provider[{PROVIDER_ADDRESS}] {PROVIDER_VERSION}" in providers.stdout, providers.stdout
    validate = terraform(workdir, env, "validate", "-no-color")
    assert validate.returncode == 0, validate.describe("terraform validate")


def test_a_lock_file_with_the_zh_hash_of_sha256sums_accepts_dist_and_a_wrong_one_is_refused(dist, tmp_path):
    """What a team's lock file holds after installing from the registry: the
    zh: hashes of the release's signed SHA256SUMS. Installing the same
    release from dist/ must satisfy it, and a zip that is not the release
    must not."""
    sums = dict(reversed(line.split("  ", 1)) for line in (dist / SUMS).read_text().splitlines())
    zh = f"zh:{sums[ZIP]}"
    wrong = "zh:" + ("0" if zh[3] != "0" else "1") + zh[4:]
    for name, locked, ok in [("right", zh, True), ("wrong", wrong, False)]:
        workdir = tmp_path / name
        workdir.mkdir()
        (workdir / "main.tf").write_text(CONFIG)
        (workdir / ".terraform.lock.hcl").write_text(
            f'provider "{PROVIDER_ADDRESS}" {{\n  version     = "{PROVIDER_VERSION}"\n'
            f'  constraints = "{PROVIDER_VERSION}"\n  hashes = [\n    "{locked}",\n  ]\n}}\n'
        )
        env = terraform_env(workdir, f"""\
provider_installation {{
  filesystem_mirror {{
    path    = {json.dumps(str(dist))}
    include = ["{PROVIDER_ADDRESS}"]
  }}
}}
""")
        init = terraform(workdir, env, "init", "-no-color", "-input=false")
        if ok:
            assert init.returncode == 0, init.describe("terraform init")
            assert sorted(locked_hashes(workdir)) == sorted([h1_of_zip(dist / ZIP), zh])
        else:
            assert init.returncode == 1, init.describe("terraform init")
            assert "doesn't match any of the checksums previously recorded in the dependency lock file" in " ".join(init.stderr.split())


class _Mirror:
    """dist/ served over HTTPS by a static file server with a self-signed
    certificate, as a private network mirror would be."""

    def __init__(self, root: Path, tmp: Path):
        if shutil.which("openssl") is None:
            pytest.skip("openssl is not installed: cannot make the mirror's certificate")
        cert, key = tmp / "cert.pem", tmp / "key.pem"
        made = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            capture_output=True, text=True, timeout=30,
        )
        assert made.returncode == 0, made.stderr
        self.cert = cert
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, fmt, *args):
                mirror.requests.append(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}".strip())

        handler = functools.partial(Handler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://localhost:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def https_mirror(tmp_path):
    started = []

    def serve(root: Path) -> _Mirror:
        mirror = _Mirror(root, tmp_path)
        started.append(mirror)
        return mirror

    yield serve
    for mirror in started:
        mirror.stop()


def network_mirror_env(workdir: Path, mirror: _Mirror) -> dict:
    return terraform_env(workdir, f"""\
disable_checkpoint = true
provider_installation {{
  network_mirror {{
    url     = "{mirror.url}"
    include = ["{PROVIDER_ADDRESS}"]
  }}
}}
""", SSL_CERT_FILE=str(mirror.cert))


def test_dist_served_over_https_is_a_network_mirror_and_terraform_verifies_the_checksum(dist, provider_binary, tmp_path, https_mirror):
    mirror = https_mirror(dist)
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "main.tf").write_text(CONFIG)
    env = network_mirror_env(workdir, mirror)

    init = terraform(workdir, env, "init", "-no-color", "-input=false")
    assert init.returncode == 0, init.describe("terraform init")
    print(init.stdout)
    assert f"Installed idis/idis v{PROVIDER_VERSION} (verified checksum)" in init.stdout, init.stdout
    assert f"GET /{MIRROR.as_posix()}/{ZIP} 200" in mirror.requests, mirror.requests
    installed = workdir / ".terraform" / "providers" / MIRROR / PROVIDER_VERSION / PLATFORM / f"terraform-provider-idis_v{PROVIDER_VERSION}"
    assert sha256_file(installed) == sha256_file(provider_binary)
    assert locked_hashes(workdir) == [h1_of_zip(dist / ZIP)]
    validate = terraform(workdir, env, "validate", "-no-color")
    assert validate.returncode == 0, validate.describe("terraform validate")


def test_a_tampered_zip_on_the_mirror_is_refused(dist, tmp_path, https_mirror):
    tampered = tmp_path / "tampered"
    shutil.copytree(dist, tampered)
    archive = tampered / MIRROR / ZIP
    archive.unlink()  # a hard link to dist's zip: replace it, do not write through it
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo(f"terraform-provider-idis_v{PROVIDER_VERSION}")
        info.external_attr = 0o100755 << 16
        z.writestr(info, "#!/bin/sh\necho not the provider\n")
    mirror = https_mirror(tampered)
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "main.tf").write_text(CONFIG)

    init = terraform(workdir, network_mirror_env(workdir, mirror), "init", "-no-color", "-input=false")
    assert init.returncode == 1, init.describe("terraform init")
    flat = " ".join(init.stderr.split())
    assert "checksum" in flat.lower() and "idis/idis" in flat, init.stderr
    assert not (workdir / ".terraform" / "providers" / MIRROR / PROVIDER_VERSION).exists()


def test_sha256sums_signed_with_gpg_verifies_and_a_changed_file_does_not(provider_binary, tmp_path):
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**_clean_environment(), "GNUPGHOME": str(home)}
    try:
        made = run_command(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
                            "IDIS Release Test <release@idis.invalid>", "rsa3072", "sign", "1d"],
                           env=env, timeout=120)
        assert made.returncode == 0, made.describe("gpg --quick-gen-key")
        dist = tmp_path / "dist"
        result = package(provider_binary, dist, "--sign-key", "release@idis.invalid", env={"GNUPGHOME": str(home)})
        assert result.returncode == 0, result.describe("scripts/package.py --sign-key")
        verify = run_command(["gpg", "--batch", "--verify", f"{SUMS}.sig", SUMS], env=env, cwd=dist, timeout=60)
        assert verify.returncode == 0 and "Good signature" in verify.stderr, verify.stderr

        with open(dist / SUMS, "a") as sums:
            sums.write("0" * 64 + "  extra-file\n")
        forged = run_command(["gpg", "--batch", "--verify", f"{SUMS}.sig", SUMS], env=env, cwd=dist, timeout=60)
        assert forged.returncode != 0 and "BAD signature" in forged.stderr, forged.stderr
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, timeout=30)
