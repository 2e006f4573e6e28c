"""Field ownership from ``metadata.managedFields``: what an apply takes from whom, and the
migration away from the shared legacy field manager.

Git wins: tether applies with force, so a field another manager set to another value is
taken over. The plan says so, per field and manager (``takes .spec.replicas from kubectl
(subresource scale)``), computed here from the live object's managedFields: a field is taken
when another manager owns it and the desired value differs from the live one. Fields others
own that Git does not declare are not touched and not reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tether.engine.identity import LEGACY_FIELD_MANAGER


@dataclass(frozen=True, order=True)
class FieldTake:
    path: str  # .spec.replicas, .spec.template.spec.containers[name=main].image
    manager: str
    subresource: str = ""

    def __str__(self) -> str:
        via = f", subresource {self.subresource}" if self.subresource else ""
        return f"takes {self.path} from {self.manager}{via}"


def taken_fields(live: dict[str, Any] | None, desired: dict[str, Any], manager: str) -> list[FieldTake]:
    """Fields of ``desired`` with another value in ``live`` that a manager other than ours owns."""
    out: set[FieldTake] = set()
    for entry in ((live or {}).get("metadata") or {}).get("managedFields") or []:
        owner = entry.get("manager") or ""
        if owner in (manager, LEGACY_FIELD_MANAGER):
            continue
        paths: list[str] = []
        _walk(entry.get("fieldsV1") or {}, desired, live, "", paths)
        out.update(FieldTake(path, owner, entry.get("subresource") or "") for path in paths)
    return sorted(out)


def _is_leaf(fields: Any) -> bool:
    return not isinstance(fields, dict) or not any(k != "." for k in fields)


def _walk(fields: dict[str, Any], desired: Any, live: Any, path: str, out: list[str]) -> None:
    for key, sub in fields.items():
        if key.startswith("f:") and isinstance(desired, dict):
            name = key[2:]
            if name not in desired:
                continue  # Git does not declare it: not ours to change
            want, have = desired[name], live.get(name) if isinstance(live, dict) else None
            here = f"{path}.{name}"
            if want == have:
                continue
            if _is_leaf(sub) or not isinstance(want, dict | list):
                out.append(here)
            else:
                _walk(sub, want, have, here, out)
        elif key.startswith("k:") and isinstance(desired, list):
            try:
                item_key = json.loads(key[2:])
            except ValueError:
                continue
            want = _find(desired, item_key)
            if want is None:
                continue
            have = _find(live if isinstance(live, list) else [], item_key)
            label = ",".join(f"{k}={v}" for k, v in sorted(item_key.items()))
            if want != have:
                _walk(sub if isinstance(sub, dict) else {}, want, have or {}, f"{path}[{label}]", out)


def _find(items: list[Any], item_key: dict[str, Any]) -> Any:
    for item in items:
        if isinstance(item, dict) and all(item.get(k) == v for k, v in item_key.items()):
            return item
    return None


def legacy_removal_patch(live: dict[str, Any]) -> list[dict[str, Any]]:
    """A JSON patch dropping the legacy ``tether`` Apply entry from managedFields ([] = none).

    Once the app's own manager holds the same fields, the shared entry would only keep fields
    alive that Git later removes. The ``test`` op makes the patch fail rather than remove
    another entry should the list have changed since it was read.
    """
    for index, entry in enumerate((live.get("metadata") or {}).get("managedFields") or []):
        if entry.get("manager") == LEGACY_FIELD_MANAGER and entry.get("operation") == "Apply":
            pointer = f"/metadata/managedFields/{index}"
            return [
                {"op": "test", "path": f"{pointer}/manager", "value": LEGACY_FIELD_MANAGER},
                {"op": "remove", "path": pointer},
            ]
    return []


def has_legacy_manager(live: dict[str, Any] | None) -> bool:
    return any(
        e.get("manager") == LEGACY_FIELD_MANAGER and e.get("operation") == "Apply"
        for e in ((live or {}).get("metadata") or {}).get("managedFields") or []
    )


__all__ = ["FieldTake", "has_legacy_manager", "legacy_removal_patch", "taken_fields"]
