"""The namespace controller over a bare store: Terminating, emptied, finalized; a restart carries on."""

from __future__ import annotations

import pytest

from tether.sandbox import errors, namespaces
from tether.sandbox.resources import Registry
from tether.sandbox.store import Store


def _setup(store: Store) -> None:
    ns_type = store.registry.get("", "v1", "namespaces")
    configmaps = store.registry.get("", "v1", "configmaps")
    assert ns_type is not None and configmaps is not None
    store.create(ns_type, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    store.create(configmaps, {"metadata": {"name": "plain", "namespace": "shop"}})
    store.create(configmaps, {"metadata": {"name": "held", "namespace": "shop", "finalizers": ["example.com/x"]}})


def test_delete_marks_terminating_and_the_controller_empties_then_finalizes() -> None:
    store = Store(Registry())
    controller = namespaces.install(store)
    _setup(store)
    ns_type = store.registry.get("", "v1", "namespaces")
    configmaps = store.registry.get("", "v1", "configmaps")
    assert ns_type is not None and configmaps is not None
    marked, removed = store.delete(ns_type, "", "shop")
    assert not removed and marked["status"]["phase"] == "Terminating"
    assert store.get(configmaps, "shop", "plain") is not None, "content deleted before the controller ran"

    controller.drain()
    assert store.get(configmaps, "shop", "plain") is None
    held = store.get(configmaps, "shop", "held")
    assert held is not None and held["metadata"]["deletionTimestamp"]
    live = store.get(ns_type, "", "shop")
    assert live is not None and live["spec"]["finalizers"] == ["kubernetes"]
    conditions = {c["type"]: c["status"] for c in live["status"]["conditions"]}
    assert conditions["NamespaceFinalizersRemaining"] == "True"

    with pytest.raises(errors.ApiError) as refused:
        store.create(configmaps, {"metadata": {"name": "late", "namespace": "shop"}})
    assert refused.value.code == 403 and "being terminated" in refused.value.message

    store.update(configmaps, {**held, "metadata": {**held["metadata"], "finalizers": []}})
    controller.drain()
    assert store.get(ns_type, "", "shop") is None


def test_a_restarted_sandbox_finishes_a_terminating_namespace(tmp_path) -> None:
    store = Store(Registry(), tmp_path)
    _setup(store)
    ns_type = store.registry.get("", "v1", "namespaces")
    assert ns_type is not None
    store.delete(ns_type, "", "shop")  # no controller: stays Terminating
    store.close()
    again = Store(Registry(), tmp_path)
    controller = namespaces.install(again)
    assert "shop" in controller.terminating
    configmaps = again.registry.get("", "v1", "configmaps")
    assert configmaps is not None
    held = again.get(configmaps, "shop", "held")
    assert held is not None
    again.update(configmaps, {**held, "metadata": {**held["metadata"], "finalizers": []}})
    controller.drain()
    assert again.get(ns_type, "", "shop") is None
    again.close()
