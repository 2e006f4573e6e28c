"""The render stage decrypts SOPS files in memory through ``Decryptor`` (plain YAML and Kustomize)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from secrets_helpers import AgeKey, make_age_key, sops

from tether.errors import TetherError
from tether.render import RenderOptions, render_source
from tether.secrets import Decryptor

pytestmark = pytest.mark.usefixtures("clean_env")

SECRET = (
    b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\nstringData:\n  password: hunter2\n"
)


def _app(tmp_path: Path, key: AgeKey) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "secret.yaml").write_bytes(SECRET)
    (app / "secret.yaml").write_bytes(
        sops(
            "encrypt", "--age", key.recipient, "--encrypted-regex", "^(data|stringData)$", "secret.yaml", cwd=app
        ).stdout
    )
    return app


def test_plain_directory_with_encrypted_secret(tmp_path: Path, age_key: AgeKey) -> None:
    app = _app(tmp_path, age_key)
    result = render_source(app, RenderOptions(), Decryptor.from_environment([age_key.path]))
    secret = next(m.obj for m in result.manifests if m.obj["kind"] == "Secret")
    assert secret["stringData"] == {"password": "hunter2"} and "sops" not in secret
    assert b"hunter2" not in (app / "secret.yaml").read_bytes()  # nothing decrypted on disk


def test_wrong_key_names_the_file_and_shows_no_value(tmp_path: Path, age_key: AgeKey) -> None:
    app = _app(tmp_path, age_key)
    other = make_age_key(tmp_path, "other.txt")
    with pytest.raises(TetherError) as caught:
        render_source(app, RenderOptions(), Decryptor.from_environment([other.path]))
    assert "secret.yaml" in str(caught.value) and "hunter2" not in str(caught.value)


def test_kustomize_secret_generator_reads_an_encrypted_env_file(tmp_path: Path, age_key: AgeKey) -> None:
    assert shutil.which("kubectl"), "kubectl (for kustomize) comes from scripts/system-deps.sh"
    app = tmp_path / "app"
    app.mkdir()
    (app / "kustomization.yaml").write_text(
        "secretGenerator:\n- name: creds\n  envs: [creds.env]\n  options: {disableNameSuffixHash: true}\n"
    )
    (app / "creds.env").write_bytes(b"TOKEN=hunter2\n")
    (app / "creds.env").write_bytes(sops("encrypt", "--age", age_key.recipient, "creds.env", cwd=app).stdout)
    result = render_source(app, RenderOptions(), Decryptor.from_environment([age_key.path]))
    secret = next(m.obj for m in result.manifests if m.obj["kind"] == "Secret")
    assert secret["data"] == {"TOKEN": "aHVudGVyMg=="}  # base64 of hunter2
