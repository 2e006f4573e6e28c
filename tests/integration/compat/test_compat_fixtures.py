"""Repositories in the style of Argo CD, Helm, Kustomize and Flux examples: render, validate, apply as
their authors intended, and a second apply writes nothing."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tether.engine import AppIdentity, ApplyOptions, apply_plan, make_plan
from tether.kube import Kube
from tether.render import RenderOptions, render_source
from tether.validate import validate_source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "compat"
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)$")
_VERB = re.compile(r'verb="([^"]*)"')
WRITES = {"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE", "DELETECOLLECTION"}


def writes(url: str) -> int:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            verb = _VERB.search(match.group(1))
            counts[verb.group(1).upper() if verb else ""] += int(float(match.group(2)))
    return sum(n for verb, n in counts.items() if verb in WRITES)


def sync(kubeconfig: Path, path: Path, options: RenderOptions, app: str, **apply: Any) -> tuple[Any, Any]:
    manifests = render_source(path, options).manifests

    async def go() -> tuple[Any, Any]:
        async with await Kube.connect(kubeconfig=str(kubeconfig)) as kube:
            plan = await make_plan(
                kube, manifests, AppIdentity("tether-system", app), default_namespace=options.namespace or None
            )
            return plan, await apply_plan(kube, plan, ApplyOptions(health_interval=0.1, timeout=30, **apply))

    return asyncio.run(go())


def live(kubeconfig: Path, api_version: str, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        async with await Kube.connect(kubeconfig=str(kubeconfig)) as kube:
            return await kube.list(await kube.info(api_version, kind), namespace)

    return {o["metadata"]["name"]: o for o in asyncio.run(go())}


def test_argo_sync_waves_app(quick_sandbox: Any, quick_namespace: str) -> None:
    ns, kubeconfig = quick_namespace, quick_sandbox.kubeconfig
    options = RenderOptions(app="guestbook", namespace=ns)
    assert validate_source(FIXTURES / "argo-sync-waves", options).valid
    plan, result = sync(kubeconfig, FIXTURES / "argo-sync-waves", options, "guestbook")
    assert sorted(str(h.phase) for h in plan.hooks) == ["PostSync", "PreSync"]
    config = live(kubeconfig, "v1", "ConfigMap", ns)["backend-config"]
    backend = live(kubeconfig, "apps/v1", "Deployment", ns)["backend"]
    frontend = live(kubeconfig, "v1", "Service", ns)["frontend"]
    # each wave started only after the one before was healthy
    assert config["metadata"]["creationTimestamp"] <= backend["metadata"]["creationTimestamp"]
    assert frontend["metadata"]["creationTimestamp"] >= backend["metadata"]["creationTimestamp"]
    jobs = live(kubeconfig, "batch/v1", "Job", ns)
    assert set(jobs) == {"smoke-test"}  # the PreSync migration was deleted once it succeeded
    assert {ref.name for ref in plan.desired_refs} == {"backend-config", "backend", "frontend"}
    assert {ref.name for ref in plan.inventory.entries} <= {"backend-config", "backend", "frontend"}

    before = writes(quick_sandbox.url)
    plan, result = sync(kubeconfig, FIXTURES / "argo-sync-waves", options, "guestbook")
    assert not plan.has_changes() and not result.outcomes
    assert writes(quick_sandbox.url) == before


def test_helm_chart_with_hooks_and_a_vendored_dependency(quick_sandbox: Any, quick_namespace: str) -> None:
    ns, kubeconfig = quick_namespace, quick_sandbox.kubeconfig
    options = RenderOptions(app="shop", namespace=ns, release_name="shop")
    rendered = render_source(FIXTURES / "helm-hooks", options).manifests
    deployment = next(m.obj for m in rendered if m.obj["kind"] == "Deployment")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"  # the chart's own label
    assert validate_source(FIXTURES / "helm-hooks", options).valid
    plan, _result = sync(kubeconfig, FIXTURES / "helm-hooks", options, "shop")
    assert [h.label() for h in plan.hooks] == [f"Job/{ns}/shop-init-db"]  # an install: pre-install only
    assert any("test hook" in why for _what, why in plan.not_run)
    assert "shop-test-connection" not in live(kubeconfig, "v1", "Pod", ns)  # test hooks are never deployed
    assert set(live(kubeconfig, "v1", "ConfigMap", ns)) >= {"shop-common"}  # from the dependency
    assert live(kubeconfig, "batch/v1", "Job", ns) == {}  # hook-succeeded

    before = writes(quick_sandbox.url)
    plan, result = sync(kubeconfig, FIXTURES / "helm-hooks", options, "shop")
    assert not result.outcomes and writes(quick_sandbox.url) == before

    upgrade = RenderOptions(app="shop", namespace=ns, release_name="shop", set_values=("image.tag=1.9.0",))
    plan, result = sync(kubeconfig, FIXTURES / "helm-hooks", upgrade, "shop")
    assert [h.label() for h in plan.hooks] == [f"Job/{ns}/shop-migrate"]  # an upgrade: post-upgrade only
    assert live(kubeconfig, "batch/v1", "Job", ns) == {}


def test_helm_chart_with_a_dependency_from_a_local_chart_repository(
    quick_sandbox: Any, quick_namespace: str, tmp_path: Path
) -> None:
    """The same chart with its dependency served by a chart repository on loopback instead of vendored."""
    import functools
    import http.server
    import shutil
    import threading

    import helm_python
    import yaml

    served = tmp_path / "served"
    served.mkdir()
    helm_python.package(FIXTURES / "helm-hooks" / "charts" / "common", destination=served)
    helm_python.repo_index_generate(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    chart = tmp_path / "shop"
    shutil.copytree(FIXTURES / "helm-hooks", chart, ignore=shutil.ignore_patterns("charts"))
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["dependencies"][0].update(version="~0.1.0", repository=f"http://127.0.0.1:{server.server_address[1]}/")
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    ns, kubeconfig = quick_namespace, quick_sandbox.kubeconfig
    options = RenderOptions(app="shop-repo", namespace=ns, release_name="shop", cache_dir=str(tmp_path / "cache"))
    try:
        assert validate_source(chart, options).valid
        plan, _result = sync(kubeconfig, chart, options, "shop-repo")  # its own inventory: an install
    finally:
        server.shutdown()
        server.server_close()
    assert [h.label() for h in plan.hooks] == [f"Job/{ns}/shop-init-db"]
    assert set(live(kubeconfig, "v1", "ConfigMap", ns)) >= {"shop-common"}  # from the fetched dependency
    assert not (chart / "charts").exists() and not (chart / "Chart.lock").exists()


def test_kustomize_overlay_with_a_shell_script(quick_sandbox: Any, quick_namespace: str) -> None:
    ns, kubeconfig = quick_namespace, quick_sandbox.kubeconfig
    path = FIXTURES / "kustomize-scripts/overlays/prod"
    options = RenderOptions(app="backup", namespace=ns)
    [script] = [m.obj for m in render_source(path, options).manifests if m.obj["kind"] == "ConfigMap"]
    assert 'echo "backing up to ${TARGET}/${STAMP}"' in script["data"]["backup.sh"]  # not substituted
    assert validate_source(path, options).valid
    sync(kubeconfig, path, options, "backup")
    [stored] = [
        o for name, o in live(kubeconfig, "v1", "ConfigMap", ns).items() if name.startswith("prod-backup-script")
    ]
    assert stored["data"]["backup.sh"] == script["data"]["backup.sh"]
    assert "prod-backup" in live(kubeconfig, "batch/v1", "CronJob", ns)
    before = writes(quick_sandbox.url)
    _plan, result = sync(kubeconfig, path, options, "backup")
    assert not result.outcomes and writes(quick_sandbox.url) == before


def test_flux_cluster_layout(quick_sandbox: Any) -> None:
    kubeconfig = quick_sandbox.kubeconfig
    path = FIXTURES / "flux-clusters/clusters/production"
    options = RenderOptions(app="production")
    kinds = sorted(
        (m.obj["kind"], m.obj["metadata"].get("namespace", "")) for m in render_source(path, options).manifests
    )
    assert kinds == [("Deployment", "podinfo-prod"), ("Namespace", ""), ("Service", "podinfo-prod")]
    assert validate_source(path, options).valid
    sync(kubeconfig, path, options, "production")
    assert set(live(kubeconfig, "apps/v1", "Deployment", "podinfo-prod")) == {"podinfo"}
    before = writes(quick_sandbox.url)
    _plan, result = sync(kubeconfig, path, options, "production")
    assert not result.outcomes and writes(quick_sandbox.url) == before


def _tether(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3] / "src"))
    return subprocess.run(
        [str(Path(sys.executable).parent / "tether"), *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("how", ["cluster", "directory", "ignore"])
def test_validate_custom_resources_with_their_crds(quick_sandbox: Any, how: str) -> None:
    widgets = str(FIXTURES / "widgets")
    if how == "cluster":
        crd = str(FIXTURES / "crds/widgets.yaml")
        done = subprocess.run(
            ["kubectl", "--kubeconfig", str(quick_sandbox.kubeconfig), "apply", "--server-side", "-f", crd],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        missing = _tether("validate", widgets)  # no CRD in the set, none given
        assert missing.returncode == 1 and "unknown kind example.com/v1 Widget" in missing.stdout
        result = _tether("validate", widgets, "--kubeconfig", str(quick_sandbox.kubeconfig))
    elif how == "directory":
        result = _tether("validate", widgets, "--schema-location", str(FIXTURES / "crds"))
    else:
        result = _tether("validate", widgets, "--ignore-missing-schemas")
        assert "unknown kind example.com/v1 Widget" in result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_location_still_checks_the_schema(tmp_path: Path) -> None:
    (tmp_path / "widget.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 0\n"
    )
    result = _tether("validate", str(tmp_path), "--schema-location", str(FIXTURES / "crds"))
    assert result.returncode == 1 and "size" in result.stdout
