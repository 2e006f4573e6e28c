"""The ``tether secrets`` commands, run as a real process, checked with the sops binary."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from secrets_helpers import AgeKey, make_age_key, sops
from secrets_samples import YAML as SAMPLE_YAML
from secrets_samples import parsed

TETHER = Path(sys.executable).parent / "tether"
pytestmark = pytest.mark.usefixtures("clean_env")


def tether(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, check: bool = True, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        [str(TETHER), "secrets", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=120,
        input=stdin,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"tether secrets {args} failed: {result.stderr.decode()}")
    return result


def sops_plain(path: Path, key: AgeKey) -> bytes:
    return sops("decrypt", path.name, cwd=path.parent, env={"SOPS_AGE_KEY_FILE": str(key.path)}).stdout


def test_keygen_to_stdout_and_file(tmp_path: Path) -> None:
    out = tether("keygen", cwd=tmp_path).stdout.decode()
    assert "# public key: age1" in out and "\nAGE-SECRET-KEY-1" in out
    result = tether("keygen", "--output", "id.txt", cwd=tmp_path)
    key_file = tmp_path / "id.txt"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = result.stderr.decode().split("Public key: ")[1].strip()
    assert f"# public key: {public}" in key_file.read_text() and result.stdout == b""
    again = tether("keygen", "--output", "id.txt", cwd=tmp_path, check=False)
    assert again.returncode == 2 and b"already exists" in again.stderr
    # the identity works with sops
    (tmp_path / "s.yaml").write_bytes(b"password: hunter2\n")
    encrypted = tether("encrypt", "--age", public, "s.yaml", cwd=tmp_path).stdout
    (tmp_path / "s.enc.yaml").write_bytes(encrypted)
    assert (
        sops("decrypt", "s.enc.yaml", cwd=tmp_path, env={"SOPS_AGE_KEY_FILE": str(key_file)}).stdout
        == b"password: hunter2\n"
    )


def test_encrypt_decrypt_in_place_and_flags(tmp_path: Path, age_key: AgeKey) -> None:
    plain = tmp_path / "s.yaml"
    plain.write_bytes(SAMPLE_YAML)
    out = tether(
        "encrypt", "--age", age_key.recipient, "--encrypted-regex", "^password$", "s.yaml", cwd=tmp_path
    ).stdout
    assert plain.read_bytes() == SAMPLE_YAML  # stdout, file untouched
    loaded = YAML(typ="safe").load(out)
    assert loaded["stringData"]["password"].startswith("ENC[") and loaded["stringData"]["port"] == 5432
    assert loaded["sops"]["encrypted_regex"] == "^password$"
    tether("encrypt", "-i", "--age", age_key.recipient, "s.yaml", cwd=tmp_path)
    assert b"s3cr3t" not in plain.read_bytes()
    assert parsed("yaml", sops_plain(plain, age_key)) == parsed("yaml", SAMPLE_YAML)
    decrypted = tether("decrypt", "--decryption-key", age_key.path, "s.yaml", cwd=tmp_path).stdout
    assert parsed("yaml", decrypted) == parsed("yaml", SAMPLE_YAML)
    as_json = tether(
        "decrypt", "--decryption-key", age_key.path, "--output-type", "json", "s.yaml", cwd=tmp_path
    ).stdout
    assert parsed("json", as_json) == parsed("yaml", SAMPLE_YAML)[0]
    tether("decrypt", "-i", "s.yaml", cwd=tmp_path, env={"SOPS_AGE_KEY_FILE": str(age_key.path)})
    assert parsed("yaml", plain.read_bytes()) == parsed("yaml", SAMPLE_YAML)


def test_encrypt_uses_nearest_sops_yaml_and_env_recipients(tmp_path: Path, age_key: AgeKey) -> None:
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - path_regex: \\.env$\n    age: {age_key.recipient}\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "prod.env").write_bytes(b"TOKEN=abc\n")
    out = tether("encrypt", "prod.env", cwd=tmp_path / "app").stdout
    assert b"sops_age__list_0__map_recipient=" + age_key.recipient.encode() in out
    (tmp_path / "app" / "enc.env").write_bytes(out)
    assert sops_plain(tmp_path / "app" / "enc.env", age_key) == b"TOKEN=abc\n"
    # no rule matches: a clear error
    (tmp_path / "app" / "x.json").write_bytes(b'{"a": 1}')
    result = tether("encrypt", "x.json", cwd=tmp_path / "app", check=False)
    assert result.returncode == 2 and b"no creation rule matches app/x.json" in result.stderr
    out = tether("encrypt", "x.json", cwd=tmp_path / "app", env={"SOPS_AGE_RECIPIENTS": age_key.recipient}).stdout
    assert age_key.recipient.encode() in out


def test_decrypt_errors_name_the_file_and_hide_values(tmp_path: Path, age_key: AgeKey) -> None:
    plain = tmp_path / "s.yaml"
    plain.write_bytes(SAMPLE_YAML)
    plain.write_bytes(sops("encrypt", "--age", age_key.recipient, "s.yaml", cwd=tmp_path).stdout)
    other = make_age_key(tmp_path, "other.txt")
    result = tether(
        "decrypt",
        "--decryption-key",
        other.path,
        "s.yaml",
        cwd=tmp_path,
        check=False,
        env={"GNUPGHOME": str(tmp_path / "no-gnupg")},
    )
    assert result.returncode == 2 and result.stdout == b""
    assert b"error: s.yaml: cannot decrypt the data key" in result.stderr
    plain.write_text(plain.read_text().replace("plain_unencrypted: visible", "plain_unencrypted: edited"))
    result = tether("decrypt", "--decryption-key", age_key.path, "s.yaml", cwd=tmp_path, check=False)
    assert result.returncode == 2 and b"MAC mismatch" in result.stderr and b"s3cr3t" not in result.stderr
    result = tether("decrypt", "--decryption-key", age_key.path, "--ignore-mac", "s.yaml", cwd=tmp_path)
    assert b"s3cr3t-yaml" in result.stdout


EDITOR = """\
import os, stat, sys
path = sys.argv[1]
with open(os.environ["EDIT_LOG"], "a") as log:
    log.write(path + "\\n" + oct(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)) + "\\n")
