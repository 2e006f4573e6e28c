"""Semantic version ranges as Flux writes them (the Masterminds constraint syntax).

``>=1.2.0 <2``, ``^1.2``, ``~1.2.3``, ``1.x``, ``1.2 - 1.4``, ``!=1.3.0``, alternatives joined by
``||``; ``,`` or spaces join the comparisons of one alternative. Versions may carry a ``v`` prefix and
omit minor or patch (``v1.2`` is 1.2.0). A prerelease version (``1.3.0-rc.1``) satisfies a range only
when a comparison of the matching alternative itself names a prerelease: ``>=1.3.0-0`` lets release
candidates in, ``>=1.0.0`` does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import semver

from tether.images.errors import PolicyError

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_PART = re.compile(
    r"^(?P<op>!=|>=|<=|=>|=<|>|<|=|~>|~|\^)?\s*v?(?P<version>[0-9xX*]+(?:\.[0-9xX*]+){0,2}"
    r"(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$"
)


def parse_version(tag: str) -> semver.Version | None:
    """The version a tag names, ``None`` when the tag is not a version."""
    match = _VERSION.match(tag)
    if not match:
        return None
    return semver.Version(
        int(match["major"]), int(match["minor"] or 0), int(match["patch"] or 0), match["pre"], match["build"]
    )


@dataclass(frozen=True)
class _Comparison:
    op: str
    version: semver.Version
    names_prerelease: bool = False  # written by the user with a prerelease part (bounds we derive are not)

    def allows(self, candidate: semver.Version) -> bool:
        order = candidate.compare(self.version)
        return {"=": order == 0, "!=": order != 0, ">": order > 0, ">=": order >= 0, "<": order < 0, "<=": order <= 0}[
            self.op
        ]


@dataclass(frozen=True)
class _Alternative:
    comparisons: tuple[_Comparison, ...]

    def allows(self, candidate: semver.Version) -> bool:
        if candidate.prerelease and not any(c.names_prerelease for c in self.comparisons):
            return False
        return all(c.allows(candidate.replace(build=None)) for c in self.comparisons)


@dataclass(frozen=True)
class SemverRange:
    text: str
    alternatives: tuple[_Alternative, ...]

    def allows(self, candidate: semver.Version) -> bool:
        return any(alternative.allows(candidate) for alternative in self.alternatives)


def parse_range(text: str) -> SemverRange:
    """Parse a range; raises ``PolicyError`` naming the part that is not understood."""
    if not text.strip():
        raise PolicyError("semver range is empty: give one such as '>=1.0.0' or '^1.2'")
    alternatives = []
    for alternative in text.split("||"):
        comparisons: list[_Comparison] = []
        for part in _parts(alternative, text):
            comparisons.extend(part)
        if not comparisons:
            raise PolicyError(f"semver range {text!r}: an alternative between '||' is empty")
        alternatives.append(_Alternative(tuple(comparisons)))
    return SemverRange(text, tuple(alternatives))


def _parts(alternative: str, whole: str) -> list[list[_Comparison]]:
    hyphen = re.match(r"^\s*(\S+)\s+-\s+(\S+)\s*$", alternative)
    if hyphen:
        low, high = _partial(hyphen[1], whole), _partial(hyphen[2], whole)
        upper = (
            [_Comparison("<=", _fill(high))]
            if high[1] is not None and high[2] is not None
            else [_Comparison("<", _bump_wild(high))]
        )
        return [[_Comparison(">=", _fill(low), low[3] is not None), *upper]]
    # "> = 1.0" and ">=1.0, <2" normalised: operators glued to their versions, commas as spaces
    normalised = re.sub(r"(!=|>=|<=|=>|=<|>|<|=|~>|~|\^)\s+", r"\1", alternative.replace(",", " "))
    return [_comparison(token, whole) for token in normalised.split()]


def _partial(text: str, whole: str) -> tuple[int | None, int | None, int | None, str | None]:
    match = re.match(
        r"^v?([0-9xX*]+)(?:\.([0-9xX*]+))?(?:\.([0-9xX*]+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$", text
    )
    if not match:
        raise PolicyError(f"semver range {whole!r}: {text!r} is not a version")

    def number(value: str | None) -> int | None:
        return None if value is None or value in ("x", "X", "*") else int(value)

    major, minor, patch = number(match[1]), number(match[2]), number(match[3])
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    return major, minor, patch, match[4]


def _fill(parts: tuple[int | None, int | None, int | None, str | None]) -> semver.Version:
    return semver.Version(parts[0] or 0, parts[1] or 0, parts[2] or 0, parts[3])


def _bump_wild(parts: tuple[int | None, int | None, int | None, str | None]) -> semver.Version:
    """The first version above a wildcard: 1.x -> 2.0.0-0, 1.2.x -> 1.3.0-0 (no prerelease of the next slips in)."""
    major, minor = parts[0] or 0, parts[1]
    if minor is None:
        return semver.Version(major + 1, 0, 0, "0")
    return semver.Version(major, minor + 1, 0, "0")


def _comparison(token: str, whole: str) -> list[_Comparison]:
    match = _PART.match(token)
    if not match:
        raise PolicyError(f"semver range {whole!r}: {token!r} is not a comparison such as '>=1.2.0'")
    op = {"=>": ">=", "=<": "<=", "~>": "~"}.get(match["op"] or "=", match["op"] or "=")
    parts = _partial(match["version"], whole)
    major, minor, patch, pre = parts
    low = _fill(parts)
    named = pre is not None
    wild = major is None or minor is None or patch is None
    if op == "^":
        if major is None:
            return [_Comparison(">=", semver.Version(0, 0, 0))]
        if major > 0 or minor is None:
            high = semver.Version(major + 1, 0, 0, "0")
        elif minor > 0 or patch is None:
            high = semver.Version(0, minor + 1, 0, "0")
        else:
            high = semver.Version(0, 0, (patch or 0) + 1, "0")
        return [_Comparison(">=", low, named), _Comparison("<", high)]
    if op == "~":
        high = (
            semver.Version((major or 0) + 1, 0, 0, "0")
            if minor is None
            else semver.Version(major or 0, minor + 1, 0, "0")
        )
        return [_Comparison(">=", low, named), _Comparison("<", high)]
    if not wild:
        return [_Comparison(op, low, named)]
    if major is None:
        return (
            [_Comparison(">=", semver.Version(0, 0, 0))]
            if op in ("=", ">=", "<=")
            else [_Comparison("<", semver.Version(0, 0, 0, "0"))]
        )
    upper = _bump_wild(parts)
    if op == "=":
        return [_Comparison(">=", low), _Comparison("<", upper)]
    if op == "!=":
        raise PolicyError(f"semver range {whole!r}: '!=' needs a full version, not a wildcard ({token!r})")
    if op == ">":
        return [_Comparison(">=", upper)]
    if op == "<=":
        return [_Comparison("<", upper)]
    return [_Comparison(op, low)]  # >= 1.2 is >= 1.2.0; < 1.2 is < 1.2.0


__all__ = ["SemverRange", "parse_range", "parse_version"]
