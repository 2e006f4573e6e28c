"""Names are never trusted in a URL: an unsafe name or namespace sends no request at all."""

from __future__ import annotations

from typing import Any

import pytest
from kube_helpers import run

from tether.kube import Kube, UnsafeName


def _cm(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": "v"},
    }


def test_unsafe_names_and_namespaces_never_reach_the_server(sandbox, sandbox_namespace: str) -> None:
    ns = sandbox_namespace
    other = sandbox.create_namespace(f"{ns[:50]}-other")

    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(sandbox.kubeconfig))
        try:
            cms = await kube.info("v1", "ConfigMap")
            namespaces = await kube.info("v1", "Namespace")
            await kube.apply(cms, _cm("keep", ns))
            await kube.apply(cms, _cm("keep", other))
            before = sum(kube.requests.values()), sum(kube.responses.values())

            attempts = [
                kube.delete(cms, "..", ns),  # would normalise to DELETE /api/v1/namespaces/NS
                kube.delete(cms, ".", ns),
                kube.delete(cms, "", ns),  # would be the collection
                kube.delete(namespaces, ""),  # would be DELETE /api/v1/namespaces
                kube.delete(namespaces, ".."),
                kube.delete(cms, "keep", "a/b"),
                kube.delete(cms, "x/../../namespaces/other", ns),
                kube.delete(cms, f"../../{other}", ns),
                kube.delete(cms, "keep%2F..", ns),
                kube.delete(cms, "keep\x00", ns),
                kube.delete(cms, "keep\n", ns),
                kube.delete(cms, "keep", ""),
                kube.delete(cms, "keep", None),
                kube.delete(cms, "keep", ".."),
                kube.get(cms, "..", ns),
                kube.get(cms, "", ns),
                kube.get(namespaces, ""),
                kube.patch(cms, "..", ns, {"data": {"k": "changed"}}),
                kube.patch(cms, "keep", ns, {"status": {}}, subresource="../.."),
                kube.apply(cms, _cm("..", ns)),
                kube.apply(cms, _cm("x/../../../namespaces/other/configmaps/keep", ns)),
                kube.apply(cms, _cm("keep", "A/B")),
                kube.replace(cms, _cm("..", ns)),
                kube.replace(cms, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": ns}}),
                kube.create(cms, _cm("new", "../x")),
                kube.create(cms, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "g-"}}),
                kube.delete(cms, "x" * 254, ns),
                kube.delete(cms, "keep", "n" * 64),
                kube.list(cms, "a/b"),
                kube.get_raw("/api/v1/namespaces/../x"),
            ]
            for attempt in attempts:
                with pytest.raises(UnsafeName, match="refusing to send a request"):
                    await attempt

            async def first_event() -> None:
                async for _ in kube.watch(cms, ".."):
                    break

            with pytest.raises(UnsafeName):
                await first_event()
            assert (sum(kube.requests.values()), sum(kube.responses.values())) == before

            # everything is still there, unchanged
            assert await kube.get(namespaces, ns) is not None
            assert await kube.get(namespaces, other) is not None
            assert (await kube.get(cms, "keep", ns))["data"] == {"k": "v"}
            assert (await kube.get(cms, "keep", other))["data"] == {"k": "v"}
            assert len(await kube.list(cms, ns)) >= 1
        finally:
            await kube.close()

    run(scenario())
