"""Server-level behaviour: health, version, metrics, TLS with bearer tokens, restart persistence."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import requests
from api_helpers import Api, configmap, deployment
from tests.conftest import start_sandbox

from tether.sandbox.extras import ExtrasConfig


def test_health_and_version(api):
    for path in ("/healthz", "/livez", "/readyz"):
        code, body, _ = api.get(path)
        assert code == 200 and body == "ok"
    code, version, _ = api.get("/version")
    assert code == 200 and version["major"] == "1" and version["minor"] == "32"


def test_metrics_count_requests_by_verb_resource_and_code(api, sandbox_namespace):
    ns = sandbox_namespace
    api.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("m", ns))
    api.get(f"/api/v1/namespaces/{ns}/configmaps/missing")
    text = requests.get(api.url + "/metrics", timeout=30).text

    def count(verb: str, resource: str, code: str) -> float:
        pattern = (
            rf'apiserver_request_total\{{code="{code}",group="",resource="{resource}",subresource="",'
            rf'verb="{verb}"\}} ([0-9.e+]+)'
        )
        match = re.search(pattern, text)
        return float(match.group(1)) if match else 0.0

    assert count("POST", "configmaps", "201") >= 1
    assert count("GET", "configmaps", "404") >= 1
    assert "apiserver_request_duration_seconds_bucket" in text


def test_discovery_documents(api):
    _, versions, _ = api.get("/api")
    assert versions["kind"] == "APIVersions" and versions["versions"] == ["v1"]
    _, groups, _ = api.get("/apis")
    names = [g["name"] for g in groups["groups"]]
    assert names[0] == "apps" and "apiextensions.k8s.io" in names
    code, aggregated, headers = api.get(
        "/apis",
        headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"},
    )
    assert code == 200 and headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    apps = next(item for item in aggregated["items"] if item["metadata"]["name"] == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deployments["scope"] == "Namespaced" and deployments["shortNames"] == ["deploy"]
    assert {s["subresource"] for s in deployments["subresources"]} == {"status", "scale"}
    _, core, _ = api.get(
        "/api", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}
    )
    assert any(r["resource"] == "pods" for r in core["items"][0]["versions"][0]["resources"])


def test_openapi_documents(api):
    _, index, _ = api.get("/openapi/v3")
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    _, doc, _ = api.get(url)
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= {p["name"] for p in patch["parameters"]}
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    containers = doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    _, v2, _ = api.get("/openapi/v2")
    assert v2["swagger"] == "2.0" and "io.k8s.api.apps.v1.Deployment" in v2["definitions"]


def test_tls_and_bearer_token(tmp_path: Path):
    running = start_sandbox(tmp_path, tls=True, tokens=["s3cret-token"])
    try:
        assert running.url.startswith("https://")
        ca = tmp_path / "pki" / "ca.crt"
        response = requests.get(running.url + "/api/v1/namespaces", verify=str(ca), timeout=30)
        assert response.status_code == 401 and response.json()["reason"] == "Unauthorized"
        response = requests.get(
            running.url + "/api/v1/namespaces",
            verify=str(ca),
            timeout=30,
            headers={"Authorization": "Bearer s3cret-token"},
        )
        assert response.status_code == 200
        assert requests.get(running.url + "/healthz", verify=str(ca), timeout=30).status_code == 200
        out = subprocess.run(
            [shutil.which("kubectl") or "kubectl", "--kubeconfig", str(running.kubeconfig), "get", "ns", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "namespace/default" in out.stdout
    finally:
        running.thread.stop()


def test_restart_keeps_objects_and_resource_versions(tmp_path: Path):
    quiet = ExtrasConfig(simulate=False)  # no controller writes: resourceVersions stay put
    first = start_sandbox(tmp_path, extras=quiet)
    api = Api(first.url)
    try:
        api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keep"}})
        _, dep, _ = api.post("/apis/apps/v1/namespaces/keep/deployments", deployment("web", "keep"))
        api.post("/api/v1/namespaces/keep/configmaps", configmap("doomed", "keep"))
        api.delete("/api/v1/namespaces/keep/configmaps/doomed")
        _, listed, _ = api.get("/api/v1/configmaps")
        last_rv = int(listed["metadata"]["resourceVersion"])
    finally:
        first.thread.stop()
    second = start_sandbox(tmp_path, extras=quiet)
    api = Api(second.url)
    try:
        code, again, _ = api.get("/apis/apps/v1/namespaces/keep/deployments/web")
        assert code == 200 and again["metadata"]["uid"] == dep["metadata"]["uid"]
        assert again["metadata"]["resourceVersion"] == dep["metadata"]["resourceVersion"]
        assert api.get("/api/v1/namespaces/keep/configmaps/doomed")[0] == 404
        _, created, _ = api.post("/api/v1/namespaces/keep/configmaps", configmap("new", "keep"))
        assert int(created["metadata"]["resourceVersion"]) > last_rv
        _, table, _ = api.get("/api/v1/namespaces", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        assert any(row["cells"][0] == "keep" for row in table["rows"])
    finally:
        second.thread.stop()
