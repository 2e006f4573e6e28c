"""The decryption hook, with a small fake decryptor (the SOPS one is integrated elsewhere)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

from tether.render import Decryptor, RenderOptions, render_source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "render"
MAGIC = b"FAKE-ENCRYPTED:"


class FakeDecryptor:
    """'Encrypts' by base64 behind a marker; records which files it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.tree_modes: list[int] = []

    def is_encrypted(self, data: bytes, path: Path) -> bool:
        return data.startswith(MAGIC)

    def decrypt(self, data: bytes, path: Path) -> bytes:
        import stat
        import tempfile

        self.seen.append(path.name)
        self.tree_modes += [stat.S_IMODE(p.stat().st_mode) for p in Path(tempfile.gettempdir()).glob("tether-plain-*")]
        return base64.b64decode(data[len(MAGIC) :])


def encrypt(path: Path) -> None:
    path.write_bytes(MAGIC + base64.b64encode(path.read_bytes()))


SECRET = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n"


def test_fake_is_a_decryptor() -> None:
    assert isinstance(FakeDecryptor(), Decryptor)


def test_plain_directory_decrypts_in_memory(tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text(SECRET)
    encrypt(tmp_path / "secret.yaml")
    decryptor = FakeDecryptor()
    result = render_source(tmp_path, RenderOptions(), decryptor)
    assert result.manifests[0].obj["stringData"] == {"password": "hunter2"}
    assert decryptor.seen == ["secret.yaml"]
    assert (tmp_path / "secret.yaml").read_bytes().startswith(MAGIC)  # nothing written back


def test_kustomize_gets_a_private_plaintext_copy(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "kustomize", app)
    overlay = app / "overlays/prod"
    (overlay / "secret.yaml").write_text(SECRET)
    encrypt(overlay / "secret.yaml")
    text = (overlay / "kustomization.yaml").read_text().replace("  - ../../base\n", "  - ../../base\n  - secret.yaml\n")
    (overlay / "kustomization.yaml").write_text(text)
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("tether-plain-*"))
    decryptor = FakeDecryptor()
    result = render_source(app / "overlays/prod", RenderOptions(source_root=str(app)), decryptor)
    assert decryptor.tree_modes and set(decryptor.tree_modes) == {0o700}  # private while it exists
    secrets = [m.obj for m in result.manifests if m.obj["metadata"]["name"] == "prod-db"]
    assert secrets[0]["stringData"] == {"password": "hunter2"}
    assert set(Path(tempfile.gettempdir()).glob("tether-plain-*")) == before  # the plaintext copy is gone


def test_without_decryptor_encrypted_files_fail_to_parse(tmp_path: Path) -> None:
    import pytest

    from tether.errors import RenderError

    (tmp_path / "secret.yaml").write_text(SECRET)
    encrypt(tmp_path / "secret.yaml")
    with pytest.raises(RenderError, match=r"secret\.yaml"):
        render_source(tmp_path, RenderOptions())
