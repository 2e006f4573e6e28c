"""The controller reads an Application's ``spec.healthCheckExprs`` (over its ``--health-rules``): the
app turns Healthy when its custom resource's status says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from cluster import Cluster, eventually

from conftest import ControllerThread
from tether.cli.demo_env import LocalEnvironment
from tether.engine.health_rules import parse_health_checks

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "boilers.health.example.com"},
    "spec": {
        "group": "health.example.com",
        "names": {"kind": "Boiler", "plural": "boilers", "singular": "boiler", "listKind": "BoilerList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "status": {"type": "object", "properties": {"temperature": {"type": "integer"}}},
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def controller(env: LocalEnvironment) -> Iterator[ControllerThread]:
    # the controller-wide rule would call every Boiler failed: the app's own entry must win
    rules = parse_health_checks(
        [{"apiVersion": "health.example.com/v1", "kind": "Boiler", "current": "false", "failed": "true"}], "rules.yaml"
    )
    thread = ControllerThread(env, health_rules=rules).start()
    yield thread
    thread.stop()


def test_app_turns_healthy_when_the_cel_current_expression_is_true(
    env: LocalEnvironment, controller: ControllerThread
) -> None:
    cluster = Cluster(env.kubeconfig)
    boiler = {"apiVersion": "health.example.com/v1", "kind": "Boiler", "metadata": {"name": "b1"}, "spec": {}}
    env.commit(
        "Add a boiler",
        {
            "boiler/crd.yaml": yaml.safe_dump(CRD),
            "boiler/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: boiler\n",
            "boiler/boiler.yaml": yaml.safe_dump(boiler),
        },
    )
    app = env.application("boiler", path="boiler")
    app["spec"]["destination"] = {"namespace": "boiler"}
    app["spec"]["healthCheckExprs"] = [
        {
            "apiVersion": "health.example.com/v1",
            "kind": "Boiler",
            "inProgress": "has(status.temperature) && status.temperature < 90",
            "current": "status.temperature >= 90",
        }
    ]
    cluster.apply(app)

    def health() -> dict:
        return ((cluster.app("boiler") or {}).get("status") or {}).get("health") or {}

    # applied, but no status yet: the expression cannot be evaluated, and the message says which rule
    waiting = eventually(
        lambda: "spec: healthCheckExprs[0] (Boiler)" in (health().get("message") or "") and health(), "a waiting health"
    )
    assert waiting["status"] in ("Unknown", "Progressing")

    cluster.patch(
        "health.example.com/v1", "Boiler", "b1", "boiler", {"status": {"temperature": 40}}, subresource="status"
    )
    eventually(lambda: health().get("status") == "Progressing", "Progressing while warming up")
    cluster.patch(
        "health.example.com/v1", "Boiler", "b1", "boiler", {"status": {"temperature": 95}}, subresource="status"
    )
    eventually(lambda: health().get("status") == "Healthy", "Healthy once the status says so")
    assert controller.error is None
