"""``tether diff`` / ``tether apply`` of SOPS-encrypted Secrets: plaintext reaches the cluster only."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pyrage
import yaml
from engine_helpers import get, namespace, run, tether, write_dir

SOPS = shutil.which("sops") or str(Path(sys.executable).parent / "sops")
PLAINTEXT = "correct-horse-battery-staple"


def _encrypted_app(root: Path, ns: str, recipient: str) -> Path:
    src = write_dir(root, {"00-ns.yaml": [namespace(ns)]})
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": ns},
        "stringData": {"password": PLAINTEXT},
    }
    plain = src / "secret.yaml"
    plain.write_text(yaml.safe_dump(secret))
    encrypted = subprocess.run(
        [SOPS, "--encrypt", "--age", recipient, "--encrypted-regex", "^(data|stringData)$", str(plain)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert PLAINTEXT not in encrypted
    plain.write_text(encrypted)
    return src


def test_apply_decrypts_sops_secret_and_never_prints_plaintext(sandbox, tmp_path) -> None:
    ns = "sops-apply"
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"{identity}\n")
    src = _encrypted_app(tmp_path / "src", ns, str(identity.to_public()))
    kc = ["--kubeconfig", str(sandbox.kubeconfig)]

    diff = tether("diff", str(src), "--app", "sops", "--decryption-key", str(key_file), *kc)
    applied = tether("apply", str(src), "--app", "sops", "--decryption-key", str(key_file), *kc)
    assert applied.returncode == 0, applied.stderr
    for output in (diff.stdout, diff.stderr, applied.stdout, applied.stderr):
        assert PLAINTEXT not in output

    live = run(get(sandbox.kubeconfig, "v1", "Secret", "db", ns))
    assert base64.b64decode(live["data"]["password"]).decode() == PLAINTEXT
    assert "sops" not in live


def test_missing_or_wrong_key_names_the_file_and_applies_nothing(sandbox, tmp_path) -> None:
    ns = "sops-refused"
    owner = pyrage.x25519.Identity.generate()
    stranger = tmp_path / "other.txt"
    stranger.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    src = _encrypted_app(tmp_path / "src", ns, str(owner.to_public()))
    kc = ["--kubeconfig", str(sandbox.kubeconfig)]

    refused = tether("apply", str(src), "--app", "sops-refused", "--decryption-key", str(stranger), *kc)
    assert refused.returncode != 0
    assert "secret.yaml" in refused.stderr + refused.stdout
    assert PLAINTEXT not in refused.stderr + refused.stdout
    assert run(get(sandbox.kubeconfig, "v1", "Namespace", ns, None)) is None
