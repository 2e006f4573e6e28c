"""The inventory: which objects an app applied, stored in the cluster next to the app.

Prune considers only what the inventory lists and the desired set no longer holds, and even
then deletes only what it verified (see ``prune``). The inventory of app ``shop/web`` is the
ConfigMap ``tether-inventory-web`` in namespace ``shop``. Its ``entries`` key holds JSON
grouped by apiVersion/kind (≈30 bytes per object); past 64 kB it is stored gzip-compressed
under ``binaryData`` (``entries.json.gz``), so even 100,000 objects stay far below the 1 MiB
object limit.

Writes are deltas (entries to add, entries to remove) sent with the resourceVersion that was
read; on a conflict the ConfigMap is read again and the delta merged into what is there, so a
CLI apply and a controller working on the same app cannot lose each other's entries.

An entry that cannot be parsed or names an object that cannot be addressed safely (an empty
name, ``..``, a namespace with ``/``) is kept aside in ``invalid``: reported, never acted on,
and dropped by the next write.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tether.engine.identity import APP_NAMESPACE_LABEL, INVENTORY_LABEL, AppIdentity, is_dns_label, is_safe_name
from tether.errors import KubeError, UsageError
from tether.kube import AlreadyExists, Conflict, Kube, NotFound
from tether.model import ObjectRef

DEFAULT_NAMESPACE = "tether-system"
NAME_PREFIX = "tether-inventory-"
#: entries JSON up to this size is stored as readable text, larger as gzip
PLAIN_LIMIT = 64 * 1024
#: how often a write is retried after another writer changed the inventory meanwhile
WRITE_ATTEMPTS = 8


def inventory_name(app: str) -> str:
    try:
        return AppIdentity(DEFAULT_NAMESPACE, app).inventory_name
    except UsageError as error:
        raise KubeError(str(error)) from None


def entry_problem(ref: ObjectRef) -> str:
    """Why an entry must not be acted on ('' when it may)."""
    if not ref.kind or not ref.version:
        return "no kind or apiVersion"
    if not is_safe_name(ref.name):
        return f"unsafe or empty name {ref.name!r}"
    if ref.namespace and not is_dns_label(ref.namespace):
        return f"unsafe namespace {ref.namespace!r}"
    return ""


def _identity(app: AppIdentity | str) -> AppIdentity:
    return app if isinstance(app, AppIdentity) else AppIdentity(DEFAULT_NAMESPACE, app)


@dataclass(frozen=True)
class Inventory:
    identity: AppIdentity
    entries: frozenset[ObjectRef] = field(default_factory=frozenset)
    #: raw entries that were not parsed or are unsafe: reported, never acted on
    invalid: tuple[str, ...] = ()
    #: of the ConfigMap as read ('' = it does not exist yet)
    resource_version: str = ""

    def __init__(
        self,
        identity: AppIdentity | str,
        entries: Iterable[ObjectRef] = frozenset(),
        invalid: tuple[str, ...] = (),
        resource_version: str = "",
    ) -> None:
        object.__setattr__(self, "identity", _identity(identity))
        object.__setattr__(self, "entries", frozenset(entries))
        object.__setattr__(self, "invalid", tuple(invalid))
        object.__setattr__(self, "resource_version", resource_version)

    @property
    def app(self) -> str:
        return self.identity.name

    def to_configmap(self, namespace: str | None = None) -> dict[str, Any]:
        grouped: dict[str, list[str]] = {}
        for ref in sorted(self.entries):
            key = f"{ref.api_version}/{ref.kind}"
            grouped.setdefault(key, []).append(f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name)
        meta: dict[str, Any] = {
            "name": self.identity.inventory_name,
            "namespace": namespace or self.identity.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "tether",
                INVENTORY_LABEL: self.identity.name,
                APP_NAMESPACE_LABEL: self.identity.namespace,
            },
        }
        if self.resource_version:
            meta["resourceVersion"] = self.resource_version
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            **_encode(json.dumps(grouped, sort_keys=True, separators=(",", ":"))),
        }

    @classmethod
    def from_configmap(cls, identity: AppIdentity | str, obj: dict[str, Any] | None) -> Inventory:
        """Parse a stored inventory; ``None`` (no ConfigMap yet) is the empty inventory.

        Nothing here raises on bad content: a corrupt document or entry is put into ``invalid``
        so it is reported, and a later write replaces it; it never blocks an apply.
        """
        if obj is None:
            return cls(identity)
        version = (obj.get("metadata") or {}).get("resourceVersion") or ""
        try:
            grouped = json.loads(_decode(obj))
            if not isinstance(grouped, dict):
                raise ValueError("entries is not a JSON object")
        except (ValueError, TypeError, OSError, EOFError) as error:
            return cls(identity, (), (f"(whole inventory unreadable: {error})",), version)
        refs: set[ObjectRef] = set()
        invalid: list[str] = []
        for type_key, names in grouped.items():
            if not isinstance(type_key, str) or not isinstance(names, list):
                invalid.append(f"{type_key!r}: {names!r}"[:200])
                continue
            api_version, _, kind = type_key.rpartition("/")
            group, _, version_part = api_version.rpartition("/")
            for entry in names:
                if not isinstance(entry, str):
                    invalid.append(f"{type_key} {entry!r}"[:200])
                    continue
                namespace, _, name = entry.rpartition("/")
                ref = ObjectRef(group, kind, namespace, name, version_part)
                problem = entry_problem(ref) if "/" not in group else "malformed apiVersion"
                if problem:
                    invalid.append(f"{type_key} {entry!r} ({problem})"[:300])
                else:
                    refs.add(ref)
        return cls(identity, frozenset(refs), tuple(invalid), version)

    def union(self, refs: Iterable[ObjectRef]) -> Inventory:
        return Inventory(self.identity, _merge(self.entries, frozenset(refs)), self.invalid, self.resource_version)

    def replaced(self, refs: Iterable[ObjectRef]) -> Inventory:
        return Inventory(self.identity, frozenset(refs), (), self.resource_version)

    def removed(self, desired: set[ObjectRef] | frozenset[ObjectRef]) -> list[ObjectRef]:
        """Entries that left the desired set (ObjectRef ignores the version when comparing)."""
        return sorted(ref for ref in self.entries if ref not in desired)


async def read_inventory(kube: Kube, identity: AppIdentity | str, namespace: str | None = None) -> Inventory:
    identity = _identity(identity) if namespace is None else _identity_in(identity, namespace)
    info = await kube.info("v1", "ConfigMap")
    return Inventory.from_configmap(identity, await kube.get(info, identity.inventory_name, identity.namespace))


def _identity_in(identity: AppIdentity | str, namespace: str) -> AppIdentity:
    name = identity.name if isinstance(identity, AppIdentity) else identity
    return AppIdentity(namespace, name)


async def update_inventory(
    kube: Kube,
    identity: AppIdentity,
    *,
    add: Iterable[ObjectRef] = (),
    remove: Iterable[ObjectRef] = (),
    known: Inventory | None = None,
    create_namespace: bool = False,
) -> Inventory:
    """Add and remove entries with optimistic concurrency; returns the inventory as written.

    ``known`` (the inventory this run read) saves the first read; on 409 the ConfigMap is
    read again and the same delta applied to what another writer left there.
    """
    additions, removals = frozenset(add), frozenset(remove) - frozenset(add)
    info = await kube.info("v1", "ConfigMap")
    current = known if known is not None else await read_inventory(kube, identity)
    for _attempt in range(WRITE_ATTEMPTS):
        entries = _merge(current.entries - removals, additions)
        if entries == current.entries and not current.invalid and current.resource_version:
            return current
        wanted = Inventory(identity, entries, (), current.resource_version)
        try:
            if current.resource_version:
                written = await kube.replace(info, wanted.to_configmap())
            else:
                if create_namespace:
                    await _ensure_namespace(kube, identity.namespace)
                written = await kube.create(info, wanted.to_configmap())
            return Inventory(identity, entries, (), (written.get("metadata") or {}).get("resourceVersion") or "")
        except (Conflict, AlreadyExists, NotFound):
            # someone else wrote (or deleted) it since it was read: merge into what is there now
            current = await read_inventory(kube, identity)
            create_namespace = True
    raise KubeError(
        f"inventory {identity.namespace}/{identity.inventory_name}: still changing after "
        f"{WRITE_ATTEMPTS} attempts (another writer keeps updating it); try again"
    )


async def _ensure_namespace(kube: Kube, namespace: str) -> None:
    ns_info = await kube.info("v1", "Namespace")
    if await kube.get(ns_info, namespace) is None:
        with contextlib.suppress(AlreadyExists):
            await kube.create(ns_info, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def _encode(text: str) -> dict[str, Any]:
    """Readable JSON while small; gzip (binaryData) past PLAIN_LIMIT so 10,000s of entries stay small."""
    if len(text) <= PLAIN_LIMIT:
        return {"data": {"entries": text}}
    packed = gzip.compress(text.encode(), compresslevel=6, mtime=0)
    return {"binaryData": {"entries.json.gz": base64.b64encode(packed).decode()}}


def _decode(obj: dict[str, Any]) -> str:
    packed = (obj.get("binaryData") or {}).get("entries.json.gz")
    if packed is not None:
        return gzip.decompress(base64.b64decode(packed)).decode()
    return (obj.get("data") or {}).get("entries", "{}")


def _merge(old: frozenset[ObjectRef], new: frozenset[ObjectRef]) -> frozenset[ObjectRef]:
    # The desired ref wins so the inventory remembers the apiVersion last applied.
    return new | frozenset(ref for ref in old if ref not in new)
