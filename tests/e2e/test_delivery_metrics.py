"""Delivery metrics end to end: ``tether controller`` (its own process) deploys a commit, fails on a
broken one, recovers on the fix; its /metrics counts that, and ``tether app stats`` prints it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import Cluster, condition, eventually, ready_at
from prometheus_client.parser import text_string_to_metric_families

from tether.cli.demo_env import LocalEnvironment

REPO = Path(__file__).resolve().parents[2]


def tether(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.fixture(scope="module")
def controller_process(env: LocalEnvironment) -> Iterator[str]:
    """``tether controller`` serving on the port the Git server announces pushes to; yields its URL."""
    log = (env.directory / "controller.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "controller",
            "--kubeconfig",
            str(env.kubeconfig),
            "-n",
            "default",
            "--listen",
            f"127.0.0.1:{env.controller_port}",
            "--webhook-secret",
            "tether-system/tether-webhooks",
            "--cache-dir",
            str(env.directory / "controller-cache"),
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{env.controller_port}"
    try:
        eventually(lambda: _get(url + "/readyz") is not None or process.poll() is not None, "the controller ready")
        assert process.poll() is None, (env.directory / "controller.log").read_text()
        yield url
    finally:
        process.terminate()
        process.wait(60)
        log.close()


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def series(url: str, metric: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(_get(url + "/metrics") or ""):
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def test_deploy_fail_recover_is_counted_and_printed(env: LocalEnvironment, controller_process: str) -> None:
    url, cluster = controller_process, Cluster(env.kubeconfig)
    app = {"namespace": "default", "name": "demo"}
    cluster.apply(env.application("demo"))
    first = env.head()
    eventually(lambda: ready_at(cluster.app("demo"), first), "demo Ready at the first commit", 60)
    # the first deployment, with a rollout to wait for, is counted once
    eventually(
        lambda: series(url, "tether_deployments_total", result="succeeded", **app) == 1,
        "one successful deployment on /metrics",
    )
    assert series(url, "tether_deployment_lead_time_seconds_count", **app) == 1

    manifest = (env.work / "apps/demo/app.yaml").read_text()
    env.commit("Break the demo", {"apps/demo/app.yaml": manifest + "\n---\nkind: [unclosed\n"})
    eventually(lambda: condition(cluster.app("demo"), "Ready").get("status") == "False", "demo failing", 60)
    eventually(
        lambda: series(url, "tether_deployments_total", result="failed", **app) == 1,
        "one failed deployment on /metrics",
    )
    fixed = env.commit("Fix the demo", {"apps/demo/app.yaml": manifest + "\n# fixed\n"})
    eventually(lambda: ready_at(cluster.app("demo"), fixed), "demo Ready at the fix", 60)
    eventually(lambda: series(url, "tether_time_to_restore_seconds_count", **app) == 1, "one restore on /metrics")
    assert series(url, "tether_deployments_total", result="succeeded", **app) == 2

    done = tether(
        "app", "stats", "demo", "-n", "default", "--kubeconfig", str(env.kubeconfig), "--controller", url, "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert (figures["succeeded"], figures["failed"], figures["deployments"]) == (2, 1, 3)
    assert figures["change_failure_rate"] == pytest.approx(1 / 3)
    assert figures["lead_time"]["count"] == 2 and figures["time_to_restore"]["count"] == 1
    assert figures["source"] == url and figures["ready"].startswith("True")

    text = tether("app", "stats", "demo", "--kubeconfig", str(env.kubeconfig), "--controller", url)
    assert text.returncode == 0, text.stderr
    assert "deployments          3 (2 succeeded, 1 failed)" in text.stdout
    assert "change failure rate  33% (1 of 3)" in text.stdout
    assert "(1 restores)" in text.stdout

    unreachable = tether(
        "app", "stats", "demo", "--kubeconfig", str(env.kubeconfig), "--controller", "http://127.0.0.1:9"
    )
    assert unreachable.returncode == 2 and "cannot read http://127.0.0.1:9/metrics" in unreachable.stderr
