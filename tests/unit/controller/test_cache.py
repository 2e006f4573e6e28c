"""ObjectCache: indexes by key and by Application, moves on label changes, forgets deletions,
and keeps managedFields while dropping kubectl's last-applied annotation."""

from __future__ import annotations

from typing import Any

import pytest

from tether.controller.cache import LAST_APPLIED, ObjectCache, key_of, slim


def obj(
    kind: str,
    name: str,
    namespace: str | None = "ns",
    api_version: str = "v1",
    app: str | None = None,
    app_namespace: str | None = None,
    rv: str = "1",
) -> dict[str, Any]:
    labels = {}
    if app:
        labels["tether.dev/app"] = app
    if app_namespace:
        labels["tether.dev/app-namespace"] = app_namespace
    meta: dict[str, Any] = {"name": name, "resourceVersion": rv, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def test_key_of_uses_group_kind_namespace_name() -> None:
    assert key_of(obj("Deployment", "web", api_version="apps/v1")) == ("apps", "Deployment", "ns", "web")
    assert key_of(obj("Namespace", "prod", namespace=None)) == ("", "Namespace", "", "prod")


def test_get_and_delete() -> None:
    cache = ObjectCache()
    cache.apply("ADDED", obj("ConfigMap", "a"))
    cache.apply("ADDED", obj("Namespace", "prod", namespace=None))
    assert cache.get("", "ConfigMap", "ns", "a") is not None
    assert cache.get("", "Namespace", None, "prod") is not None
    assert cache.get("", "ConfigMap", "other", "a") is None
    cache.apply("DELETED", obj("ConfigMap", "a"))
    assert cache.get("", "ConfigMap", "ns", "a") is None
    assert len(cache) == 1


CASES = [
    # (app_namespace asked, expected names)
    (None, {"plain", "in-team-a", "in-team-b"}),
    ("team-a", {"in-team-a"}),
    ("team-b", {"in-team-b"}),
    ("team-c", set()),
]


@pytest.mark.parametrize(("app_namespace", "expected"), CASES)
def test_by_app_with_and_without_the_app_namespace_label(app_namespace: str | None, expected: set[str]) -> None:
    cache = ObjectCache()
    cache.apply("ADDED", obj("ConfigMap", "plain", app="shop"))
    cache.apply("ADDED", obj("ConfigMap", "in-team-a", app="shop", app_namespace="team-a"))
    cache.apply("ADDED", obj("Secret", "in-team-b", app="shop", app_namespace="team-b"))
    cache.apply("ADDED", obj("ConfigMap", "other-app", app="blog", app_namespace="team-a"))
    cache.apply("ADDED", obj("ConfigMap", "unlabelled"))
    assert {key[3] for key in cache.by_app(app_namespace, "shop")} == expected


def test_by_app_filters_by_group_and_kind() -> None:
    cache = ObjectCache()
    cache.apply("ADDED", obj("ConfigMap", "c", app="shop"))
    cache.apply("ADDED", obj("Deployment", "d", app="shop", api_version="apps/v1"))
    cache.apply("ADDED", obj("Deployment", "x", app="shop", api_version="extensions.example/v1"))
    assert list(cache.by_app(None, "shop", "apps", "Deployment")) == [("apps", "Deployment", "ns", "d")]
    assert {k[3] for k in cache.by_app(None, "shop", kind="Deployment")} == {"d", "x"}
    assert {k[3] for k in cache.by_app(None, "shop", group="")} == {"c"}


def test_relabelling_moves_an_object_between_apps_and_unlabelling_drops_it() -> None:
    cache = ObjectCache()
    cache.apply("ADDED", obj("ConfigMap", "c", app="shop", rv="1"))
    cache.apply("MODIFIED", obj("ConfigMap", "c", app="blog", rv="2"))
    assert cache.by_app(None, "shop") == {}
    assert list(cache.by_app(None, "blog")) == [("", "ConfigMap", "ns", "c")]
    cache.apply("MODIFIED", obj("ConfigMap", "c", rv="3"))
    assert cache.by_app(None, "blog") == {}
    assert cache.get("", "ConfigMap", "ns", "c") is not None
    cache.apply("MODIFIED", obj("ConfigMap", "c", app="blog", app_namespace="team", rv="4"))
    cache.apply("DELETED", obj("ConfigMap", "c", app="blog", app_namespace="team", rv="5"))
    assert cache.by_app("team", "blog") == {}
    assert cache._apps == {}  # no empty index entries left behind


def test_by_app_returns_the_latest_version() -> None:
    cache = ObjectCache()
    cache.apply("ADDED", obj("ConfigMap", "c", app="shop", rv="1"))
    cache.apply("MODIFIED", obj("ConfigMap", "c", app="shop", rv="9"))
    (live,) = cache.by_app(None, "shop").values()
    assert live["metadata"]["resourceVersion"] == "9"


def test_drop_kind_forgets_one_kind_and_its_index_entries() -> None:
    cache = ObjectCache()
    cache.apply("ADDED", obj("Widget", "w1", app="shop", api_version="example.com/v1"))
    cache.apply("ADDED", obj("Widget", "w2", app="shop", api_version="example.com/v1"))
    cache.apply("ADDED", obj("ConfigMap", "c", app="shop"))
    assert cache.drop_kind("example.com", "Widget") == 2
    assert list(cache.by_app(None, "shop")) == [("", "ConfigMap", "ns", "c")]


def test_slim_drops_last_applied_but_keeps_managed_fields_and_other_annotations() -> None:
    live = obj("ConfigMap", "c")
    live["metadata"]["annotations"] = {LAST_APPLIED: '{"huge": "json"}', "keep": "me"}
    live["metadata"]["managedFields"] = [{"manager": "tether", "operation": "Apply", "fieldsV1": {"f:data": {}}}]
    slimmed = slim(live)
    assert slimmed["metadata"]["annotations"] == {"keep": "me"}
    assert slimmed["metadata"]["managedFields"][0]["manager"] == "tether"
    assert slim(obj("ConfigMap", "bare"))["metadata"].get("annotations") is None
