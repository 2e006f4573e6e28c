"""Whole-file operations: encrypt, decrypt, re-encrypt after an edit, rotate, update keys."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from tether.errors import SecretsError
from tether.secrets import stores
from tether.secrets.cipher import DATA_KEY_SIZE
from tether.secrets.keys import KeyRing, decrypt_data_key, encrypt_data_key
from tether.secrets.metadata import FORMAT_VERSION, KeyGroup, MasterKey, Metadata, now_rfc3339
from tether.secrets.tree import Rules, Slot, decrypt_slots, encrypt_mac, encrypt_slots, verify_mac


@dataclass
class EncryptOptions:
    key_groups: list[KeyGroup] = field(default_factory=list)
    shamir_threshold: int = 0
    #: None means SOPS' default (values under keys ending in ``_unencrypted`` stay plain)
    rules: Rules | None = None


@dataclass
class Opened:
    """A decrypted document with what is needed to write it back."""

    document: stores.Document
    metadata: Metadata
    data_key: bytes


def _prefixed(where: str, error: SecretsError) -> SecretsError:
    text = str(error)
    return SecretsError(text if text.startswith(f"{where}:") else f"{where}: {text}")


def encrypt(data: bytes, fmt: str, options: EncryptOptions, where: str) -> bytes:
    try:
        document = stores.load(data, fmt, where)
        if document.metadata is not None:
            raise SecretsError("the file is already encrypted (it has 'sops' metadata)")
        rules = options.rules
        if rules is None or rules.is_empty():
            rules = Rules.default()
            rules.mac_only_encrypted = bool(options.rules and options.rules.mac_only_encrypted)
        meta = Metadata(
            key_groups=copy.deepcopy(options.key_groups), shamir_threshold=options.shamir_threshold, rules=rules
        )
        slots = document.slots()  # find document problems before any key is used
        data_key = os.urandom(DATA_KEY_SIZE)
        encrypt_data_key(meta, data_key)
        return seal(document, meta, data_key, slots)
    except SecretsError as error:
        raise _prefixed(where, error) from None


def seal(document: stores.Document, meta: Metadata, data_key: bytes, slots: list[Slot] | None = None) -> bytes:
    """Encrypt every value of a plaintext document and attach fresh MAC and metadata."""
    if meta.rules.comment_selectors:
        raise SecretsError(
            "files using encrypted_comment_regex / unencrypted_comment_regex can be decrypted "
            "but not re-encrypted by tether"
        )
    mac = encrypt_slots(document.slots() if slots is None else slots, data_key, meta.rules)
    meta.lastmodified = now_rfc3339()
    meta.version = FORMAT_VERSION  # values and MAC are now written with this version's rules
    meta.mac = encrypt_mac(mac, data_key, meta.lastmodified)
    # binary files carry no selector (SOPS omits the default suffix there too)
    document.metadata = meta.to_dict(with_rules=document.format != "binary")
    return document.dump()


def open_file(data: bytes, fmt: str, ring: KeyRing, where: str, *, ignore_mac: bool = False) -> Opened:
    """Decrypt a SOPS document in memory and verify its MAC."""
    try:
        document = stores.load(data, fmt, where)
        if document.metadata is None:
            raise SecretsError("not a SOPS-encrypted file (no 'sops' metadata)")
        meta = Metadata.from_dict(document.metadata, where)
        data_key = decrypt_data_key(meta, ring)
        mac = decrypt_slots(document.slots(), data_key, meta.rules, raw=fmt == "binary")
        if not ignore_mac:
            verify_mac(meta.mac, mac, data_key, meta.lastmodified)
        document.metadata = None
        return Opened(document, meta, data_key)
    except SecretsError as error:
        raise _prefixed(where, error) from None


def decrypt(data: bytes, fmt: str, ring: KeyRing, where: str, *, ignore_mac: bool = False) -> bytes:
    return open_file(data, fmt, ring, where, ignore_mac=ignore_mac).document.dump()


def reseal(plaintext: bytes, fmt: str, opened: Opened, where: str) -> bytes:
    """Encrypt edited plaintext with the same data key, recipients and rules."""
    try:
        document = stores.load(plaintext, fmt, where)
        if document.metadata is not None:
            raise SecretsError("the edited file must not contain a 'sops' key")
        return seal(document, opened.metadata, opened.data_key)
    except SecretsError as error:
        raise _prefixed(where, error) from None


def _key_id(key: MasterKey) -> str:
    return key.label


def rotate(
    data: bytes, fmt: str, ring: KeyRing, where: str, *, add: Iterable[MasterKey] = (), remove: Iterable[str] = ()
) -> bytes:
    """New data key for every value; optionally add keys to the first group or remove keys."""
    opened = open_file(data, fmt, ring, where)
    try:
        meta = opened.metadata
        foreign = sorted({kind for group in meta.key_groups for kind, entries in group.foreign.items() if entries})
        if foreign:
            raise SecretsError(
                f"the file also has {', '.join(foreign)} keys, which tether cannot encrypt a new "
                "data key for; rotate it with sops"
            )
        _change_keys(meta, add, remove)
        data_key = os.urandom(DATA_KEY_SIZE)
        encrypt_data_key(meta, data_key)
        return seal(opened.document, meta, data_key)
    except SecretsError as error:
        raise _prefixed(where, error) from None


def _change_keys(meta: Metadata, add: Iterable[MasterKey], remove: Iterable[str]) -> None:
    gone = set(remove)
    for group in meta.key_groups:
        group.keys = [k for k in group.keys if _key_id(k) not in gone]
    if not meta.key_groups:
        meta.key_groups = [KeyGroup()]
    present = {_key_id(k) for k in meta.all_keys()}
    meta.key_groups[0].keys += [k for k in add if _key_id(k) not in present]


def update_keys(
    data: bytes, fmt: str, ring: KeyRing, where: str, groups: list[KeyGroup], shamir_threshold: int = 0
) -> tuple[bytes, list[str], list[str]]:
    """Encrypt the existing data key for a new set of keys; values and MAC stay as they are.

    Returns the new file and the labels of keys added and removed.
    """
    try:
        document = stores.load(data, fmt, where)
        if document.metadata is None:
            raise SecretsError("not a SOPS-encrypted file (no 'sops' metadata)")
        meta = Metadata.from_dict(document.metadata, where)
        data_key = decrypt_data_key(meta, ring)
        before = {_key_id(k) for k in meta.all_keys()}
        meta.key_groups = copy.deepcopy(groups)
        meta.shamir_threshold = shamir_threshold
        after = {_key_id(k) for k in meta.all_keys()}
        encrypt_data_key(meta, data_key)
        document.metadata = meta.to_dict(with_rules=document.format != "binary")
        return document.dump(), sorted(after - before), sorted(before - after)
    except SecretsError as error:
        raise _prefixed(where, error) from None
