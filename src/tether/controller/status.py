"""Writing an Application's status: once per reconcile, only what changed, nothing when nothing did.

The reconciler works on a copy of ``app.status`` and hands the result to ``StatusWriter.write``,
which bounds history and drift, sets ``observedGeneration``, and sends the JSON merge patch that
turns the status the controller read into the new one. Lists are replaced whole (merge patch
semantics), removed fields are sent as ``null``. An identical status costs no request, so a
resync of an unchanged app writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tether.controller.api import (
    APPLICATION_INFO,
    MAX_DRIFT_ENTRIES,
    Application,
    ApplicationStatus,
    DriftEntry,
    HistoryEntry,
)
from tether.kube import Kube, NotFound, ResourceInfo

STATUS_FIELD_MANAGER = "tether-controller"


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch taking ``old`` to ``new`` (``{}`` when they are equal)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            if isinstance(old[key], dict) and isinstance(value, dict):
                patch[key] = merge_patch(old[key], value)
            else:
                patch[key] = value
    return patch


def record_history(history: Iterable[HistoryEntry], entry: HistoryEntry, limit: int) -> list[HistoryEntry]:
    """History with ``entry`` as the newest, at most ``limit`` entries.

    A repeat of the newest revision with the same result (a retry that succeeded again, a resync)
    replaces the newest entry instead of pushing older revisions out of the history."""
    entries = list(history)
    if entries and entries[0].revision == entry.revision and entries[0].result == entry.result:
        entries = entries[1:]
    return [entry, *entries][: max(limit, 0)]


def record_drift(
    drift: Iterable[DriftEntry],
    found: Iterable[DriftEntry],
    limit: int = MAX_DRIFT_ENTRIES,
) -> list[DriftEntry]:
    """Drift with ``found`` first (newest), one entry per object, at most ``limit`` entries."""
    merged: list[DriftEntry] = []
    seen: set[str] = set()
    for entry in [*found, *drift]:
        if entry.object not in seen:
            seen.add(entry.object)
            merged.append(entry)
    return merged[:limit]


def bounded(status: ApplicationStatus, revision_history_limit: int) -> ApplicationStatus:
    """``status`` with history trimmed to the limit (newest first) and drift to its bound."""
    if len(status.history) <= revision_history_limit and len(status.drift) <= MAX_DRIFT_ENTRIES:
        return status
    return status.model_copy(
        update={
            "history": status.history[: max(revision_history_limit, 0)],
            "drift": status.drift[:MAX_DRIFT_ENTRIES],
        }
    )


class StatusWriter:
    """Patches ``/status`` of Applications as one field manager; ``writes`` counts the requests made."""

    def __init__(
        self, kube: Kube, info: ResourceInfo = APPLICATION_INFO, field_manager: str = STATUS_FIELD_MANAGER
    ) -> None:
        self.kube = kube
        self.info = info
        self.field_manager = field_manager
        self.writes = 0

    def patch_for(self, app: Application, status: ApplicationStatus) -> dict[str, Any]:
        """The status merge patch ``write`` would send (``{}``: nothing to write)."""
        new = bounded(status, app.spec.revision_history_limit)
        new = new.model_copy(update={"observed_generation": app.generation})
        live = (app.raw.get("status") if app.raw else None) or {}
        return merge_patch(live, new.to_dict())

    async def write(self, app: Application, status: ApplicationStatus) -> dict[str, Any] | None:
        """Write ``status`` if it differs from what was read; returns the updated object, or None
        when nothing had to be written or the Application is gone."""
        patch = self.patch_for(app, status)
        if not patch:
            return None
        self.writes += 1
        try:
            return await self.kube.patch(
                self.info,
                app.name,
                app.namespace,
                {"status": patch},
                subresource="status",
                field_manager=self.field_manager,
            )
        except NotFound:
            return None  # deleted while it was being reconciled: nothing to report on


__all__ = ["STATUS_FIELD_MANAGER", "StatusWriter", "bounded", "merge_patch", "record_drift", "record_history"]
