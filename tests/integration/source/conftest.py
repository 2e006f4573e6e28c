"""Real Git servers for the source tests: ``git http-backend`` behind a tiny HTTP server (CGI)."""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", **(env or {})}
    done = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class _CGIHandler(http.server.BaseHTTPRequestHandler):
    project_root: Path
    credentials: tuple[str, str] | None = None
    requests: list[str]

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _handle(self) -> None:
        self.requests.append(self.path)
        user = ""
        if self.credentials:
            expected = base64.b64encode(":".join(self.credentials).encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.end_headers()
                return
            user = self.credentials[0]
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(self.project_root), "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1", "GATEWAY_INTERFACE": "CGI/1.1",
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        done = subprocess.run([HTTP_BACKEND], input=body, env=env, capture_output=True, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
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

    do_GET = _handle
    do_POST = _handle


@dataclass
class GitServer:
    root: Path
    port: int
    requests: list[str]

    def url(self, name: str, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/{name}"

    def publish(self, work: Path, name: str) -> str:
        """Push a working repository (all branches and tags) into a bare repo served as ``name``."""
        bare = self.root / name
        if not bare.exists():
            subprocess.run(["git", "init", "--bare", "-q", "-b", "main", str(bare)], check=True)
        git(work, "push", "-q", "--force", "--mirror", str(bare))
        return self.url(name)


def _serve(root: Path, credentials: tuple[str, str] | None) -> Iterator[GitServer]:
    requests: list[str] = []
    handler = type("Handler", (_CGIHandler,), {"project_root": root, "credentials": credentials,
                                               "requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield GitServer(root, server.server_address[1], requests)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    root = tmp_path / "served"
    root.mkdir()
    yield from _serve(root, None)


@pytest.fixture
def private_git_server(tmp_path: Path) -> Iterator[GitServer]:
    root = tmp_path / "served-private"
    root.mkdir()
    yield from _serve(root, ("deploy", "s3cret-token"))


@pytest.fixture
def run_git():
    """``run_git(cwd, *args)`` runs git with a fixed identity and returns its output."""
    return git


@pytest.fixture
def work_repo(tmp_path: Path) -> Path:
    """A repository with history: v1.0.0, v1.2.0 (annotated), v2.0.0 tags, a 'develop' branch."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    app = work / "apps" / "web"
    app.mkdir(parents=True)
    for version in ("1.0.0", "1.2.0", "2.0.0"):
        (app / "cm.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: \"{version}\"\n")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"release {version}")
        if version == "1.2.0":
            git(work, "tag", "-a", f"v{version}", "-m", f"annotated {version}")
        else:
            git(work, "tag", f"v{version}")
    git(work, "checkout", "-q", "-b", "develop")
    (app / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: dev\n")
    git(work, "commit", "-q", "-am", "develop work")
    git(work, "checkout", "-q", "main")
    return work
