"""The ``sops`` metadata block: key groups, MAC, timestamps and encryption rules."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.errors import SecretsError
from tether.secrets.tree import Rules

#: the SOPS format version written; readers use it to pick behaviour, 3.11 semantics apply
FORMAT_VERSION = "3.11.0"
COMMENT_SELECTORS = ("encrypted_comment_regex", "unencrypted_comment_regex")
_RULE_FIELDS = ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class AgeKey:
    recipient: str
    enc: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"recipient": self.recipient, "enc": self.enc}

    @property
    def label(self) -> str:
        return f"age:{self.recipient}"


@dataclass
class PgpKey:
    fp: str
    enc: str = ""
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"created_at": self.created_at, "enc": self.enc, "fp": self.fp}

    @property
    def label(self) -> str:
        return f"pgp:{self.fp.replace(' ', '').upper()}"


MasterKey = AgeKey | PgpKey


@dataclass
class KeyGroup:
    keys: list[MasterKey] = field(default_factory=list)
    #: master keys of kinds tether does not handle (kms, gcp_kms, ...), kept verbatim
    foreign: dict[str, Any] = field(default_factory=dict)

    @property
    def age(self) -> list[AgeKey]:
        return [k for k in self.keys if isinstance(k, AgeKey)]

    @property
    def pgp(self) -> list[PgpKey]:
        return [k for k in self.keys if isinstance(k, PgpKey)]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.foreign.items() if v}
        if self.age:
            out["age"] = [k.to_dict() for k in self.age]
        if self.pgp:
            out["pgp"] = [k.to_dict() for k in self.pgp]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> KeyGroup:
        group = cls()
        for name, entries in raw.items():
            if entries in (None, "", []):
                continue
            if not isinstance(entries, list):
                raise SecretsError(f"{where}: sops.{name} must be a list")
            if name == "age":
                group.keys += [AgeKey(str(e.get("recipient", "")), str(e.get("enc", ""))) for e in entries]
            elif name == "pgp":
                group.keys += [
                    PgpKey(str(e.get("fp", "")), str(e.get("enc", "")), str(e.get("created_at", ""))) for e in entries
                ]
            else:
                group.foreign[name] = entries
        return group


@dataclass
class Metadata:
    key_groups: list[KeyGroup] = field(default_factory=list)
    shamir_threshold: int = 0
    rules: Rules = field(default_factory=Rules.default)
    lastmodified: str = ""
    mac: str = ""
    version: str = FORMAT_VERSION
    #: unknown top-level metadata fields, kept verbatim
    extra: dict[str, Any] = field(default_factory=dict)

    def all_keys(self) -> list[MasterKey]:
        return [k for g in self.key_groups for k in g.keys]

    def to_dict(self, *, with_rules: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if len(self.key_groups) > 1:
            out["shamir_threshold"] = self.shamir_threshold or len(self.key_groups)
            out["key_groups"] = [g.to_dict() for g in self.key_groups]
            group: dict[str, Any] = {}
        else:
            group = self.key_groups[0].to_dict() if self.key_groups else {}
        out.update({k: v for k, v in group.items() if k != "pgp"})
        out.update(self.extra)
        out["lastmodified"] = self.lastmodified
        out["mac"] = self.mac
        if "pgp" in group:
            out["pgp"] = group["pgp"]
        if with_rules:
            out.update(self.rules.to_metadata())
        out["version"] = self.version
        return out

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> Metadata:
        if not isinstance(raw, dict):
            raise SecretsError(f"{where}: the 'sops' metadata is not a mapping")
        if "version" not in raw or "mac" not in raw:
            raise SecretsError(f"{where}: the 'sops' metadata lacks 'version' or 'mac'")
        meta = cls(
            version=str(raw["version"]), mac=str(raw.get("mac") or ""), lastmodified=str(raw.get("lastmodified") or "")
        )
        try:
            meta.shamir_threshold = int(raw.get("shamir_threshold") or 0)
        except (TypeError, ValueError):
            raise SecretsError(f"{where}: sops.shamir_threshold is not an integer") from None
        groups = raw.get("key_groups")
        if groups:
            if not isinstance(groups, list):
                raise SecretsError(f"{where}: sops.key_groups must be a list")
            meta.key_groups = [KeyGroup.from_dict(dict(g), where) for g in groups]
        skip = {"version", "mac", "lastmodified", "shamir_threshold", "key_groups", "mac_only_encrypted", *_RULE_FIELDS}
        flat = {k: v for k, v in raw.items() if k not in skip}
        known_key_kinds = {"age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"}
        if not groups:
            meta.key_groups = [KeyGroup.from_dict({k: v for k, v in flat.items() if k in known_key_kinds}, where)]
        meta.extra = {k: v for k, v in flat.items() if k not in known_key_kinds}
        mac_only = raw.get("mac_only_encrypted")
        if isinstance(mac_only, str):
            mac_only = mac_only.lower() == "true"
        meta.rules = Rules(
            **{k: str(raw[k]) for k in _RULE_FIELDS if raw.get(k)},
            mac_only_encrypted=bool(mac_only),
            comment_selectors=any(raw.get(k) for k in COMMENT_SELECTORS),
        )
        return meta


# Flattened form used by dotenv and INI files: nested keys joined with __map_ / __list_N.
def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}__map_{key}" if prefix else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}__list_{index}"))
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    else:
        out[prefix] = "" if value is None else str(value)
    return out


def unflatten(flat: dict[str, str]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for name, value in flat.items():
        parts = name.split("__")
        steps: list[str | int] = [parts[0]]
        for part in parts[1:]:
            if part.startswith("map_"):
                steps.append(part[4:])
            elif part.startswith("list_") and part[5:].isdigit():
                steps.append(int(part[5:]))
            else:  # a key that itself contains "__"
                last = steps.pop()
                steps.append(f"{last}__{part}")
        node: Any = root
        for step, following in itertools.pairwise(steps):
            container: Any = [] if isinstance(following, int) else {}
            if isinstance(node, list):
                while len(node) <= step:  # type: ignore[operator]
                    node.append(None)
                if node[step] is None:  # type: ignore[index]
                    node[step] = container  # type: ignore[index]
                node = node[step]  # type: ignore[index]
            else:
                node = node.setdefault(step, container)
        if isinstance(node, list):
            while len(node) <= steps[-1]:  # type: ignore[operator]
                node.append(None)
        node[steps[-1]] = value
    return root
