"""``tether preview`` on a repository with a plain app, two Kustomize overlays sharing a base and a
Helm chart, against a sandbox holding the base revision: a change to the shared base previews
exactly the two overlays, with the right diffs, Secret values masked, and nothing written."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tether.cli.preview import _render, exit_code, run_preview
from tether.cli.preview_output import MARKER, to_markdown
from tether.engine import AppIdentity, ApplyOptions, apply_plan, make_plan
from tether.kube import Kube
from tether.sandbox.git_server import GitServer

IDENTITY = {
    "GIT_AUTHOR_NAME": "Dee",
    "GIT_AUTHOR_EMAIL": "dee@example.com",
    "GIT_COMMITTER_NAME": "Dee",
    "GIT_COMMITTER_EMAIL": "dee@example.com",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **IDENTITY}, capture_output=True, text=True, check=True
    ).stdout.strip()


def write(root: Path, name: str, content: object) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else yaml.safe_dump_all(content))


def configmap(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def base_tree(work: Path) -> None:
    write(work, "apps/plain/cm.yaml", [configmap("plain", level="1")])
    write(work, "base/kustomization.yaml", [{"resources": ["settings.yaml", "secret.yaml"]}])
    write(work, "base/settings.yaml", [configmap("settings", level="1")])
    write(
        work,
        "base/secret.yaml",
        [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"token": "base-s3cr3t"}}],
    )
    for overlay in ("staging", "prod"):
        write(
            work, f"overlays/{overlay}/kustomization.yaml", [{"resources": ["../../base"], "namePrefix": f"{overlay}-"}]
        )
    write(work, "charts/web/Chart.yaml", [{"apiVersion": "v2", "name": "web", "version": "0.1.0"}])
    write(work, "charts/web/values.yaml", [{"replicas": 1}])
    write(
        work,
        "charts/web/templates/cm.yaml",
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  replicas: "{{ .Values.replicas }}"\n',
    )


def application(name: str, namespace: str, url: str, path: str) -> dict:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": {"url": url, "path": path},
            "destination": {"namespace": namespace},
            "syncPolicy": {"automated": True, "prune": True},
        },
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with GitServer(tmp_path_factory.mktemp("served")) as running:
        yield running


@pytest.fixture(scope="module")
def setup(server: GitServer, sandbox, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The repository (main = base, branch change = head), the apps file, the sandbox at base."""
    namespace = sandbox.create_namespace("preview-shop")
    server.create("deploy.git")
    url = server.url("deploy.git")
    work = tmp_path_factory.mktemp("work")
    git(work, "init", "-q", "-b", "main")
    base_tree(work)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base")
    git(work, "push", "-q", url, "main")
    base = git(work, "rev-parse", "HEAD")
    apps = [
        application("plain", namespace, url, "apps/plain"),
        application("staging", namespace, url, "overlays/staging"),
        application("prod", namespace, url, "overlays/prod"),
        application("web", namespace, url, "charts/web"),
    ]

    async def deploy_base() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            for app in apps:
                manifests = _render(app, work, {}, {})
                plan = await make_plan(
                    kube, manifests, AppIdentity(namespace, app["metadata"]["name"]), default_namespace=namespace
                )
                await apply_plan(kube, plan, ApplyOptions(prune=True))

    asyncio.run(deploy_base())
    git(work, "checkout", "-q", "-b", "change")
    write(work, "base/settings.yaml", [configmap("settings", level="2")])
    write(
        work,
        "base/secret.yaml",
        [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"token": "head-s3cr3t"}}],
    )
    git(work, "commit", "-q", "-am", "raise the shared level")
    git(work, "push", "-q", url, "change")
    head = git(work, "rev-parse", "HEAD")
    apps_file = work.parent / "apps.yaml"
    apps_file.write_text(yaml.safe_dump_all(apps))
    return {"url": url, "base": base, "head": head, "namespace": namespace, "apps_file": apps_file, "work": work}


async def _cluster_version(sandbox) -> str:  # type: ignore[no-untyped-def]
    async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
        _items, version = await kube.list_with_version(await kube.info("v1", "Namespace"))
        return version


def test_a_change_to_the_shared_base_previews_exactly_the_two_overlays(sandbox, setup) -> None:
    before = asyncio.run(_cluster_version(sandbox))
    result = asyncio.run(
        run_preview(
            base="main",
            head="change",
            repo=setup["url"],
            kubeconfig=str(sandbox.kubeconfig),
            apps_file=str(setup["apps_file"]),
        )
    )
    assert result.changed_files == ["base/secret.yaml", "base/settings.yaml"]
    assert [(a.namespace, a.name) for a in result.apps] == [
        (setup["namespace"], "prod"),
        (setup["namespace"], "staging"),
    ]
    for app in result.apps:
        assert not app.error and not app.invalid and app.findings == []
        assert sorted((c.action, c.object) for c in app.changes) == [
            ("update", f"ConfigMap/{setup['namespace']}/{app.name}-settings"),
            ("update", f"Secret/{setup['namespace']}/{app.name}-token"),
        ]
        settings = next(c for c in app.changes if c.object.endswith("settings"))
        assert "-  level: '1'" in settings.diff and "+  level: '2'" in settings.diff
        secret = next(c for c in app.changes if c.object.endswith("token"))
        assert "s3cr3t" not in secret.diff and secret.diff
        assert app.prune == []
    assert exit_code(result) == 1
    assert result.writes() == 0 and result.requests.get(("PATCH", True), 0) > 0  # dry-runs only
    markdown = to_markdown(result)
    assert markdown.startswith(MARKER)
    assert markdown.count("<details>") == 2 and "s3cr3t" not in markdown
    assert "**2 app(s) affected, 2 with changes**: 0 to create, 4 to update, 0 to delete" in markdown
    assert asyncio.run(_cluster_version(sandbox)) == before  # the sandbox stored nothing


