#!/usr/bin/env python3
"""Package a built provider binary the way HashiCorp releases providers.

    scripts/package.py --binary target/release/terraform-provider-idis \\
        --version 0.1.0 --platform linux_amd64 --dist dist [--sign-key KEYID]

writes into DIST:

    terraform-provider-idis_0.1.0_linux_amd64.zip   the binary, named
                                                    terraform-provider-idis_v0.1.0
    terraform-provider-idis_0.1.0_manifest.json     = terraform-registry-manifest.json
    terraform-provider-idis_0.1.0_SHA256SUMS        every zip and the manifest
    terraform-provider-idis_0.1.0_SHA256SUMS.sig    with --sign-key (gpg, binary detached)
    registry.terraform.io/idis/idis/index.json      provider network mirror protocol
    registry.terraform.io/idis/idis/0.1.0.json      archives with their h1: and zh: hashes
    registry.terraform.io/idis/idis/terraform-provider-idis_0.1.0_linux_amd64.zip
                                                    hard link of the zip: the packed
                                                    layout of a filesystem_mirror

so DIST is at once the assets of a GitHub release (the top-level files), a
directory any static HTTPS server can serve as a `network_mirror`, and a
directory Terraform can read as a `filesystem_mirror`.

Run it once per platform: SHA256SUMS, the mirror's version file and its
index are rebuilt from every zip of the version already in DIST. The zip is
reproducible (fixed timestamp, fixed permissions), so the same binary gives
the same SHA256. Python 3 standard library only (plus gpg for --sign-key).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

PROVIDER_TYPE = "idis"
NAMESPACE = "idis"
HOSTNAME = "registry.terraform.io"
NAME = f"terraform-provider-{PROVIDER_TYPE}"
PROTOCOL_VERSIONS = ["5.0"]
MANIFEST = Path(__file__).resolve().parent.parent / "terraform-registry-manifest.json"
# Reproducible zips: every entry dated 1980-01-01 (the zip epoch) unless
# SOURCE_DATE_EPOCH says otherwise.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
PLATFORM = re.compile(r"^[a-z0-9]+_[a-z0-9]+$")
KNOWN_OS = {"linux", "darwin", "windows", "freebsd", "openbsd", "solaris"}
KNOWN_ARCH = {"amd64", "arm64", "386", "arm"}


class PackagingError(Exception):
    """A problem with the inputs, said so that the person at the terminal can fix it."""


def manifest_text() -> str:
    """terraform-registry-manifest.json from the repository root, copied as it
    is (the registry reads the protocol versions from it); checked to declare
    protocol 5, the only one the provider speaks."""
    try:
        text = MANIFEST.read_text()
        declared = json.loads(text)["metadata"]["protocol_versions"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PackagingError(f"{MANIFEST} is missing or not a registry manifest: {error}") from None
    if declared != PROTOCOL_VERSIONS:
        raise PackagingError(
            f"{MANIFEST} declares protocol_versions {declared}; the provider speaks {PROTOCOL_VERSIONS} only"
        )
    return text


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def h1_of(archive: Path) -> str:
    """Terraform's h1: hash of a provider zip (dirhash Hash1 over its entries),
    the hash `terraform init` records in .terraform.lock.hcl."""
    lines = []
    with zipfile.ZipFile(archive) as z:
        for name in sorted(z.namelist()):
            digest = hashlib.sha256()
            with z.open(name) as member:
                for chunk in iter(lambda: member.read(1 << 20), b""):
                    digest.update(chunk)
            lines.append(f"{digest.hexdigest()}  {name}\n")
    return "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()


def zip_date() -> tuple[int, int, int, int, int, int]:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return ZIP_EPOCH
    if not epoch.isdigit():
        raise PackagingError(f"SOURCE_DATE_EPOCH={epoch!r} must be seconds since 1970 (digits only)")
    t = time.gmtime(max(int(epoch), 315532800))  # zip cannot date before 1980
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def check_inputs(binary: Path, version: str, platform: str) -> None:
    if not SEMVER.match(version):
        raise PackagingError(
            f"--version {version!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 0.1.0); "
            "Terraform and the registry accept nothing else"
        )
    if not PLATFORM.match(platform):
        raise PackagingError(f"--platform {platform!r} must be OS_ARCH, e.g. linux_amd64")
    os_name, arch = platform.split("_", 1)
    if os_name not in KNOWN_OS or arch not in KNOWN_ARCH:
        raise PackagingError(
            f"--platform {platform!r}: OS must be one of {sorted(KNOWN_OS)} and ARCH one of "
            f"{sorted(KNOWN_ARCH)}, as Terraform names them"
        )
    manifest_text()
    if not binary.is_file():
        raise PackagingError(f"--binary {binary} does not exist; build it first (make release)")
    if not os.access(binary, os.X_OK):
        raise PackagingError(f"--binary {binary} is not executable")


def write_zip(binary: Path, version: str, platform: str, dist: Path) -> Path:
    os_name = platform.split("_", 1)[0]
    member = f"{NAME}_v{version}" + (".exe" if os_name == "windows" else "")
    archive = dist / f"{NAME}_{version}_{platform}.zip"
    partial = archive.with_suffix(".zip.partial")
    info = zipfile.ZipInfo(member, date_time=zip_date())
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so that the mode below counts
    info.external_attr = (0o100755 & 0xFFFF) << 16
    with zipfile.ZipFile(partial, "w") as z, open(binary, "rb") as src:
        with z.open(info, "w") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    partial.replace(archive)
    return archive


def zips_of(dist: Path, version: str) -> dict[str, Path]:
    """platform -> zip of this version already in dist."""
    prefix = f"{NAME}_{version}_"
    found = {}
    for path in sorted(dist.glob(f"{prefix}*.zip")):
        platform = path.name[len(prefix):-len(".zip")]
        if PLATFORM.match(platform):
            found[platform] = path
    return found


def link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_release(dist: Path, version: str) -> dict[str, str]:
    """Manifest, SHA256SUMS and the mirror layout from the zips in dist; returns name -> sha256."""
    manifest_path = dist / f"{NAME}_{version}_manifest.json"
    manifest_path.write_text(manifest_text())

    zips = zips_of(dist, version)
    sums = {path.name: sha256_of(path) for path in zips.values()}
    sums[manifest_path.name] = sha256_of(manifest_path)
    lines = [f"{digest}  {name}\n" for name, digest in sorted(sums.items())]
    (dist / f"{NAME}_{version}_SHA256SUMS").write_text("".join(lines))

    # Provider network mirror protocol: <host>/<namespace>/<type>/index.json
    # lists versions, <version>.json lists one archive per platform; its url
    # is relative to the version file. The zip beside them makes the same
    # directory a filesystem_mirror in the packed layout.
    mirror = dist / HOSTNAME / NAMESPACE / PROVIDER_TYPE
    mirror.mkdir(parents=True, exist_ok=True)
    archives = {}
    for platform, path in sorted(zips.items()):
        link_or_copy(path, mirror / path.name)
        # zh: is the zip's SHA256 (what SHA256SUMS says), h1: the hash of its
        # contents that the lock file records; Terraform accepts either.
        archives[platform] = {"url": path.name, "hashes": [h1_of(path), f"zh:{sums[path.name]}"]}
    (mirror / f"{version}.json").write_text(json.dumps({"archives": archives}, indent=2) + "\n")
    versions = sorted(
        p.name[: -len(".json")] for p in mirror.glob("*.json") if SEMVER.match(p.name[: -len(".json")])
    )
    (mirror / "index.json").write_text(json.dumps({"versions": {v: {} for v in versions}}, indent=2) + "\n")
    return sums


def sign(dist: Path, version: str, key: str) -> Path:
    """A binary detached signature of SHA256SUMS, as HashiCorp and the registry expect."""
    sums = dist / f"{NAME}_{version}_SHA256SUMS"
    signature = sums.with_name(sums.name + ".sig")
    if signature.exists():
        signature.unlink()
    result = subprocess.run(
        ["gpg", "--batch", "--yes", "--local-user", key, "--output", str(signature), "--detach-sign", str(sums)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PackagingError(f"gpg could not sign {sums.name} with key {key!r}:\n{result.stderr.strip()}")
    return signature


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Package a built terraform-provider-idis binary into a release and mirror directory.",
        epilog="Run once per platform; SHA256SUMS and the mirror JSON cover every zip of the version in DIST.",
    )
    parser.add_argument("--binary", required=True, type=Path, help="the built provider executable")
    parser.add_argument("--version", required=True, help="provider version, e.g. 0.1.0 (no leading v)")
    parser.add_argument("--platform", default="linux_amd64", help="OS_ARCH of the binary (default linux_amd64)")
    parser.add_argument("--dist", default=Path("dist"), type=Path, help="output directory (default dist)")
    parser.add_argument("--sign-key", help="gpg key id: write SHA256SUMS.sig, a detached signature")
    args = parser.parse_args(argv)

    try:
        check_inputs(args.binary, args.version, args.platform)
        zip_date()
        args.dist.mkdir(parents=True, exist_ok=True)
        archive = write_zip(args.binary, args.version, args.platform, args.dist)
        sums = write_release(args.dist, args.version)
        signature = sign(args.dist, args.version, args.sign_key) if args.sign_key else None
    except PackagingError as error:
        print(f"package.py: {error}", file=sys.stderr)
        return 1

    for name, digest in sorted(sums.items()):
        size = (args.dist / name).stat().st_size
        print(f"{digest}  {size:>10}  {args.dist / name}")
    print(f"mirror: {args.dist / HOSTNAME / NAMESPACE / PROVIDER_TYPE}/ (index.json, {args.version}.json, {archive.name})")
    if signature:
        print(f"signed: {signature}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
