"""Helm's .Capabilities: --kube-version / --api-versions, else the target cluster's discovery, else 1.32."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli.app import app as cli_app
from tether.cli.push import Common
from tether.delivery.capabilities import CapabilitiesCache, cluster_capabilities
from tether.errors import UsageError
from tether.kube import Kube
from tether.render import RenderOptions, render_source

TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: caps
data:
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
  monitoring: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" | quote }}
  serviceMonitor: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" | quote }}
  deploymentKind: {{ .Capabilities.APIVersions.Has "apps/v1/Deployment" | quote }}
"""


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: caps\nversion: 0.1.0\n")
    (tmp_path / "templates" / "caps.yaml").write_text(TEMPLATE)
    return tmp_path


def caps(chart: Path, options: RenderOptions) -> dict[str, str]:
    return render_source(chart, options).manifests[0].obj["data"]


def test_default_is_the_version_tether_validates_against(chart: Path) -> None:
    # Helm's own default would be its build's version (v1.36.0 in this library)
    assert caps(chart, RenderOptions()) == {
        "kubeVersion": "v1.32.0",
        "monitoring": "false",
        "serviceMonitor": "false",
        "deploymentKind": "false",
    }


def test_options_reach_the_chart(chart: Path) -> None:
    options = RenderOptions(kube_version="1.29.3", api_versions=("monitoring.coreos.com/v1/ServiceMonitor",))
    data = caps(chart, options)
    assert data["kubeVersion"] == "v1.29.3" and data["serviceMonitor"] == "true" and data["monitoring"] == "false"
    assert caps(chart, RenderOptions(api_versions=("monitoring.coreos.com/v1",)))["monitoring"] == "true"


def test_render_flags(chart: Path) -> None:
    result = CliRunner().invoke(
        cli_app,
        ["render", str(chart), "-o", "json", "--kube-version", "v1.30", "--api-versions", "monitoring.coreos.com/v1"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    data = (data[0] if isinstance(data, list) else data.get("items", [data])[0])["data"]
    assert data["kubeVersion"] == "v1.30.0" and data["monitoring"] == "true"
    bad = CliRunner().invoke(cli_app, ["render", str(chart), "--api-versions", "not a version"])
    assert isinstance(bad.exception, UsageError) and "--api-versions 'not a version'" in str(bad.exception)


def test_cluster_discovery(sandbox: Any) -> None:
    async def go() -> tuple[str, tuple[str, ...]]:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            return await cluster_capabilities(kube)

    version, api_versions = asyncio.run(go())
    assert version.startswith("1.32.")
    assert {"v1", "v1/ConfigMap", "apps/v1", "apps/v1/Deployment", "batch/v1/Job"} <= set(api_versions)
    assert not any(item.endswith("/status") for item in api_versions)


def test_cache_asks_once_per_ttl() -> None:
    calls: list[str] = []

    class Counting:
        async def get_raw(self, path: str) -> Any:
            calls.append(path)
            return {"/version": {"gitVersion": "v1.31.2"}, "/api": {"versions": ["v1"]}}.get(path, {})

    now = [0.0]
    cache = CapabilitiesCache(ttl=60, clock=lambda: now[0])

    async def twice() -> RenderOptions:
        await cache.options_for(Counting(), RenderOptions())
        return await cache.options_for(Counting(), RenderOptions(kube_version="1.30", kube_version_given=True))

    given = asyncio.run(twice())
    assert calls.count("/version") == 1 and given.kube_version == "1.30" and given.api_versions == ("v1",)
    now[0] = 61
    assert asyncio.run(cache.options_for(Counting(), RenderOptions())).kube_version == "1.31.2"
    assert calls.count("/version") == 2


def _common(sandbox: Any, render: RenderOptions) -> Common:
    return Common(
        render=render,
        kubeconfig=str(sandbox.kubeconfig),
        context=None,
        output="text",
        inventory_namespace="tether-system",
        ignore_rules=None,
        force=True,
        kube_version="1.32",
        validate=True,
    )


def test_push_mode_asks_the_cluster_only_for_a_chart(
    sandbox: Any, sandbox_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tether.delivery.capabilities as capabilities

    asked: list[str] = []

    async def counted(kube: Any) -> tuple[str, tuple[str, ...]]:
        asked.append("discovery")
        return "1.32.0", ()

    monkeypatch.setattr(capabilities, "cluster_capabilities", counted)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n")

    async def go() -> None:
        kube, _plan = await _common(sandbox, RenderOptions(app="plain", namespace=sandbox_namespace)).plan(
            str(plain), exact=False
        )
        await kube.close()

    asyncio.run(go())
    assert asked == []  # a plain directory renders without the cluster's discovery


def test_push_mode_renders_for_the_target_cluster(sandbox: Any, sandbox_namespace: str, chart: Path) -> None:
    def plan_for(render: RenderOptions) -> dict[str, str]:
        common = _common(sandbox, render)

        async def go() -> dict[str, str]:
            kube, plan = await common.plan(str(chart), exact=False)
            await kube.close()
            return next(c.desired for c in plan.changes if c.ref.name == "caps")["data"]

        return asyncio.run(go())

    data = plan_for(RenderOptions(app="caps", namespace=sandbox_namespace))
    assert data["deploymentKind"] == "true"  # only discovery lists kinds
    assert data["kubeVersion"].startswith("v1.32.")
    given = RenderOptions(app="caps", namespace=sandbox_namespace, kube_version="1.28", kube_version_given=True)
    assert plan_for(given)["kubeVersion"] == "v1.28.0"


def test_controller_renders_for_its_cluster_and_asks_once(sandbox: Any) -> None:
    from tether.controller.api import parse_application
    from tether.controller.reconciler import Reconciler

    app = parse_application(
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "caps", "namespace": "default", "generation": 1},
            "spec": {"source": {"url": "https://git.example/repo.git", "path": "."}},
        }
    )

    async def go() -> tuple[RenderOptions, RenderOptions, int]:
        async with await Kube.connect(kubeconfig=str(sandbox.kubeconfig)) as kube:
            reconciler = Reconciler(
                kube=kube, apps=None, cache=None, informers=None, fetcher=None, status=None, events=None, metrics=None
            )
            first = await reconciler._render_options(kube, app)
            asked = kube.responses.copy()
            second = await reconciler._render_options(kube, app)
            return first, second, sum(kube.responses.values()) - sum(asked.values())

    first, second, requests = asyncio.run(go())
    assert first.kube_version.startswith("1.32.") and "apps/v1/Deployment" in first.api_versions
    assert second == first and requests == 0  # the discovery answer is kept
