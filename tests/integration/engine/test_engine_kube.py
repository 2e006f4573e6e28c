"""The thin API layer: discovery (and its refresh when a CRD appears), list paging, watch, errors."""

from __future__ import annotations

import asyncio

import pytest
from engine_helpers import configmap, run

from tether.kube import Kube, NotFound, UnknownKind

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "sprockets.kube.example.com"},
    "spec": {
        "group": "kube.example.com",
        "scope": "Cluster",
        "names": {"plural": "sprockets", "singular": "sprocket", "kind": "Sprocket", "listKind": "SprocketList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def test_discovery_scope_and_refresh_after_crd(sandbox) -> None:
    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        try:
            deployments = await kube.info("apps/v1", "Deployment")
            assert (deployments.plural, deployments.namespaced) == ("deployments", True)
            assert "patch" in deployments.verbs
            assert not (await kube.info("v1", "Namespace")).namespaced
            with pytest.raises(UnknownKind, match=r"unknown kind Sprocket in apiVersion kube\.example\.com/v1"):
                await kube.info("kube.example.com/v1", "Sprocket")
            crds = await kube.info("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            await kube.apply(crds, CRD)

            async def served():
                try:
                    return await kube.info("kube.example.com/v1", "Sprocket")
                except UnknownKind:
                    return None

            info = await kube.wait_for("the CRD to be served", served, 60)
            assert (info.plural, info.namespaced) == ("sprockets", False)
            made = await kube.apply(
                info, {"apiVersion": "kube.example.com/v1", "kind": "Sprocket", "metadata": {"name": "s1"}, "size": 4}
            )
            assert made["size"] == 4
        finally:
            await kube.close()

    run(scenario())


def test_list_pages_get_delete_and_errors(sandbox) -> None:
    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        try:
            ns = sandbox.create_namespace("kube-list")
            info = await kube.info("v1", "ConfigMap")
            for i in range(7):
                await kube.apply(
                    info,
                    {
                        **configmap(f"c{i}", ns),
                        "metadata": {"name": f"c{i}", "namespace": ns, "labels": {"set": "a" if i < 5 else "b"}},
                    },
                )
            listed = await kube.list(info, ns, label_selector="set=a", limit=2)  # three pages
            assert sorted(o["metadata"]["name"] for o in listed) == ["c0", "c1", "c2", "c3", "c4"]
            assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in listed)
            assert await kube.get(info, "missing", ns) is None
            assert await kube.delete(info, "c0", ns) is True
            assert await kube.delete(info, "c0", ns) is False
            with pytest.raises(NotFound, match="apply ConfigMap no-such-namespace/x: 404"):
                await kube.apply(info, configmap("x", "no-such-namespace"))
        finally:
            await kube.close()

    run(scenario())


def test_watch_yields_events(sandbox) -> None:
    async def scenario() -> list[tuple[str, str]]:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        try:
            ns = sandbox.create_namespace("kube-watch")
            info = await kube.info("v1", "ConfigMap")
            seen: list[tuple[str, str]] = []

            async def watch() -> None:
                async for kind, obj in kube.watch(info, ns, timeout_seconds=30):
                    if kind != "BOOKMARK":
                        seen.append((kind, obj["metadata"]["name"]))
                    if kind == "DELETED":
                        return

            task = asyncio.create_task(watch())
            await asyncio.sleep(0.5)
            await kube.apply(info, configmap("w", ns, v="1"))
            await kube.apply(info, configmap("w", ns, v="2"))
            await kube.delete(info, "w", ns)
            await asyncio.wait_for(task, 60)
            return seen
        finally:
            await kube.close()

    assert run(scenario()) == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
