"""Comparing desired and live objects: noise removal, ignore rules, masking, unified YAML diffs.

Everything here is a pure function over plain dicts. The server fills in many fields nobody
wrote (uid, resourceVersion, managedFields, defaults, status); a diff of the raw desired
manifest against the live object would show them all. So the planner compares the live
object with the server's dry-run result of applying the desired one; both have the same
defaults and only ``strip_noise`` has to remove the per-request bookkeeping.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import yaml

from tether.errors import UsageError
from tether.model import ObjectRef

DIGEST_ANNOTATION = "tether.dev/applied-digest"
APP_LABEL = "tether.dev/app"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NOISE_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")


def strip_noise(obj: dict[str, Any], *, keep_digest: bool = True) -> dict[str, Any]:
    """A copy without status and per-request metadata (and, for display, without tether's digest)."""
    out = {key: value for key, value in obj.items() if key != "status"}
    meta = dict(out.get("metadata") or {})
    for key in NOISE_METADATA:
        meta.pop(key, None)
    annotations = dict(meta.get("annotations") or {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not keep_digest:
        annotations.pop(DIGEST_ANNOTATION, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def digest(obj: dict[str, Any]) -> str:
    """A stable hash of a desired object (without the digest annotation itself)."""
    body = dict(obj)
    meta = dict(body.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != DIGEST_ANNOTATION}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    body["metadata"] = meta
    # msgspec: canonical (sorted keys) JSON about 6x faster than json.dumps; plans hash every object
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()[:32]


def clone(obj: Any) -> Any:
    """A deep copy of JSON-like data (a JSON round trip: ~10x faster than copy.deepcopy)."""
    return msgspec.json.decode(msgspec.json.encode(obj))


# ---------------------------------------------------------------- ignore rules


def _pointer_tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise UsageError(f"ignore rule pointer {pointer!r} must start with '/' (JSON pointer, RFC 6901)")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


@dataclass(frozen=True)
class IgnoreRule:
    """Fields (JSON pointers) left out of comparison for objects of one group/kind.

    ``group``/``kind`` may be ``*``. With ``manager`` set, a field is ignored only where that
    field manager owns it in the live object (e.g. ``/spec/replicas`` owned by an autoscaler);
    such fields are also left out of what tether applies, so the two never fight over them.
    """

    group: str
    kind: str
    pointers: tuple[str, ...]
    manager: str | None = None

    def __post_init__(self) -> None:
        for pointer in self.pointers:
            _pointer_tokens(pointer)

    def matches(self, ref: ObjectRef) -> bool:
        return self.group in ("*", ref.group) and self.kind in ("*", ref.kind)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "ignore rule") -> IgnoreRule:
        try:
            pointers = raw["jsonPointers"]
            if isinstance(pointers, str) or not all(isinstance(p, str) for p in pointers):
                raise TypeError("jsonPointers must be a list of strings")
            return cls(
                group=str(raw.get("group", "")),
                kind=str(raw["kind"]),
                pointers=tuple(pointers),
                manager=raw.get("manager"),
            )
        except (KeyError, TypeError) as error:
            raise UsageError(f"{where}: needs kind and jsonPointers ({error})") from None


def load_ignore_rules(path: str) -> list[IgnoreRule]:
    """Rules from a YAML file: a list of ``{group, kind, jsonPointers: [...], manager?}``."""
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle) or []
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"{path}: cannot read ignore rules: {error}") from None
    if not isinstance(raw, list):
        raise UsageError(f"{path}: ignore rules must be a YAML list")
    return [IgnoreRule.from_dict(item, f"{path}: rule {index + 1}") for index, item in enumerate(raw)]


def _owned_by(live: dict[str, Any] | None, manager: str, tokens: list[str]) -> bool:
    for entry in ((live or {}).get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") != manager:
            continue
        node: Any = entry.get("fieldsV1") or {}
        for token in tokens:
            node = node.get(f"f:{token}") if isinstance(node, dict) else None
            if node is None:
                break
        else:
            return True
    return False


def _remove(obj: Any, tokens: list[str]) -> None:
    for token in tokens[:-1]:
        if isinstance(obj, dict):
            obj = obj.get(token)
        elif isinstance(obj, list) and token.isdigit() and int(token) < len(obj):
            obj = obj[int(token)]
        else:
            return
    last = tokens[-1] if tokens else None
    if isinstance(obj, dict) and last is not None:
        obj.pop(last, None)
    elif isinstance(obj, list) and last is not None and last.isdigit() and int(last) < len(obj):
        del obj[int(last)]


def ignored_pointers(rules: Iterable[IgnoreRule], ref: ObjectRef, live: dict[str, Any] | None) -> list[list[str]]:
    """The pointers (as token lists) to drop for this object, given who owns what in ``live``."""
    found = []
    for rule in rules:
        if not rule.matches(ref):
            continue
        for pointer in rule.pointers:
            tokens = _pointer_tokens(pointer)
            if rule.manager is None or _owned_by(live, rule.manager, tokens):
                found.append(tokens)
    return found


def without(obj: dict[str, Any], pointers: list[list[str]]) -> dict[str, Any]:
    if not pointers:
        return obj
    out = clone(obj)
    for tokens in pointers:
        if tokens:
            _remove(out, tokens)
    return out


def apply_exclusions(rules: Iterable[IgnoreRule], ref: ObjectRef, live: dict[str, Any] | None) -> list[list[str]]:
    """Pointers to leave out of the applied object: manager-bound rules whose manager owns the field."""
    return ignored_pointers([r for r in rules if r.manager is not None], ref, live) if live else []


# ---------------------------------------------------------------- fast in-sync check


def _secret_view(obj: dict[str, Any]) -> dict[str, Any]:
    """Secrets as stored: stringData folded into base64 data, as the API server does."""
    if obj.get("kind") != "Secret" or "stringData" not in obj:
        return obj
    out = dict(obj)
    data = dict(out.get("data") or {})
    for key, value in (out.pop("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    out["data"] = data
    return out


def contains(desired: Any, live: Any) -> bool:
    """Is every field of ``desired`` present in ``live`` with the same value?

    Lists must match element by element (extra elements on the live side make it False,
    which sends the object to the exact dry-run comparison rather than guessing).
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        for key, value in desired.items():
            if key not in live:
                return False
            other = live[key]
            # equal subtrees (the usual case) are settled by one comparison in C, without recursion
            if value is not None and (value is other or (value == other and type(value) is type(other))):
                continue
            if not contains(value, other):
                return False
        return True
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(contains(d, lv) for d, lv in zip(desired, live, strict=True))
    if desired is None:
        return False  # null asks the server to remove a field: let the dry-run decide
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    return desired == live


def in_sync(desired: dict[str, Any], live: dict[str, Any], pointers: list[list[str]] | None = None) -> bool:
    """True when applying ``desired`` cannot change ``live``.

    The digest annotation proves ``desired`` is exactly what tether applied last time (so no
    field tether owned has been dropped since) and ``contains`` proves nobody changed the
    values since. Anything else goes to the exact server dry-run comparison.
    """
    live_digest = ((live.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
    want_digest = ((desired.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
    if not want_digest or live_digest != want_digest:
        return False
    wanted = without(desired, pointers or [])
    # A real API server folds Secret stringData into data; compare both ways so servers that keep it match too.
    return contains(wanted, live) or contains(_secret_view(wanted), live)


# ---------------------------------------------------------------- display


def _mask_value(key: str, value: Any) -> str:
    return "<masked sha256:" + hashlib.sha256(f"{key}={value}".encode()).hexdigest()[:10] + ">"


def mask_secret(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """Secret values replaced by a short hash: a change stays visible, the value does not."""
    if obj is None or obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    for section in ("data", "stringData"):
        if isinstance(out.get(section), dict):
            out[section] = {key: _mask_value(key, value) for key, value in out[section].items()}
    annotations = (out.get("metadata") or {}).get("annotations") or {}
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        out["metadata"] = dict(out["metadata"])
        out["metadata"]["annotations"] = {**annotations, "kubectl.kubernetes.io/last-applied-configuration": "<masked>"}
    return out


def to_yaml(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return ""
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True)


def unified(before: dict[str, Any] | None, after: dict[str, Any] | None, label: str, context: int = 3) -> list[str]:
    """Unified diff lines (no trailing newlines) of two objects as YAML, Secret values masked."""
    old = to_yaml(mask_secret(before)).splitlines()
    new = to_yaml(mask_secret(after)).splitlines()
    return list(difflib.unified_diff(old, new, f"live/{label}", f"desired/{label}", n=context, lineterm=""))
