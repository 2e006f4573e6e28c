"""A local Git server for the sandbox: Git's own ``git http-backend`` behind a small HTTP server.

It is the stand-in for a Git host in the demo and in end-to-end tests: clone, fetch and push
work with any Git client over smart HTTP. After a successful push, ``on_push(repository)`` is
called, which the demo uses to send a signed webhook to the controller (as a Git host would).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

HTTP_BACKEND_CANDIDATES = ("/usr/lib/git-core/git-http-backend", "/usr/libexec/git-core/git-http-backend")
MAX_BODY = 512 * 1024 * 1024


def http_backend() -> str:
    for candidate in HTTP_BACKEND_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=False).stdout.strip()
    path = Path(found) / "git-http-backend"
    if found and os.access(path, os.X_OK):
        return str(path)
    raise FileNotFoundError("git-http-backend not found: install git")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _authorized(self) -> str | None:
        """The user name, "" for anonymous, None when credentials are required and wrong."""
        credentials = self.server.credentials
        if credentials is None:
            return "anonymous"
        expected = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        if hmac.compare_digest(self.headers.get("Authorization", ""), expected):
            return credentials[0]
        return None

    def _handle(self) -> None:
        user = self._authorized()
        if user is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.requests.append(self.path)
        path, _, query = self.path.partition("?")
        if ".." in path.split("/"):
            self.send_error(400, "bad path")
            return
        body = self._body()
        if body is None:
            self.send_error(413, "too large")
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            # receive-pack (push) is enabled by http-backend only for an authenticated user
            "REMOTE_USER": user,
            "REMOTE_ADDR": "127.0.0.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        done = subprocess.run([self.server.backend], input=body, env=env, capture_output=True, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if self.command == "POST" and path.endswith("/git-receive-pack") and status == 200:
            repository = path.removesuffix("/git-receive-pack").strip("/")
            self.server.notify_push(repository)

    def _body(self) -> bytes | None:
        """The request body, None when larger than MAX_BODY. git sends a push larger than its
        ``http.postBuffer`` (1 MiB by default) with ``Transfer-Encoding: chunked``."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return None
            return self.rfile.read(length) if length else b""
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF closing the chunk

    do_GET = _handle
    do_POST = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        root: Path,
        credentials: tuple[str, str] | None,
        on_push: Callable[[str], None] | None,
    ) -> None:
        super().__init__(address, _Handler)
        self.root, self.credentials, self.on_push = root, credentials, on_push
        self.backend = http_backend()
        #: request paths served, in order (tests count fetches with it)
        self.requests: list[str] = []

    def notify_push(self, repository: str) -> None:
        if self.on_push is not None:
            # a failing hook must not break the push that already happened
            with contextlib.suppress(Exception):
                self.on_push(repository)


class GitServer:
    """Serve every bare repository under ``root`` at ``http://HOST:PORT/NAME``."""

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: tuple[str, str] | None = None,
        on_push: Callable[[str], None] | None = None,
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._server = _Server((host, port), root, credentials, on_push)
        self._thread = threading.Thread(target=self._server.serve_forever, name="git-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    def url(self, name: str, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/{name}"

    def set_on_push(self, on_push: Callable[[str], None] | None) -> None:
        self._server.on_push = on_push

    def create(self, name: str, *, branch: str = "main") -> Path:
        """An empty bare repository ``name`` that accepts pushes."""
        bare = self.root / name
        if not bare.exists():
            subprocess.run(["git", "init", "--bare", "-q", "-b", branch, str(bare)], check=True)
            subprocess.run(["git", "-C", str(bare), "config", "http.receivepack", "true"], check=True)
        return bare

    def publish(self, work: Path, name: str) -> str:
        """Push a working repository (all branches and tags) into the served repository ``name``."""
        bare = self.create(name)
        subprocess.run(
            ["git", "-C", str(work), "push", "-q", "--force", "--mirror", str(bare)], check=True, capture_output=True
        )
        return self.url(name)

    def start(self) -> GitServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def git_available() -> bool:
    return shutil.which("git") is not None
