"""Format details of SOPS values, selectors, MAC, Shamir and metadata flattening."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from tether.errors import SecretsError
from tether.secrets import Decryptor, api, shamir
from tether.secrets.cipher import (
    ENC_RE,
    Comment,
    DecryptionFailed,
    decrypt_value,
    encrypt_value,
    format_float,
    to_bytes,
)
from tether.secrets.config import group_from
from tether.secrets.keys import KeyRing
from tether.secrets.metadata import flatten, unflatten
from tether.secrets.stores import format_for
from tether.secrets.tree import Rules, Slot, decrypt_slots, encrypt_slots
from tether.secrets.yamlstore import guess_indent

KEY = bytes(range(32))
DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (1.0, "1"),
        (1e20, "100000000000000000000"),
        (0.1, "0.1"),
        (-2.25, "-2.25"),
        (1e-7, "0.0000001"),
        (123456789.125, "123456789.125"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (float("nan"), "NaN"),
    ],
)
def test_float_text_matches_go(value: float, text: str) -> None:
    assert format_float(value) == text


@pytest.mark.parametrize(
    ("value", "plain", "kind"),
    [
        ("hello", b"hello", "str"),
        ("", b"", "str"),
        (42, b"42", "int"),
        (-7, b"-7", "int"),
        (True, b"True", "bool"),
        (False, b"False", "bool"),
        (2.5, b"2.5", "float"),
        (b"\x00\xff", b"\x00\xff", "str"),
        (Comment(" note"), b" note", "comment"),
        ("ünï", "ünï".encode(), "str"),
    ],
)
def test_value_bytes_and_type(value: Any, plain: bytes, kind: str) -> None:
    assert to_bytes(value) == (plain, kind)


@pytest.mark.parametrize("value", ["s3cr3t", 42, -1, 2.5, 1e20, True, False, Comment(" c"), "multi\nline"])
def test_value_round_trip_and_encoding(value: Any) -> None:
    text = encrypt_value(value, KEY, "a:b:")
    match = ENC_RE.match(text)
    assert match
    assert len(base64.b64decode(match["iv"])) == 32 and len(base64.b64decode(match["tag"])) == 16
    assert decrypt_value(text, KEY, "a:b:") == value
    assert type(decrypt_value(text, KEY, "a:b:")) is type(value)


@pytest.mark.parametrize(("aad", "key"), [("a:c:", KEY), ("", KEY), ("a:b:", bytes(32))])
def test_wrong_path_or_key_fails_authentication(aad: str, key: bytes) -> None:
    text = encrypt_value("s3cr3t", KEY, "a:b:")
    with pytest.raises(DecryptionFailed) as caught:
        decrypt_value(text, key, aad)
    assert "s3cr3t" not in str(caught.value)


def test_empty_and_null_values_are_left_alone() -> None:
    assert encrypt_value("", KEY, "a:") == ""
    assert encrypt_value(None, KEY, "a:") is None


@pytest.mark.parametrize(
    "bad",
    [
        "ENC[AES256_GCM,data:!!,iv:AAAA,tag:AAAA,type:str]",
        "plain",
        "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
    ],
)
def test_malformed_values_are_rejected(bad: str) -> None:
    with pytest.raises(SecretsError):
        decrypt_value(bad, KEY, "a:")


@pytest.mark.parametrize(
    ("rules", "path", "expected"),
    [
        (Rules.default(), ("a", "b"), True),
        (Rules.default(), ("a_unencrypted", "b"), False),
        (Rules.default(), ("a", "b_unencrypted"), False),
        (Rules(encrypted_suffix="_secret"), ("a",), False),
        (Rules(encrypted_suffix="_secret"), ("pw_secret", "x"), True),
        (Rules(encrypted_regex="^(data|stringData)$"), ("stringData", "password"), True),
        (Rules(encrypted_regex="^(data|stringData)$"), ("metadata", "name"), False),
        (Rules(encrypted_regex="^data$"), (), False),
        (Rules(unencrypted_regex="^meta"), ("metadata", "name"), False),
        (Rules(unencrypted_regex="^meta"), ("spec", "x"), True),
        (Rules(), ("anything",), True),
    ],
)
def test_selectors(rules: Rules, path: tuple[str, ...], expected: bool) -> None:
    assert rules.should_encrypt(path) is expected


def test_only_one_selector_and_valid_regex() -> None:
    with pytest.raises(SecretsError, match="only one of"):
        Rules(encrypted_regex="a", unencrypted_suffix="_u")
    with pytest.raises(SecretsError, match="invalid encrypted_regex"):
        Rules(encrypted_regex="(")


def _slots(values: dict[str, Any]) -> list[Slot]:
    return [Slot((k,), v, lambda new, k=k: values.__setitem__(k, new)) for k, v in values.items()]


def test_mac_is_sha512_over_plaintext_values_in_order() -> None:
    values: dict[str, Any] = {"a": "x", "n": 1, "b": True, "e": "", "plain_unencrypted": "p"}
    mac = encrypt_slots(_slots(values), KEY, Rules.default())
    assert mac == hashlib.sha512(b"x1Truep").hexdigest().upper()
    assert values["plain_unencrypted"] == "p" and values["a"].startswith("ENC[")
    assert decrypt_slots(_slots(values), KEY, Rules.default()) == mac
    assert values == {"a": "x", "n": 1, "b": True, "e": "", "plain_unencrypted": "p"}


def test_mac_only_encrypted_is_seeded() -> None:
    rules = Rules(encrypted_regex="^a$", mac_only_encrypted=True)
    mac = encrypt_slots(_slots({"a": "x", "b": "y"}), KEY, rules)
    assert mac == hashlib.sha512(hashlib.sha256(b"sops").digest() + b"x").hexdigest().upper()


def test_already_encrypted_values_are_refused() -> None:
    with pytest.raises(SecretsError, match="already encrypted"):
        encrypt_slots(_slots({"a": encrypt_value("x", KEY, "a:")}), KEY, Rules.default())


@pytest.mark.parametrize(("parts", "threshold"), [(2, 2), (3, 2), (5, 3), (4, 4)])
def test_shamir_any_threshold_subset_rebuilds(parts: int, threshold: int) -> None:
    secret = bytes(range(1, 33))
    shares = shamir.split(secret, parts, threshold)
    assert all(len(s) == 33 for s in shares)
    assert shamir.combine(shares[:threshold]) == secret
    assert shamir.combine(shares[-threshold:]) == secret
    if threshold > 2:
        assert shamir.combine(shares[: threshold - 1]) != secret


@pytest.mark.parametrize(
    "meta",
    [
        {
            "age": [{"recipient": "age1x", "enc": "a\nb\n"}, {"recipient": "age1y", "enc": "c"}],
            "mac": "M",
            "version": "3.11.0",
        },
        {
            "key_groups": [
                {"age": [{"recipient": "r", "enc": "e"}]},
                {"pgp": [{"fp": "F", "enc": "x", "created_at": "t"}]},
            ],
            "shamir_threshold": "2",
        },
    ],
)
def test_flatten_round_trip(meta: dict[str, Any]) -> None:
    flat = flatten(meta)
    assert all("__" not in k or re.search(r"__(map_|list_\d)", k) for k in flat)
    assert unflatten(flat) == flatten_back(meta)


def flatten_back(meta: Any) -> Any:
    if isinstance(meta, dict):
        return {k: flatten_back(v) for k, v in meta.items()}
    if isinstance(meta, list):
        return [flatten_back(v) for v in meta]
    return str(meta)


def test_flattened_names_match_sops() -> None:
    flat = flatten({"age": [{"recipient": "r", "enc": "e"}], "lastmodified": "t"})
    assert set(flat) == {"age__list_0__map_recipient", "age__list_0__map_enc", "lastmodified"}


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.yaml", "yaml"),
        ("a.YML", "yaml"),
        ("a.json", "json"),
        (".env", "dotenv"),
        ("prod.env", "dotenv"),
        (".env.local", "dotenv"),
        ("a.ini", "ini"),
        ("key.pem", "binary"),
        ("README", "binary"),
    ],
)
def test_format_from_extension(name: str, fmt: str) -> None:
    assert format_for(name) == fmt


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("sops-3.11.enc.yaml", b"# inner comment\n"),
        ("sops-3.11.enc.env", b'MULTI="a\\nb"\n'),
        ("sops-3.11.enc.ini", b"[sec]\nk = v\n"),
    ],
)
def test_known_answer_files_written_by_sops(name: str, needle: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(DATA / "test-only-age-key.txt"))
    path = DATA / name
    out = Decryptor.from_environment().decrypt(path.read_bytes(), path)
    assert needle in out


ENC_SAMPLE = "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.yaml", f"a: 1\nsops:\n    mac: {ENC_SAMPLE}\n    version: 3.11.0\n", True),
        ("a.yaml", "a: 1\nsops:\n    mac: plain\n", False),
        ("a.yaml", "note: mentions sops and mac\n", False),
        ("a.yaml", f"a: b\nnested:\n  sops: {{mac: '{ENC_SAMPLE}'}}\n", False),
        ("a.json", f'{{"a": 1, "sops": {{"mac": "{ENC_SAMPLE}"}}}}', True),
        ("a.json", '{"a": "sops mac"}', False),
        (".env", f"A={ENC_SAMPLE}\nsops_mac={ENC_SAMPLE}\nsops_version=3.11.0\n", True),
        (".env", "sops_mac=1\n", False),
        ("a.ini", f"[s]\nk = {ENC_SAMPLE}\n\n[sops]\nmac = {ENC_SAMPLE}\n", True),
        ("blob", f'{{"data": "{ENC_SAMPLE}", "sops": {{"mac": "{ENC_SAMPLE}"}}}}', True),
        ("blob", "\x00binary sops mac", False),
    ],
)
def test_is_encrypted_is_cheap_and_precise(name: str, data: str, expected: bool) -> None:
    assert Decryptor(KeyRing()).is_encrypted(data.encode(), Path(name)) is expected


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("yaml", b"", "holds no document"),
        ("json", b"[1,", "not valid JSON"),
        ("dotenv", b"NOEQUALS\n", ":1: invalid dotenv line"),
        ("ini", b"[s]\njunk\n", ":2: invalid INI line"),
    ],
)
def test_unparseable_plaintext_names_file_and_line(fmt: str, data: bytes, message: str) -> None:
    options = api.EncryptOptions(key_groups=[group_from(["age1qqqq"], [])])
    with pytest.raises(SecretsError, match=message) as caught:
        api.encrypt(data, fmt, options, "f.txt")
    assert str(caught.value).startswith("f.txt")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a:\n  b: 1\n", (2, 0)),
        ("a:\n    b: 1\n    x:\n        - one\n", (4, 4)),
        ("containers:\n- name: a\n  image: b\n", (2, 0)),
        ("spec:\n  containers:\n    - name: a\n      image: b\n", (2, 2)),
        ("l:\n  - name: a\n    env:\n      - x\n", (2, 2)),
        ("x: 1\n", (4, 4)),
        ("a: |\n  text: not a key\n", (4, 4)),
    ],
)
def test_indentation_guess(text: str, expected: tuple[int, int]) -> None:
    assert guess_indent(text) == expected


ROUND_TRIPS = [
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db # the name\n  labels:\n    app: web\n"
    "stringData:\n  password: hunter2\n  config: |\n    a=1\n    b=2\n",
    "spec:\n  containers:\n  - name: app\n    env:\n    - name: TOKEN\n      value: abc\n",
    "spec:\n  containers:\n    - name: app\n      args: [--flag, x]\n",
    "# head\na:\n    b: 1\n    # inside\n    c:\n        - x\n        - z\n",
]


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_encrypt_then_decrypt_gives_the_file_back(text: str) -> None:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    options = api.EncryptOptions(key_groups=[group_from([str(identity.to_public())], [])])
    encrypted = api.encrypt(text.encode(), "yaml", options, "s.yaml")
    assert b"hunter2" not in encrypted
    assert api.decrypt(encrypted, "yaml", KeyRing(age=[identity], use_gpg=False), "s.yaml").decode() == text


def test_foreign_master_keys_are_kept_but_not_used() -> None:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    options = api.EncryptOptions(key_groups=[group_from([str(identity.to_public())], [])])
    encrypted = api.encrypt(b"a: b\n", "yaml", options, "s.yaml").decode()
    kms = "    kms:\n        - arn: arn:aws:kms:eu-west-1:111:key/x\n          enc: Zm9v\n"
    with_kms = encrypted.replace("sops:\n", "sops:\n" + kms, 1).encode()
    ring = KeyRing(age=[identity], use_gpg=False)
    assert api.decrypt(with_kms, "yaml", ring, "s.yaml") == b"a: b\n"  # the age key still opens it
    with pytest.raises(SecretsError, match="kms keys, which tether cannot encrypt"):
        api.rotate(with_kms, "yaml", ring, "s.yaml")
    only_kms = re.sub(r"    age:\n(?:        .*\n|            .*\n)+", "", with_kms.decode()).encode()
    with pytest.raises(SecretsError, match="kms keys are not supported by tether"):
        api.decrypt(only_kms, "yaml", ring, "s.yaml")


def test_decrypted_strings_stay_strings_for_yaml_11_readers() -> None:
    """Kubernetes and PyYAML read YAML 1.1, where plain yes/on/1:20/014 are not strings."""
    import pyrage
    import yaml

    identity = pyrage.x25519.Identity.generate()
    values = ["yes", "on", "n", "1:20", "014", "1e3", "0x1F", "2001-12-14", "True", "plain"]
    document = {"stringData": {f"k{i}": v for i, v in enumerate(values)}}
    options = api.EncryptOptions(key_groups=[group_from([str(identity.to_public())], [])])
    text = "stringData:\n" + "".join(f"  k{i}: '{v}'\n" for i, v in enumerate(values))
    encrypted = api.encrypt(text.encode(), "yaml", options, "s.yaml")
    plain = api.decrypt(encrypted, "yaml", KeyRing(age=[identity], use_gpg=False), "s.yaml")
    assert yaml.safe_load(plain) == document
    assert b"k9: plain\n" in plain


@pytest.mark.parametrize(
    ("source", "expected"), [("1.0e+20", 1e20), ("-1e-7", -1e-7), ("1.5", 1.5), (".inf", float("inf")), ("2.0", 2.0)]
)
def test_decrypted_floats_stay_floats_for_yaml_11_readers(source: str, expected: float) -> None:
    import pyrage
    import yaml

    identity = pyrage.x25519.Identity.generate()
    options = api.EncryptOptions(key_groups=[group_from([str(identity.to_public())], [])])
    encrypted = api.encrypt(f"x: {source}\n".encode(), "yaml", options, "s.yaml")
    assert yaml.safe_load(api.decrypt(encrypted, "yaml", KeyRing(age=[identity], use_gpg=False), "s.yaml")) == {
        "x": expected
    }
