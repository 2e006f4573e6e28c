from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from extras_helpers import ADMIN_TOKEN, Http

from tether.sandbox.extras import ExtrasConfig
from tether.sandbox.server import SandboxConfig, SandboxThread

TOKENS = """# token,user,uid,"groups"
alice-token,alice,1
bob-token,bob,2,"devs"
imp-token,imp,3
"""


class Running:
    """A sandbox in a background thread (like the shared fixture, with our own configuration)."""

    def __init__(self, directory: Path, **options: object) -> None:
        self.thread = SandboxThread(SandboxConfig(port=0, data_dir=directory, **options))  # type: ignore[arg-type]
        self.server = self.thread.start()
        self.url = self.server.url
        self.kubeconfig = self.server.write_kubeconfig(directory / "kubeconfig")

    def call(self, fn):  # type: ignore[no-untyped-def]
        return self.thread.call(fn)


def start_sandbox(directory: Path, **options: object) -> Running:
    return Running(directory, **options)


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A sandbox whose simulated pods start in 0.2 s (the shared one uses the 1 s default)."""
    running = start_sandbox(tmp_path_factory.mktemp("fast"), extras=ExtrasConfig(sim_delay=0.2))
    yield running
    running.thread.stop()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A sandbox with bearer tokens and ``--authz rbac`` (over TLS: kubectl sends tokens only there)."""
    directory = tmp_path_factory.mktemp("rbac")
    token_file = directory / "tokens.csv"
    token_file.write_text(TOKENS)
    running = start_sandbox(directory, tokens=[ADMIN_TOKEN], tls=True,
                            extras=ExtrasConfig(sim_delay=0.2, authz="rbac", token_file=token_file))
    yield running
    running.thread.stop()


@pytest.fixture
def http_fast(fast) -> Http:  # type: ignore[no-untyped-def]
    return Http(fast.url)
