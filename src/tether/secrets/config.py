"""``.sops.yaml`` creation rules: which recipients and rules apply to a file path.

The nearest ``.sops.yaml`` found walking up from the file's directory decides. Each rule's
``path_regex`` is matched against the file path relative to the directory holding the
config (and, failing that, against the path as given); the first matching rule wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from tether.errors import SecretsError
from tether.secrets.metadata import AgeKey, KeyGroup, PgpKey
from tether.secrets.tree import Rules

CONFIG_NAMES = (".sops.yaml", ".sops.yml")


@dataclass
class CreationRule:
    key_groups: list[KeyGroup] = field(default_factory=list)
    shamir_threshold: int = 0
    rules: Rules = field(default_factory=Rules)
    source: str = ""


def find_config(start: Path) -> Path | None:
    directory = start if start.is_dir() else start.parent
    for folder in [directory.resolve(), *directory.resolve().parents]:
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def group_from(age: list[str], pgp: list[str]) -> KeyGroup:
    return KeyGroup(keys=[AgeKey(r) for r in age] + [PgpKey(fp.replace(" ", "")) for fp in pgp])


def rule_for(file: Path, config: Path | None = None) -> CreationRule | None:
    """The creation rule for ``file`` from ``config`` (or the nearest .sops.yaml); None if no config."""
    config = config or find_config(file)
    if config is None:
        return None
    try:
        raw = YAML(typ="safe").load(config.read_text())
    except (OSError, YAMLError) as error:
        raise SecretsError(f"{config}: cannot read SOPS config: {error}") from None
    rules = (raw or {}).get("creation_rules") if isinstance(raw, dict) else None
    if not isinstance(rules, list):
        raise SecretsError(f"{config}: no creation_rules list")
    try:
        relative = file.resolve().relative_to(config.parent.resolve()).as_posix()
    except ValueError:
        relative = file.as_posix()
    for index, rule in enumerate(rules):
        where = f"{config}: creation_rules[{index}]"
        if not isinstance(rule, dict):
            raise SecretsError(f"{where} is not a mapping")
        pattern = rule.get("path_regex")
        if pattern is not None:
            try:
                regex = re.compile(str(pattern))
            except re.error as error:
                raise SecretsError(f"{where}.path_regex: {error}") from None
            if not (regex.search(relative) or regex.search(file.as_posix())):
                continue
        return _parse_rule(rule, where)
    raise SecretsError(f"{config}: no creation rule matches {relative}")


def _parse_rule(rule: dict[str, Any], where: str) -> CreationRule:
    out = CreationRule(source=where)
    if rule.get("key_groups"):
        for index, group in enumerate(rule["key_groups"]):
            if not isinstance(group, dict):
                raise SecretsError(f"{where}.key_groups[{index}] is not a mapping")
            out.key_groups.append(group_from(_split(group.get("age")), _split(group.get("pgp"))))
    else:
        group = group_from(_split(rule.get("age")), _split(rule.get("pgp")))
        out.key_groups = [group] if group.keys else []
    try:
        out.shamir_threshold = int(rule.get("shamir_threshold") or 0)
    except (TypeError, ValueError):
        raise SecretsError(f"{where}.shamir_threshold is not an integer") from None
    if any(rule.get(k) for k in ("encrypted_comment_regex", "unencrypted_comment_regex")):
        raise SecretsError(f"{where}: encrypted_comment_regex / unencrypted_comment_regex are not supported")
    selectors = {
        k: str(rule[k])
        for k in ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex")
        if rule.get(k)
    }
    try:
        out.rules = Rules(**selectors, mac_only_encrypted=bool(rule.get("mac_only_encrypted")))
    except SecretsError as error:
        raise SecretsError(f"{where}: {error}") from None
    return out
