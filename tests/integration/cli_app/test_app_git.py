"""``tether app diff`` and ``rollback --revert`` against a real Git server (git http-backend)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_app_helpers import get_app, tether

from tether.apps.ops import REFRESH_ANNOTATION
from tether.sandbox.git_server import GitServer

IDENTITY = {
    "GIT_AUTHOR_NAME": "Dee",
    "GIT_AUTHOR_EMAIL": "dee@example.com",
    "GIT_COMMITTER_NAME": "Dee",
    "GIT_COMMITTER_EMAIL": "dee@example.com",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **IDENTITY}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "served") as running:
        yield running


def _commit(work: Path, level: str, token: str, message: str) -> str:
    app = work / "apps" / "web"
    app.mkdir(parents=True, exist_ok=True)
    (app / "cm.yaml").write_text(
        yaml.safe_dump(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"level": level}}
        )
    )
    (app / "secret.yaml").write_text(
        yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"token": token}}
        )
    )
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD")


@pytest.fixture
def repo(server: GitServer, tmp_path: Path) -> tuple[str, Path, list[str]]:
    server.create("deploy.git")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    commits = [_commit(work, "1", "s3cr3t-1", "level 1"), _commit(work, "2", "s3cr3t-2", "level 2")]
    (work / "README.md").write_text("docs only\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "docs")
    commits.append(git(work, "rev-parse", "HEAD"))
    git(work, "push", "-q", server.url("deploy.git"), "main")
    return server.url("deploy.git"), work, commits


def _create(kc: list[str], ns: str, url: str, *ref: str) -> None:
    done = tether(
        "app", "create", "web", "--url", url, "--path", "apps/web", "--dest-namespace", ns, *ref, "-n", ns, *kc
    )
    assert done.returncode == 0, done.stderr


def test_diff_between_revisions(kc, sandbox_namespace, repo, tmp_path) -> None:
    url, _work, (first, second, docs) = repo
    ns = sandbox_namespace
    _create(kc, ns, url, "--branch", "main")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    done = tether("app", "diff", "web", "--from", first[:8], "--to", second, "-n", ns, *kc, *cache)
    assert done.returncode == 1, done.stderr
    assert f"--- ConfigMap {ns}/settings @ {first[:12]}" in done.stdout
    assert f"+++ ConfigMap {ns}/settings @ {second[:12]}" in done.stdout
    assert "-  level: '1'" in done.stdout and "+  level: '2'" in done.stdout
    assert f"Secret {ns}/token" in done.stdout and "<masked sha256:" in done.stdout
    assert "s3cr3t" not in done.stdout
    same = tether("app", "diff", "web", "--from", second, "--to", "main", "-n", ns, *kc, *cache)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout == "" and "no differences" in same.stderr
    bad = tether("app", "diff", "web", "--from", "v9.9.9", "--to", "main", "-n", ns, *kc, *cache)
    assert bad.returncode == 2 and "v9.9.9" in bad.stderr and docs


def test_rollback_revert_pushes_one_revert_commit(kc, installed, sandbox_namespace, repo, tmp_path) -> None:
    url, work, (first, second, docs) = repo
    ns = sandbox_namespace
    _create(kc, ns, url, "--branch", "main")
    done = tether("app", "rollback", "web", first[:10], "--revert", "-n", ns, *kc, env=IDENTITY)
    assert done.returncode == 0, done.stderr
    assert "reverted 2 commit(s) on main" in done.stdout
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", url, str(check))
    assert git(check, "rev-parse", "HEAD~1") == docs
    assert "Revert main to " + first[:12] in git(check, "log", "-1", "--format=%s")
    assert git(check, "diff", "--stat", first, "HEAD") == ""  # the tree is the old revision's again
    app = get_app(installed.kubeconfig, "web", ns)
    assert app["metadata"]["annotations"][REFRESH_ANNOTATION]
    assert "pin" not in app["spec"]
    del work, second


def test_rollback_revert_refuses_non_branch_refs_and_merge_commits(kc, sandbox_namespace, repo, tmp_path) -> None:
    url, work, (first, _second, _docs) = repo
    ns = sandbox_namespace
    _create(kc, ns, url, "--tag", "v1")
    tag = tether("app", "rollback", "web", first, "--revert", "-n", ns, *kc, env=IDENTITY)
    assert tag.returncode == 2 and "not a branch" in tag.stderr

    # a merge commit after the revision cannot be reverted without choosing a parent: a clear error, no push
    git(work, "checkout", "-q", "-b", "side", first)
    (work / "side.txt").write_text("side\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "side work")
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    git(work, "push", "-q", url, "main")
    head = git(work, "rev-parse", "HEAD")
    assert tether("app", "delete", "web", "-n", ns, *kc).returncode == 0
    _create(kc, ns, url, "--branch", "main")
    merge = tether("app", "rollback", "web", first, "--revert", "-n", ns, *kc, env=IDENTITY)
    assert merge.returncode == 2
    assert f"cannot revert main of {url} to {first[:12]}" in merge.stderr and "nothing was pushed" in merge.stderr
    assert git(work, "ls-remote", url, "refs/heads/main").split()[0] == head
