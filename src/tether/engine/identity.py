"""Who an app is, which objects it owns, and which names are safe to address.

An app is identified by a namespace and a name (``AppIdentity``): the controller uses the
Application's own namespace and name, push mode ``--inventory-namespace`` and ``--app``. Two
apps called ``web`` in different namespaces are different apps: their objects carry both
labels (``tether.dev/app`` and ``tether.dev/app-namespace``), their inventories live next to
them, and each writes with a field manager derived from its identity.

Objects written by older tether versions carry only ``tether.dev/app``; they count as this
app's when this app's inventory lists them, and are relabelled by the next apply.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tether.errors import UsageError

APP_LABEL = "tether.dev/app"
APP_NAMESPACE_LABEL = "tether.dev/app-namespace"
INVENTORY_LABEL = "tether.dev/inventory"
ADOPT_ANNOTATION = "tether.dev/adopt"
INVENTORY_PREFIX = "tether-inventory-"
#: the field manager every app shared before identities existed; its fields are migrated
LEGACY_FIELD_MANAGER = "tether"
MAX_FIELD_MANAGER = 128

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(text: str) -> bool:
    return len(text) <= 63 and bool(_DNS_LABEL.match(text))


def is_safe_name(name: str) -> bool:
    """Can ``name`` be put into a request path as one segment, addressing exactly that object?

    The API server's own rule for path segment names: not empty, not ``.`` or ``..``, no ``/``
    or ``%``. Control characters and whitespace are refused too; no Kubernetes kind allows them.
    """
    if not name or name in (".", "..") or len(name) > 253:
        return False
    return not any(c in "/%" or c.isspace() or not c.isprintable() for c in name)


@dataclass(frozen=True, order=True)
class AppIdentity:
    namespace: str
    name: str

    def __post_init__(self) -> None:
        if not is_dns_label(self.namespace):
            raise UsageError(f"app namespace {self.namespace!r} must be a DNS label (lower-case letters, digits, '-')")
        if not is_dns_label(self.name) or len(INVENTORY_PREFIX) + len(self.name) > 253:
            raise UsageError(f"app name {self.name!r} must be a DNS label (lower-case letters, digits, '-')")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return {APP_LABEL: self.name, APP_NAMESPACE_LABEL: self.namespace}

    @property
    def selector(self) -> str:
        # by name only: objects of older versions lack the namespace label and must still be found
        return f"{APP_LABEL}={self.name}"

    @property
    def inventory_name(self) -> str:
        return INVENTORY_PREFIX + self.name

    @property
    def field_manager(self) -> str:
        manager = f"tether/{self.namespace}/{self.name}"
        if len(manager) <= MAX_FIELD_MANAGER:
            return manager
        tag = hashlib.sha256(manager.encode()).hexdigest()[:12]
        return f"{manager[: MAX_FIELD_MANAGER - 13]}-{tag}"


class Ownership(StrEnum):
    MINE = "mine"
    LEGACY_MINE = "legacy"  # only tether.dev/app=<name>: mine if my inventory lists it
    NONE = "none"
    OTHER = "other"


def owner_of(obj: dict[str, Any] | None, identity: AppIdentity) -> tuple[Ownership, str]:
    """Whose object this is by its labels, and the owning app's name for messages."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    app, app_ns = labels.get(APP_LABEL), labels.get(APP_NAMESPACE_LABEL)
    if not app:
        return Ownership.NONE, ""
    if app_ns is None:
        return (Ownership.LEGACY_MINE, app) if app == identity.name else (Ownership.OTHER, app)
    if app == identity.name and app_ns == identity.namespace:
        return Ownership.MINE, str(identity)
    return Ownership.OTHER, f"{app_ns}/{app}"


def wants_adoption(obj: dict[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(ADOPT_ANNOTATION, "")).lower() == "true"


def is_bookkeeping(obj: dict[str, Any]) -> bool:
    """An object tether keeps for itself (an inventory): only tether may write those."""
    if obj.get("kind") != "ConfigMap" or obj.get("apiVersion") != "v1":
        return False
    meta = obj.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName") or ""
    return name.startswith(INVENTORY_PREFIX) or INVENTORY_LABEL in (meta.get("labels") or {})
