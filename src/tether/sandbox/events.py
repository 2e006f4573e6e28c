"""Store events and the JSON helpers the store and its users share.

``WatchEvent`` is what watches stream and ``store.listeners`` receive; ``Subscription`` is the
async stream ``Store.subscribe`` hands out. Re-exported by ``tether.sandbox.store``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.sandbox.store import Store


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def clone(value: Any) -> Any:
    """Deep copy of JSON data (faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def encode(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    key: tuple[str, str]  # (group, plural) storage key
    namespace: str
    object: dict[str, Any]
    old: dict[str, Any] | None
    rv: int
    line: bytes | None = None  # the encoded watch line, shared by every watcher that sends it as is


class Subscription:
    """A stream of store events for one (resource, namespace) filter."""

    def __init__(self, store: Store, key: tuple[str, str] | None, namespace: str | None, maxsize: int) -> None:
        self._store = store
        self.key = key
        self.namespace = namespace
        self._queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def matches(self, event: WatchEvent) -> bool:
        return (self.key is None or event.key == self.key) and (
            self.namespace is None or event.namespace == self.namespace
        )

    def offer(self, event: WatchEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # a consumer this far behind must re-list, as with an upstream watch cache overflow
            self.overflowed = True
            self.close()

    async def get(self, timeout: float | None = None) -> WatchEvent | None:
        """Next event; None on timeout or when closed."""
        if self.closed and self._queue.empty():
            return None
        try:  # asyncio.timeout: 3.11's wait_for can drop a cancel arriving as an event does
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._store._subscribers.discard(self)
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> WatchEvent:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event
