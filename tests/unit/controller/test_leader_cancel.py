"""Stopping a leader whose Lease renewal finishes at the very moment it is cancelled.

``asyncio.wait_for`` of Python 3.11 returns the inner result when the cancellation arrives
just as the inner call completes, swallowing it; the renew loop then went on renewing and
``stop()`` waited for it forever. The cancellation must end the loop whatever the timing.
"""

from __future__ import annotations

import asyncio

from tether.controller.leader import LeaderElector


class _NoKube:
    """The elector under test never reaches the API: its Lease call is replaced below."""


def test_stop_ends_the_renew_loop_when_cancelled_as_a_renewal_completes() -> None:
    async def scenario() -> tuple[bool, int]:
        elector = LeaderElector(
            _NoKube(),  # type: ignore[arg-type]
            "ns",
            "lease",
            "replica-1",
            lease_duration=3,
            renew_deadline=2,
            retry_period=0.01,
        )
        renewals = 0

        async def granted() -> bool:
            return True

        elector._try_acquire_or_renew = granted  # type: ignore[method-assign]
        await elector.acquire()
        renewer = elector._renewer
        assert renewer is not None

        async def renewed_while_cancelled() -> bool:
            nonlocal renewals
            renewals += 1
            renewer.cancel()  # the request completes in the same step as the cancellation
            return True

        elector._try_acquire_or_renew = renewed_while_cancelled  # type: ignore[method-assign]
        done, _ = await asyncio.wait([renewer], timeout=2)
        if not done:
            renewer.cancel()  # the old loop: cancel once more without the race so the test ends
            await asyncio.wait([renewer], timeout=2)
        return bool(done) and renewer.cancelled(), renewals

    ended, renewals = asyncio.run(scenario())
    assert ended, f"the renew loop kept running after being cancelled ({renewals} renewals)"
    assert renewals == 1
