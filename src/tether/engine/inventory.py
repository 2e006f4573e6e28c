"""The inventory: which objects an app applied, stored in the cluster.

Prune deletes only what the inventory lists and the desired set no longer holds, so objects
that tether never applied are out of its reach whatever labels they carry. The inventory of
app ``web`` is the ConfigMap ``tether-inventory-web`` in a configurable namespace
(``tether-system`` by default). Its ``entries`` key holds JSON grouped by apiVersion/kind, so
10,000 objects take about 300 kB, well under the 1 MiB object limit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tether.errors import KubeError
from tether.model import ObjectRef

DEFAULT_NAMESPACE = "tether-system"
NAME_PREFIX = "tether-inventory-"
_APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def inventory_name(app: str) -> str:
    if not _APP_NAME.match(app) or len(NAME_PREFIX) + len(app) > 253:
        raise KubeError(f"app name {app!r} must be a DNS label (lower-case letters, digits, '-')")
    return NAME_PREFIX + app


@dataclass(frozen=True)
class Inventory:
    app: str
    entries: frozenset[ObjectRef] = field(default_factory=frozenset)

    def to_configmap(self, namespace: str = DEFAULT_NAMESPACE) -> dict[str, Any]:
        grouped: dict[str, list[str]] = {}
        for ref in sorted(self.entries):
            key = f"{ref.api_version}/{ref.kind}"
            grouped.setdefault(key, []).append(f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name)
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": inventory_name(self.app),
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "tether", "tether.dev/inventory": self.app},
            },
            "data": {"entries": json.dumps(grouped, sort_keys=True, separators=(",", ":"))},
        }

    @classmethod
    def from_configmap(cls, app: str, obj: dict[str, Any] | None) -> Inventory:
        """Parse a stored inventory; ``None`` (no ConfigMap yet) is the empty inventory."""
        if obj is None:
            return cls(app)
        raw = (obj.get("data") or {}).get("entries", "{}")
        try:
            grouped = json.loads(raw)
            refs = set()
            for type_key, names in grouped.items():
                api_version, _, kind = type_key.rpartition("/")
                group, _, version = api_version.rpartition("/")
                for entry in names:
                    namespace, _, name = entry.rpartition("/")
                    refs.add(ObjectRef(group, kind, namespace, name, version))
        except (ValueError, AttributeError, TypeError) as error:
            meta = obj.get("metadata") or {}
            raise KubeError(
                f"inventory ConfigMap {meta.get('namespace')}/{meta.get('name')} is corrupt ({error}); "
                "fix or delete it (prune is refused until then)"
            ) from None
        return cls(app, frozenset(refs))

    def union(self, refs: set[ObjectRef] | frozenset[ObjectRef]) -> Inventory:
        return Inventory(self.app, _merge(self.entries, refs))

    def replaced(self, refs: set[ObjectRef] | frozenset[ObjectRef]) -> Inventory:
        return Inventory(self.app, frozenset(refs))

    def removed(self, desired: set[ObjectRef] | frozenset[ObjectRef]) -> list[ObjectRef]:
        """Entries that left the desired set (ObjectRef ignores the version when comparing)."""
        return sorted(ref for ref in self.entries if ref not in desired)


def _merge(old: frozenset[ObjectRef], new: set[ObjectRef] | frozenset[ObjectRef]) -> frozenset[ObjectRef]:
    # The desired ref wins so the inventory remembers the apiVersion last applied.
    return frozenset(new) | frozenset(ref for ref in old if ref not in new)
