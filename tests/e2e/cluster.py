"""A small synchronous client for the tests: each call opens a connection, does one thing, closes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.kube import Kube

APP = ("tether.dev/v1alpha1", "Application")


class Cluster:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = str(kubeconfig)

    def _do(self, action: Callable[[Kube], Any]) -> Any:
        async def main() -> Any:
            kube = await Kube.connect(kubeconfig=self.kubeconfig)
            try:
                return await action(kube)
            finally:
                await kube.close()

        return asyncio.run(main())

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        async def action(kube: Kube) -> Any:
            return await kube.get(await kube.info(api_version, kind), name, namespace)

        return self._do(action)

    def apply(self, obj: dict[str, Any], manager: str = "e2e") -> dict:
        async def action(kube: Kube) -> Any:
            return await kube.apply(
                await kube.info(obj["apiVersion"], obj["kind"]), obj, force=True, field_manager=manager
            )

        return self._do(action)

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        body: dict,
        *,
        subresource: str = "",
        manager: str = "kubectl-edit",
    ) -> dict:
        async def action(kube: Kube) -> Any:
            return await kube.patch(
                await kube.info(api_version, kind),
                name,
                namespace,
                body,
                subresource=subresource,
                field_manager=manager,
            )

        return self._do(action)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        async def action(kube: Kube) -> Any:
            return await kube.delete(await kube.info(api_version, kind), name, namespace)

        return self._do(action)

    def events(self, namespace: str, name: str) -> list[dict]:
        async def action(kube: Kube) -> Any:
            items = await kube.list(await kube.info("v1", "Event"), namespace)
            return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]

        return self._do(action)

    def app(self, name: str, namespace: str = "default") -> dict | None:
        return self.get(*APP, name, namespace)


def condition(app: dict | None, type_: str) -> dict:
    return next((c for c in ((app or {}).get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


def ready_at(app: dict | None, commit: str) -> bool:
    status = (app or {}).get("status") or {}
    return condition(app, "Ready").get("status") == "True" and status.get("lastAppliedRevision") == commit


def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy (a generous bound: this is not a timing test)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
