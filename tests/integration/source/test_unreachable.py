"""A Git host that refuses or never answers fails within the connect timeout, naming the masked URL."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.errors import SourceError
from tether.render import RenderOptions, render_source
from tether.source import fetch_source, parse_source
from tether.source.reach import endpoint


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel accepts and nobody ever reads or answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.fixture
def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return port


def fetch(url: str, tmp_path: Path, connect_timeout: float = 1.0):
    # the overall git time limit is far longer: only the connect bounds may end these fetches
    return fetch_source(
        parse_source(url + "?ref=main"), cache_dir=tmp_path / "cache", timeout=240, connect_timeout=connect_timeout
    )


def test_closed_port_fails_with_the_masked_url(closed_port: int, tmp_path: Path) -> None:
    url = f"http://deploy:s3cret@127.0.0.1:{closed_port}/repo.git"
    with pytest.raises(SourceError) as raised:
        fetch(url, tmp_path)
    message = str(raised.value)
    assert message.startswith(
        f"http://deploy:***@127.0.0.1:{closed_port}/repo.git: cannot reach 127.0.0.1:{closed_port} (Connection refused)"
    )
    assert "s3cret" not in message


def test_http_server_that_never_answers(silent_port: int, tmp_path: Path) -> None:
    url = f"http://deploy:s3cret@127.0.0.1:{silent_port}/repo.git"
    with pytest.raises(SourceError) as raised:
        fetch(url, tmp_path)
    message = str(raised.value)
    assert message.startswith(f"http://deploy:***@127.0.0.1:{silent_port}/repo.git: git clone failed")
    assert "too slow" in message and "took longer than" not in message
    assert "s3cret" not in message


def test_ssh_server_that_never_answers(silent_port: int, tmp_path: Path) -> None:
    url = f"ssh://git@127.0.0.1:{silent_port}/repo.git"
    with pytest.raises(
        SourceError,
        match=rf"^ssh://git@127.0.0.1:{silent_port}/repo.git: 127.0.0.1:{silent_port} "
        r"accepted the connection but sent no SSH greeting within 1s",
    ):
        fetch(url, tmp_path)


def test_ssh_closed_port(closed_port: int, tmp_path: Path) -> None:
    with pytest.raises(
        SourceError,
        match=rf"^ssh://git@127.0.0.1:{closed_port}/r.git: cannot reach 127.0.0.1:"
        rf"{closed_port} \(Connection refused\)",
    ):
        fetch(f"ssh://git@127.0.0.1:{closed_port}/r.git", tmp_path)


def test_render_options_carry_the_connect_timeout(silent_port: int, tmp_path: Path) -> None:
    options = RenderOptions(git_connect_timeout=1, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(SourceError, match="sent no SSH greeting within 1s"):
        render_source(f"ssh://git@127.0.0.1:{silent_port}/repo.git?ref=main", options)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://host/r.git", ("https", "host", 443)),
        ("http://host:8080/r.git", ("http", "host", 8080)),
        ("ssh://git@host/r.git", ("ssh", "host", 22)),
        ("ssh://git@[::1]:2222/r.git", ("ssh", "::1", 2222)),
        ("git@host:org/r.git", ("ssh", "host", 22)),
        ("git://host/r.git", ("git", "host", 9418)),
        ("file:///srv/r.git", None),
        ("/srv/r.git", None),
    ],
)
def test_endpoints(url: str, expected: tuple[str, str, int] | None) -> None:
    assert endpoint(url) == expected
