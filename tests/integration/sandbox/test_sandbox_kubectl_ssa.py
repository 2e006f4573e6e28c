"""Server-side apply with kubectl as the client and kubectl patch/edit/annotate as other managers:
the everyday cases where the sandbox must behave as kube-apiserver (structured-merge-diff)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

KUBECTL = shutil.which("kubectl") or "kubectl"


def kubectl(sandbox, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(sandbox.kubeconfig), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def server_side_apply(sandbox, manifest: str) -> str:
    return kubectl(sandbox, "apply", "--server-side", "--field-manager=gitops", "-f", "-", stdin=manifest)


def get(sandbox, ns: str, kind: str, name: str) -> dict:
    return json.loads(kubectl(sandbox, "-n", ns, "get", kind, name, "-o", "json", "--show-managed-fields"))


def deployment(ns: str, containers: str, volumes: str = "") -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
{containers}
{volumes}
"""


def test_null_annotations_keep_a_controllers_annotation(sandbox, sandbox_namespace):
    ns = sandbox_namespace
    server_side_apply(
        sandbox,
        f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
  annotations: {{owner: gitops}}
data: {{mode: a}}
""",
    )
    kubectl(sandbox, "-n", ns, "annotate", "configmap", "settings", "controller.example.com/synced=yes")
    server_side_apply(
        sandbox,
        f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
  annotations: null
data: {{mode: a}}
""",
    )
    live = get(sandbox, ns, "configmap", "settings")
    assert live["metadata"]["annotations"] == {"controller.example.com/synced": "yes"}
    managers = {e["manager"]: e["fieldsV1"] for e in live["metadata"]["managedFields"]}
    assert managers["gitops"]["f:metadata"] == {"f:annotations": {}}
    assert managers["kubectl-annotate"]["f:metadata"]["f:annotations"] == {"f:controller.example.com/synced": {}}


def test_container_dropped_from_git_goes_although_kubectl_patch_set_a_field_in_it(sandbox, sandbox_namespace):
    ns = sandbox_namespace
    server_side_apply(
        sandbox,
        deployment(
            ns,
            """        - {name: app, image: "nginx:1.25"}
        - {name: proxy, image: "envoy:1.29"}""",
        ),
    )
    sidecar = {"name": "proxy", "resources": {"limits": {"cpu": "100m"}}}
    patch = {"spec": {"template": {"spec": {"containers": [sidecar]}}}}
    kubectl(sandbox, "-n", ns, "patch", "deployment", "web", "-p", json.dumps(patch))
    server_side_apply(sandbox, deployment(ns, """        - {name: app, image: "nginx:1.25"}"""))
    live = get(sandbox, ns, "deployment", "web")
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["app"]
    assert "kubectl-patch" not in {e["manager"] for e in live["metadata"]["managedFields"]}


def test_volume_switched_from_empty_dir_to_config_map_after_kubectl_edit(sandbox, sandbox_namespace, tmp_path: Path):
    ns = sandbox_namespace
    mount = """        - name: app
          image: "nginx:1.25"
          volumeMounts: [{name: data, mountPath: /data}]"""
    server_side_apply(sandbox, deployment(ns, mount, "      volumes: [{name: data, emptyDir: {}}]"))
    # another manager (kubectl edit) changes an unrelated field meanwhile
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "path.write_text(path.read_text().replace('progressDeadlineSeconds: 600', 'progressDeadlineSeconds: 300'))\n"
    )
    kubectl(sandbox, "-n", ns, "edit", "deployment", "web", env={"KUBE_EDITOR": f"{sys.executable} {editor}"})
    server_side_apply(sandbox, deployment(ns, mount, "      volumes: [{name: data, configMap: {name: settings}}]"))
    live = get(sandbox, ns, "deployment", "web")
    assert live["spec"]["progressDeadlineSeconds"] == 300
    (volume,) = live["spec"]["template"]["spec"]["volumes"]
    assert volume["name"] == "data" and volume["configMap"]["name"] == "settings"
    assert "emptyDir" not in volume
    assert "kubectl-edit" in {e["manager"] for e in live["metadata"]["managedFields"]}