text = open(path).read()
with open(path, "w") as handle:
    handle.write(text.replace(os.environ.get("EDIT_FROM", "@@"), os.environ.get("EDIT_TO", "@@")))
"""


def test_edit_reencrypts_with_same_data_key_and_removes_copy(tmp_path: Path, age_key: AgeKey) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text(EDITOR)
    log = tmp_path / "edit.log"
    secret = tmp_path / "s.yaml"
    secret.write_bytes(SAMPLE_YAML)
    secret.write_bytes(sops("encrypt", "--age", age_key.recipient, "s.yaml", cwd=tmp_path).stdout)
    before = YAML(typ="safe").load(secret.read_text())["sops"]
    env = {
        "EDITOR": f"{sys.executable} {editor}",
        "EDIT_LOG": str(log),
        "SOPS_AGE_KEY_FILE": str(age_key.path),
        "EDIT_FROM": "s3cr3t-yaml",
        "EDIT_TO": "n3w-value",
    }
    tether("edit", "s.yaml", cwd=tmp_path, env=env)
    copy_path, mode = log.read_text().splitlines()[:2]
    assert mode == "0o700" and not Path(copy_path).parent.exists()
    after = YAML(typ="safe").load(secret.read_text())["sops"]
    assert after["age"] == before["age"] and after["mac"] != before["mac"]
    edited = parsed("yaml", sops_plain(secret, age_key))
    assert edited[0]["stringData"]["password"] == "n3w-value"
    assert b"n3w-value" not in secret.read_bytes()
    # an editor that changes nothing leaves the file as it was
    snapshot = secret.read_bytes()
    result = tether("edit", "s.yaml", cwd=tmp_path, env={**env, "EDIT_FROM": "absent"})
    assert secret.read_bytes() == snapshot and b"not changed" in result.stderr


def test_edit_creates_a_new_file(tmp_path: Path, age_key: AgeKey) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'w').write('token: fresh\\n')\n")
    env = {"EDITOR": f"{sys.executable} {editor}"}
    tether("edit", "--age", age_key.recipient, "new.yaml", cwd=tmp_path, env=env)
    assert sops_plain(tmp_path / "new.yaml", age_key) == b"token: fresh\n"


def test_rotate_changes_data_key_and_recipients(tmp_path: Path, age_key: AgeKey) -> None:
    secret = tmp_path / "s.json"
    secret.write_bytes(b'{"password": "s3cr3t", "n": 1}\n')
    secret.write_bytes(sops("encrypt", "--age", age_key.recipient, "s.json", cwd=tmp_path).stdout)
    second = make_age_key(tmp_path, "second.txt")
    env = {"SOPS_AGE_KEY_FILE": str(age_key.path)}
    old = YAML(typ="safe").load(secret.read_text())
    tether("rotate", "-i", "--add-age", second.recipient, "s.json", cwd=tmp_path, env=env)
    new = YAML(typ="safe").load(secret.read_text())
    assert new["password"] != old["password"]
    assert new["sops"]["age"][0]["enc"] != old["sops"]["age"][0]["enc"]
    assert [a["recipient"] for a in new["sops"]["age"]] == [age_key.recipient, second.recipient]
    assert parsed("json", sops_plain(secret, second)) == {"password": "s3cr3t", "n": 1}
    tether("rotate", "-i", "--rm-age", age_key.recipient, "s.json", cwd=tmp_path, env=env)
    assert [a["recipient"] for a in YAML(typ="safe").load(secret.read_text())["sops"]["age"]] == [second.recipient]
    result = sops("decrypt", "s.json", cwd=tmp_path, env=env, check=False)
    assert result.returncode != 0  # the removed key no longer opens the file
    assert parsed("json", sops_plain(secret, second)) == {"password": "s3cr3t", "n": 1}


def test_updatekeys_follows_sops_yaml(tmp_path: Path, age_key: AgeKey) -> None:
    second = make_age_key(tmp_path, "second.txt")
    secret = tmp_path / "s.ini"
    secret.write_bytes(b"[db]\npassword = s3cr3t\n")
    secret.write_bytes(sops("encrypt", "--age", age_key.recipient, "s.ini", cwd=tmp_path).stdout)
    values_before = [line for line in secret.read_text().splitlines() if line.startswith("password")]
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {second.recipient}\n")
    env = {"SOPS_AGE_KEY_FILE": str(age_key.path)}
    result = tether("updatekeys", "-y", "s.ini", cwd=tmp_path, env=env)
    assert f"+++ age:{second.recipient}".encode() in result.stderr
    assert f"--- age:{age_key.recipient}".encode() in result.stderr
    assert [line for line in secret.read_text().splitlines() if line.startswith("password")] == values_before
    assert sops_plain(secret, second) == b"[db]\npassword = s3cr3t\n"
    assert (
        b"already up to date"
        in tether("updatekeys", "-y", "s.ini", cwd=tmp_path, env={"SOPS_AGE_KEY_FILE": str(second.path)}).stderr
    )


def test_edit_to_invalid_yaml_leaves_file_and_removes_copy(tmp_path: Path, age_key: AgeKey) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text(EDITOR)
    log = tmp_path / "edit.log"
    secret = tmp_path / "s.yaml"
    secret.write_bytes(b"password: s3cr3t\n")
    tether("encrypt", "-i", "--age", age_key.recipient, "s.yaml", cwd=tmp_path)
    snapshot = secret.read_bytes()
    env = {
        "EDITOR": f"{sys.executable} {editor}",
        "EDIT_LOG": str(log),
        "SOPS_AGE_KEY_FILE": str(age_key.path),
        "EDIT_FROM": "password: s3cr3t",
        "EDIT_TO": "password: [s3cr3t",
    }
    result = tether("edit", "s.yaml", cwd=tmp_path, env=env, check=False)
    assert result.returncode == 2 and b"s.yaml:" in result.stderr and b"not valid YAML" in result.stderr
    assert b"s3cr3t" not in result.stderr and b"s3cr3t" not in result.stdout
    assert secret.read_bytes() == snapshot
    assert not Path(log.read_text().splitlines()[0]).parent.exists()


def test_refuses_double_encryption_and_plain_decryption(tmp_path: Path, age_key: AgeKey) -> None:
    secret = tmp_path / "s.json"
    secret.write_bytes(b'{"a": "b"}')
    result = tether("decrypt", "--decryption-key", age_key.path, "s.json", cwd=tmp_path, check=False)
    assert result.returncode == 2 and b"s.json: not a SOPS-encrypted file" in result.stderr
    tether("encrypt", "-i", "--age", age_key.recipient, "s.json", cwd=tmp_path)
    result = tether("encrypt", "--age", age_key.recipient, "s.json", cwd=tmp_path, check=False)
    assert result.returncode == 2 and b"already encrypted" in result.stderr
