"""YAML corner cases and SSH age keys, both ways with sops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ruamel.yaml import YAML
from secrets_helpers import AgeKey, sops

from tether.errors import SecretsError
from tether.secrets import Decryptor, api
from tether.secrets.config import group_from

pytestmark = pytest.mark.usefixtures("clean_env")

EDGE = b"""\
base: &shared
  token: t0k3n
copy: *shared
scalar: &word hello
again: *word
day: 2001-12-14
moment: 2001-12-14T21:59:43-05:00
text: |
  line one
  line two
"""


def _encrypt(data: bytes, recipient: str, name: str = "s.yaml") -> bytes:
    return api.encrypt(data, "yaml", api.EncryptOptions(key_groups=[group_from([recipient], [])]), name)


def test_aliases_and_timestamps_both_ways(tmp_path: Path, age_key: AgeKey) -> None:
    (tmp_path / "s.yaml").write_bytes(EDGE)
    expected = {
        "base": {"token": "t0k3n"},
        "copy": {"token": "t0k3n"},
        "scalar": "hello",
        "again": "hello",
        "day": datetime(2001, 12, 14, tzinfo=UTC),
        "moment": datetime(2001, 12, 14, 21, 59, 43, tzinfo=timezone(timedelta(hours=-5))),
        "text": "line one\nline two\n",
    }
    by_tether = _encrypt(EDGE, age_key.recipient)
    assert b"t0k3n" not in by_tether and b"*shared" not in by_tether and by_tether.count(b"type:time]") == 2
    (tmp_path / "t.yaml").write_bytes(by_tether)
    by_sops = sops("encrypt", "--age", age_key.recipient, "s.yaml", cwd=tmp_path).stdout
    (tmp_path / "o.yaml").write_bytes(by_sops)
    env = {"SOPS_AGE_KEY_FILE": str(age_key.path)}
    for name in ("t.yaml", "o.yaml"):
        via_sops = YAML(typ="safe").load(sops("decrypt", name, cwd=tmp_path, env=env).stdout)
        path = tmp_path / name
        via_tether_text = Decryptor.from_environment([age_key.path]).decrypt(path.read_bytes(), path)
        via_tether = YAML(typ="safe").load(via_tether_text)
        for loaded in (via_sops, via_tether):
            assert {k: v for k, v in loaded.items() if k not in ("day", "moment")} == {
                k: v for k, v in expected.items() if k not in ("day", "moment")
            }
            for key in ("day", "moment"):
                value = loaded[key]
                value = value if value.tzinfo else value.replace(tzinfo=UTC)
                assert value == expected[key]
        assert b"text: |\n" in via_tether_text


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"1: integer key\n", "non-string key 1"),
        (b"base: &b {a: 1}\nmerged:\n  <<: *b\n  c: 2\n", "merge keys"),
        (b"just a scalar\n", "must be a mapping or a list"),
        (b"a: [unclosed\n", "not valid YAML"),
    ],
)
def test_unsupported_yaml_is_refused_clearly(document: bytes, message: str, age_key: AgeKey) -> None:
    with pytest.raises(SecretsError, match=message) as caught:
        _encrypt(document, age_key.recipient, "bad.yaml")
    assert str(caught.value).startswith("bad.yaml")


def test_ssh_ed25519_recipient_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    private = Ed25519PrivateKey.generate()
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    public = (
        private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    )
    (tmp_path / "s.yaml").write_bytes(b"password: ssh-s3cr3t\n")
    by_sops = sops("encrypt", "--age", public, "s.yaml", cwd=tmp_path).stdout
    (tmp_path / "o.yaml").write_bytes(by_sops)
    (tmp_path / "t.yaml").write_bytes(_encrypt(b"password: ssh-s3cr3t\n", public))
    monkeypatch.setenv("SOPS_AGE_SSH_PRIVATE_KEY_FILE", str(key_file))
    for name in ("o.yaml", "t.yaml"):
        path = tmp_path / name
        assert Decryptor.from_environment().decrypt(path.read_bytes(), path) == b"password: ssh-s3cr3t\n"
        assert sops("decrypt", name, cwd=tmp_path).stdout == b"password: ssh-s3cr3t\n"


COMMENTED = b"""\
top: 1  # end of a scalar line
nested:  # end of a line opening a mapping
  x: s3cr3t
  # last line of the nested mapping
