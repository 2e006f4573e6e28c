"""Semver ranges over tags: ``>=1.2.0 <2.0.0``, ``^1.2``, ``~1.2.3``, ``1.x``, ``1.2.*``, ``=1.2.3``.

Comparators are separated by spaces or commas and must all hold; ``||`` separates
alternatives. Tags may carry a ``v`` prefix. Pre-releases only match when a comparator of
the range itself names a pre-release (the npm / Masterminds rule of thumb).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import semver

from tether.errors import SourceError

_PARTIAL = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|!=|\^|~)?\s*(.+)$")

Check = Callable[[semver.Version], bool]


def parse_version(tag: str) -> semver.Version | None:
    try:
        return semver.Version.parse(tag[1:] if tag[:1] in "vV" else tag)
    except ValueError:
        return None


def _bound(text: str, range_text: str) -> tuple[list[int | None], str | None]:
    match = _PARTIAL.match(text)
    if not match:
        raise SourceError(f"semver range {range_text!r}: {text!r} is not a version")
    parts = [None if p is None or p in "xX*" else int(p) for p in match.groups()[:3]]
    return parts, match.group(4)


def _comparator(token: str, range_text: str) -> Check:
    op, rest = _COMPARATOR.match(token).groups()  # type: ignore[union-attr]
    parts, pre = _bound(rest, range_text)
    major, minor, patch = parts
    low = semver.Version(major or 0, minor or 0, patch or 0, pre)
    if op in (None, "=") and None in parts:  # 1.x, 1.2.*: a wildcard range
        if major is None:
            return lambda v: True
        high = semver.Version(major + 1, 0, 0) if minor is None else semver.Version(major, minor + 1, 0)
        return lambda v: low <= v < high.replace(prerelease="0")
    if op == "^":
        if major:
            high = semver.Version(major + 1, 0, 0)
        elif minor:
            high = semver.Version(0, minor + 1, 0)
        else:
            high = semver.Version(0, 0, (patch or 0) + 1) if patch is not None else semver.Version(0, 1, 0)
        return lambda v: low <= v < high.replace(prerelease="0")
    if op == "~":
        high = (
            semver.Version(major or 0, (minor or 0) + 1, 0)
            if minor is not None
            else semver.Version((major or 0) + 1, 0, 0)
        )
        return lambda v: low <= v < high.replace(prerelease="0")
    return {
        None: lambda v: v == low,
        "=": lambda v: v == low,
        "!=": lambda v: v != low,
        ">": lambda v: v > low,
        ">=": lambda v: v >= low,
        "<": lambda v: v < low,
        "<=": lambda v: v <= low,
    }[op]


def _tokens(alternative: str) -> list[str]:
    # join an operator separated from its version by a space: ">= 1.2" -> ">=1.2"
    raw = [t for t in re.split(r"[\s,]+", alternative.strip()) if t]
    out: list[str] = []
    for token in raw:
        if out and out[-1] in (">=", "<=", ">", "<", "=", "!=", "^", "~"):
            out[-1] += token
        else:
            out.append(token)
    return out


def looks_like_range(text: str) -> bool:
    """Is an unprefixed ref meant as a range? It must use range syntax *and* parse as one: a branch such
    as ``fix-2`` or ``max=3`` is a name, not a broken range."""
    if not (re.search(r"[<>^~*xX|=]|,|\s", text) and any(c.isdigit() or c in "*xX" for c in text)):
        return False
    try:
        best_match(text, ())
    except SourceError:
        return False
    return True


def best_match(range_text: str, tags: Iterable[str]) -> str | None:
    """The tag with the highest version that satisfies ``range_text``, or None."""
    alternatives = [[_comparator(t, range_text) for t in _tokens(alt)] for alt in range_text.split("||")]
    if not any(alternatives):
        raise SourceError(f"semver range {range_text!r} is empty")
    wants_pre = "-" in range_text
    best: tuple[semver.Version, str] | None = None
    for tag in tags:
        version = parse_version(tag)
        if version is None or (version.prerelease and not wants_pre):
            continue
        if any(all(check(version) for check in alt) for alt in alternatives if alt) and (
            best is None or version > best[0]
        ):
            best = (version, tag)
    return best[1] if best else None
