"""Every kubectl the Cloud SDK ships (1.27 to 1.33) through the everyday flows against the sandbox.

kubectl 1.27 and 1.28 read the OpenAPI v2 document as protobuf, later ones the v3 JSON; both
paths are exercised. A version missing from this machine is skipped with the path looked at.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

SDK_BIN = Path("/usr/lib/google-cloud-sdk/bin")
VERSIONS = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"]

MANIFEST = """apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{mode: {mode}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: app, image: "nginx:1.25"}}]
"""


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path, cache: Path) -> None:
        self.binary = binary
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache)}

    def __call__(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        result = subprocess.run([str(self.binary), *args], capture_output=True, text=True, env=self.env, timeout=120)
        if result.returncode not in ok:
            raise AssertionError(
                f"{self.binary.name} {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout + result.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_everyday_flows(version: str, sandbox, tmp_path: Path) -> None:
    binary = SDK_BIN / f"kubectl.{version}"
    if not binary.exists():
        print(f"kubectl {version}: {binary} is not on this machine")
        pytest.skip(f"kubectl {version} not installed at {binary}")
    kubectl = Kubectl(binary, sandbox.kubeconfig, tmp_path / "cache")
    assert f"v{version}." in kubectl("version", "--client", "-o", "json")
    ns = sandbox.create_namespace(f"kubectl-{version.replace('.', '-')}")
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFEST.format(ns=ns, mode="a"))

    resources = kubectl("api-resources")
    assert "deployments" in resources and "customresourcedefinitions" in resources

    assert "deployment.apps/web created" in kubectl("apply", "-f", str(manifest))
    assert "serverside-applied" in kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifest))

    changed = tmp_path / "changed.yaml"
    changed.write_text(MANIFEST.format(ns=ns, mode="b"))
    diff = kubectl("diff", "-f", str(changed), ok=(1,))
    assert "-  mode: a" in diff and "+  mode: b" in diff

    assert "replicas" in kubectl("explain", "deployment.spec.replicas")
    kubectl("wait", "-n", ns, "--for=condition=Available", "deployment/web", "--timeout=60s")
    assert "successfully rolled out" in kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=60s")
    assert "scaled" in kubectl("scale", "-n", ns, "deployment/web", "--replicas=2")
    assert "labeled" in kubectl("label", "-n", ns, "deployment", "web", "tier=frontend")
    assert "patched" in kubectl("patch", "-n", ns, "deployment", "web", "-p", '{"spec":{"minReadySeconds":1}}')
    live = json.loads(kubectl("get", "-n", ns, "deployment", "web", "-o", "json"))
    assert live["spec"]["replicas"] == 2 and live["spec"]["minReadySeconds"] == 1
    assert live["metadata"]["labels"]["tier"] == "frontend"

    assert "deployment.apps/web" in kubectl("get", "all", "-n", ns)
    kubectl("get", "events", "-n", ns)
    deleted = kubectl("delete", "-f", str(manifest))
    assert 'configmap "settings" deleted' in deleted and 'deployment.apps "web" deleted' in deleted

    missing = tmp_path / "missing-crd.yaml"
    missing.write_text(f"apiVersion: nothing.example.com/v1\nkind: Gizmo\nmetadata: {{name: g, namespace: {ns}}}\n")
    assert 'no matches for kind "Gizmo"' in kubectl("apply", "-f", str(missing), ok=(1,))
