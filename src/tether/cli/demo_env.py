"""A complete local GitOps setup in one process: sandbox, Git server, example repository, controller.

Used by ``tether demo`` and by the end-to-end tests, so both exercise the same wiring: the
sandbox (a Kubernetes-compatible API server) and a ``git http-backend`` server run in threads,
the controller runs on the caller's event loop, and every push to the Git server is announced
to the controller by a signed webhook, as a Git host would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.sandbox.git_server import GitServer
from tether.sandbox.server import SandboxConfig, SandboxThread

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "demo"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Dana Developer",
    "GIT_AUTHOR_EMAIL": "dana@example.com",
    "GIT_COMMITTER_NAME": "Dana Developer",
    "GIT_COMMITTER_EMAIL": "dana@example.com",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class LocalEnvironment:
    """Start with ``start()``; ``work`` is a clone to edit and ``push()`` from."""

    directory: Path
    sim_delay: float = 0.5
    #: "rbac": the sandbox enforces RBAC and authenticates with ``admin_token`` (the kubeconfig carries it)
    authz: str = "AlwaysAllow"
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    sandbox: SandboxThread | None = None
    git_server: GitServer | None = None
    kubeconfig: Path = field(default_factory=Path)
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    controller_port: int = 0
    sandbox_url: str = ""
    repo_url: str = ""
    work: Path = field(default_factory=Path)

    def start(self, example: Path = EXAMPLE, repo: str = "apps.git") -> LocalEnvironment:
        from tether.sandbox.extras import ExtrasConfig

        self.directory.mkdir(parents=True, exist_ok=True)
        tokens = [self.admin_token] if self.authz.lower() == "rbac" else []
        self.sandbox = SandboxThread(
            SandboxConfig(
                port=0,
                data_dir=self.directory / "sandbox",
                tokens=tokens,
                extras=ExtrasConfig(sim_delay=self.sim_delay, authz=self.authz),
            )
        )
        server = self.sandbox.start()
        self.kubeconfig = server.write_kubeconfig(self.directory / "kubeconfig")
        self.sandbox_url = server.url
        self.controller_port = free_port()
        self.git_server = GitServer(self.directory / "git", on_push=self._announce).start()
        self.git_server.create(repo)
        self.repo_url = self.git_server.url(repo)
        self.work = self.directory / "work"
        if not (self.work / ".git").exists():
            self.work.mkdir(parents=True, exist_ok=True)
            git(self.work, "init", "-q", "-b", "main")
            shutil.copytree(example, self.work / "apps" / "demo", dirs_exist_ok=True)
            git(self.work, "add", "-A")
            git(self.work, "commit", "-q", "-m", "Add the demo app")
            git(self.work, "remote", "add", "origin", self.repo_url)
            git(self.work, "push", "-q", "origin", "main")
        return self

    def stop(self) -> None:
        if self.git_server is not None:
            self.git_server.stop()
        if self.sandbox is not None:
            self.sandbox.stop()

    # ------------------------------------------------------------ Git

    def commit(self, message: str, files: dict[str, str | None]) -> str:
        """Write (or delete, for None) files in the work clone, commit, push; returns the commit."""
        for name, content in files.items():
            path = self.work / name
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD")

    def _announce(self, repository: str) -> None:
        """The Git server's post-receive: a signed generic webhook to the controller."""
        body = json.dumps(
            {
                "url": self.git_server.url(repository) if self.git_server else "",
                "ref": "main",
                "commit": git(self.directory / "git" / repository, "rev-parse", "main"),
            }
        )
        signature = "sha256=" + hmac.new(self.webhook_secret.encode(), body.encode(), hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.controller_port}/hooks/generic",
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Tether-Signature": signature,
                "X-Tether-Delivery": secrets.token_hex(8),
            },
        )
        # no controller listening: it still polls Git at the app's interval
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=5).read()

    # ------------------------------------------------------------ the cluster

    def application(
        self,
        name: str = "demo",
        namespace: str = "default",
        *,
        path: str = "apps/demo",
        self_heal: bool = True,
        prune: bool = True,
        interval: str = "1m",
        **spec: Any,
    ) -> dict[str, Any]:
        return {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "source": {"url": self.repo_url, "ref": {"branch": "main"}, "path": path},
                "destination": {"namespace": "demo"},
                "interval": interval,
                "syncPolicy": {"automated": True, "prune": prune, "selfHeal": self_heal},
                **spec,
            },
        }


async def wait_until(what: str, check: Any, timeout: float = 30.0, interval: float = 0.05) -> float:
    """Poll the async ``check()`` until truthy; returns the seconds it took. Raises TimeoutError."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)
