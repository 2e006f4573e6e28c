"""Sandboxes of their own for the client tests: one with fault injection, one enforcing RBAC."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kube_helpers import ADMIN_TOKEN, Cluster, start_cluster

from tether.sandbox.extras import ExtrasConfig


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A sandbox whose faults the tests set; cleared after every test that uses ``faults``."""
    cluster = start_cluster(tmp_path_factory.mktemp("faulty"), extras=ExtrasConfig(sim_delay=0.2))
    yield cluster
    cluster.thread.stop()


@pytest.fixture
def faults(faulty: Cluster) -> Iterator[Cluster]:
    yield faulty
    faulty.clear_faults()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A sandbox over TLS with an admin bearer token and ``--authz rbac``."""
    cluster = start_cluster(
        tmp_path_factory.mktemp("secured"),
        tls=True,
        tokens=[ADMIN_TOKEN],
        extras=ExtrasConfig(sim_delay=0.2, authz="rbac"),
    )
    yield cluster
    cluster.thread.stop()
