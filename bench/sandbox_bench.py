"""Benchmark of the sandbox API server: server-side applies per second (with p50/p99 latency)
of a typical Deployment, and watch events per second.

Run: ``.venv/bin/python bench/sandbox_bench.py [--seconds 5] [--concurrency 4]``. The server runs
in its own process (``tether sandbox --no-simulation``, fresh data directory) so client and
server do not share an interpreter; the client keeps connections alive like kubectl or a
controller would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp


def deployment(name: str, image: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name, "tier": "frontend"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [{"name": "MODE", "value": "prod"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                        }
                    ]
                },
            },
        },
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(data: Path, port: int) -> subprocess.Popen:
    tether = Path(sys.executable).with_name("tether")
    proc = subprocess.Popen(
        [str(tether), "sandbox", "--port", str(port), "--data", str(data), "--no-simulation"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the sandbox did not start")


class Connection:
    """A minimal keep-alive HTTP/1.1 client: the benchmark should spend its CPU in the server,
    not in a client library."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: {content_type}\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def apply_load(url: str, seconds: float, concurrency: int, change: bool) -> tuple[int, list[float]]:
    latencies: list[float] = []
    host, port = url.removeprefix("http://").split(":")
    stop = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        name = f"bench-{index}"
        path = f"/apis/apps/v1/namespaces/default/deployments/{name}?fieldManager=bench&force=true"
        bodies = [json.dumps(deployment(name, f"nginx:1.{i}" if change else "nginx:1.0")).encode() for i in range(50)]
        connection = Connection(host, int(port))
        round_ = 0
        try:
            while time.perf_counter() < stop:
                round_ += 1
                started = time.perf_counter()
                code, _ = await connection.request("PATCH", path, bodies[round_ % 50], "application/apply-patch+yaml")
                if code not in (200, 201):
                    raise RuntimeError(f"apply failed: {code}")
                latencies.append(time.perf_counter() - started)
        finally:
            connection.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return len(latencies), latencies


async def _stream(url: str, path: str, params: dict, events: int) -> tuple[int, float, float]:
    """Read ``events`` watch events; returns (count, first arrival, last arrival)."""
    received, first, last = 0, 0.0, 0.0
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url + path, params=params) as response:
        async for _line in response.content:
            received += 1
            last = time.perf_counter()
            first = first or last
            if received >= events:
                break
    return received, first, last


async def watch_rates(url: str, events: int, watchers: int) -> tuple[float, float]:
    """(replay, live fan-out) watch events per second.

    Replay: one watcher reads ``events`` ConfigMap changes from history (the server's own
    event-serving speed). Live: ``watchers`` watchers each receive every change while a writer
    applies them; the figure is events delivered per second across all watchers."""
    host, port = url.removeprefix("http://").split(":")
    connection = Connection(host, int(port))
    path = "/api/v1/namespaces/default/configmaps"
    _, body = await connection.request("GET", path, b"", "application/json")
    start_rv = json.loads(body)["metadata"]["resourceVersion"]

    async def write(count: int) -> None:
        for i in range(count):
            config = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"w{i % 20}"},
                "data": {"i": str(i)},
            }
            await connection.request(
                "PATCH",
                f"{path}/w{i % 20}?fieldManager=bench&force=true",
                json.dumps(config).encode(),
                "application/apply-patch+yaml",
            )

    await write(events)
    count, first, last = await _stream(url, path, {"watch": "1", "resourceVersion": start_rv}, events)
    replay = (count - 1) / (last - first)
    _, body = await connection.request("GET", path, b"", "application/json")
    live_rv = json.loads(body)["metadata"]["resourceVersion"]
    live_events = events // 4
    tasks = [
        asyncio.create_task(_stream(url, path, {"watch": "1", "resourceVersion": live_rv}, live_events))
        for _ in range(watchers)
    ]
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    await write(live_events)
    results = await asyncio.gather(*tasks)
    connection.close()
    delivered = sum(r[0] for r in results)
    return replay, delivered / (max(r[2] for r in results) - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--watch-events", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        proc = start_server(Path(data), port)
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(apply_load(url, 1.0, args.concurrency, True))  # warm up: create objects, caches
            for label, change in (("changing image", True), ("unchanged (no-op)", False)):
                cpu_before = cpu_seconds(proc.pid)
                count, latencies = asyncio.run(apply_load(url, args.seconds, args.concurrency, change))
                cpu = cpu_seconds(proc.pid) - cpu_before
                quantiles = statistics.quantiles(latencies, n=100)
                print(
                    f"server-side apply, {label}: {count / args.seconds:.0f}/s "
                    f"p50 {quantiles[49] * 1000:.1f} ms p99 {quantiles[98] * 1000:.1f} ms "
                    f"(concurrency {args.concurrency}, {count} applies); server CPU {cpu / count * 1000:.2f} ms "
                    f"per apply = {count / cpu:.0f}/s per core"
                )
            replay, live = asyncio.run(watch_rates(url, args.watch_events, 10))
            print(
                f"watch: {replay:.0f} events/s replayed from history to one watcher; "
                f"{live:.0f} events/s delivered to 10 watchers while applying ConfigMaps"
            )
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"(cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
