"""Fail fast on a Git host that cannot be reached or never answers.

git itself has no connect timeout for HTTP(S) and waits on a silent server until the overall
time limit ends. Before any network git command we open a TCP connection ourselves with a
short timeout (a closed port or an unroutable host fails in seconds), and for SSH we also wait
for the server's greeting, which an SSH server sends first. A server that accepts HTTP
connections but never responds is stopped by git's low-speed limit, passed to git through
``GIT_HTTP_LOW_SPEED_*``; SSH gets ``ConnectTimeout`` and keep-alives (see ``ssh_options``).
"""

from __future__ import annotations

import math
import re
import socket
import urllib.parse

from tether.errors import SourceError
from tether.source.url import mask_url

DEFAULT_CONNECT_TIMEOUT = 10.0

_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>\[[^\]]+\]|[^:/]+):(?!//)")


def endpoint(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of a network Git URL; ``None`` for local paths and ``file://``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in _DEFAULT_PORTS:
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            return None  # git reports the bad port itself
        return (parts.scheme, parts.hostname, port) if parts.hostname else None
    if "://" not in url and (match := _SCP_LIKE.match(url)):
        return "ssh", match["host"].strip("[]"), 22
    return None


def check_reachable(url: str, timeout: float) -> None:
    """Raise SourceError (naming the masked URL) when the host does not accept a connection in ``timeout``."""
    target = endpoint(url)
    if target is None:
        return
    scheme, host, port = target
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return  # an SSH config alias or a name only git's resolver knows: leave it to git
    where = f"{mask_url(url)}: cannot reach {host}:{port}"
    last: OSError | None = None
    for family, kind, proto, _name, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            if scheme == "ssh":
                _await_greeting(sock, url, host, port, timeout)
            return
        except TimeoutError:
            last = TimeoutError(f"no connection within {timeout:g}s")
        except OSError as error:
            last = error
        finally:
            sock.close()
    reason = last.strerror if isinstance(last, OSError) and last.strerror else str(last)
    raise SourceError(f"{where} ({reason}); check the URL and that the host is up")


def _await_greeting(sock: socket.socket, url: str, host: str, port: int, timeout: float) -> None:
    try:
        greeting = sock.recv(256)
    except TimeoutError:
        raise SourceError(
            f"{mask_url(url)}: {host}:{port} accepted the connection but sent no SSH greeting "
            f"within {timeout:g}s; is it an SSH server?"
        ) from None
    if not greeting:
        raise SourceError(f"{mask_url(url)}: {host}:{port} closed the connection without an SSH greeting")


def low_speed_env(timeout: float) -> dict[str, str]:
    """git over HTTP(S) gives up when less than 1 byte/s arrives for this long (a server that never answers)."""
    return {"GIT_HTTP_LOW_SPEED_LIMIT": "1", "GIT_HTTP_LOW_SPEED_TIME": str(max(1, math.ceil(2 * timeout)))}


def ssh_options(timeout: float) -> list[str]:
    """ssh options with the same bounds: connect (and greeting) timeout, keep-alives on a stalled session."""
    seconds = max(1, math.ceil(timeout))
    return ["-o", f"ConnectTimeout={seconds}", "-o", f"ServerAliveInterval={seconds}", "-o", "ServerAliveCountMax=2"]
