"""Namespace deletion as kube-apiserver and the namespace controller do it: Terminating, emptied, finalized."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from api_helpers import configmap, deployment
from test_sandbox_kubectl import KUBECTL, kubectl
from test_sandbox_watch import watch_events

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.nsdel.example.com"},
    "spec": {
        "group": "nsdel.example.com",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_namespace_is_created_active_with_the_kubernetes_finalizer(api, sandbox):
    ns = sandbox.create_namespace("nsdel-created")
    _, obj, _ = api.get(f"/api/v1/namespaces/{ns}")
    assert obj["spec"]["finalizers"] == ["kubernetes"]
    assert obj["status"]["phase"] == "Active"
    # status sent on create is the server's to decide, and the finalizer is added to given ones
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "nsdel-given"},
        "spec": {"finalizers": ["example.com/mine"]},
        "status": {"phase": "Terminating"},
    }
    code, created, _ = api.post("/api/v1/namespaces", body)
    assert code == 201
    assert created["spec"]["finalizers"] == ["example.com/mine", "kubernetes"]
    assert created["status"] == {"phase": "Active"}
    # spec.finalizers change only through /finalize
    created["spec"]["finalizers"] = []
    code, updated, _ = api.put("/api/v1/namespaces/nsdel-given", created)
    assert code == 200 and updated["spec"]["finalizers"] == ["example.com/mine", "kubernetes"]


def test_delete_goes_terminating_then_the_content_and_the_namespace_go(api, sandbox):
    ns = sandbox.create_namespace("nsdel-cascade")
    api.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("a", ns))
    api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("d", ns))
    api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    gadgets = f"/apis/nsdel.example.com/v1/namespaces/{ns}/gadgets"
    until(lambda: api.get(gadgets)[0] == 200, "the Gadget CRD to be served")
    gadget = {"apiVersion": "nsdel.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    assert api.post(gadgets, gadget)[0] == 201
    _, listed, _ = api.get("/api/v1/namespaces", params={"fieldSelector": f"metadata.name={ns}"})
    start = listed["metadata"]["resourceVersion"]

    code, answer, _ = api.delete(f"/api/v1/namespaces/{ns}")
    assert code == 200
    assert answer["kind"] == "Namespace" and answer["status"]["phase"] == "Terminating"
    assert answer["metadata"]["deletionTimestamp"] and answer["spec"]["finalizers"] == ["kubernetes"]

    until(lambda: api.get(f"/api/v1/namespaces/{ns}")[0] == 404, "the namespace to go")
    for path in (
        f"/api/v1/namespaces/{ns}/configmaps/a",
        f"/apis/apps/v1/namespaces/{ns}/deployments/d",
        gadgets + "/g",
    ):
        assert api.get(path)[0] == 404, path
    events = watch_events(
        sandbox.url, "/api/v1/namespaces", {"resourceVersion": start, "fieldSelector": f"metadata.name={ns}"}, 3
    )
    types = [e["type"] for e in events]
    assert types[0] == "MODIFIED" and events[0]["object"]["status"]["phase"] == "Terminating"
    assert types[-1] == "DELETED" and set(types[1:-1]) <= {"MODIFIED"}
    # the name is free again at once
    assert api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})[0] == 201
    assert api.get(f"/api/v1/namespaces/{ns}/configmaps")[1]["items"] == []


def test_a_finalizer_in_the_namespace_holds_it_terminating(api, sandbox):
    ns = sandbox.create_namespace("nsdel-held")
    held = configmap("held", ns)
    held["metadata"]["finalizers"] = ["example.com/hold"]
    api.post(f"/api/v1/namespaces/{ns}/configmaps", held)
    api.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("plain", ns))
    api.delete(f"/api/v1/namespaces/{ns}")

    def conditions() -> dict[str, dict]:
        _, obj, _ = api.get(f"/api/v1/namespaces/{ns}")
        return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}

    found = until(lambda: conditions().get("NamespaceFinalizersRemaining"), "the namespace conditions")
    assert found["status"] == "True" and "example.com/hold in 1 resource instances" in found["message"]
    remaining = conditions()["NamespaceContentRemaining"]
    assert remaining["status"] == "True" and "configmaps has 1 resource instances" in remaining["message"]
    assert api.get(f"/api/v1/namespaces/{ns}/configmaps/plain")[0] == 404
    _, live, _ = api.get(f"/api/v1/namespaces/{ns}/configmaps/held")
    assert live["metadata"]["deletionTimestamp"]

    # new content is refused; changes to what is there are not
    code, status, _ = api.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("late", ns))
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"] == (
        f'configmaps "late" is forbidden: unable to create new content in namespace {ns} because it is being terminated'
    )
    assert status["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    code, status, _ = api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("late", ns))
    assert code == 403 and status["message"].startswith('deployments.apps "late" is forbidden: ')
    # a second DELETE answers with the Terminating namespace
    code, again, _ = api.delete(f"/api/v1/namespaces/{ns}")
    assert code == 200 and again["status"]["phase"] == "Terminating"

    patch = {"metadata": {"finalizers": None}}
    assert api.patch(f"/api/v1/namespaces/{ns}/configmaps/held", patch, "application/merge-patch+json")[0] == 200
    until(lambda: api.get(f"/api/v1/namespaces/{ns}")[0] == 404, "the namespace to go")


def test_the_system_namespaces_cannot_be_deleted(api):
    for name in ("default", "kube-system", "kube-public"):
        code, status, _ = api.delete(f"/api/v1/namespaces/{name}")
        assert code == 403 and status["reason"] == "Forbidden", name
        assert status["message"] == f'namespaces "{name}" is forbidden: this namespace may not be deleted'
        assert api.get(f"/api/v1/namespaces/{name}")[1]["status"]["phase"] == "Active"


def test_finalize_subresource_removes_spec_finalizers(api, sandbox):
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "nsdel-finalize"},
        "spec": {"finalizers": ["example.com/custom"]},
    }
    api.post("/api/v1/namespaces", body)
    api.delete("/api/v1/namespaces/nsdel-finalize")
    # the controller removes its own finalizer; the custom one holds the namespace
    until(
        lambda: api.get("/api/v1/namespaces/nsdel-finalize")[1]["spec"]["finalizers"] == ["example.com/custom"],
        "the kubernetes finalizer to be removed",
    )
    assert api.get("/api/v1/namespaces/nsdel-finalize/finalize")[0] == 405
    _, live, _ = api.get("/api/v1/namespaces/nsdel-finalize")
    live["spec"]["finalizers"] = []
    code, _, _ = api.put("/api/v1/namespaces/nsdel-finalize/finalize", live)
    assert code == 200
    assert api.get("/api/v1/namespaces/nsdel-finalize")[0] == 404


def test_kubectl_delete_f_of_a_namespace_and_its_objects(sandbox, tmp_path: Path):
    manifest = tmp_path / "app.yaml"
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nsdel-file"}}]
    docs += [configmap(f"c{i}", "nsdel-file") for i in range(5)]
    docs.append(deployment("web", "nsdel-file"))
    manifest.write_text("".join("---\n" + yaml.safe_dump(d) for d in docs))
    kubectl(sandbox, "apply", "-f", str(manifest))
    result = kubectl(sandbox, "delete", "-f", str(manifest), "--timeout=60s")
    assert result.stderr == "", result.stderr
    assert 'namespace "nsdel-file" deleted' in result.stdout
    assert 'configmap "c4" deleted' in result.stdout and 'deployment.apps "web" deleted' in result.stdout
    assert kubectl(sandbox, "get", "namespace", "nsdel-file", check=False).returncode != 0


def test_kubectl_shows_terminating_and_delete_wait_returns_once_gone(sandbox):
    kubectl(sandbox, "create", "namespace", "nsdel-wait")
    held = configmap("held", "nsdel-wait")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    kubectl(sandbox, "apply", "-f", "-", stdin=json.dumps(held))
    waiting = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "delete",
            "namespace",
            "nsdel-wait",
            "--wait",
            "--timeout=60s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        until(
            lambda: "Terminating" in kubectl(sandbox, "get", "ns", "nsdel-wait", check=False).stdout,
            "kubectl get ns to show Terminating",
        )
        assert waiting.poll() is None, "kubectl delete --wait returned while the namespace was still there"
        kubectl(
            sandbox,
            "-n",
            "nsdel-wait",
            "patch",
            "configmap",
            "held",
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
        )
        out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 0, err
    assert 'namespace "nsdel-wait" deleted' in out
    assert kubectl(sandbox, "get", "ns", "nsdel-wait", check=False).returncode != 0


def test_watchers_of_the_namespace_see_the_content_go(api, sandbox):
    ns = sandbox.create_namespace("nsdel-watch")
    api.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("w", ns))
    _, listed, _ = api.get(f"/api/v1/namespaces/{ns}/configmaps")
    seen: list[dict[str, Any]] = []
    consumer = threading.Thread(
        target=lambda: seen.extend(
            watch_events(
                sandbox.url,
                f"/api/v1/namespaces/{ns}/configmaps",
                {"resourceVersion": listed["metadata"]["resourceVersion"]},
                1,
            )
        )
    )
    consumer.start()
    api.delete(f"/api/v1/namespaces/{ns}")
    consumer.join(30)
    assert [e["type"] for e in seen] == ["DELETED"]
