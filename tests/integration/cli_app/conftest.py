from __future__ import annotations

import pytest
from cli_app_helpers import tether


@pytest.fixture(scope="session")
def installed(sandbox):  # type: ignore[no-untyped-def]
    """The sandbox with ``tether install`` applied (CRD Established, controller RBAC and Deployment)."""
    done = tether("install", "--kubeconfig", str(sandbox.kubeconfig))
    assert done.returncode == 0, done.stderr
    return sandbox


@pytest.fixture
def kc(installed) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--kubeconfig", str(installed.kubeconfig)]
