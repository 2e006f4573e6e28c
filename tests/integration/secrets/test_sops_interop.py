"""Interop both ways with the real sops binary, for every format, MAC checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from secrets_helpers import AgeKey, make_age_key, sops
from secrets_samples import SAMPLES, SECRET_WORD, parsed

from tether.errors import SecretsError
from tether.secrets import Decryptor, api
from tether.secrets.config import group_from
from tether.secrets.tree import Rules

FORMATS = sorted(SAMPLES)
pytestmark = pytest.mark.usefixtures("clean_env")


def write_sample(directory: Path, fmt: str) -> Path:
    data, ext = SAMPLES[fmt]
    path = directory / f"secret.{ext}"
    path.write_bytes(data)
    return path


def sops_encrypt(path: Path, key: AgeKey, *extra: str) -> Path:
    out = path.with_name("enc-" + path.name)
    out.write_bytes(sops("encrypt", "--age", key.recipient, *extra, path.name, cwd=path.parent).stdout)
    return out


def tether_encrypt(path: Path, key: AgeKey, rules: Rules | None = None) -> Path:
    fmt = {"yaml": "yaml", "json": "json", "env": "dotenv", "ini": "ini", "bin": "binary"}[path.suffix[1:]]
    options = api.EncryptOptions(key_groups=[group_from([key.recipient], [])], rules=rules)
    out = path.with_name("enc-" + path.name)
    out.write_bytes(api.encrypt(path.read_bytes(), fmt, options, str(path)))
    return out


def tether_decrypt(path: Path, key: AgeKey, **kwargs: bool) -> bytes:
    return Decryptor.from_environment([key.path]).decrypt(path.read_bytes(), path, **kwargs)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sops_encrypted_file_decrypts_with_tether(tmp_path: Path, age_key: AgeKey, fmt: str) -> None:
    plain = write_sample(tmp_path, fmt)
    encrypted = sops_encrypt(plain, age_key)
    assert SECRET_WORD not in encrypted.read_bytes()
    decryptor = Decryptor.from_environment([age_key.path])
    assert decryptor.is_encrypted(encrypted.read_bytes(), encrypted)
    assert not decryptor.is_encrypted(plain.read_bytes(), plain)
    assert parsed(fmt, decryptor.decrypt(encrypted.read_bytes(), encrypted)) == parsed(fmt, plain.read_bytes())


@pytest.mark.parametrize("fmt", FORMATS)
def test_tether_encrypted_file_decrypts_with_sops(tmp_path: Path, age_key: AgeKey, fmt: str) -> None:
    plain = write_sample(tmp_path, fmt)
    encrypted = tether_encrypt(plain, age_key)
    assert SECRET_WORD not in encrypted.read_bytes()
    result = sops("decrypt", encrypted.name, cwd=tmp_path, env={"SOPS_AGE_KEY_FILE": str(age_key.path)})
    assert parsed(fmt, result.stdout) == parsed(fmt, plain.read_bytes())
    assert b"possibly unencrypted comment" not in result.stderr.lower()
    # and tether reads its own output back
    assert parsed(fmt, tether_decrypt(encrypted, age_key)) == parsed(fmt, plain.read_bytes())


def test_yaml_comments_survive_both_ways(tmp_path: Path, age_key: AgeKey) -> None:
    plain = write_sample(tmp_path, "yaml")
    for encrypted in (tether_encrypt(plain, age_key), sops_encrypt(plain, age_key)):
        text = encrypted.read_bytes()
        assert b"database credentials" not in text and b"#ENC[AES256_GCM" in text
        out = tether_decrypt(encrypted, age_key)
        for comment in (b"# database credentials", b"# the object name", b"# a comment in a list"):
            assert comment in out


def _tamper_first_value(text: str) -> str:
    match = re.search(r"ENC\[AES256_GCM,data:([A-Za-z0-9+/]{2})[^\]]*type:(?:str|int)\]", text)
    assert match
    first = match.group(1)
    swapped = first[::-1] if first[0] != first[1] else ("B" if first[0] == "A" else "A") + first[1]
    return text[: match.start(1)] + swapped + text[match.end(1) :]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("writer", ["sops", "tether"])
def test_tampered_value_is_refused(tmp_path: Path, age_key: AgeKey, fmt: str, writer: str) -> None:
    plain = write_sample(tmp_path, fmt)
    encrypted = (sops_encrypt if writer == "sops" else tether_encrypt)(plain, age_key)
    encrypted.write_text(_tamper_first_value(encrypted.read_text()))
    with pytest.raises(SecretsError, match=re.escape(str(encrypted))) as caught:
        tether_decrypt(encrypted, age_key)
    assert "failed authentication" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("writer", ["sops", "tether"])
def test_tampered_mac_is_refused_unless_ignored(tmp_path: Path, age_key: AgeKey, fmt: str, writer: str) -> None:
    plain = write_sample(tmp_path, fmt)
    encrypted = (sops_encrypt if writer == "sops" else tether_encrypt)(plain, age_key)
    text = encrypted.read_text()
    mac = re.search(r"mac[\"\s=:]+ENC\[AES256_GCM,data:([A-Za-z0-9+/])", text)
    assert mac
    index = mac.start(1)
    encrypted.write_text(text[:index] + ("B" if text[index] == "A" else "A") + text[index + 1 :])
    with pytest.raises(SecretsError, match="MAC") as caught:
        tether_decrypt(encrypted, age_key)
    assert str(encrypted) in str(caught.value)
    assert parsed(fmt, tether_decrypt(encrypted, age_key, ignore_mac=True)) == parsed(fmt, plain.read_bytes())


@pytest.mark.parametrize("writer", ["sops", "tether"])
def test_mac_covers_unencrypted_values(tmp_path: Path, age_key: AgeKey, writer: str) -> None:
    plain = write_sample(tmp_path, "yaml")
    encrypted = (sops_encrypt if writer == "sops" else tether_encrypt)(plain, age_key)
    encrypted.write_text(encrypted.read_text().replace("plain_unencrypted: visible", "plain_unencrypted: changed"))
    with pytest.raises(SecretsError, match="MAC mismatch"):
        tether_decrypt(encrypted, age_key)
    # sops agrees that the file was tampered with
    result = sops("decrypt", encrypted.name, cwd=tmp_path, env={"SOPS_AGE_KEY_FILE": str(age_key.path)}, check=False)
    assert result.returncode != 0 and b"MAC mismatch" in result.stderr


def test_value_moved_to_another_key_is_refused(tmp_path: Path, age_key: AgeKey) -> None:
    plain = write_sample(tmp_path, "json")
    encrypted = tether_encrypt(plain, age_key)
    text = encrypted.read_text()
    user = re.search(r'"user": "(ENC\[[^"]+)"', text)
    password = re.search(r'"password": "(ENC\[[^"]+)"', text)
    assert user and password
    swapped = text.replace(user.group(1), "@@").replace(password.group(1), user.group(1))
    swapped = swapped.replace("@@", password.group(1))
    encrypted.write_text(swapped)
    with pytest.raises(SecretsError, match=r"'user:' failed authentication"):
        tether_decrypt(encrypted, age_key)


@pytest.mark.parametrize("writer", ["sops", "tether"])
def test_wrong_or_missing_key_names_the_file(tmp_path: Path, age_key: AgeKey, writer: str) -> None:
    plain = write_sample(tmp_path, "yaml")
    encrypted = (sops_encrypt if writer == "sops" else tether_encrypt)(plain, age_key)
    other = make_age_key(tmp_path, "other.txt")
    for decryptor in (Decryptor.from_environment([other.path]), Decryptor.from_environment()):
        decryptor.ring.use_gpg = False
        with pytest.raises(SecretsError) as caught:
            decryptor.decrypt(encrypted.read_bytes(), encrypted)
        message = str(caught.value)
        assert message.startswith(str(encrypted)) and "cannot decrypt the data key" in message
        assert age_key.recipient in message and "s3cr3t" not in message


def test_corrupt_file_names_the_file(tmp_path: Path, age_key: AgeKey) -> None:
    plain = write_sample(tmp_path, "yaml")
    encrypted = tether_encrypt(plain, age_key)
    encrypted.write_text(encrypted.read_text().replace("sops:", "sops: [", 1))
    with pytest.raises(SecretsError, match=re.escape(str(encrypted))):
        tether_decrypt(encrypted, age_key)
    encrypted.write_text("a: b\nsops: {}\n")
    with pytest.raises(SecretsError, match="lacks 'version' or 'mac'"):
        tether_decrypt(encrypted, age_key)


def test_multi_document_yaml_both_ways(tmp_path: Path, age_key: AgeKey) -> None:
    plain = tmp_path / "multi.yaml"
    plain.write_bytes(b"kind: Secret\nstringData:\n  a: one\n---\nkind: Secret\nstringData:\n  b: two\n")
    for encrypted in (sops_encrypt(plain, age_key), tether_encrypt(plain, age_key)):
        assert encrypted.read_text().count("\nsops:") == 2
        assert parsed("yaml", tether_decrypt(encrypted, age_key)) == parsed("yaml", plain.read_bytes())
        result = sops("decrypt", encrypted.name, cwd=tmp_path, env={"SOPS_AGE_KEY_FILE": str(age_key.path)})
        assert parsed("yaml", result.stdout) == parsed("yaml", plain.read_bytes())
