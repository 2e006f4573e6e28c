"""kill -9 of `tether apply` mid-way: the next run converges and nothing outside the change is lost.

The sandbox delays the verb under test (fault injection ``latency``) so the process is killed
while it is doing exactly that: creating objects after recording them in the inventory, or
pruning.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from kube_helpers import Cluster

from tether.kube import Kube

NS = "cli-kill"


def _configmap(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"name": name}}


def _write(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.yaml"):
        old.unlink()
    for name in names:
        (root / f"{name}.yaml").write_text(yaml.safe_dump(_configmap(name)))
    return root


def _args(cluster: Cluster, src: Path, app: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tether.cli.main",
        "apply",
        str(src),
        "--app",
        app,
        "--kubeconfig",
        str(cluster.kubeconfig),
        "-n",
        NS,
        "--prune",
        "--concurrency",
        "2",
    ]


def _apply(cluster: Cluster, src: Path, app: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _args(cluster, src, app), capture_output=True, text=True, timeout=280, env={**os.environ, "NO_COLOR": "1"}
    )


def _names(cluster: Cluster) -> set[str]:
    async def main() -> set[str]:
        async with await Kube.connect(kubeconfig=str(cluster.kubeconfig)) as kube:
            items = await kube.list(await kube.info("v1", "ConfigMap"), NS)
            return {c["metadata"]["name"] for c in items if not c["metadata"]["name"].startswith("tether-inventory-")}

    return asyncio.run(main())


def _kill_when(cluster: Cluster, src: Path, app: str, ready) -> None:  # type: ignore[no-untyped-def]
    process = subprocess.Popen(
        _args(cluster, src, app),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while not ready(_names(cluster)):
            assert process.poll() is None, "the apply ended before it could be killed mid-way"
            assert time.monotonic() < deadline, "the apply never reached the point to kill it at"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
    assert process.returncode == -signal.SIGKILL


def test_kill_9_while_creating_and_while_pruning(faults: Cluster, tmp_path: Path) -> None:
    async def namespace() -> None:
        async with await Kube.connect(kubeconfig=str(faults.kubeconfig)) as kube:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
            await kube.apply(await kube.info("v1", "Namespace"), body)

    asyncio.run(namespace())
    neighbour = _apply(faults, _write(tmp_path / "neighbour", ["keep-me"]), "neighbour")
    assert neighbour.returncode == 0, neighbour.stderr
    base = [f"base{i}" for i in range(2)]
    src = tmp_path / "src"
    assert _apply(faults, _write(src, base), "victim").returncode == 0

    # killed between recording objects in the inventory and creating all of them
    extra = [f"new{i}" for i in range(10)]
    faults.faults({"latency": {"patch": 0.4}})
    _kill_when(faults, _write(src, base + extra), "victim", lambda names: 1 <= len(names & set(extra)) < len(extra))
    faults.clear_faults()
    again = _apply(faults, src, "victim")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _names(faults) == {"keep-me", *base, *extra}

    # killed while pruning: the next run prunes the rest, and only what left Git
    faults.faults({"latency": {"delete": 0.4}})
    _kill_when(faults, _write(src, base), "victim", lambda names: 1 <= len(set(extra) - names) < len(extra))
    faults.clear_faults()
    final = _apply(faults, src, "victim")
    assert final.returncode == 0, final.stdout + final.stderr
    assert _names(faults) == {"keep-me", *base}, "only the objects that left Git are pruned"
