from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from extras_helpers import ADMIN_TOKEN, Http, start_sandbox

from tether.sandbox.extras import ExtrasConfig

TOKENS = """# token,user,uid,"groups"
alice-token,alice,1
bob-token,bob,2,"devs"
imp-token,imp,3
"""


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
    running = start_sandbox(
        directory,
        tokens=[ADMIN_TOKEN],
        tls=True,
        extras=ExtrasConfig(sim_delay=0.2, authz="rbac", token_file=token_file),
    )
    yield running
    running.thread.stop()


@pytest.fixture
def http_fast(fast) -> Http:  # type: ignore[no-untyped-def]
    return Http(fast.url)
