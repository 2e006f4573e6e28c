"""Apply/prune ordering and the inventory ConfigMap round trip."""

from __future__ import annotations

import json

import pytest

from tether.engine.inventory import Inventory, inventory_name
from tether.engine.order import Phase, batches, prune_batches, wave_of
from tether.errors import KubeError, ValidationError
from tether.model import ObjectRef


def m(api: str, kind: str, name: str, namespace: str = "", wave: str | None = None) -> dict:
    meta: dict = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if wave is not None:
        meta["annotations"] = {"tether.dev/wave": wave}
    return {"apiVersion": api, "kind": kind, "metadata": meta}


OBJECTS = [
    m("apps/v1", "Deployment", "web", "shop"),
    m("example.com/v1", "Widget", "w1", "shop"),
    m("v1", "Namespace", "shop"),
    m("rbac.authorization.k8s.io/v1", "ClusterRole", "reader"),
    m("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
    m("v1", "ConfigMap", "early", "shop", wave="-1"),
    m("batch/v1", "Job", "migrate", "shop", wave="5"),
    m("example.com/v1", "ClusterWidget", "cw"),
]


def _names(result):
    return [(key.phase, key.wave, [o["metadata"]["name"] for o in items]) for key, items in result]


def _batches(objs, prune=False):
    fn = prune_batches if prune else batches
    return fn(objs, ref=ObjectRef.of, namespaced=lambda o: bool(o["metadata"].get("namespace")), wave=wave_of)


def test_apply_order_phases_then_waves() -> None:
    assert _names(_batches(OBJECTS)) == [
        (Phase.CRDS, 0, ["widgets.example.com"]),
        (Phase.NAMESPACES, 0, ["shop"]),
        (Phase.CLUSTER, 0, ["cw", "reader"]),
        (Phase.NAMESPACED, -1, ["early"]),
        (Phase.NAMESPACED, 0, ["web", "w1"]),
        (Phase.NAMESPACED, 5, ["migrate"]),
    ]


def test_prune_order_is_reverse() -> None:
    order = [name for _phase, _wave, names in _names(_batches(OBJECTS, prune=True)) for name in names]
    assert order.index("w1") < order.index("widgets.example.com")
    assert order.index("web") < order.index("shop")
    assert order.index("cw") < order.index("widgets.example.com")
    assert order[0] == "migrate" and order[-1] == "widgets.example.com"


def test_bad_wave_names_object() -> None:
    with pytest.raises(ValidationError, match=r"ConfigMap shop/early: annotation tether.dev/wave='soon'"):
        wave_of(m("v1", "ConfigMap", "early", "shop", wave="soon"))


def test_inventory_round_trip() -> None:
    refs = {ObjectRef.of(o) for o in OBJECTS}
    inv = Inventory("web", frozenset(refs))
    cm = inv.to_configmap("tether-system")
    assert cm["metadata"] == {
        "name": "tether-inventory-web",
        "namespace": "tether-system",
        "labels": {
            "app.kubernetes.io/managed-by": "tether",
            "tether.dev/inventory": "web",
            "tether.dev/app-namespace": "tether-system",
        },
    }
    grouped = json.loads(cm["data"]["entries"])
    assert grouped["apps/v1/Deployment"] == ["shop/web"]
    assert grouped["v1/Namespace"] == ["shop"]
    back = Inventory.from_configmap("web", cm)
    assert back.entries == inv.entries
    # versions survive, so prune can address the object
    assert {r.api_version for r in back.entries} == {r.api_version for r in refs}


def test_inventory_removed_and_union() -> None:
    old = Inventory(
        "web",
        frozenset(
            {ObjectRef("apps", "Deployment", "shop", "web", "v1"), ObjectRef("", "ConfigMap", "shop", "gone", "v1")}
        ),
    )
    desired = {ObjectRef("apps", "Deployment", "shop", "web", "v1"), ObjectRef("", "Secret", "shop", "new", "v1")}
    assert old.removed(desired) == [ObjectRef("", "ConfigMap", "shop", "gone", "v1")]
    assert old.union(desired).entries == frozenset(desired | {ObjectRef("", "ConfigMap", "shop", "gone", "v1")})
    assert Inventory.from_configmap("web", None).entries == frozenset()


def test_inventory_corrupt_is_reported_not_raised_and_bad_name() -> None:
    bad = {"metadata": {"name": "tether-inventory-web", "namespace": "ns"}, "data": {"entries": "{not json"}}
    corrupt = Inventory.from_configmap("web", bad)
    assert corrupt.entries == frozenset() and "unreadable" in corrupt.invalid[0]
    with pytest.raises(KubeError, match="DNS label"):
        inventory_name("Web_App")


def test_large_inventory_is_compressed() -> None:
    refs = frozenset(ObjectRef("apps", "Deployment", f"ns-{i % 10}", f"app-{i:05d}", "v1") for i in range(10_000))
    cm = Inventory("big", refs).to_configmap()
    assert "data" not in cm and set(cm["binaryData"]) == {"entries.json.gz"}
    assert len(cm["binaryData"]["entries.json.gz"]) < 100_000
    assert Inventory.from_configmap("big", cm).entries == refs
    small = Inventory("small", frozenset(list(refs)[:10])).to_configmap()
    assert "binaryData" not in small and "entries" in small["data"]


@pytest.mark.parametrize("entry", ["ns/..", "ns/.", "ns/", "", "a/b/c", "ns/x%2F..", "../name", "Bad_NS/name"])
def test_unsafe_inventory_entries_are_set_aside(entry: str) -> None:
    cm = {"metadata": {"resourceVersion": "7"}, "data": {"entries": json.dumps({"v1/ConfigMap": [entry, "ns/ok"]})}}
    inv = Inventory.from_configmap("web", cm)
    assert [str(r) for r in inv.entries] == ["ConfigMap ns/ok"]
    assert len(inv.invalid) == 1 and inv.resource_version == "7"


def test_unparseable_entry_shapes_do_not_raise() -> None:
    cm = {"data": {"entries": json.dumps({"v1/ConfigMap": [3, None], "x": "y", "a/b/c/Kind": ["n"]})}}
    inv = Inventory.from_configmap("web", cm)
    assert inv.entries == frozenset() and len(inv.invalid) == 4
