"""CustomResourceDefinitions: serving, validation with defaults, subresources, versions, printer columns."""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any

import pytest

GROUP = "example.tether.dev"


def widget_crd(plural: str = "widgets", kind: str = "Widget") -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                    "replicas": {"type": "integer"},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}, "replicas": {"type": "integer"}}},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "shortNames": [kind.lower()[:3]]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {
                        "status": {},
                        "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
                    },
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    ],
                },
                {"name": "v1beta1", "served": True, "storage": False, "schema": {"openAPIV3Schema": schema}},
            ],
        },
    }


def widget(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name, "namespace": ns}, "spec": spec}


@pytest.fixture(scope="module")
def crd(sandbox):
    from api_helpers import Api

    api = Api(sandbox.url)
    code, created, _ = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widget_crd())
    assert code == 201, created
    return created


def test_crd_is_established_and_discoverable(api, crd):
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    _, group, _ = api.get(f"/apis/{GROUP}")
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    _, resources, _ = api.get(f"/apis/{GROUP}/v1")
    names = {r["name"] for r in resources["resources"]}
    assert {"widgets", "widgets/status", "widgets/scale"} <= names


def test_custom_resource_validation_and_defaults(api, crd, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/apis/{GROUP}/v1/namespaces/{ns}/widgets"
    code, created, _ = api.post(base, widget("w1", ns, size=2, extra={"anything": [1, 2]}))
    assert code == 201 and created["spec"]["color"] == "red" and created["spec"]["extra"] == {"anything": [1, 2]}
    assert created["metadata"]["generation"] == 1
    code, status, _ = api.post(base, widget("w2", ns, size=0, color="green"))
    assert code == 422
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"spec.size", "spec.color"}
    code, status, _ = api.post(base, widget("w3", ns, color="blue"))
    assert code == 422 and status["details"]["causes"][0]["field"] == "spec.size"
    code, status, _ = api.post(base, {**widget("w4", ns, size=1), "bogus": 1}, params={"fieldValidation": "Strict"})
    assert code == 400 and "bogus" in status["message"]


def test_custom_resource_versions_share_storage(api, crd, sandbox_namespace):
    ns = sandbox_namespace
    api.post(f"/apis/{GROUP}/v1/namespaces/{ns}/widgets", widget("shared", ns, size=3))
    code, got, _ = api.get(f"/apis/{GROUP}/v1beta1/namespaces/{ns}/widgets/shared")
    assert code == 200 and got["apiVersion"] == f"{GROUP}/v1beta1" and got["spec"]["size"] == 3


def test_custom_resource_status_and_scale(api, crd, sandbox_namespace):
    ns = sandbox_namespace
    base = f"/apis/{GROUP}/v1/namespaces/{ns}/widgets"
    _, created, _ = api.post(base, widget("st", ns, size=1, replicas=1))
    created["status"] = {"ready": True, "replicas": 1}
    _, after, _ = api.put(f"{base}/st", created)
    assert "status" not in after
    _, after, _ = api.put(f"{base}/st/status", {**after, "status": {"ready": True, "replicas": 1}})
    assert after["status"] == {"ready": True, "replicas": 1} and after["metadata"]["generation"] == 1
    _, scale, _ = api.get(f"{base}/st/scale")
    assert scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 1
    scale["spec"]["replicas"] = 4
    code, _, _ = api.put(f"{base}/st/scale", scale)
    assert code == 200
    _, after, _ = api.get(f"{base}/st")
    assert after["spec"]["replicas"] == 4 and after["metadata"]["generation"] == 2


def test_printer_columns_in_table(api, crd, sandbox_namespace, sandbox):
    ns = sandbox_namespace
    api.post(f"/apis/{GROUP}/v1/namespaces/{ns}/widgets", widget("tbl", ns, size=7, color="blue"))
    _, table, _ = api.get(
        f"/apis/{GROUP}/v1/namespaces/{ns}/widgets", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Color", "Age"]
    assert table["rows"][0]["cells"][:3] == ["tbl", 7, "blue"]
    out = subprocess.run(
        [
            shutil.which("kubectl") or "kubectl",
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "-n",
            ns,
            "get",
            f"widgets.{GROUP}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert out.split("\n")[0].split() == ["NAME", "SIZE", "COLOR", "AGE"]


def test_deleting_a_crd_deletes_its_objects(api, sandbox, sandbox_namespace):
    ns = sandbox_namespace
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert api.post(crd_path, widget_crd("gadgets", "Gadget"))[0] == 201
    body = {**widget("g1", ns, size=1), "kind": "Gadget"}
    assert api.post(f"/apis/{GROUP}/v1/namespaces/{ns}/gadgets", body)[0] == 201
    assert api.delete(f"{crd_path}/gadgets.{GROUP}")[0] == 200
    assert api.get(f"/apis/{GROUP}/v1/namespaces/{ns}/gadgets/g1")[0] == 404
    assert sandbox.call(lambda: sandbox.server.store.objects.get((GROUP, "gadgets"))) in (None, {})
    # re-creating the CRD does not bring the objects back
    assert api.post(crd_path, widget_crd("gadgets", "Gadget"))[0] == 201
    deadline = time.monotonic() + 10
    while api.get(f"/apis/{GROUP}/v1/namespaces/{ns}/gadgets")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    _, listed, _ = api.get(f"/apis/{GROUP}/v1/namespaces/{ns}/gadgets")
    assert listed["items"] == []


def test_invalid_crd_is_rejected(api):
    body = widget_crd("things", "Thing")
    body["metadata"]["name"] = "wrong-name"
    code, status, _ = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.name"


def test_explain_custom_resource(sandbox, crd):
    kubectl = shutil.which("kubectl") or "kubectl"
    out = subprocess.run(
        [kubectl, "--kubeconfig", str(sandbox.kubeconfig), "explain", "widgets.spec", f"--api-version={GROUP}/v1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "size" in out.stdout and "color" in out.stdout
