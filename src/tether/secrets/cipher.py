"""Per-value AES256-GCM encryption in the SOPS text encoding.

Every leaf value is encrypted on its own with the file's 32-byte data key, a fresh 32-byte
IV, and the value's key path (``a:b:c:``) as additional authenticated data, so a value moved
to another key no longer decrypts. The result is written as
``ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<str|int|float|bool|time|bytes|comment>]``.
Values are turned into bytes exactly as the Go implementation does, because the MAC is a
hash over those bytes and must match byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tether.errors import SecretsError

ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:(?P<data>[^,]*),iv:(?P<iv>[^,]*),tag:(?P<tag>[^,]*),type:(?P<type>\w+)\]$")
IV_SIZE = 32
DATA_KEY_SIZE = 32


class Comment(str):
    """Text of a comment (without its marker); encrypted with type ``comment``."""


class DecryptionFailed(SecretsError):
    """A value did not authenticate: wrong data key, tampered value or moved value."""


def is_encrypted_value(value: Any) -> bool:
    return isinstance(value, str) and ENC_RE.match(value) is not None


def format_float(value: float) -> str:
    """Shortest round-trip decimal in fixed notation, as Go's FormatFloat(v, 'f', -1, 64)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_time(value: date) -> str:
    """RFC 3339 without fractions, as Go's time.RFC3339 layout writes it; dates are UTC midnight."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    offset = value.utcoffset()
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def to_bytes(value: Any) -> tuple[bytes, str]:
    """The plaintext bytes of a value and its SOPS type name."""
    if isinstance(value, Comment):
        return value.encode(), "comment"
    if isinstance(value, bool) or type(value).__name__ == "ScalarBoolean":
        return (b"True" if value else b"False"), "bool"
    if isinstance(value, int):
        return str(int(value)).encode(), "int"
    if isinstance(value, float):
        return format_float(value).encode(), "float"
    if isinstance(value, bytes | bytearray):
        return bytes(value), "str"
    if isinstance(value, date):
        return format_time(value).encode(), "time"
    if value is None:
        return b"", "str"
    return str(value).encode(), "str"


def from_bytes(plain: bytes, kind: str, *, raw: bool = False) -> Any:
    if kind == "comment":
        return Comment(plain.decode())
    if kind == "int":
        return int(plain)
    if kind == "float":
        return float(plain.decode().replace("Inf", "inf"))
    if kind == "bool":
        return plain == b"True"
    if kind == "time":
        return datetime.fromisoformat(plain.decode())
    if kind in ("str", "bytes"):
        return plain if raw else plain.decode("utf-8", errors="surrogateescape")
    raise SecretsError(f"unknown value type {kind!r}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encrypt_value(value: Any, key: bytes, aad: str) -> str:
    """Encrypt one value; empty strings and nulls stay as they are (as SOPS does)."""
    plain, kind = to_bytes(value)
    if kind == "str" and not plain:
        return value
    iv = os.urandom(IV_SIZE)
    sealed = AESGCM(key).encrypt(iv, plain, aad.encode())
    return f"ENC[AES256_GCM,data:{_b64(sealed[:-16])},iv:{_b64(iv)},tag:{_b64(sealed[-16:])},type:{kind}]"


def decrypt_value(text: str, key: bytes, aad: str, *, raw: bool = False) -> Any:
    """Decrypt one ``ENC[...]`` string. Raises DecryptionFailed (never showing the value)."""
    match = ENC_RE.match(text)
    if match is None:
        raise SecretsError("value is not in the ENC[AES256_GCM,...] format")
    try:
        data, iv, tag = (base64.b64decode(match[name], validate=True) for name in ("data", "iv", "tag"))
    except (binascii.Error, ValueError) as error:
        raise SecretsError("encrypted value has invalid base64") from error
    if len(iv) < 8 or len(tag) != 16:
        raise SecretsError("encrypted value has an invalid IV or tag length")
    try:
        plain = AESGCM(key).decrypt(iv, data + tag, aad.encode())
    except InvalidTag:
        raise DecryptionFailed(f"value at '{aad}' failed authentication (wrong data key or tampered)") from None
    try:
        return from_bytes(plain, match["type"], raw=raw)
    except ValueError:
        # "from None": the parser's own message would quote the plaintext
        raise SecretsError(f"value at '{aad}' has malformed {match['type']} content") from None
