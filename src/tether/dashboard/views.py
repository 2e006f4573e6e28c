"""What the list page and the health overview show of an Application, and how they are searched and paged.

Rows are built from the raw objects (not the pydantic models): at 10,000 apps validating each
object per page view would cost more than the whole rest of the request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tether.source.url import mask_url

SYNC_STATES = ("Synced", "OutOfSync", "Unknown")
HEALTH_STATES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")
#: the order of the overview: what needs attention first
HEALTH_ORDER = {"Degraded": 0, "Missing": 1, "Unknown": 2, "Progressing": 3, "Suspended": 4, "Healthy": 5}
PAGE_SIZES = (25, 50, 100, 200)


@dataclass(frozen=True)
class AppRow:
    namespace: str
    name: str
    source: str
    path: str
    ref: str
    revision: str
    sync: str
    health: str
    health_message: str
    deployed_at: str
    author: str
    drift: int
    suspended: bool
    pinned: str
    ready: str  # the Ready condition's status
    ready_reason: str
    ready_message: str
    labels: dict[str, str]

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def failing(self) -> bool:
        return self.health in ("Degraded", "Missing") or self.ready == "False"


def _ref_text(ref: dict[str, Any] | None) -> str:
    for kind in ("branch", "tag", "semver", "commit"):
        if ref and ref.get(kind):
            return f"{kind} {ref[kind]}"
    return "default branch"


def row_of(obj: dict[str, Any]) -> AppRow:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    status = obj.get("status") or {}
    source = spec.get("source") or {}
    history = [h for h in status.get("history") or [] if isinstance(h, dict)]
    latest = history[0] if history else {}
    ready = next((c for c in status.get("conditions") or [] if isinstance(c, dict) and c.get("type") == "Ready"), {})
    health = status.get("health") or {}
    return AppRow(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        source=mask_url(str(source.get("url", ""))),
        path=str(source.get("path") or "."),
        ref=_ref_text(source.get("ref")),
        revision=str(status.get("lastAppliedRevision") or ""),
        sync=str((status.get("sync") or {}).get("status") or "Unknown"),
        health=str(health.get("status") or "Unknown"),
        health_message=str(health.get("message") or ""),
        deployed_at=str(latest.get("deployedAt") or ""),
        author=str(latest.get("author") or ""),
        drift=len(status.get("drift") or []),
        suspended=bool(spec.get("suspend")),
        pinned=str((spec.get("pin") or {}).get("revision") or ""),
        ready=str(ready.get("status") or "Unknown"),
        ready_reason=str(ready.get("reason") or ""),
        ready_message=str(ready.get("message") or ""),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
    )


@dataclass(frozen=True)
class Query:
    """The list page's search and filters, as they appear in its URL."""

    search: str = ""
    namespace: str = ""
    sync: str = ""
    health: str = ""
    label: str = ""  # key or key=value
    drift: bool = False
    page: int = 1
    per_page: int = 50

    @classmethod
    def from_params(cls, params: Any) -> Query:
        def number(name: str, default: int) -> int:
            try:
                return max(int(params.get(name, default)), 1)
            except (TypeError, ValueError):
                return default

        per_page = number("per_page", 50)
        return cls(
            search=str(params.get("q", "")).strip(),
            namespace=str(params.get("namespace", "")).strip(),
            sync=_one_of(params.get("sync", ""), SYNC_STATES),
            health=_one_of(params.get("health", ""), HEALTH_STATES),
            label=str(params.get("label", "")).strip(),
            drift=params.get("drift", "") in ("1", "on", "true"),
            page=number("page", 1),
            per_page=per_page if per_page in PAGE_SIZES else 50,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """This query as URL parameters (defaults left out), with ``changes`` applied."""
        values = {
            "q": self.search,
            "namespace": self.namespace,
            "sync": self.sync,
            "health": self.health,
            "label": self.label,
            "drift": "1" if self.drift else "",
            "page": str(self.page),
            "per_page": str(self.per_page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {
            k: v
            for k, v in values.items()
            if v and not (k == "page" and v == "1") and not (k == "per_page" and v == "50")
        }

    def matches(self, row: AppRow) -> bool:
        if self.namespace and row.namespace != self.namespace:
            return False
        if self.sync and row.sync != self.sync:
            return False
        if self.health and row.health != self.health:
            return False
        if self.drift and not row.drift:
            return False
        if self.label:
            key, equals, value = self.label.partition("=")
            if key not in row.labels or (equals and row.labels[key] != value):
                return False
        if self.search:
            needle = self.search.lower()
            return needle in row.name.lower() or needle in row.namespace.lower() or needle in row.source.lower()
        return True


def _one_of(value: Any, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else ""


@dataclass(frozen=True)
class Page:
    rows: list[AppRow]
    total: int  # matching rows
    page: int
    pages: int
    visible: int  # apps the user may see at all


def page_of(rows: Iterable[AppRow], query: Query) -> Page:
    everything = list(rows)
    matching = [r for r in everything if query.matches(r)]
    matching.sort(key=lambda r: r.key)
    pages = max((len(matching) + query.per_page - 1) // query.per_page, 1)
    page = min(query.page, pages)
    start = (page - 1) * query.per_page
    return Page(matching[start : start + query.per_page], len(matching), page, pages, len(everything))


@dataclass(frozen=True)
class Overview:
    total: int
    by_health: list[tuple[str, int]]
    by_sync: list[tuple[str, int]]
    drifted: int
    suspended: int
    failing: list[AppRow]  # failing apps, worst first
    by_namespace: list[tuple[str, int, int]]  # (namespace, apps, failing)


def overview_of(rows: Iterable[AppRow], failing_limit: int = 100) -> Overview:
    everything = list(rows)
    health = Counter(r.health for r in everything)
    sync = Counter(r.sync for r in everything)
    failing = sorted(
        (r for r in everything if r.failing), key=lambda r: (HEALTH_ORDER.get(r.health, 2), r.namespace, r.name)
    )
    namespaces: dict[str, list[int]] = {}
    for r in everything:
        counts = namespaces.setdefault(r.namespace, [0, 0])
        counts[0] += 1
        counts[1] += r.failing
    return Overview(
        total=len(everything),
        by_health=sorted(((h, health[h]) for h in health), key=lambda item: HEALTH_ORDER.get(item[0], 2)),
        by_sync=[(s, sync[s]) for s in SYNC_STATES if sync[s]],
        drifted=sum(1 for r in everything if r.drift),
        suspended=sum(1 for r in everything if r.suspended),
        failing=failing[:failing_limit],
        by_namespace=sorted(((ns, c[0], c[1]) for ns, c in namespaces.items()), key=lambda item: (-item[2], item[0])),
    )
