from __future__ import annotations

import pytest
from conformance_runner import ApiClient


@pytest.fixture(scope="session")
def conformance_client(sandbox) -> ApiClient:
    return ApiClient(base_url=sandbox.url)
