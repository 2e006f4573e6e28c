"""Shared fixtures: a running sandbox API server for every test that needs a cluster."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tether.sandbox.server import Sandbox, SandboxConfig, SandboxThread

# kubectl caches discovery per host:port under ~/.kube/cache; a sandbox started on a port an
# earlier sandbox used would otherwise be served that one's stale discovery.
os.environ["KUBECACHEDIR"] = tempfile.mkdtemp(prefix="tether-kubectl-cache-")


@dataclass
class RunningSandbox:
    """A sandbox serving in a background thread: its URL, a kubeconfig for it, and the server
    itself (use ``call`` to touch the store from the test thread)."""

    url: str
    kubeconfig: Path
    data_dir: Path
    thread: SandboxThread

    @property
    def server(self) -> Sandbox:
        assert self.thread.sandbox is not None
        return self.thread.sandbox

    def call(self, fn):  # type: ignore[no-untyped-def]
        return self.thread.call(fn)

    def create_namespace(self, name: str) -> str:
        body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}).encode()
        request = urllib.request.Request(
            f"{self.url}/api/v1/namespaces", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
        return name


def start_sandbox(data_dir: Path, **options: object) -> RunningSandbox:
    thread = SandboxThread(SandboxConfig(port=0, data_dir=data_dir, **options))  # type: ignore[arg-type]
    sandbox = thread.start()
    kubeconfig = sandbox.write_kubeconfig(data_dir / "kubeconfig")
    return RunningSandbox(sandbox.url, kubeconfig, data_dir, thread)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """One sandbox for the whole test session (fast); tests isolate themselves by namespace."""
    running = start_sandbox(tmp_path_factory.mktemp("sandbox"))
    yield running
    running.thread.stop()


_counter = itertools.count(1)


@pytest.fixture
def sandbox_namespace(sandbox: RunningSandbox, request: pytest.FixtureRequest) -> str:
    """A fresh namespace in the session sandbox for this test."""
    slug = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    return sandbox.create_namespace(f"t{next(_counter)}-{slug}".rstrip("-"))