def test_the_command_from_a_local_clone_against_the_cluster(sandbox, setup) -> None:
    from tether.controller.api import APPLICATION_INFO, install_crd

    async def create_apps() -> None:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            await install_crd(kube)
            for app in yaml.safe_load_all(setup["apps_file"].read_text()):
                await kube.apply(APPLICATION_INFO, app, field_manager="test")

    asyncio.run(create_apps())
    git(setup["work"], "remote", "add", "origin", setup["url"])
    before = asyncio.run(_cluster_version(sandbox))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "preview",
            "--base",
            setup["base"],
            "--head",
            "HEAD",
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "--format",
            "json",
            "-n",
            setup["namespace"],
        ],
        cwd=setup["work"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert [a["name"] for a in report["apps"]] == ["prod", "staging"]
    assert report["writes"] == 0 and all(a["counts"]["update"] == 2 for a in report["apps"])
    assert asyncio.run(_cluster_version(sandbox)) == before

    # no change for any app (README only): exit 0; a head that does not render: exit 3
    write(setup["work"], "README.md", "docs\n")
    git(setup["work"], "add", "-A")
    git(setup["work"], "commit", "-q", "-m", "docs")
    common = ["--kubeconfig", str(sandbox.kubeconfig), "-n", setup["namespace"]]
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", "preview", "--base", "HEAD~1", "--head", "HEAD", *common],
        cwd=setup["work"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "No Application's inputs are touched by this change." in done.stdout
    write(setup["work"], "charts/web/templates/cm.yaml", "data: {{ .Values.missing.field }}\n")
    git(setup["work"], "commit", "-q", "-am", "break the chart")
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", "preview", "--base", "HEAD~1", "--head", "HEAD", *common],
        cwd=setup["work"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"<b>{setup['namespace']}/web</b> (charts/web): invalid" in done.stdout


POLICIES = {
    "policies": [
        {
            "name": "level-below-2",
            "message": "level 2 needs a change window",
            "match": {"kinds": ["ConfigMap"]},
            "expression": "!has(object.data.level) || object.data.level != '2'",
        },
        {
            "name": "secrets-labelled",
            "severity": "warning",
            "message": "label Secrets with an owner",
            "match": {"kinds": ["Secret"]},
            "expression": "has(object.metadata.labels) && 'owner' in object.metadata.labels",
        },
    ]
}


def test_policy_violations_are_reported_per_app_and_make_the_preview_invalid(sandbox, setup, tmp_path) -> None:
    from tether.validate.policy import load_policies

    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(yaml.safe_dump(POLICIES))
    result = asyncio.run(
        run_preview(
            base="main",
            head="change",
            repo=setup["url"],
            kubeconfig=str(sandbox.kubeconfig),
            apps_file=str(setup["apps_file"]),
            policies=load_policies(policy_file),
        )
    )
    ns = setup["namespace"]
    for app in result.apps:
        assert app.invalid and not app.error
        assert sorted((v.policy, v.severity, v.object) for v in app.violations) == [
            ("level-below-2", "error", f"ConfigMap {ns}/{app.name}-settings"),
            ("secrets-labelled", "warning", f"Secret {ns}/{app.name}-token"),
        ]
        assert next(v for v in app.violations if v.severity == "error").message == "level 2 needs a change window"
    assert exit_code(result) == 3
    markdown = to_markdown(result)
    assert "4 policy violation(s)" in markdown and markdown.count("Policy violations:") == 2
    assert f"- error: `ConfigMap {ns}/prod-settings`: level 2 needs a change window" in markdown

    # warnings alone: reported, not invalid; from the command line, two files, without a cluster
    warnings = tmp_path / "warnings.yaml"
    warnings.write_text(yaml.safe_dump({"policies": POLICIES["policies"][1:]}))
    empty = tmp_path / "empty.yaml"
    empty.write_text("policies: []\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "preview",
            "--base",
            "main",
            "--head",
            "change",
            "--repo",
            setup["url"],
            "--apps",
            str(setup["apps_file"]),
            "--no-cluster",
            "--format",
            "json",
            "--policy",
            str(warnings),
            "--policy",
            str(empty),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    apps = json.loads(done.stdout)["apps"]
    assert [(a["name"], a["invalid"], [v["policy"] for v in a["violations"]]) for a in apps] == [
        ("prod", False, ["secrets-labelled"]),
        ("staging", False, ["secrets-labelled"]),
    ]

    broken = tmp_path / "broken.yaml"
    broken.write_text("policies:\n  - name: x\n    expression: 'object.('\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "preview",
            "--base",
            "main",
            "--head",
            "change",
            "--repo",
            setup["url"],
            "--apps",
            str(setup["apps_file"]),
            "--no-cluster",
            "--policy",
            str(broken),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "invalid CEL expression" in done.stderr
