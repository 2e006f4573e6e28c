"""Bearer tokens, ServiceAccount tokens, impersonation and RBAC with ``--authz rbac``."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from extras_helpers import ADMIN_TOKEN, Http, eventually

KUBECTL = shutil.which("kubectl")
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="module")
def admin(secured) -> Http:  # type: ignore[no-untyped-def]
    http = _client(secured, ADMIN_TOKEN)
    http.namespace("team")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "cm-reader", "namespace": "team"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
    }
    assert http.post(f"{RBAC}/namespaces/team/roles", role)[0] == 201
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "readers", "namespace": "team"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "bot"}],
    }
    assert http.post(f"{RBAC}/namespaces/team/rolebindings", binding)[0] == 201
    impersonator = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "impersonate-alice"},
        "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice"]}],
    }
    assert http.post(f"{RBAC}/clusterroles", impersonator)[0] == 201
    crb = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "imp-alice"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "impersonate-alice"},
        "subjects": [{"kind": "User", "name": "imp"}],
    }
    assert http.post(f"{RBAC}/clusterrolebindings", crb)[0] == 201
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"k": "v"}}
    assert http.post("/api/v1/namespaces/team/configmaps", cm)[0] == 201
    assert (
        http.post(
            "/api/v1/namespaces/team/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot"}},
        )[0]
        == 201
    )
    return http


def _client(secured, token: str, headers: dict[str, str] | None = None) -> Http:  # type: ignore[no-untyped-def]
    return Http(secured.url, token, headers, ca=secured.server.ca_path)


def _forbidden(code: int, body: dict, message: str) -> None:
    assert code == 403, body
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == "Forbidden"
    assert body["code"] == 403 and body["message"] == message


def test_admin_is_cluster_admin_and_unknown_tokens_are_401(secured, admin: Http) -> None:  # type: ignore[no-untyped-def]
    assert admin.get("/api/v1/namespaces/kube-system/secrets")[0] == 200
    code, body = _client(secured, "no-such-token").get("/api/v1/namespaces")
    assert code == 401 and body["reason"] == "Unauthorized"
    _, roles = admin.get(f"{RBAC}/clusterroles")
    assert {"cluster-admin", "admin", "edit", "view"} <= {r["metadata"]["name"] for r in roles["items"]}


def test_role_binding_grants_exactly_its_rules(secured, admin: Http) -> None:  # type: ignore[no-untyped-def]
    alice = _client(secured, "alice-token")
    assert alice.get("/api/v1/namespaces/team/configmaps/settings")[0] == 200
    assert alice.get("/apis/apps/v1")[0] == 200  # discovery is open to authenticated users
    code, body = alice.post(
        "/api/v1/namespaces/team/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}}
    )
    _forbidden(
        code,
        body,
        'configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group '
        '"" in the namespace "team"',
    )
    code, body = alice.get("/api/v1/namespaces/default/configmaps")
    _forbidden(
        code,
        body,
        'configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" '
        'in the namespace "default"',
    )
    code, body = alice.get("/apis/apps/v1/deployments")
    _forbidden(
        code,
        body,
        'deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API '
        'group "apps" at the cluster scope',
    )
    assert body["details"] == {"group": "apps", "kind": "deployments"}


def test_impersonation_allowed_and_denied(secured, admin: Http) -> None:  # type: ignore[no-untyped-def]
    as_alice = _client(secured, "imp-token", {"Impersonate-User": "alice"})
    assert as_alice.get("/api/v1/namespaces/team/configmaps")[0] == 200
    code, body = as_alice.request("DELETE", "/api/v1/namespaces/team/configmaps/settings")
    _forbidden(
        code,
        body,
        'configmaps "settings" is forbidden: User "alice" cannot delete resource "configmaps" in '
        'API group "" in the namespace "team"',
    )
    code, body = _client(secured, "imp-token", {"Impersonate-User": "carol"}).get("/api/v1/namespaces")
    _forbidden(
        code,
        body,
        'users "carol" is forbidden: User "imp" cannot impersonate resource "users" in API group '
        '"" at the cluster scope',
    )
    code, body = _client(secured, "imp-token", {"Impersonate-User": "alice", "Impersonate-Group": "admins"}).get(
        "/api/v1/namespaces"
    )
    _forbidden(
        code,
        body,
        'groups "admins" is forbidden: User "imp" cannot impersonate resource "groups" in API '
        'group "" at the cluster scope',
    )
    # the admin may impersonate anyone, and then has only that user's rights
    code, body = _client(secured, ADMIN_TOKEN, {"Impersonate-User": "bob"}).get("/api/v1/namespaces/team/pods")
    _forbidden(
        code, body, 'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "team"'
    )


def test_service_account_token_secret_and_token_request(secured, admin: Http) -> None:  # type: ignore[no-untyped-def]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "bot-token", "annotations": {"kubernetes.io/service-account.name": "bot"}},
    }
    code, created = admin.post("/api/v1/namespaces/team/secrets", secret)
    assert code == 201 and created["data"]["namespace"] == base64.b64encode(b"team").decode()
    token = base64.b64decode(created["data"]["token"]).decode()
    bot = _client(secured, token)
    assert bot.get("/api/v1/namespaces/team/configmaps/settings")[0] == 200
    code, body = bot.get("/api/v1/namespaces/team/secrets")
    _forbidden(
        code,
        body,
        'secrets is forbidden: User "system:serviceaccount:team:bot" cannot list resource '
        '"secrets" in API group "" in the namespace "team"',
    )
    code, request = admin.post(
        "/api/v1/namespaces/team/serviceaccounts/bot/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert code == 201 and request["status"]["token"] and request["status"]["expirationTimestamp"]
    assert _client(secured, request["status"]["token"]).get("/api/v1/namespaces/team/configmaps")[0] == 200
    # deleting the Secret revokes its token
    assert admin.request("DELETE", "/api/v1/namespaces/team/secrets/bot-token")[0] == 200
    eventually(lambda: bot.get("/api/v1/namespaces/team/configmaps")[0] == 401)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_as_and_auth_errors(secured, admin: Http) -> None:  # type: ignore[no-untyped-def]
    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(secured.kubeconfig), *args], capture_output=True, text=True, timeout=120
        )

    allowed = kubectl("--as=alice", "-n", "team", "get", "configmaps", "-o", "name")
    assert allowed.returncode == 0 and "configmap/settings" in allowed.stdout, allowed.stderr
    denied = kubectl("--as=alice", "-n", "team", "get", "pods")
    assert denied.returncode != 0
    assert (
        'Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group '
        '"" in the namespace "team"'
    ) in denied.stderr
    token = kubectl("-n", "team", "create", "token", "bot")
    assert token.returncode == 0 and token.stdout.strip(), token.stderr


def test_without_rbac_tokens_still_authenticate_and_impersonation_is_allowed(tmp_path) -> None:
    from extras_helpers import start_sandbox

    from tether.sandbox.extras import ExtrasConfig

    tokens = tmp_path / "tokens.csv"
    tokens.write_text("bob-token,bob,2\n")
    running = start_sandbox(tmp_path, tokens=[ADMIN_TOKEN], extras=ExtrasConfig(token_file=tokens))
    try:
        assert Http(running.url, "bob-token").get("/api/v1/namespaces/default/secrets")[0] == 200
        assert Http(running.url, "wrong").get("/api/v1/namespaces")[0] == 401
        as_carol = Http(running.url, "bob-token", {"Impersonate-User": "carol"})
        assert as_carol.get("/api/v1/namespaces")[0] == 200
    finally:
        running.thread.stop()
