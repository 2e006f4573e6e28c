"""PGP keys, key groups (Shamir), creation rules and value selectors, checked against sops."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from secrets_helpers import AgeKey, GpgKey, make_age_key, sops
from secrets_samples import YAML as SAMPLE_YAML
from secrets_samples import parsed

from tether.errors import SecretsError
from tether.secrets import Decryptor, api
from tether.secrets.config import group_from, rule_for
from tether.secrets.keys import KeyRing
from tether.secrets.tree import Rules

pytestmark = pytest.mark.usefixtures("clean_env")


def _ring(gpg: GpgKey | None = None, *ages: AgeKey) -> Decryptor:
    decryptor = Decryptor.from_environment([a.path for a in ages])
    decryptor.ring.gpg_homes = [gpg.home] if gpg else []
    decryptor.ring.use_gpg = gpg is not None
    return decryptor


def test_pgp_both_ways(tmp_path: Path, gpg_key: GpgKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNUPGHOME", gpg_key.home)
    plain = tmp_path / "s.yaml"
    plain.write_bytes(SAMPLE_YAML)
    by_sops = tmp_path / "by-sops.yaml"
    by_sops.write_bytes(sops("encrypt", "--pgp", gpg_key.fingerprint, "s.yaml", cwd=tmp_path).stdout)
    assert "-----BEGIN PGP MESSAGE-----" in by_sops.read_text()
    assert parsed("yaml", _ring(gpg_key).decrypt(by_sops.read_bytes(), by_sops)) == parsed("yaml", SAMPLE_YAML)

    options = api.EncryptOptions(key_groups=[group_from([], [gpg_key.fingerprint])])
    by_tether = tmp_path / "by-tether.yaml"
    by_tether.write_bytes(api.encrypt(SAMPLE_YAML, "yaml", options, "s.yaml"))
    meta = YAML(typ="safe").load(by_tether.read_text())["sops"]
    assert meta["pgp"][0]["fp"] == gpg_key.fingerprint and meta["pgp"][0]["created_at"]
    assert parsed("yaml", sops("decrypt", by_tether.name, cwd=tmp_path).stdout) == parsed("yaml", SAMPLE_YAML)
    # without the keyring the PGP key is reported, not the value
    with pytest.raises(SecretsError, match=f"pgp:{gpg_key.fingerprint}"):
        _ring(None).decrypt(by_tether.read_bytes(), by_tether)


def test_pgp_secret_key_given_as_decryption_key_file(
    tmp_path: Path, gpg_key: GpgKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = subprocess.run(
        ["gpg", "--batch", "--armor", "--export-secret-keys", gpg_key.fingerprint],
        env={**os.environ, "GNUPGHOME": gpg_key.home},
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    key_file = tmp_path / "pgp.asc"
    key_file.write_bytes(exported)
    options = api.EncryptOptions(key_groups=[group_from([], [gpg_key.fingerprint])])
    monkeypatch.setenv("GNUPGHOME", gpg_key.home)
    encrypted = api.encrypt(b"token: abc\n", "yaml", options, "t.yaml")
    # decrypt with only the private keyring made from the exported key file
    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "empty-gnupg"))
    decryptor = Decryptor.from_environment([key_file])
    decryptor.ring.gpg_homes = decryptor.ring.gpg_homes[:1]
    assert decryptor.decrypt(encrypted, Path("t.yaml")) == b"token: abc\n"
    home = decryptor.ring.gpg_homes[0]
    assert home and Path(home).is_dir()
    del decryptor
    import gc

    gc.collect()
    assert not Path(home).exists()  # the private keyring is removed with the decryptor


def _write_rules(directory: Path, body: str) -> None:
    (directory / ".sops.yaml").write_text(body)


def test_key_groups_with_shamir_both_ways(tmp_path: Path, gpg_key: GpgKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNUPGHOME", gpg_key.home)
    first, second = make_age_key(tmp_path, "k1.txt"), make_age_key(tmp_path, "k2.txt")
    _write_rules(
        tmp_path,
        f"""creation_rules:
  - path_regex: groups/.*\\.yaml$
    shamir_threshold: 2
    key_groups:
      - age: [{first.recipient}]
      - age: [{second.recipient}]
        pgp: [{gpg_key.fingerprint}]