list:
  - a  # end of an item line
  # between items
  - b
# at the end
"""


def test_comments_everywhere_both_ways(tmp_path: Path, age_key: AgeKey) -> None:
    (tmp_path / "s.yaml").write_bytes(COMMENTED)
    (tmp_path / "t.yaml").write_bytes(_encrypt(COMMENTED, age_key.recipient))
    # sops writes comments inside lists as ENC[...,type:comment] list items
    (tmp_path / "o.yaml").write_bytes(sops("encrypt", "--age", age_key.recipient, "s.yaml", cwd=tmp_path).stdout)
    assert b"- ENC[AES256_GCM" in (tmp_path / "o.yaml").read_bytes()
    texts = [line.split("#", 1)[1] for line in COMMENTED.decode().splitlines() if "#" in line]
    env = {"SOPS_AGE_KEY_FILE": str(age_key.path)}
    for name in ("t.yaml", "o.yaml"):
        path = tmp_path / name
        assert b"s3cr3t" not in path.read_bytes() and b"between items" not in path.read_bytes()
        for out in (
            sops("decrypt", name, cwd=tmp_path, env=env).stdout,
            Decryptor.from_environment([age_key.path]).decrypt(path.read_bytes(), path),
        ):
            assert b"ENC[" not in out
            assert [line.split("#", 1)[1] for line in out.decode().splitlines() if "#" in line] == texts
            assert YAML(typ="safe").load(out) == YAML(typ="safe").load(COMMENTED)


def test_round_trip_keeps_indentation(age_key: AgeKey, tmp_path: Path) -> None:
    styles = [
        b"a:\n  b: 1\n  l:\n  - x\n  - z\n",
        b"a:\n    b: 1\n    l:\n        - x\n",
        b"a:\n  b: 1\n  l:\n    - x\n",
    ]
    decryptor = Decryptor.from_environment([age_key.path])
    for index, document in enumerate(styles):
        encrypted = _encrypt(document, age_key.recipient)
        assert decryptor.decrypt(encrypted, tmp_path / f"{index}.yaml") == document


QUIRKS = {
    "ini": b'[a]\nk1 = "dq"\nk2 = \'sq\'\nk3 = `bt`\nk4 = has ; semi\nk5 = has # hash\nk6 = "  padded  "\n'
    b'k7 = """tri"""\nk8 : colon\n[b.c]\nx=1\n',
    "env": b"\n# c\nA=\"quoted value\"\nB='single'\nC=with spaces  \nD=x # not a comment\n\nexport E=1\nF==eq\n",
}


@pytest.mark.parametrize("ext", sorted(QUIRKS))
def test_flat_format_quirks_read_as_sops_reads_them(tmp_path: Path, age_key: AgeKey, ext: str) -> None:
    (tmp_path / f"q.{ext}").write_bytes(QUIRKS[ext])
    env = {"SOPS_AGE_KEY_FILE": str(age_key.path)}
    (tmp_path / f"o.{ext}").write_bytes(sops("encrypt", "--age", age_key.recipient, f"q.{ext}", cwd=tmp_path).stdout)
    reference = sops("decrypt", f"o.{ext}", cwd=tmp_path, env=env).stdout
    fmt = "dotenv" if ext == "env" else ext
    (tmp_path / f"t.{ext}").write_bytes(
        api.encrypt(QUIRKS[ext], fmt, api.EncryptOptions(key_groups=[group_from([age_key.recipient], [])]), f"q.{ext}")
    )
    decryptor = Decryptor.from_environment([age_key.path])
    for name in (f"o.{ext}", f"t.{ext}"):
        path = tmp_path / name
        assert decryptor.decrypt(path.read_bytes(), path) == reference
        assert sops("decrypt", name, cwd=tmp_path, env=env).stdout == reference
