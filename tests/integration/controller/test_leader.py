"""Leader election on a Lease in the sandbox: one leader at a time, takeover after expiry or at
once after release, and a leader that cannot renew (or is displaced) stops leading."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import start_sandbox

from tether.controller.leader import LeaderElector, LeadershipLost
from tether.errors import UsageError
from tether.kube import Kube

FAST = {"lease_duration": 3, "renew_deadline": 2, "retry_period": 0.25}


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))  # type: ignore[arg-type]


async def eventually(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def lease_spec(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    lease = await kube.get(await kube.info("coordination.k8s.io/v1", "Lease"), name, namespace)
    assert lease is not None
    return lease["spec"]


async def contest(first: LeaderElector, second: LeaderElector) -> asyncio.Task[None]:
    """``first`` leads; ``second`` is left trying, and never leads alongside it."""
    await first.acquire()
    waiting = asyncio.create_task(second.acquire())
    for _ in range(12):  # several of second's retries
        await asyncio.sleep(first.retry_period)
        assert first.is_leader and not second.is_leader
    assert not waiting.done()
    return waiting


def test_one_leader_and_takeover_after_the_lease_expires(sandbox, sandbox_namespace) -> None:
    ns = sandbox_namespace

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            first = LeaderElector(kube, ns, "tether-controller", "replica-1", **FAST)
            second = LeaderElector(kube, ns, "tether-controller", "replica-2", **FAST)
            waiting = await contest(first, second)
            spec = await lease_spec(kube, ns, "tether-controller")
            assert spec["holderIdentity"] == "replica-1" and spec["leaseTransitions"] == 0
            assert spec["leaseDurationSeconds"] == 3 and spec["renewTime"] >= spec["acquireTime"]

            await first.stop()  # a crash: no release, the lease has to run out
            await asyncio.wait_for(waiting, 30)
            assert second.is_leader and not first.is_leader
            spec = await lease_spec(kube, ns, "tether-controller")
            assert spec["holderIdentity"] == "replica-2" and spec["leaseTransitions"] == 1
            await second.release()

    run(scenario())


def test_release_hands_over_at_once(sandbox, sandbox_namespace) -> None:
    ns = sandbox_namespace
    # a lease far longer than the wait below: only the release lets the second take over in time
    slow = {"lease_duration": 600, "renew_deadline": 10, "retry_period": 0.25}

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            first = LeaderElector(kube, ns, "lease", "replica-1", **slow)
            second = LeaderElector(kube, ns, "lease", "replica-2", **slow)
            waiting = await contest(first, second)
            await first.release()
            assert not first.is_leader
            await asyncio.wait_for(waiting, 30)
            assert second.is_leader
            spec = await lease_spec(kube, ns, "lease")
            assert (spec["holderIdentity"], spec["leaseTransitions"], spec["leaseDurationSeconds"]) == (
                "replica-2",
                1,
                600,
            )
            assert not first.lost.is_set()  # giving up is not losing
            await second.release()
            assert (await lease_spec(kube, ns, "lease"))["holderIdentity"] == ""

    run(scenario())


def test_leading_block_releases_on_exit_and_is_cancelled_when_displaced(sandbox, sandbox_namespace) -> None:
    ns = sandbox_namespace

    async def scenario() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            elector = LeaderElector(kube, ns, "lease", "replica-1", **FAST)
            async with elector.leading():
                assert elector.is_leader
            assert not elector.is_leader
            assert (await lease_spec(kube, ns, "lease"))["holderIdentity"] == ""

            lost_calls: list[str] = []
            elector.on_lost(lambda: lost_calls.append("sync"))

            async def async_callback() -> None:
                lost_calls.append("async")

            elector.on_lost(async_callback)
            writes_after_loss = 0
            with pytest.raises(LeadershipLost, match="lost the lease"):
                async with elector.leading():
                    # another writer takes the lease over (as if our renewals had stalled)
                    info = await kube.info("coordination.k8s.io/v1", "Lease")
                    lease = await kube.get(info, "lease", ns)
                    assert lease is not None
                    lease["spec"]["holderIdentity"] = "intruder"
                    await kube.replace(info, lease)
                    while True:  # the work loop: cancelled once leadership is gone
                        await asyncio.sleep(0.05)
                        if not elector.is_leader:
                            writes_after_loss += 1
            assert writes_after_loss == 0
            assert elector.lost.is_set() and not elector.is_leader
            assert lost_calls == ["sync", "async"]
            assert (await lease_spec(kube, ns, "lease"))["holderIdentity"] == "intruder"  # not released over it

    run(scenario())


def test_leader_that_cannot_renew_stops_leading(tmp_path: Path) -> None:
    private = start_sandbox(tmp_path)
    try:
        ns = private.create_namespace("leases")

        async def scenario() -> None:
            async with await Kube.connect(kubeconfig=str(private.kubeconfig), timeout=5) as kube:
                elector = LeaderElector(kube, ns, "lease", "replica-1", **FAST)
                await elector.acquire()
                # every Lease update now fails: renewals fail until the renew deadline passes
                body = json.dumps({"errors": {"update": {"rate": 1.0, "code": 503}}}).encode()
                request = urllib.request.Request(
                    f"{private.url}/_sandbox/faults",
                    data=body,
                    method="POST",
                    headers={"Content-Type": "application/json"},
                )
                urllib.request.urlopen(request, timeout=30).close()
                await asyncio.wait_for(elector.lost.wait(), 30)
                assert not elector.is_leader

        run(scenario())
    finally:
        private.thread.stop()


@pytest.mark.parametrize(
    "timing",
    [
        dict(lease_duration=10, renew_deadline=10, retry_period=2),
        dict(lease_duration=15, renew_deadline=2, retry_period=2),
        dict(lease_duration=15, renew_deadline=10, retry_period=0),
    ],
)
def test_inconsistent_timing_is_refused(timing: dict[str, float]) -> None:
    with pytest.raises(UsageError, match="lease_duration"):
        LeaderElector(None, "ns", "lease", "me", **timing)  # type: ignore[arg-type]
