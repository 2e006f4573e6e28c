"""The preinstalled kubectl against the sandbox: discovery, explain, get, apply, diff, delete, wait, watch."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

KUBECTL = shutil.which("kubectl") or "kubectl"


def kubectl(sandbox, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 120):
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sandbox.kubeconfig), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_api_resources_and_versions(sandbox):
    out = kubectl(sandbox, "api-resources", "-o", "wide").stdout
    for needle in (
        "deployments",
        "customresourcedefinitions",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
        "leases",
        "clusterrolebindings",
    ):
        assert needle in out
    assert "apps/v1" in kubectl(sandbox, "api-versions").stdout


def test_explain_uses_served_openapi(sandbox):
    out = kubectl(sandbox, "explain", "deployment.spec.strategy").stdout
    assert "KIND:       Deployment" in out and "rollingUpdate" in out


def test_get_table_output_and_json(sandbox, sandbox_namespace):
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tbl", "namespace": sandbox_namespace},
        "data": {"a": "1", "b": "2"},
    }
    kubectl(sandbox, "create", "-f", "-", stdin=json.dumps(manifest))
    out = kubectl(sandbox, "-n", sandbox_namespace, "get", "configmaps").stdout
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "DATA", "AGE"]
    assert row.split()[:2] == ["tbl", "2"]
    got = json.loads(kubectl(sandbox, "-n", sandbox_namespace, "get", "cm", "tbl", "-o", "json").stdout)
    assert got["data"] == {"a": "1", "b": "2"}
    out = kubectl(sandbox, "get", "namespaces", sandbox_namespace, "--no-headers").stdout
    assert "Active" in out


def test_get_missing_reports_not_found(sandbox, sandbox_namespace):
    result = kubectl(sandbox, "-n", sandbox_namespace, "get", "deployment", "nope", check=False)
    assert result.returncode != 0
    assert 'deployments.apps "nope" not found' in result.stderr


def test_create_invalid_reports_field(sandbox, sandbox_namespace, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: bad, namespace: {sandbox_namespace}}}
spec:
  selector: {{matchLabels: {{app: mine}}}}
  template:
    metadata: {{labels: {{app: other}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
""")
    result = kubectl(sandbox, "create", "-f", str(bad), check=False)
    assert result.returncode != 0 and "`selector` does not match template `labels`" in result.stderr


def test_delete_and_wait_for_delete(sandbox, sandbox_namespace):
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone", "namespace": sandbox_namespace}}
    kubectl(sandbox, "create", "-f", "-", stdin=json.dumps(manifest))
    kubectl(sandbox, "-n", sandbox_namespace, "delete", "configmap", "gone", "--wait=true")
    kubectl(sandbox, "-n", sandbox_namespace, "wait", "--for=delete", "configmap/gone", "--timeout=30s")
    assert kubectl(sandbox, "-n", sandbox_namespace, "get", "cm", "gone", check=False).returncode != 0


def test_get_watch_streams_changes(sandbox, sandbox_namespace):
    proc = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "-n",
            sandbox_namespace,
            "get",
            "configmaps",
            "-w",
            "--request-timeout=60s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        for name in ("w1", "w2"):
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": sandbox_namespace},
            }
            kubectl(sandbox, "create", "-f", "-", stdin=json.dumps(manifest))
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not {"w1", "w2"} <= set(seen):
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.split()[0])
        assert {"w1", "w2"} <= set(seen)
    finally:
        proc.kill()
        proc.communicate()


