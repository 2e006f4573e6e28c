"""The Plan value: summary, text diff (coloured, masked) and JSON; duration parsing of the CLI."""

from __future__ import annotations

import json

import pytest

from tether.cli.push import parse_duration
from tether.engine.inventory import Inventory
from tether.engine.plan import Action, Change, Plan, prepare
from tether.errors import UsageError
from tether.kube import ResourceInfo
from tether.model import Manifest, ObjectRef, SourceLocation

DEPLOY = ResourceInfo("apps", "v1", "Deployment", "deployments", True, frozenset({"get", "list", "patch"}))
SECRET = ResourceInfo("", "v1", "Secret", "secrets", True, frozenset({"get", "list", "patch"}))
NS = ResourceInfo("", "v1", "Namespace", "namespaces", False, frozenset({"get", "list", "patch"}))


def dep(replicas: int, **meta) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", **meta},
        "spec": {"replicas": replicas},
    }


def sample_plan() -> Plan:
    live = dep(2, uid="u", resourceVersion="9", managedFields=[{"manager": "tether"}])
    secret_live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": "b2xk"},
    }
    secret_after = {**secret_live, "data": {"password": "bmV3"}}
    changes = [
        Change(
            ObjectRef("apps", "Deployment", "shop", "web", "v1"),
            Action.UPDATE,
            DEPLOY,
            dep(3),
            live,
            dep(3),
            "apps/web.yaml:3",
        ),
        Change(
            ObjectRef("", "Secret", "shop", "db", "v1"), Action.UPDATE, SECRET, secret_after, secret_live, secret_after
        ),
        Change(ObjectRef("", "Namespace", "", "shop", "v1"), Action.UNCHANGED, NS, {}, {}, {}),
        Change(
            ObjectRef("", "ConfigMap", "shop", "old", "v1"),
            Action.DELETE,
            SECRET,
            None,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old"}, "data": {"a": "1"}},
            None,
        ),
    ]
    return Plan("web", changes, Inventory("web"), kept=[ObjectRef("", "ConfigMap", "shop", "keepme", "v1")])


def test_summary_and_has_changes() -> None:
    plan = sample_plan()
    assert plan.summary() == {"create": 0, "adopt": 0, "update": 2, "unchanged": 1, "delete": 1, "conflict": 0}
    assert plan.has_changes()
    quiet = Plan("web", [c for c in plan.changes if c.action is Action.UNCHANGED], Inventory("web"))
    assert not quiet.has_changes()


def test_text_rendering() -> None:
    text = sample_plan().render_text()
    assert text.startswith("Plan for app web: 0 to create, 0 to adopt, 2 to update, 1 to delete, 1 unchanged\n")
    assert "~ update Deployment.apps shop/web  (apps/web.yaml:3)" in text
    assert "-  replicas: 2\n+  replicas: 3" in text
    assert "uid" not in text and "managedFields" not in text
    assert "b2xk" not in text and "bmV3" not in text and "<masked sha256:" in text
    assert "- delete ConfigMap shop/old" in text
    assert "keep ConfigMap shop/keepme" in text
    assert "Namespace shop" not in text
    assert "\x1b[" not in text
    coloured = sample_plan().render_text(color=True)
    assert "\x1b[32m+  replicas: 3\x1b[0m" in coloured


def test_json_rendering() -> None:
    data = json.loads(sample_plan().to_json())
    assert data["summary"]["update"] == 2
    assert [c["action"] for c in data["changes"]] == ["update", "update", "delete"]
    assert "+  replicas: 3" in data["changes"][0]["diff"]
    assert "bmV3" not in json.dumps(data)


def test_prepare_sets_labels_namespace_and_digest() -> None:
    manifest = Manifest(dep(1), SourceLocation("a.yaml", 1))
    out = prepare(manifest, "web", "default", DEPLOY)
    assert out["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "tether",
        "tether.dev/app": "web",
        "tether.dev/app-namespace": "tether-system",
    }
    assert len(out["metadata"]["annotations"]["tether.dev/applied-digest"]) == 32
    assert "labels" not in manifest.obj["metadata"]  # the input is untouched
    bare = Manifest({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}})
    assert prepare(bare, "web", "fallback", DEPLOY)["metadata"]["namespace"] == "fallback"
    cluster = Manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "zz"}})
    assert "namespace" not in prepare(cluster, "web", "default", NS)["metadata"]
    assert prepare(manifest, "web", "d", DEPLOY) == prepare(manifest, "web", "d", DEPLOY)


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("90s", 90), ("1h30m", 5400), ("45", 45), ("2.5s", 2.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "1d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)
