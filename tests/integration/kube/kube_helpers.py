"""Helpers for the client tests: sandboxes of their own, fault switches."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.sandbox.server import SandboxConfig, SandboxThread

ADMIN_TOKEN = "kube-tests-admin-token"


@dataclass
class Cluster:
    url: str
    kubeconfig: Path
    thread: SandboxThread

    def faults(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /_sandbox/faults (an admin endpoint that is never faulted itself)."""
        request = urllib.request.Request(
            f"{self.url}/_sandbox/faults",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def clear_faults(self) -> None:
        request = urllib.request.Request(f"{self.url}/_sandbox/faults", method="DELETE")
        with urllib.request.urlopen(request, timeout=30):
            pass


def start_cluster(directory: Path, **options: Any) -> Cluster:
    thread = SandboxThread(SandboxConfig(port=0, data_dir=directory, **options))
    server = thread.start()
    return Cluster(server.url, server.write_kubeconfig(directory / "kubeconfig"), thread)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def kubeconfig_for(path: Path, server: str) -> Path:
    """A kubeconfig for a bare server (TLS not verified: these servers only ever fail)."""
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}', insecure-skip-tls-verify: true}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    return path