def _deployment_yaml(ns: str, replicas: int, image: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: {ns}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      containers:
        - name: app
          image: {image}
          ports: [{{containerPort: 8080}}]
"""


def test_client_side_apply_create_then_patch(sandbox, sandbox_namespace, tmp_path: Path):
    ns = sandbox_namespace
    manifest = tmp_path / "d.yaml"
    manifest.write_text(_deployment_yaml(ns, 1, "nginx:1.26"))
    assert "created" in kubectl(sandbox, "apply", "-f", str(manifest)).stdout
    assert "unchanged" in kubectl(sandbox, "apply", "-f", str(manifest)).stdout
    manifest.write_text(_deployment_yaml(ns, 3, "nginx:1.27"))
    assert "configured" in kubectl(sandbox, "apply", "-f", str(manifest)).stdout
    got = json.loads(kubectl(sandbox, "-n", ns, "get", "deploy", "app", "-o", "json", "--show-managed-fields").stdout)
    assert got["spec"]["replicas"] == 3
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert got["metadata"]["generation"] == 2
    managers = {(e["manager"], e["operation"]) for e in got["metadata"]["managedFields"]}
    assert ("kubectl-client-side-apply", "Update") in managers


def test_server_side_apply_conflicts_and_force(sandbox, sandbox_namespace, tmp_path: Path):
    ns = sandbox_namespace
    manifest = tmp_path / "d.yaml"
    manifest.write_text(_deployment_yaml(ns, 2, "nginx:1.26"))
    assert "serverside-applied" in kubectl(sandbox, "apply", "--server-side", "-f", str(manifest)).stdout
    manifest.write_text(_deployment_yaml(ns, 4, "nginx:1.26"))
    result = kubectl(sandbox, "apply", "--server-side", "--field-manager=other", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert "conflict" in result.stderr and '"kubectl"' in result.stderr and ".spec.replicas" in result.stderr
    kubectl(sandbox, "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", str(manifest))
    got = json.loads(kubectl(sandbox, "-n", ns, "get", "deploy", "app", "-o", "json", "--show-managed-fields").stdout)
    assert got["spec"]["replicas"] == 4
    owners = {e["manager"]: e["fieldsV1"] for e in got["metadata"]["managedFields"] if e["operation"] == "Apply"}
    assert "f:replicas" in owners["other"]["f:spec"] and "f:replicas" not in owners["kubectl"]["f:spec"]


def test_diff_shows_pending_change_only(sandbox, sandbox_namespace, tmp_path: Path):
    ns = sandbox_namespace
    manifest = tmp_path / "d.yaml"
    manifest.write_text(_deployment_yaml(ns, 1, "nginx:1.26"))
    kubectl(sandbox, "apply", "--server-side", "-f", str(manifest))
    same = kubectl(sandbox, "diff", "--server-side", "-f", str(manifest), check=False)
    assert same.returncode == 0, same.stderr
    manifest.write_text(_deployment_yaml(ns, 1, "nginx:1.27"))
    changed = kubectl(sandbox, "diff", "--server-side", "-f", str(manifest), check=False)
    assert changed.returncode == 1, changed.stderr
    removed = [line for line in changed.stdout.splitlines() if line.startswith("-") and "image:" in line]
    added = [line for line in changed.stdout.splitlines() if line.startswith("+") and "image:" in line]
    assert removed and "nginx:1.26" in removed[0] and added and "nginx:1.27" in added[0]
    client_side = kubectl(sandbox, "diff", "-f", str(manifest), check=False)
    assert client_side.returncode == 1 and "nginx:1.27" in client_side.stdout
    # diff is a dry run: nothing changed on the server
    got = json.loads(kubectl(sandbox, "-n", ns, "get", "deploy", "app", "-o", "json").stdout)
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"


def test_wait_for_condition_on_custom_status(sandbox, sandbox_namespace, tmp_path: Path):
    ns = sandbox_namespace
    manifest = tmp_path / "d.yaml"
    manifest.write_text(_deployment_yaml(ns, 1, "nginx:1.26"))
    kubectl(sandbox, "apply", "--server-side", "-f", str(manifest))
    kubectl(sandbox, "-n", ns, "wait", "--for=condition=Available", "deployment/app", "--timeout=60s")
    kubectl(sandbox, "-n", ns, "wait", "--for=jsonpath={.spec.replicas}=1", "deployment/app", "--timeout=30s")


def test_get_all_across_namespaces(sandbox, sandbox_namespace, tmp_path: Path):
    ns = sandbox_namespace
    manifest = tmp_path / "d.yaml"
    manifest.write_text(_deployment_yaml(ns, 1, "nginx:1.26"))
    kubectl(sandbox, "apply", "--server-side", "-f", str(manifest))
    out = kubectl(sandbox, "get", "all", "-A").stdout
    assert f"{ns}" in out and "deployment.apps/app" in out


def test_generator_commands_sending_protobuf(sandbox, sandbox_namespace, tmp_path: Path):
    ns = sandbox_namespace

    def get(kind: str, name: str) -> dict:
        return json.loads(kubectl(sandbox, "-n", ns, "get", kind, name, "-o", "json").stdout)

    kubectl(sandbox, "-n", ns, "create", "configmap", "gen", "--from-literal=a=b")
    assert get("configmap", "gen")["data"] == {"a": "b"}
    kubectl(sandbox, "-n", ns, "create", "secret", "generic", "gen", "--from-literal=k=v", "--type=example/x")
    secret = get("secret", "gen")
    assert secret["data"] == {"k": "dg=="} and secret["type"] == "example/x"
    kubectl(sandbox, "-n", ns, "create", "deployment", "gen", "--image=nginx:1.27", "--replicas=0", "--port=80")
    spec = get("deployment", "gen")["spec"]
    assert spec["replicas"] == 0 and spec["selector"] == {"matchLabels": {"app": "gen"}}
    assert spec["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    kubectl(sandbox, "-n", ns, "create", "service", "externalname", "ext", "--external-name=example.com")
    assert get("service", "ext")["spec"]["externalName"] == "example.com"
    kubectl(sandbox, "-n", ns, "create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080")
    port = get("service", "np")["spec"]["ports"][0]
    assert (port["port"], port["targetPort"], port["nodePort"]) == (80, 8080, 30080)
    kubectl(sandbox, "-n", ns, "create", "job", "gen", "--image=busybox")
    assert get("job", "gen")["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    kubectl(sandbox, "-n", ns, "create", "role", "gen", "--verb=get,list", "--resource=pods")
    assert get("role", "gen")["rules"] == [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]
    kubectl(sandbox, "-n", ns, "create", "rolebinding", "gen", "--role=gen", "--user=alice")
    binding = get("rolebinding", "gen")
    assert binding["roleRef"]["name"] == "gen" and binding["subjects"][0]["name"] == "alice"
    kubectl(sandbox, "-n", ns, "create", "cronjob", "gen", "--image=busybox", "--schedule=*/5 * * * *")
    assert get("cronjob", "gen")["spec"]["schedule"] == "*/5 * * * *"
    # a generator whose object the sandbox cannot decode is refused, never stored half-read
    result = kubectl(
        sandbox, "-n", ns, "create", "poddisruptionbudget", "gen", "--selector=app=x", "--min-available=1", check=False
    )
    assert result.returncode != 0 and "unknown format" in result.stderr
