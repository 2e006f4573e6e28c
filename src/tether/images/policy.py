"""Choosing the latest tag: ``ImagePolicy`` specs (Flux's fields) as pure functions over tag lists.

``filterTags.pattern`` keeps the tags that match (a Python regex; Go's ``(?P<name>...)`` groups are
the same syntax) and ``filterTags.extract`` (``$name``, ``${name}`` or ``$1``) replaces each tag by the
value its policy orders. Then one policy picks:

- ``semver.range``: the highest version inside the range;
- ``alphabetical.order``: ``asc`` (default) picks the tag that sorts last, ``desc`` the first;
- ``numerical.order``: as alphabetical, comparing the (extracted) values as numbers.

Ties keep the tag that sorts last, so the result does not depend on the registry's order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tether.images.errors import PolicyError
from tether.images.semver_range import parse_range, parse_version

_GROUP_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class TagFilter:
    pattern: re.Pattern[str] | None = None
    extract: str = ""

    def apply(self, tags: Iterable[str]) -> list[tuple[str, str]]:
        """(tag, value to order by) of every tag the pattern keeps."""
        if self.pattern is None:
            return [(tag, tag) for tag in tags]
        kept = []
        for tag in tags:
            match = self.pattern.match(tag)
            if match:
                kept.append((tag, self._extracted(match) if self.extract else tag))
        return kept

    def _extracted(self, match: re.Match[str]) -> str:
        def group(ref: re.Match[str]) -> str:
            name = ref.group(1) or ref.group(2)
            key: int | str = int(name) if name.isdigit() else name
            try:
                return match.group(key) or ""
            except IndexError:
                return ""

        return _GROUP_REF.sub(group, self.extract)


@dataclass(frozen=True)
class Policy:
    """A parsed ``spec.policy`` plus ``spec.filterTags``."""

    kind: str  # semver | alphabetical | numerical
    order: str = "asc"
    range_text: str = ""
    filter: TagFilter = TagFilter()

    def latest(self, tags: Iterable[str]) -> str | None:
        """The chosen tag, ``None`` when no tag qualifies."""
        candidates = self.filter.apply(tags)
        if self.kind == "semver":
            return _latest_semver(candidates, self.range_text)
        if self.kind == "numerical":
            numbered = [(tag, number) for tag, value in candidates if (number := _number(value)) is not None]
            return _pick(numbered, self.order)
        return _pick(candidates, self.order)


def parse_policy(spec: dict[str, Any], where: str = "ImagePolicy") -> Policy:
    """Read ``spec.policy`` and ``spec.filterTags``; raises ``PolicyError`` naming the field."""
    policy = spec.get("policy") or {}
    chosen = [k for k in ("semver", "alphabetical", "numerical") if policy.get(k) is not None]
    if len(chosen) != 1:
        raise PolicyError(
            f"{where}: spec.policy needs exactly one of semver, alphabetical, numerical "
            f"(found {', '.join(chosen) or 'none'})"
        )
    kind = chosen[0]
    body = policy[kind] or {}
    tag_filter = _parse_filter(spec.get("filterTags") or {}, where)
    if kind == "semver":
        range_text = str(body.get("range") or "")
        parse_range(range_text)  # refuse a bad range now, with its message
        return Policy("semver", range_text=range_text, filter=tag_filter)
    order = str(body.get("order") or "asc").lower()
    if order not in ("asc", "desc"):
        raise PolicyError(f"{where}: spec.policy.{kind}.order must be 'asc' or 'desc', not {order!r}")
    return Policy(kind, order=order, filter=tag_filter)


def _parse_filter(spec: dict[str, Any], where: str) -> TagFilter:
    pattern_text, extract = spec.get("pattern"), str(spec.get("extract") or "")
    if not pattern_text:
        if extract:
            raise PolicyError(f"{where}: spec.filterTags.extract needs spec.filterTags.pattern")
        return TagFilter()
    try:
        pattern = re.compile(str(pattern_text))
    except re.error as error:
        raise PolicyError(f"{where}: spec.filterTags.pattern {pattern_text!r} is not a valid regex: {error}") from None
    for ref in _GROUP_REF.finditer(extract):
        name = ref.group(1) or ref.group(2)
        known = (name.isdigit() and int(name) <= pattern.groups) or name in pattern.groupindex
        if not known:
            raise PolicyError(
                f"{where}: spec.filterTags.extract names group {name!r}, which "
                f"spec.filterTags.pattern {pattern_text!r} does not define"
            )
    return TagFilter(pattern, extract)


def _latest_semver(candidates: list[tuple[str, str]], range_text: str) -> str | None:
    allowed = parse_range(range_text)
    best: tuple[Any, str] | None = None
    for tag, value in candidates:
        version = parse_version(value)
        if version is None or not allowed.allows(version):
            continue
        if best is None or version.compare(best[0]) > 0 or (version.compare(best[0]) == 0 and tag > best[1]):
            best = (version, tag)
    return best[1] if best else None


def _number(value: str) -> Decimal | None:
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _pick(candidates: list[tuple[str, Any]], order: str) -> str | None:
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda pair: (pair[1], pair[0]))
    return ranked[-1][0] if order == "asc" else ranked[0][0]


__all__ = ["Policy", "TagFilter", "parse_policy"]