""",
    )
    (tmp_path / "groups").mkdir()
    plain = tmp_path / "groups" / "s.yaml"
    plain.write_bytes(SAMPLE_YAML)
    rule = rule_for(plain)
    assert rule and len(rule.key_groups) == 2 and rule.shamir_threshold == 2
    by_sops = tmp_path / "groups" / "by-sops.yaml"
    by_sops.write_bytes(sops("encrypt", "groups/s.yaml", cwd=tmp_path).stdout)
    by_tether = tmp_path / "groups" / "by-tether.yaml"
    options = api.EncryptOptions(key_groups=rule.key_groups, shamir_threshold=rule.shamir_threshold)
    by_tether.write_bytes(api.encrypt(SAMPLE_YAML, "yaml", options, str(plain)))
    assert "key_groups:" in by_tether.read_text() and "shamir_threshold: 2" in by_tether.read_text()
    for encrypted in (by_sops, by_tether):
        # one key per group is enough: age in group 1, PGP in group 2
        out = _ring(gpg_key, first).decrypt(encrypted.read_bytes(), encrypted)
        assert parsed("yaml", out) == parsed("yaml", SAMPLE_YAML)
        out = _ring(None, first, second).decrypt(encrypted.read_bytes(), encrypted)
        assert parsed("yaml", out) == parsed("yaml", SAMPLE_YAML)
        with pytest.raises(SecretsError, match="only 1 of 2 key groups"):
            _ring(None, second).decrypt(encrypted.read_bytes(), encrypted)
    result = sops("decrypt", "groups/by-tether.yaml", cwd=tmp_path, env={"SOPS_AGE_KEY_FILE": str(first.path)})
    assert parsed("yaml", result.stdout) == parsed("yaml", SAMPLE_YAML)


def test_creation_rules_pick_recipients_by_path(tmp_path: Path) -> None:
    prod, dev = make_age_key(tmp_path, "prod.txt"), make_age_key(tmp_path, "dev.txt")
    _write_rules(
        tmp_path,
        f"""creation_rules:
  - path_regex: ^prod/
    age: {prod.recipient}
    encrypted_regex: ^(data|stringData)$
  - age: >-
      {dev.recipient},
      {prod.recipient}
""",
    )
    (tmp_path / "prod" / "deep").mkdir(parents=True)
    rule = rule_for(tmp_path / "prod" / "deep" / "s.yaml")
    assert rule is not None
    assert [k.recipient for k in rule.key_groups[0].keys] == [prod.recipient]
    assert rule.rules.encrypted_regex == "^(data|stringData)$"
    other = rule_for(tmp_path / "dev.yaml")
    assert other is not None and [k.recipient for k in other.key_groups[0].keys] == [dev.recipient, prod.recipient]


def _shape(node: Any) -> Any:
    """The document with every encrypted value replaced by its type: what got encrypted."""
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items() if k != "sops"}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    if isinstance(node, str) and node.startswith("ENC["):
        return "ENC:" + re.search(r"type:(\w+)", node).group(1)  # type: ignore[union-attr]
    return node


SELECTORS = [
    ("--encrypted-regex", "encrypted_regex", "^(password|stringData)$"),
    ("--unencrypted-regex", "unencrypted_regex", "^(metadata|kind|apiVersion)$"),
    ("--encrypted-suffix", "encrypted_suffix", "Data"),
    ("--unencrypted-suffix", "unencrypted_suffix", "_unencrypted"),
]


@pytest.mark.parametrize(("flag", "field", "value"), SELECTORS)
def test_selectors_encrypt_the_same_values_as_sops(
    tmp_path: Path, age_key: AgeKey, flag: str, field: str, value: str
) -> None:
    plain = tmp_path / "s.yaml"
    plain.write_bytes(SAMPLE_YAML)
    by_sops = sops("encrypt", "--age", age_key.recipient, flag, value, "s.yaml", cwd=tmp_path).stdout
    options = api.EncryptOptions(key_groups=[group_from([age_key.recipient], [])], rules=Rules(**{field: value}))
    by_tether = api.encrypt(SAMPLE_YAML, "yaml", options, "s.yaml")
    loader = YAML(typ="safe")
    assert _shape(loader.load(by_tether)) == _shape(loader.load(by_sops))
    assert loader.load(by_tether)["sops"][field] == value
    assert by_tether.count(b"#ENC[") == by_sops.count(b"#ENC[")  # same comments encrypted
    target = tmp_path / "t.yaml"
    target.write_bytes(by_tether)
    out = sops("decrypt", "t.yaml", cwd=tmp_path, env={"SOPS_AGE_KEY_FILE": str(age_key.path)}).stdout
    assert parsed("yaml", out) == parsed("yaml", SAMPLE_YAML)
    target.write_bytes(by_sops)
    decrypted = Decryptor.from_environment([age_key.path]).decrypt(by_sops, target)
    assert parsed("yaml", decrypted) == parsed("yaml", SAMPLE_YAML)


def test_mac_only_encrypted_interop(tmp_path: Path, age_key: AgeKey) -> None:
    plain = tmp_path / "s.yaml"
    plain.write_bytes(SAMPLE_YAML)
    _write_rules(
        tmp_path,
        f"""creation_rules:
  - age: {age_key.recipient}
    encrypted_regex: ^password$
    mac_only_encrypted: true
