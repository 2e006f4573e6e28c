"""Connection failures: a short connect timeout, and which requests are repeated after which failure."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kube_helpers import kubeconfig_for, run

from tether.kube import Kube, ResourceInfo, RetryPolicy, Unreachable

CONFIGMAPS = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
QUICK = RetryPolicy(attempts=3, base=0.01, cap=0.02)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose socket listens but never accepts or answers (the kernel completes the TCP
    handshake from the backlog; the TLS handshake never gets an answer)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new connection attempts, so connecting hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # completes in the background, into the queue
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


@pytest.fixture
def hanging_up_server() -> Iterator[int]:
    """Accepts every connection and closes it at once, before any response."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.recv(65536)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    server.close()
    thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


async def _connect(tmp_path: Any, server: str, **options: Any) -> Kube:
    return await Kube.connect(kubeconfig=str(kubeconfig_for(tmp_path / "kubeconfig", server)), **options)


def test_a_server_that_never_answers_fails_within_the_connect_timeout(tmp_path, silent_server: int) -> None:
    server = f"https://127.0.0.1:{silent_server}"

    async def scenario() -> None:
        kube = await _connect(tmp_path, server, timeout=600, connect_timeout=0.3, retry=QUICK)
        try:
            with pytest.raises(Unreachable) as caught:
                await kube.get(CONFIGMAPS, "x", "default")
            message = str(caught.value)
            assert f"cannot reach the API server at {server}" in message
            assert "no connection within 0.3s (connect timeout)" in message and "after 3 attempts" in message
            assert kube.responses == {("GET", 0): 3} and kube.requests == {("GET", False): 1}
        finally:
            await kube.close()

    run(scenario())


def test_a_full_accept_queue_also_fails_within_the_connect_timeout(tmp_path, full_backlog: int) -> None:
    server = f"http://127.0.0.1:{full_backlog}"

    async def scenario() -> None:
        kube = await _connect(tmp_path, server, timeout=600, connect_timeout=0.3, retry=RetryPolicy(attempts=1))
        try:
            with pytest.raises(Unreachable, match=f"at {server}: no connection within 0.3s"):
                await kube.list(CONFIGMAPS, "default")
        finally:
            await kube.close()

    run(scenario())


def test_the_connect_timeout_defaults_to_five_seconds_apart_from_the_read_timeout(tmp_path, closed_port: int) -> None:
    async def scenario() -> None:
        kube = await _connect(tmp_path, f"http://127.0.0.1:{closed_port}")
        try:
            assert (kube.connect_timeout, kube.timeout) == (5.0, 30.0)
            assert kube.retry == RetryPolicy()
        finally:
            await kube.close()

    run(scenario())


def test_a_post_is_repeated_only_when_it_certainly_was_not_sent(
    tmp_path, hanging_up_server: int, closed_port: int
) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "g-", "namespace": "default"}}

    async def scenario() -> None:
        hangs_up = await _connect(tmp_path, f"http://127.0.0.1:{hanging_up_server}", retry=QUICK)
        try:
            with pytest.raises(Unreachable):
                await hangs_up.get(CONFIGMAPS, "x", "default")
            assert hangs_up.responses == {("GET", 0): 3}  # idempotent: repeated
            with pytest.raises(Unreachable):
                await hangs_up.create(CONFIGMAPS, obj)
            assert hangs_up.responses[("POST", 0)] == 1  # it may have reached the server: not repeated
        finally:
            await hangs_up.close()
        refused = await _connect(tmp_path, f"http://127.0.0.1:{closed_port}", retry=QUICK)
        try:
            with pytest.raises(Unreachable, match=f"cannot reach the API server at http://127.0.0.1:{closed_port}"):
                await refused.create(CONFIGMAPS, obj)
            assert refused.responses == {("POST", 0): 3}  # refused connection: nothing was sent
        finally:
            await refused.close()

    run(scenario())
