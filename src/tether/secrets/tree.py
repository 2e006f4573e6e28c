"""Walking a document's values in order: encryption decisions, encryption, decryption, MAC.

Each store (YAML, JSON, dotenv, INI, binary) presents its document as a list of ``Slot``s in
document order: one per leaf value and one per comment, with the path of keys leading to it.
Lists add nothing to the path, so every item of ``a: [x, y]`` has path ``a``. A comment's
path is the path of the mapping or list that holds it.

The MAC is SHA-512 over the plaintext bytes of every value (not comments) in document order
(with ``mac_only_encrypted``: a fixed seed, then only the encrypted values), upper-case hex,
encrypted with the data key and the ``lastmodified`` text as additional data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.errors import SecretsError
from tether.secrets.cipher import (
    Comment,
    DecryptionFailed,
    decrypt_value,
    encrypt_value,
    is_encrypted_value,
    to_bytes,
)

DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"


@dataclass
class Slot:
    """One value or comment of a document, with a setter that writes the new form back."""

    path: tuple[str, ...]
    value: Any
    setter: Callable[[Any], None]
    comment: bool = False
    #: other paths worth trying when decrypting a comment whose owner is ambiguous
    alt_paths: Sequence[tuple[str, ...]] = ()

    def aad(self, path: tuple[str, ...] | None = None) -> str:
        return ":".join(self.path if path is None else path) + ":"


@dataclass
class Rules:
    """Which values get encrypted. At most one of the four selectors may be set."""

    unencrypted_suffix: str | None = None
    encrypted_suffix: str | None = None
    unencrypted_regex: str | None = None
    encrypted_regex: str | None = None
    mac_only_encrypted: bool = False
    #: the file selects values by comment regexes (not interpreted): accept plain values anywhere
    comment_selectors: bool = False
    _compiled: dict[str, re.Pattern[str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chosen = [
            n
            for n in ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex")
            if getattr(self, n)
        ]
        if len(chosen) > 1:
            raise SecretsError(f"only one of {', '.join(chosen)} may be set")
        for name in ("unencrypted_regex", "encrypted_regex"):
            pattern = getattr(self, name)
            if pattern:
                try:
                    self._compiled[name] = re.compile(pattern)
                except re.error as error:
                    raise SecretsError(f"invalid {name} {pattern!r}: {error}") from error

    @classmethod
    def default(cls) -> Rules:
        return cls(unencrypted_suffix=DEFAULT_UNENCRYPTED_SUFFIX)

    def is_empty(self) -> bool:
        return not (self.unencrypted_suffix or self.encrypted_suffix or self.unencrypted_regex or self.encrypted_regex)

    def should_encrypt(self, path: Iterable[str]) -> bool:
        keys = [str(k) for k in path]
        if self.unencrypted_suffix:
            return not any(k.endswith(self.unencrypted_suffix) for k in keys)
        if self.encrypted_suffix:
            return any(k.endswith(self.encrypted_suffix) for k in keys)
        if self.unencrypted_regex:
            return not any(self._compiled["unencrypted_regex"].search(k) for k in keys)
        if self.encrypted_regex:
            return any(self._compiled["encrypted_regex"].search(k) for k in keys)
        return True

    def to_metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.mac_only_encrypted:
            out["mac_only_encrypted"] = True
        return out


class _Mac:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.hash = hashlib.sha512()
        if rules.mac_only_encrypted:
            # SOPS seeds this variant with SHA-256("sops"), so the two MAC kinds never collide
            self.hash.update(hashlib.sha256(b"sops").digest())

    def add(self, value: Any, encrypted: bool) -> None:
        if not self.rules.mac_only_encrypted or encrypted:
            self.hash.update(to_bytes(value)[0])

    def hex(self) -> str:
        return self.hash.hexdigest().upper()


def encrypt_slots(slots: Iterable[Slot], key: bytes, rules: Rules) -> str:
    """Encrypt the slots in place; returns the MAC (plain hex) over the plaintext values."""
    mac = _Mac(rules)
    for slot in slots:
        if isinstance(slot.value, str) and slot.value.startswith("ENC[") and is_encrypted_value(slot.value):
            raise SecretsError(f"value at '{slot.aad()}' is already encrypted")
        encrypt = rules.should_encrypt(slot.path)
        if slot.comment:
            if encrypt:
                slot.setter(encrypt_value(Comment(slot.value), key, slot.aad()))
            continue
        mac.add(slot.value, encrypt)
        if encrypt:
            slot.setter(encrypt_value(slot.value, key, slot.aad()))
    return mac.hex()


def decrypt_slots(slots: Iterable[Slot], key: bytes, rules: Rules, *, raw: bool = False) -> str:
    """Decrypt the slots in place; returns the MAC (plain hex) over the decrypted values."""
    mac = _Mac(rules)
    for slot in slots:
        encrypted = rules.should_encrypt(slot.path)
        if slot.comment:
            if is_encrypted_value(slot.value):
                slot.setter(_decrypt_comment(slot, key))
            continue
        value = slot.value
        if (
            encrypted
            and isinstance(value, str)
            and value != ""
            and (not rules.comment_selectors or is_encrypted_value(value))
        ):
            value = decrypt_value(value, key, slot.aad(), raw=raw)
            slot.setter(value)
            if isinstance(value, Comment):
                continue  # SOPS stores comments inside YAML lists as list items; never in the MAC
        mac.add(value, encrypted)
    return mac.hex()


def _decrypt_comment(slot: Slot, key: bytes) -> Comment:
    # Comment ownership differs slightly between YAML parsers; try the likely owners in turn.
    tried: list[tuple[str, ...]] = [slot.path, *slot.alt_paths]
    for path in dict.fromkeys(tried):
        try:
            return decrypt_value(slot.value, key, slot.aad(path))
        except DecryptionFailed:
            continue
    raise DecryptionFailed(f"comment under '{slot.aad()}' failed authentication")


def encrypt_mac(mac_hex: str, key: bytes, lastmodified: str) -> str:
    return encrypt_value(mac_hex, key, lastmodified)


def verify_mac(stored: str | None, computed: str, key: bytes, lastmodified: str) -> None:
    if not stored:
        raise SecretsError("the file has no MAC")
    try:
        original = decrypt_value(stored, key, lastmodified)
    except DecryptionFailed:
        raise SecretsError("the MAC does not authenticate (tampered MAC or lastmodified)") from None
    if original != computed:
        raise SecretsError("MAC mismatch: the file was modified after it was encrypted")
