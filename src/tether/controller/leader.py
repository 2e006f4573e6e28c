"""Leader election on a coordination.k8s.io/v1 Lease, so one controller replica writes at a time.

The algorithm is the one client-go uses:

- A candidate reads the Lease. It takes it when the Lease does not exist (create), names no
  holder (released), or its holder has not renewed it for ``leaseDurationSeconds``; the write
  carries the read ``resourceVersion``, so of two candidates racing only one succeeds (the other
  gets 409 Conflict / AlreadyExists and keeps waiting).
- Expiry is judged by this process's own clock: how long since *it saw* the Lease change, not
  the ``renewTime`` written by another machine's clock, so clock skew between replicas does
  not matter.
- The leader renews every ``retry_period``; when it has not managed to renew for
  ``renew_deadline`` (API server unreachable, or another holder took the Lease) it stops
  leading at once: ``is_leader`` turns False, the ``lost`` event is set, the ``on_lost``
  callbacks run and the body of ``leading()`` is cancelled. ``renew_deadline`` is shorter than
  the lease duration so a leader gives up before anyone else may take over.
- ``release()`` empties ``holderIdentity``, so the next candidate takes over on its next try
  instead of waiting out the lease.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from tether.errors import KubeError, TetherError, UsageError
from tether.kube import Conflict, Kube, ResourceInfo

log = logging.getLogger("tether.controller.leader")

LostCallback = Callable[[], Awaitable[None] | None]
_JITTER = 0.2


class LeadershipLost(TetherError):
    """This replica stopped being the leader (it could not renew its Lease in time)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15,
        renew_deadline: float = 10,
        retry_period: float = 2,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period * (1 + _JITTER) > 0:
            raise UsageError(
                f"leader election for lease {namespace}/{name}: need lease_duration ({lease_duration:g}s) > "
                f"renew_deadline ({renew_deadline:g}s) > {1 + _JITTER:g} x retry_period ({retry_period:g}s) > 0"
            )
        if not identity:
            raise UsageError(f"leader election for lease {namespace}/{name}: the identity must not be empty")
        self.kube = kube
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        #: set when leadership is lost (not when released); replaced at each new acquisition
        self.lost = asyncio.Event()
        self._is_leader = False
        self._callbacks: list[LostCallback] = []
        self._renewer: asyncio.Task[None] | None = None
        self._info: ResourceInfo | None = None
        self._observed_version = ""
        self._observed_at = 0.0
        self._observed_duration = 0.0
        self._last_holder = ""

    def __repr__(self) -> str:
        return f"<LeaderElector {self.identity} on lease {self.namespace}/{self.name}>"

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    def on_lost(self, callback: LostCallback) -> None:
        """Run ``callback()`` (sync or async) whenever leadership is lost."""
        self._callbacks.append(callback)

    # ------------------------------------------------------------ acquiring and releasing

    async def acquire(self) -> None:
        """Wait until this replica holds the Lease, then keep renewing it in the background."""
        if self._is_leader:
            return
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.retry_period * (1 + random.random() * _JITTER))
        self._is_leader = True
        self.lost = asyncio.Event()
        log.info("%r: now leading", self)
        self._renewer = asyncio.create_task(self._renew_loop(), name=f"renew {self!r}")

    async def release(self) -> None:
        """Stop renewing and, when leading, hand the Lease back so the next replica takes over
        at once. Best effort: a failure is logged (the Lease then simply expires)."""
        was_leader = self._is_leader
        await self.stop()
        if not was_leader:
            return
        try:
            lease = await self.kube.get(await self._lease_info(), self.name, self.namespace)
            spec = (lease or {}).get("spec") or {}
            if lease is not None and spec.get("holderIdentity") == self.identity:
                now = _now()
                lease["spec"] = {
                    **spec,
                    "holderIdentity": "",
                    "leaseDurationSeconds": 1,
                    "renewTime": now,
                    "acquireTime": now,
                }
                await self.kube.replace(await self._lease_info(), lease)
                log.info("%r: released", self)
        except KubeError as error:
            log.warning("%r: could not release the lease (it will expire instead): %s", self, error)

    async def stop(self) -> None:
        """Stop renewing without touching the Lease (it expires after its duration)."""
        self._is_leader = False
        renewer, self._renewer = self._renewer, None
        if renewer is not None and renewer is not asyncio.current_task():
            renewer.cancel()
            await asyncio.wait([renewer])

    @asynccontextmanager
    async def leading(self) -> AsyncIterator[LeaderElector]:
        """``async with elector.leading():`` acquire, run the body while leading, release at the
        end. Losing leadership cancels the body and raises ``LeadershipLost``."""
        await self.acquire()
        body = asyncio.current_task()
        assert body is not None
        cancelled_for_loss = False

        def cancel_body() -> None:
            nonlocal cancelled_for_loss
            cancelled_for_loss = True
            body.cancel()

        self._callbacks.append(cancel_body)
        try:
            yield self
        except asyncio.CancelledError:
            if cancelled_for_loss and body.uncancel() == 0:
                raise LeadershipLost(f"{self!r}: lost the lease; stopped leading") from None
            raise
        finally:
            self._callbacks.remove(cancel_body)
            await self.release()

    # ------------------------------------------------------------ the Lease

    async def _lease_info(self) -> ResourceInfo:
        if self._info is None:
            self._info = await self.kube.info("coordination.k8s.io/v1", "Lease")
        return self._info

    def _observe(self, lease: dict[str, Any]) -> None:
        version = (lease.get("metadata") or {}).get("resourceVersion") or ""
        self._last_holder = ((lease.get("spec") or {}).get("holderIdentity")) or ""
        if version != self._observed_version:
            self._observed_version = version
            self._observed_at = asyncio.get_running_loop().time()
            self._observed_duration = float(((lease.get("spec") or {}).get("leaseDurationSeconds")) or 0)

    def _held_by_other(self, lease: dict[str, Any]) -> bool:
        holder = ((lease.get("spec") or {}).get("holderIdentity")) or ""
        if not holder or holder == self.identity:
            return False
        return asyncio.get_running_loop().time() < self._observed_at + self._observed_duration

    async def _try_acquire_or_renew(self) -> bool:
        info = await self._lease_info()
        now = _now()
        try:
            lease = await self.kube.get(info, self.name, self.namespace)
            if lease is None:
                created = await self.kube.create(
                    info,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": {
                            "holderIdentity": self.identity,
                            "leaseDurationSeconds": int(self.lease_duration),
                            "acquireTime": now,
                            "renewTime": now,
                            "leaseTransitions": 0,
                        },
                    },
                )
                self._observe(created)
                return True
            self._observe(lease)
            if self._held_by_other(lease):
                return False
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != self.identity:
                spec["acquireTime"] = now
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec.update(holderIdentity=self.identity, leaseDurationSeconds=int(self.lease_duration), renewTime=now)
            self._observe(await self.kube.replace(info, {**lease, "spec": spec}))
            return True
        except Conflict:  # another replica wrote the Lease between our read and write
            return False
        except KubeError as error:
            log.warning("%r: %s", self, error)
            return False

    async def _renew_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.retry_period)
            deadline = loop.time() + self.renew_deadline
            renewed = False
            while not renewed and loop.time() < deadline:
                # asyncio.timeout, not wait_for: 3.11's wait_for drops a cancellation that arrives
                # as the renewal completes, and the loop would then outlive stop()
                try:
                    async with asyncio.timeout(deadline - loop.time()):
                        renewed = await self._try_acquire_or_renew()
                except TimeoutError:
                    break
                if not renewed:
                    if self._observed_holder_is_other():
                        break  # someone else holds a valid lease: no point retrying
                    await asyncio.sleep(min(self.retry_period, max(deadline - loop.time(), 0)))
            if not renewed:
                await self._lose()
                return

    def _observed_holder_is_other(self) -> bool:
        return self._last_holder not in ("", self.identity)

    async def _lose(self) -> None:
        log.warning("%r: could not renew the lease within %gs; stopped leading", self, self.renew_deadline)
        self._is_leader = False
        self._renewer = None
        self.lost.set()
        for callback in list(self._callbacks):
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%r: on_lost callback %r failed", self, callback)
