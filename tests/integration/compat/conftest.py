"""A sandbox whose simulated workloads move quickly (0.1 s a step), shared by the compat tests."""

from __future__ import annotations

import itertools
import json
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tether.sandbox.extras import ExtrasConfig
from tether.sandbox.server import SandboxConfig, SandboxThread

_counter = itertools.count(1)


@dataclass
class Quick:
    url: str
    kubeconfig: Path

    def create_namespace(self, name: str) -> str:
        body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}).encode()
        request = urllib.request.Request(
            f"{self.url}/api/v1/namespaces", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
        return name


@pytest.fixture(scope="session")
def quick_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quick]:
    directory = tmp_path_factory.mktemp("compat")
    thread = SandboxThread(SandboxConfig(port=0, data_dir=directory, extras=ExtrasConfig(sim_delay=0.1)))
    sandbox = thread.start()
    yield Quick(sandbox.url, sandbox.write_kubeconfig(directory / "kubeconfig"))
    thread.stop()


@pytest.fixture
def quick_namespace(quick_sandbox: Quick, request: pytest.FixtureRequest) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    return quick_sandbox.create_namespace(f"c{next(_counter)}-{slug}".rstrip("-"))
