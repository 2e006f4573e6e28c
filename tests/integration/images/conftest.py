"""Registries for the image tests: Debian's docker-registry on loopback, one of each kind per session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from localregistry import TAGS, LocalRegistry, PagingProxy, TokenServer


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """Plain HTTP, htpasswd auth, the TAGS of team/api pushed."""
    running = LocalRegistry(tmp_path_factory.mktemp("registry")).start()
    running.push_image("team/api", *TAGS)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """TLS with a self-signed certificate and bearer-token auth (401 challenge -> token service)."""
    directory = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer(directory, "robot", "s3cret")
    running = LocalRegistry(
        directory / "registry", username="robot", password="s3cret", tls=True, token_server=tokens
    ).start()
    running.push_image("team/web", "0.9.0", "1.0.0", "1.1.0", "1.1.1-rc.1")
    yield running
    running.stop()
    tokens.stop()


@pytest.fixture(scope="session")
def paging(registry: LocalRegistry) -> Iterator[PagingProxy]:
    proxy = PagingProxy(registry.base, page=5)
    yield proxy
    proxy.stop()
