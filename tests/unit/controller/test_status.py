"""Status writing as data: merge patches, bounded history and drift, and no patch when nothing changed."""

from __future__ import annotations

import pytest

from tether.controller import conditions as c
from tether.controller.api import MAX_DRIFT_ENTRIES, DriftEntry, HistoryEntry, parse_application
from tether.controller.status import StatusWriter, bounded, merge_patch, record_drift, record_history


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({}, {}, {}),
        ({"a": 1}, {"a": 1}, {}),
        ({"a": 1}, {"a": 2}, {"a": 2}),
        ({"a": 1}, {}, {"a": None}),
        ({}, {"a": {"b": 1}}, {"a": {"b": 1}}),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}, {"a": {"c": 3}}),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}, {"a": {"c": None}}),
        ({"l": [1, 2]}, {"l": [1, 2, 3]}, {"l": [1, 2, 3]}),  # lists are replaced whole
        ({"l": [{"x": 1}]}, {"l": [{"x": 1}]}, {}),
        ({"a": 1}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ],
)
def test_merge_patch(old, new, patch) -> None:
    assert merge_patch(old, new) == patch


def _apply_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _apply_merge_patch(result.get(key), value)
    return result


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"a": {"b": [1], "c": {"d": 1}}, "e": "x"}, {"a": {"c": {"d": 2, "f": 3}}, "g": None}),
        ({"conditions": [{"type": "Ready"}]}, {"conditions": []}),
    ],
)
def test_merge_patch_applied_gives_new(old, new) -> None:
    new = {k: v for k, v in new.items() if v is not None}
    assert _apply_merge_patch(old, merge_patch(old, new)) == new


def entry(revision: str, result: str = "Succeeded", at: str = "2024-01-01T00:00:00Z") -> HistoryEntry:
    return HistoryEntry(revision=revision, result=result, deployed_at=at)


def test_history_is_newest_first_and_bounded() -> None:
    history: list[HistoryEntry] = []
    for revision in ("r1", "r2", "r3", "r4"):
        history = record_history(history, entry(revision), limit=3)
    assert [h.revision for h in history] == ["r4", "r3", "r2"]
    assert record_history(history, entry("r5"), limit=0) == []


def test_history_repeat_of_newest_replaces_it() -> None:
    history = record_history([entry("r1")], entry("r2", at="2024-01-01T00:00:00Z"), limit=5)
    history = record_history(history, entry("r2", at="2024-01-02T00:00:00Z"), limit=5)
    assert [(h.revision, h.deployed_at) for h in history] == [
        ("r2", "2024-01-02T00:00:00Z"),
        ("r1", "2024-01-01T00:00:00Z"),
    ]
    # a failed attempt of the same revision is a new entry
    history = record_history(history, entry("r2", "Failed"), limit=5)
    assert [(h.revision, h.result) for h in history][:2] == [("r2", "Failed"), ("r2", "Succeeded")]


def test_drift_is_bounded_and_one_entry_per_object() -> None:
    old = [DriftEntry(object="Deployment a/web", fields=["spec.replicas"], time="t0")]
    found = [
        DriftEntry(object="Deployment a/web", fields=["spec.template"], time="t1"),
        DriftEntry(object="Service a/web", fields=["spec.ports"], time="t1"),
    ]
    merged = record_drift(old, found)
    assert [(d.object, d.fields) for d in merged] == [
        ("Deployment a/web", ["spec.template"]),
        ("Service a/web", ["spec.ports"]),
    ]
    many = [DriftEntry(object=f"ConfigMap a/c{i}") for i in range(3 * MAX_DRIFT_ENTRIES)]
    assert len(record_drift([], many)) == MAX_DRIFT_ENTRIES


def live_app(status: dict | None = None, limit: int = 10, generation: int = 2):
    obj = {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "team-a", "generation": generation},
        "spec": {"source": {"url": "/srv/git/repo"}, "revisionHistoryLimit": limit},
    }
    if status is not None:
        obj["status"] = status
    return parse_application(obj)


def test_patch_for_is_empty_when_nothing_changed() -> None:
    app = live_app()
    writer = StatusWriter(kube=None)  # type: ignore[arg-type]  # patch_for makes no request
    first = writer.patch_for(app, app.status)
    assert first["observedGeneration"] == 2
    written = live_app(status=_apply_merge_patch({}, first))
    assert writer.patch_for(written, written.status) == {}


def test_patch_for_sends_only_changes() -> None:
    app = live_app(
        status={
            "observedGeneration": 2,
            "sourceRevision": "a1",
            "sync": {"status": "Synced"},
            "health": {"status": "Healthy"},
            "inventory": {"count": 1},
            "conditions": [],
            "drift": [],
            "history": [],
        }
    )
    status = app.status.model_copy(deep=True)
    status.health.status = "Degraded"
    status.health.message = "Deployment web: 0/3 ready"
    status.conditions = list(c.set_condition(status.conditions, c.HEALTHY, "False", "Degraded", "0/3", 2))
    patch = StatusWriter(kube=None).patch_for(app, status)  # type: ignore[arg-type]
    assert set(patch) == {"health", "conditions"}
    assert patch["health"] == {"status": "Degraded", "message": "Deployment web: 0/3 ready"}


def test_patch_for_trims_history_to_the_limit() -> None:
    app = live_app(limit=2)
    status = app.status.model_copy(update={"history": [entry(f"r{i}") for i in range(5, 0, -1)]})
    patch = StatusWriter(kube=None).patch_for(app, status)  # type: ignore[arg-type]
    assert [h["revision"] for h in patch["history"]] == ["r5", "r4"]
    assert bounded(status, 2).history == status.history[:2]
