"""Signature verification: accept a revision only when signed by an allowed SSH or GPG key.

SSH uses git's own ``gpg.format=ssh`` with an allowed-signers file (``ssh-keygen -Y verify``
underneath). GPG imports the allowed public keys into a throw-away keyring, so any good
signature git reports is by construction from an allowed key. For a ref that resolved to an
annotated tag, a signed tag is accepted as well as a signed commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tether.errors import SourceError, UsageError
from tether.source.git import GitCache, Resolved
from tether.source.url import mask_url

MODES = ("ssh", "gpg")


def _run(command: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    done = subprocess.run(command, env=env, capture_output=True, timeout=timeout, check=False)
    return done.returncode, (done.stderr + done.stdout).decode("utf-8", "replace").strip()


def verify_revision(cache: GitCache, mirror: Path, url: str, resolved: Resolved, mode: str, allowed: str) -> str:
    """Returns a one-line description of the good signature; raises SourceError otherwise."""
    if mode not in MODES:
        raise UsageError(f"signature verification mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not allowed or not Path(allowed).is_file():
        raise UsageError(f"signature verification ({mode}) needs an allowed signers / keys file; {allowed!r} not found")
    env = {"PATH": os.environ.get("PATH", ""), "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.environ.get("HOME", "/")}
    config = (
        ["-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={Path(allowed).resolve()}"]
        if mode == "ssh"
        else ["-c", "gpg.format=openpgp"]
    )
    gnupg_home = ""
    try:
        if mode == "gpg":
            gnupg_home = tempfile.mkdtemp(prefix="tether-gpg-")
            env["GNUPGHOME"] = gnupg_home
            code, output = _run(["gpg", "--batch", "--quiet", "--import", allowed], env, cache.timeout)
            if code != 0:
                raise SourceError(f"{allowed}: cannot import GPG keys: {output}")
        targets = ([("tag", resolved.annotated_tag)] if resolved.annotated_tag else []) + [("commit", resolved.commit)]
        failures = []
        for kind, oid in targets:
            code, output = _run(
                ["git", "--git-dir", str(mirror), *config, f"verify-{kind}", "--raw", oid], env, cache.timeout
            )
            if code == 0:
                return f"{kind} {oid[:12]}: {_summary(output)}"
            failures.append(f"{kind} {oid[:12]}: {_summary(output) or 'not signed'}")
        raise SourceError(
            f"{mask_url(url)}: revision {resolved.commit[:12]} is not signed by an allowed {mode.upper()} key "
            f"({'; '.join(failures)}); refusing it"
        )
    finally:
        if gnupg_home:
            shutil.rmtree(gnupg_home, ignore_errors=True)


def _summary(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Good", "[GNUPG:] GOODSIG", "[GNUPG:] VALIDSIG")) or "Good" in line:
            return line.replace("[GNUPG:] ", "")
    return lines[-1].replace("[GNUPG:] ", "") if lines else ""
