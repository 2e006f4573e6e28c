"""When the controller renders an app again at the same commit: when its render options changed
(substitution variables), and for a Helm chart when the cluster's APIs changed; not otherwise."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from pathlib import Path

from tether.controller.api import parse_application
from tether.controller.stages import AppMemory, render_revision
from tether.delivery.source import SourceFetcher
from tether.render import RenderOptions
from tether.secrets import Decryptor

IDENTITY = ["-c", "user.name=T", "-c", "user.email=t@example.com"]
CHART = """apiVersion: v2
name: chart
version: 0.1.0
"""
MONITOR = """{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: web
spec: {}
{{- end }}
"""


def _repository(tmp_path: Path) -> str:
    work = tmp_path / "work"
    (work / "plain").mkdir(parents=True)
    (work / "plain/cm.yaml").write_text('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  v: "${V}"\n')
    (work / "chart/templates").mkdir(parents=True)
    (work / "chart/Chart.yaml").write_text(CHART)
    (work / "chart/templates/monitor.yaml").write_text(MONITOR)
    (work / "chart/templates/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(work), *IDENTITY, "commit", "-qm", "one"], check=True)
    return f"file://{work}"


def _app(url: str, path: str) -> object:
    return parse_application(
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "web", "namespace": "default", "generation": 1},
            "spec": {"source": {"url": url, "path": path, "ref": {"branch": "main"}}},
        }
    )


def test_render_again_only_when_what_the_render_reads_changed(tmp_path: Path) -> None:
    url = _repository(tmp_path)
    fetcher = SourceFetcher(tmp_path / "cache", min_interval=0)
    decryptor = Decryptor.from_key_material({})

    async def main() -> None:
        await fetcher.fetch(url)
        commit = (await fetcher.resolve(url, "branch:main")).commit
        plain, chart = AppMemory(commit=commit), AppMemory(commit=commit)
        base = RenderOptions(app="web", namespace="default", variables=(("V", "1"),), kube_version="1.32.0")
        monitoring = dataclasses.replace(base, api_versions=("monitoring.coreos.com/v1/ServiceMonitor",))

        async def render(memory: AppMemory, path: str, options: RenderOptions) -> bool:
            return await render_revision(fetcher, _app(url, path), memory, options, decryptor)

        assert await render(plain, "plain", base)
        assert not await render(plain, "plain", base)  # nothing changed
        assert not await render(plain, "plain", monitoring)  # a plain directory does not read the cluster's APIs
        assert await render(plain, "plain", dataclasses.replace(base, variables=(("V", "2"),)))
        assert plain.manifests is not None and plain.manifests[0].obj["data"]["v"] == "2"

        assert await render(chart, "chart", base)
        assert {m.obj["kind"] for m in chart.manifests or []} == {"ConfigMap"}
        assert not await render(chart, "chart", base)
        assert await render(chart, "chart", monitoring)  # a CRD installed since: the chart renders its monitor
        assert {m.obj["kind"] for m in chart.manifests or []} == {"ConfigMap", "ServiceMonitor"}

    asyncio.run(main())
