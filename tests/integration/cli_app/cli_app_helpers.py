"""Helpers for ``tether app`` / ``tether install`` tests: the real command line, kubectl and the API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tether.apps.ops import APPLICATION
from tether.kube import Kube

REPO = Path(__file__).resolve().parents[3]


def tether(*args: str, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def call(kubeconfig: Path, work: Any) -> Any:
    """Run ``await work(kube)`` on a fresh connection."""

    async def main() -> Any:
        kube = await Kube.connect(kubeconfig=str(kubeconfig))
        try:
            return await work(kube)
        finally:
            await kube.close()

    return asyncio.run(main())


def get_app(kubeconfig: Path, name: str, namespace: str) -> dict[str, Any] | None:
    return call(kubeconfig, lambda kube: kube.get(APPLICATION, name, namespace))


def write_status(kubeconfig: Path, name: str, namespace: str, status: dict[str, Any]) -> dict[str, Any]:
    """Play the controller: merge ``status`` into the Application's status subresource."""
    return call(
        kubeconfig,
        lambda kube: kube.patch(
            APPLICATION, name, namespace, {"status": status}, subresource="status", field_manager="test-controller"
        ),
    )


def sha(n: int) -> str:
    return f"{n:x}" * 40 if n < 16 else f"{n:02x}" * 20
