"""Impersonation: every API call of an app with spec.serviceAccountName is made as that ServiceAccount."""

from __future__ import annotations

import pytest
from cluster import Cluster, condition, eventually, ready_at

from tether.cli.demo_env import LocalEnvironment

pytestmark = pytest.mark.usefixtures("controller")

ENV_OPTIONS = {"authz": "rbac"}  # the sandbox enforces RBAC; the controller itself runs as admin
RBAC = "rbac.authorization.k8s.io/v1"


def configmap(name: str, namespace: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  a: b\n"


def grant_configmaps(cluster: Cluster, namespace: str, account: str, account_namespace: str) -> None:
    """``account`` may do anything with ConfigMaps in ``namespace``, and nothing else anywhere."""
    cluster.apply(
        {
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": {"name": "configmaps", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}],
        }
    )
    cluster.apply(
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": f"{account}-configmaps", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}],
        }
    )


def test_an_app_whose_service_account_may_not_write_a_namespace_fails_and_writes_nothing(env: LocalEnvironment) -> None:
    cluster = Cluster(env.kubeconfig)
    for namespace in ("team-ok", "team-denied"):
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    cluster.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": "default"}}
    )
    grant_configmaps(cluster, "team-ok", "deployer", "default")
    # the app's inventory (a ConfigMap) lives in its own namespace and is written as its ServiceAccount
    grant_configmaps(cluster, "default", "deployer", "default")
    cluster.apply(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRole",
            "metadata": {"name": "read-default-namespace"},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["default"], "verbs": ["get"]}],
        }
    )
    cluster.apply(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "deployer-namespace"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "read-default-namespace",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "default"}],
        }
    )
    commit = env.commit(
        "Add team apps",
        {
            "teams/ok/cm.yaml": configmap("settings", "team-ok"),
            "teams/denied/cm.yaml": configmap("settings", "team-denied"),
        },
    )
    for name in ("team-ok", "team-denied"):
        app = env.application(name, path=f"teams/{name.removeprefix('team-')}", serviceAccountName="deployer")
        app["spec"]["destination"] = {"namespace": name}
        cluster.apply(app)

    eventually(lambda: ready_at(cluster.app("team-ok"), commit), "team-ok Ready as its ServiceAccount")
    assert cluster.get("v1", "ConfigMap", "settings", "team-ok") is not None

    failed = eventually(
        lambda: condition(cluster.app("team-denied"), "Ready").get("status") == "False" and cluster.app("team-denied"),
        "team-denied Ready=False",
    )
    ready = condition(failed, "Ready")
    assert ready["reason"] == "ApplyFailed"
    message = ready["message"]
    assert "system:serviceaccount:default:deployer" in message, message
    assert "forbidden" in message.lower() and "team-denied" in message, message
    assert cluster.get("v1", "ConfigMap", "settings", "team-denied") is None, "nothing may be written there"
    assert failed["status"].get("lastAppliedRevision") in (None, "")
    warnings = [e for e in cluster.events("default", "team-denied") if e.get("reason") == "ReconciliationFailed"]
    assert warnings and "deployer" in warnings[0]["message"]
