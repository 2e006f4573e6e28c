"""Garbage collection against an in-memory store, processing its queue synchronously."""

from __future__ import annotations

from typing import Any

import pytest

from tether.sandbox import gc
from tether.sandbox.resources import Registry
from tether.sandbox.store import Store


@pytest.fixture
def env() -> tuple[Store, gc.GarbageCollector]:
    store = Store(Registry())
    return store, gc.install(store)


def _cm(store: Store, name: str, owners: list[dict[str, Any]] = (), **meta: Any) -> dict[str, Any]:
    rt = store.registry.get("", "v1", "configmaps")
    refs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"],
            **({"blockOwnerDeletion": True} if meta.pop("block", False) else {}),
        }
        for o in owners
    ]
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", **meta}}
    if refs:
        body["metadata"]["ownerReferences"] = refs
    return store.create(rt, body)


def _get(store: Store, name: str) -> dict[str, Any] | None:
    return store.get(store.registry.get("", "v1", "configmaps"), "default", name)


def _delete(store: Store, name: str, policy: str | None) -> None:
    store.delete(store.registry.get("", "v1", "configmaps"), "default", name, propagation=policy)


@pytest.mark.parametrize("policy", [None, "Background"])
def test_background_collects_dependents_transitively(env, policy) -> None:
    store, collector = env
    owner = _cm(store, "owner")
    child = _cm(store, "child", [owner])
    _cm(store, "grandchild", [child])
    collector.drain()
    assert _get(store, "child") is not None
    _delete(store, "owner", policy)
    collector.drain()
    assert _get(store, "owner") is None and _get(store, "child") is None and _get(store, "grandchild") is None


def test_dependent_with_another_live_owner_only_loses_the_reference(env) -> None:
    store, collector = env
    a, b = _cm(store, "a"), _cm(store, "b")
    _cm(store, "shared", [a, b])
    _delete(store, "a", "Background")
    collector.drain()
    shared = _get(store, "shared")
    assert shared is not None
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["b"]


def test_orphan_removes_references_then_the_owner(env) -> None:
    store, collector = env
    owner = _cm(store, "owner")
    _cm(store, "child", [owner])
    _delete(store, "owner", "Orphan")
    assert _get(store, "owner")["metadata"]["finalizers"] == ["orphan"]
    collector.drain()
    assert _get(store, "owner") is None
    assert "ownerReferences" not in _get(store, "child")["metadata"]


def test_foreground_waits_for_blocking_dependents(env) -> None:
    store, collector = env
    owner = _cm(store, "owner")
    _cm(store, "child", [owner], block=True, finalizers=["example.com/hold"])
    _cm(store, "loose", [owner])
    _delete(store, "owner", "Foreground")
    collector.drain()
    live = _get(store, "owner")
    assert live is not None and live["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert live["metadata"]["deletionTimestamp"]
    assert _get(store, "loose") is None  # not blocking: deleted, not waited for
    assert _get(store, "child")["metadata"]["deletionTimestamp"]
    rt = store.registry.get("", "v1", "configmaps")
    child = dict(_get(store, "child"))
    child["metadata"] = {k: v for k, v in child["metadata"].items() if k != "finalizers"}
    store.update(rt, child)
    collector.drain()
    assert _get(store, "child") is None and _get(store, "owner") is None


def test_foreground_without_dependents_finishes_at_once(env) -> None:
    store, collector = env
    _cm(store, "alone")
    _delete(store, "alone", "Foreground")
    collector.drain()
    assert _get(store, "alone") is None


def test_dependent_of_a_missing_owner_is_collected(env) -> None:
    store, collector = env
    ghost = {"metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"}}
    _cm(store, "stray", [ghost])
    collector.drain()
    assert _get(store, "stray") is None


def test_owner_in_another_namespace_counts_as_absent(env) -> None:
    store, collector = env
    rt = store.registry.get("", "v1", "configmaps")
    elsewhere = store.create(
        rt, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": "kube-public"}}
    )
    _cm(store, "cross", [elsewhere])
    collector.drain()
    assert _get(store, "cross") is None


def test_existing_garbage_is_found_on_start() -> None:
    store = Store(Registry())
    ghost = {"metadata": {"name": "ghost", "uid": "11111111-0000-0000-0000-000000000000"}}
    _cm(store, "stray", [ghost])
    collector = gc.install(store)
    collector.drain()
    assert _get(store, "stray") is None
