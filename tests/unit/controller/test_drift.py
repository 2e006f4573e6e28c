"""Drift: the fields that differ from Git and the field manager that changed them."""

from __future__ import annotations

from tether.controller.drift import changed_paths, detect


def managed(*entries: tuple[str, dict, str]) -> list[dict]:
    return [{"manager": m, "operation": "Update", "fieldsV1": f, "time": t} for m, f, t in entries]


def test_changed_paths_ignore_status_and_bookkeeping() -> None:
    after = {"spec": {"replicas": 2, "x": 1}, "metadata": {"resourceVersion": "1"}, "status": {"a": 1}}
    live = {"spec": {"replicas": 5, "x": 1}, "metadata": {"resourceVersion": "9"}, "status": {"a": 2}}
    assert changed_paths(after, live) == [("spec", "replicas")]


def test_manager_is_the_latest_owner_of_the_field_other_than_tether() -> None:
    live = {
        "spec": {"replicas": 5},
        "metadata": {
            "managedFields": managed(
                ("tether/apps/web", {"f:spec": {"f:replicas": {}}}, "2026-01-01T00:00:00Z"),
                ("old-editor", {"f:spec": {"f:replicas": {}}}, "2026-01-02T00:00:00Z"),
                ("kubectl", {"f:spec": {"f:replicas": {}}}, "2026-01-03T00:00:00Z"),
                ("unrelated", {"f:metadata": {"f:labels": {}}}, "2026-01-04T00:00:00Z"),
            )
        },
    }
    drift = detect("Deployment shop/web", {"spec": {"replicas": 2}}, live, {"tether/apps/web"})
    assert drift.fields == (".spec.replicas",)
    assert drift.manager == "kubectl"
    assert "changed by kubectl" in drift.describe()


def test_a_deleted_object_has_no_fields_and_no_manager() -> None:
    drift = detect("ConfigMap shop/c", {"data": {"a": "1"}}, None, set())
    assert drift.fields == () and drift.manager == ""
    assert drift.describe() == "ConfigMap shop/c: deleted"
