"""Two checkouts share one cargo target directory, as `.ci/run`'s cache
does, and both build: the build script reads its checkout's path when it
runs (`CARGO_MANIFEST_DIR`), never a path baked in when it was compiled
for another checkout, which may be gone (CI's clones are)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from conftest import REPO_ROOT, run_command


def _target_dir(provider_binary: Path) -> Path:
    """The target directory the provider under test was built in."""
    if provider_binary.parent.name == "debug":
        return provider_binary.parent.parent
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")


def _shared_copy(target: Path, into: Path) -> Path:
    """A target directory holding the same compiled dependencies (hard
    links: nothing of them is written) and nothing of this crate, so the
    checkouts below cannot disturb the build the other tests run."""
    for part in ("deps", "build", ".fingerprint"):
        (into / "debug").mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", str(target / "debug" / part), str(into / "debug" / part)], check=True)
    for stale in [*(into / "debug" / "build").glob("terraform-provider-idis-*"),
                  *(into / "debug" / ".fingerprint").glob("terraform-provider-idis-*"),
                  *(into / "debug" / "deps").glob("*terraform_provider_idis*")]:
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return into


def _check(checkout: Path, target: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO_", "RUST"))}
    for keep in ("CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    env["CARGO_TARGET_DIR"] = str(target)
    checked = run_command(["cargo", "check", "-p", "terraform-provider-idis", "--lib"],
                          cwd=checkout, env=env, timeout=1200)
    context = checked.describe(f"cargo check in {checkout}")
    assert checked.returncode == 0, context
    assert "is not in any include path" not in checked.stderr, context


def test_a_second_checkout_builds_in_the_first_checkouts_target_directory(provider_binary, tmp_path):
    target = _shared_copy(_target_dir(provider_binary), tmp_path / "shared-target")
    first, second = tmp_path / "first-checkout", tmp_path / "second-checkout"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(second)], check=True)
    # The second checkout is older than the first one's build, so cargo
    # keeps the build script compiled for the first; the first is then gone.
    old = time.time() - 3600
    for path in second.rglob("*"):
        os.utime(path, (old, old), follow_symlinks=False)
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(first)], check=True)
    _check(first, target)
    shutil.rmtree(first)
    _check(second, target)