""",
    )
    by_sops = tmp_path / "by-sops.yaml"
    by_sops.write_bytes(sops("encrypt", "s.yaml", cwd=tmp_path).stdout)
    assert "mac_only_encrypted: true" in by_sops.read_text()
    rule = rule_for(plain)
    assert rule is not None and rule.rules.mac_only_encrypted
    by_tether = tmp_path / "by-tether.yaml"
    by_tether.write_bytes(api.encrypt(SAMPLE_YAML, "yaml", api.EncryptOptions(rule.key_groups, 0, rule.rules), "s"))
    for encrypted in (by_sops, by_tether):
        # unencrypted values are outside the MAC, so changing one is accepted (as sops does)
        encrypted.write_text(encrypted.read_text().replace("visible", "changed"))
        out = Decryptor.from_environment([age_key.path]).decrypt(encrypted.read_bytes(), encrypted)
        assert b"changed" in out
        result = sops("decrypt", encrypted.name, cwd=tmp_path, env={"SOPS_AGE_KEY_FILE": str(age_key.path)})
        assert b"changed" in result.stdout


def test_keyring_without_keys_reports_every_key(tmp_path: Path, age_key: AgeKey) -> None:
    options = api.EncryptOptions(key_groups=[group_from([age_key.recipient], [])])
    encrypted = api.encrypt(b"a: b\n", "yaml", options, "x.yaml")
    with pytest.raises(SecretsError, match=r"x\.yaml: cannot decrypt the data key \(age:age1"):
        api.decrypt(encrypted, "yaml", KeyRing(use_gpg=False), "x.yaml")


def test_keys_from_secret_data(tmp_path: Path, age_key: AgeKey, gpg_key: GpgKey) -> None:
    """The controller's path: identities from a Kubernetes Secret's data, no ambient keys."""
    exported = subprocess.run(
        ["gpg", "--batch", "--armor", "--export-secret-keys", gpg_key.fingerprint],
        env={**os.environ, "GNUPGHOME": gpg_key.home},
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    (tmp_path / "a.yaml").write_bytes(b"a: s3cr3t-a\n")
    (tmp_path / "p.yaml").write_bytes(b"p: s3cr3t-p\n")
    by_age = sops("encrypt", "--age", age_key.recipient, "a.yaml", cwd=tmp_path).stdout
    by_pgp = sops(
        "encrypt", "--pgp", gpg_key.fingerprint, "p.yaml", cwd=tmp_path, env={"GNUPGHOME": gpg_key.home}
    ).stdout
    decryptor = Decryptor.from_key_material({"identity.agekey": age_key.path.read_bytes(), "pgp.asc": exported})
    assert decryptor.decrypt(by_age, Path("a.yaml")) == b"a: s3cr3t-a\n"
    assert decryptor.decrypt(by_pgp, Path("p.yaml")) == b"p: s3cr3t-p\n"
    only_age = Decryptor.from_key_material({"identity.agekey": age_key.secret})
    with pytest.raises(SecretsError, match="no GnuPG keyring is configured"):
        only_age.decrypt(by_pgp, Path("p.yaml"))
    with pytest.raises(SecretsError, match=r"bogus\.agekey: no age identity"):
        Decryptor.from_key_material({"bogus.agekey": b"not a key"})


@pytest.mark.parametrize("selector", ["encrypted_comment_regex", "unencrypted_comment_regex"])
def test_comment_regex_files_decrypt_but_are_not_rewritten(tmp_path: Path, age_key: AgeKey, selector: str) -> None:
    document = b"# public note\n# private note\na: 1\nb:\n    # private inner\n    c: 2\n"
    (tmp_path / "x.yaml").write_bytes(document)
    _write_rules(tmp_path, f"creation_rules:\n  - age: {age_key.recipient}\n    {selector}: public\n")
    encrypted = sops("encrypt", "x.yaml", cwd=tmp_path).stdout
    assert b"ENC[AES256_GCM" in encrypted.split(b"\nsops:")[0]
    decryptor = Decryptor.from_environment([age_key.path])
    assert decryptor.decrypt(encrypted, tmp_path / "x.yaml") == document
    with pytest.raises(SecretsError, match="not re-encrypted by tether"):
        api.rotate(encrypted, "yaml", decryptor.ring, "x.yaml")
    with pytest.raises(SecretsError, match="comment_regex are not supported"):
        rule_for(tmp_path / "x.yaml")
