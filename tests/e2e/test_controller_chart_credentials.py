"""The controller fetches a chart dependency from a password-protected repository with the Secret an
Application names in spec.render.helm.repositories, and says clearly when that Secret is missing."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import helm_python
import pytest
import yaml
from cluster import Cluster, condition, eventually
from typer.testing import CliRunner

from conftest import ControllerThread
from tether.cli.app import app as cli_app
from tether.cli.demo_env import LocalEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "render"))
from test_helm_chart_credentials import PASSWORD, USERNAME, RecordingRepository
from test_helm_dependencies import make_chart


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingRepository]:
    root, build = tmp_path_factory.mktemp("served"), tmp_path_factory.mktemp("build")
    (root / "charts").mkdir()
    helm_python.package(make_chart(build, "cache", "1.2.5"), destination=root / "charts")
    helm_python.repo_index_generate(root / "charts")
    repository = RecordingRepository(root, password=PASSWORD)
    yield repository
    repository.stop()


def shop_chart(repository: str) -> dict[str, str]:
    meta = {
        "apiVersion": "v2",
        "name": "shop",
        "version": "0.1.0",
        "dependencies": [{"name": "cache", "version": "~1.2.0", "repository": repository}],
    }
    return {
        "shop/Chart.yaml": yaml.safe_dump(meta),
        "shop/values.yaml": "cache:\n  greeting: hello from the parent\n",
        "shop/templates/own.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-own\n",
    }


def test_app_renders_with_its_secret_and_fails_clearly_without_it(
    env: LocalEnvironment,
    controller: ControllerThread,
    private: RecordingRepository,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cluster = Cluster(env.kubeconfig)
    env.commit("Add a chart with a private dependency", shop_chart(private.url))
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "charts-login", "namespace": "default"},
            "stringData": {"username": USERNAME, "password": PASSWORD},
        }
    )

    def app(name: str, secret: str) -> dict:
        spec = env.application(name, path="shop")
        spec["spec"]["destination"] = {"namespace": name, "createNamespace": True}
        repositories = [{"url": private.url, "secretRef": {"name": secret}}]
        spec["spec"]["render"] = {"helm": {"releaseName": "shop", "repositories": repositories}}
        return spec

    cluster.apply(app("shop-private", "charts-login"))
    cluster.apply(app("shop-nosecret", "no-such-secret"))
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "charts-user-only", "namespace": "default"},
            "stringData": {"username": USERNAME},
        }
    )
    cluster.apply(app("shop-nopassword", "charts-user-only"))

    configmap = eventually(lambda: cluster.get("v1", "ConfigMap", "shop-cache", "shop-private"), "the subchart applied")
    assert configmap["data"]["greeting"] == "hello from the parent"
    assert "/charts/cache-1.2.5.tgz" in private.authorized()

    def failure(name: str) -> str:
        ready = condition(cluster.app(name), "Ready")
        return (ready.get("status") == "False" and ready.get("message")) or ""

    message = eventually(lambda: failure("shop-nosecret"), "the app without its Secret to fail")
    assert "spec.render.helm.repositories[0].secretRef names Secret default/no-such-secret" in message
    message = eventually(lambda: failure("shop-nopassword"), "the app whose Secret has no password to fail")
    assert "Secret default/charts-user-only, which has no password key" in message
    assert cluster.get("v1", "ConfigMap", "shop-cache", "shop-nosecret") is None

    events = " ".join(e.get("message") or "" for e in cluster.events("default", "shop-private"))
    statuses = "".join(str(cluster.app(name)) for name in ("shop-private", "shop-nosecret", "shop-nopassword"))
    assert PASSWORD not in caplog.text and PASSWORD not in events and PASSWORD not in statuses
    assert controller.error is None

    # tether app diff renders the app as the controller does: with the Secret its spec names
    before = len(private.authorized())
    diffed = CliRunner().invoke(
        cli_app, ["app", "diff", "shop-private", "-n", "default", "--kubeconfig", str(env.kubeconfig)]
    )
    assert diffed.exit_code == 0, diffed.output  # 0: the live objects match the render
    assert len(private.authorized()) > before and PASSWORD not in diffed.output
