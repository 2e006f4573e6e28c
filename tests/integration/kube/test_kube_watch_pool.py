"""Watches hold a connection each for minutes; however many run, requests still get a connection."""

from __future__ import annotations

import asyncio

from tether.kube import Kube, ResourceInfo
from tether.kube.client import REQUEST_POOL

CONFIGMAPS = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)


def test_more_watches_than_request_connections_leave_requests_served(sandbox, sandbox_namespace) -> None:
    watches = int(REQUEST_POOL.max_connections or 0) + 8
    ns = sandbox_namespace

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig), timeout=5) as kube:
            opened = 0

            async def hold() -> None:
                nonlocal opened
                async for _event in kube.watch(CONFIGMAPS, ns, timeout_seconds=60):
                    opened += 1  # the ADDED event of the ConfigMap below: this watch is open
                    await asyncio.sleep(3600)

            await kube.create(
                CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen", "namespace": ns}}
            )
            held = [asyncio.create_task(hold()) for _ in range(watches)]
            try:
                for _ in range(400):
                    if opened == watches:
                        break
                    await asyncio.sleep(0.05)
                assert opened == watches
                # a request while every watch holds its connection: served, not left waiting for the pool
                assert (await kube.get(CONFIGMAPS, "seen", ns)) is not None
            finally:
                for task in held:
                    task.cancel()
                await asyncio.gather(*held, return_exceptions=True)

    asyncio.run(scenario())
