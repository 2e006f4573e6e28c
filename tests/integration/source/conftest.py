"""Real Git servers for the source tests: ``git http-backend`` (tether.sandbox.git_server)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.sandbox.git_server import GitServer


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        **(env or {}),
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _serve(root: Path, credentials: tuple[str, str] | None) -> Iterator[GitServer]:
    with GitServer(root, credentials=credentials) as server:
        yield server


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
            f'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "{version}"\n'
        )
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
