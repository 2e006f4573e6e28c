from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from api_helpers import Api


@pytest.fixture
def api(sandbox) -> Api:  # type: ignore[no-untyped-def]
    return Api(sandbox.url)
