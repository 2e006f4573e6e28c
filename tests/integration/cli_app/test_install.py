"""``tether install`` and deploy/: the same manifests, valid, and applicable with tether and kubectl."""

from __future__ import annotations

from pathlib import Path

import yaml
from cli_app_helpers import REPO, call, kubectl, tether

from tether.cli.install import FILES, manifest_files

DEPLOY = REPO / "deploy"


def test_deploy_directory_is_what_install_dry_run_prints(tmp_path: Path) -> None:
    printed = tether("install", "--dry-run")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == "---\n".join((DEPLOY / name).read_text() for name in FILES)
    written = tether("install", "--dry-run", "--write-dir", str(tmp_path))
    assert written.returncode == 0, written.stderr
    ours = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(DEPLOY) for p in DEPLOY.rglob("*") if p.is_file())
    assert ours == theirs
    for name in ours:
        assert (tmp_path / name).read_text() == (DEPLOY / name).read_text(), f"deploy/{name} is stale"
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert kustomization["resources"] == list(FILES)


def test_install_manifests_content() -> None:
    objects = [
        d for d in yaml.safe_load_all(tether("install", "--dry-run", "-n", "ops", "--image", "reg/t:1").stdout) if d
    ]
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds[0] == ("CustomResourceDefinition", "applications.tether.dev")
    assert ("Namespace", "ops") in kinds and ("ServiceAccount", "tether-controller") in kinds
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    role = by_kind[("ClusterRole", "tether-controller")]
    granted = {
        (g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert {"watch", "patch", "update"} <= granted[("tether.dev", "applications")]
    assert "patch" in granted[("tether.dev", "applications/status")]
    assert "create" in granted[("", "events")] and "delete" in granted[("", "configmaps")]
    assert granted[("", "serviceaccounts")] == {"impersonate"}
    leases = by_kind[("Role", "tether-controller-leader-election")]
    assert leases["metadata"]["namespace"] == "ops" and leases["rules"][0]["resources"] == ["leases"]
    for binding in (o for o in objects if o["kind"].endswith("Binding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tether-controller", "namespace": "ops"}]
    deployment = by_kind[("Deployment", "tether-controller")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "reg/t:1"
    assert container["args"] == ["controller", "--all-namespaces", "--leader-elect", "--listen", "0.0.0.0:8080"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 8080
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "tether-controller"
    # the rbac file says why each right is granted
    assert manifest_files()["rbac.yaml"].count("\n# ") >= 10


def test_deploy_passes_tether_validate() -> None:
    done = tether("validate", "deploy/")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 error(s)" in done.stdout


def test_kubectl_applies_deploy_directory(sandbox) -> None:  # type: ignore[no-untyped-def]
    done = kubectl(sandbox.kubeconfig, "apply", "--server-side", "-k", "deploy/")
    assert done.returncode == 0, done.stderr
    assert "customresourcedefinition.apiextensions.k8s.io/applications.tether.dev serverside-applied" in done.stdout
    assert "deployment.apps/tether-controller serverside-applied" in done.stdout
    got = kubectl(sandbox.kubeconfig, "get", "clusterrolebinding", "tether-controller", "-o", "name")
    assert got.stdout.strip() == "clusterrolebinding.rbac.authorization.k8s.io/tether-controller"


def test_tether_install_applies_and_the_crd_is_served(sandbox) -> None:  # type: ignore[no-untyped-def]
    done = tether("install", "--kubeconfig", str(sandbox.kubeconfig), "--namespace", "tether-alt")
    assert done.returncode == 0, done.stderr
    assert "Deployment tether-alt/tether-controller applied" in done.stdout

    async def served(kube):  # type: ignore[no-untyped-def]
        info = await kube.info("tether.dev/v1alpha1", "Application", refresh=True)
        sa = await kube.get(await kube.info("v1", "ServiceAccount"), "tether-controller", "tether-alt")
        return info.plural, sa is not None

    assert call(sandbox.kubeconfig, served) == ("applications", True)
    again = tether("install", "--kubeconfig", str(sandbox.kubeconfig), "--namespace", "tether-alt")
    assert again.returncode == 0, again.stderr  # idempotent


def test_install_write_dir_needs_dry_run(tmp_path: Path) -> None:
    done = tether("install", "--write-dir", str(tmp_path))
    assert done.returncode == 2 and "--dry-run" in done.stderr
