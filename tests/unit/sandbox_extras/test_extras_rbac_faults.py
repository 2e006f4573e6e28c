"""RBAC rule evaluation, Forbidden messages, token files and fault flag parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import UsageError
from tether.sandbox import faults, rbac
from tether.sandbox.request import RequestInfo, UserInfo
from tether.sandbox.resources import Registry
from tether.sandbox.store import Store


def _info(
    verb: str,
    resource: str = "pods",
    group: str = "",
    namespace: str = "default",
    name: str = "",
    subresource: str = "",
    path: str = "",
) -> RequestInfo:
    if not resource:
        return RequestInfo(verb=verb, path=path)
    return RequestInfo(
        verb=verb,
        path=path or "/x",
        is_resource=True,
        group=group,
        version="v1",
        resource=resource,
        namespace=namespace,
        name=name,
        subresource=subresource,
    )


RULE_CASES = [
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, _info("get"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, _info("list"), False),
    ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, _info("delete", "deployments", "apps"), True),
    ({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["pods"]}, _info("get"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, _info("get", subresource="log"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}, _info("get", subresource="log"), True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["*/log"]}, _info("get", subresource="log"), True),
    (
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
        _info("get", name="a"),
        True,
    ),
    (
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]},
        _info("get", name="b"),
        False,
    ),
    ({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}, _info("list"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["/metrics"]}, _info("get", "", path="/metrics"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/logs/*"]}, _info("get", "", path="/logs/a/b"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/metrics"]}, _info("post", "", path="/metrics"), False),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, _info("get", "", path="/metrics"), False),
]


@pytest.mark.parametrize(("rule", "info", "allowed"), RULE_CASES)
def test_rule_allows(rule, info, allowed) -> None:
    assert rbac.rule_allows(rule, info, info.verb) is allowed


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (
            _info("get", name="p1"),
            'pods "p1" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"',
        ),
        (
            _info("list", "deployments", "apps"),
            'deployments.apps is forbidden: User "bob" cannot list resource "deployments" in API group "apps" in the '
            'namespace "default"',
        ),
        (
            _info("list", "namespaces", namespace=""),
            'namespaces is forbidden: User "bob" cannot list resource "namespaces" in API group ""'
            " at the cluster scope",
        ),
        (
            _info("get", name="p1", subresource="log"),
            'pods "p1" is forbidden: User "bob" cannot get resource "pods/log" in API group ""'
            ' in the namespace "default"',
        ),
        (_info("get", "", path="/metrics"), 'forbidden: User "bob" cannot get path "/metrics"'),
    ],
)
def test_forbidden_messages(info: RequestInfo, message: str) -> None:
    error = rbac.forbidden("bob", info.verb, info)
    status = error.status()
    assert status["code"] == 403 and status["reason"] == "Forbidden" and status["message"] == message


def test_authorizer_follows_bindings() -> None:
    store = Store(Registry())
    rbac.ensure_bootstrap(store)
    reg = store.registry

    def create(kind: str, body: dict) -> None:
        store.create(
            reg.by_kind("rbac.authorization.k8s.io/v1", kind),
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, **body},
        )

    create(
        "Role",
        {
            "metadata": {"name": "cm-reader", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    create(
        "RoleBinding",
        {
            "metadata": {"name": "alice-reads", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "bot"}],
        },
    )
    create(
        "ClusterRoleBinding",
        {
            "metadata": {"name": "devs-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "Group", "name": "devs"}],
        },
    )
    authz = rbac.Authorizer(store)
    alice, bot = UserInfo("alice", ["system:authenticated"]), rbac.service_account_user("default", "bot")
    dev, admin = UserInfo("dan", ["devs", "system:authenticated"]), UserInfo("root", ["system:masters"])
    cms = _info("list", "configmaps")
    assert authz.allowed(alice, cms) and authz.allowed(bot, cms)
    assert not authz.allowed(alice, _info("list", "configmaps", namespace="kube-system"))
    assert not authz.allowed(alice, _info("create", "configmaps"))
    assert authz.allowed(dev, _info("list", "deployments", "apps", namespace="kube-system"))
    assert not authz.allowed(dev, _info("list", "secrets"))
    assert authz.allowed(admin, _info("delete", "nodes", namespace=""))
    assert authz.allowed(alice, _info("get", "", path="/apis/apps/v1"))  # discovery is open
    assert not authz.allowed(alice, _info("get", "", path="/metrics"))


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('# comment\nt1,alice,1\nt2,bob,2,"devs,ops"\n')
    users = rbac.load_token_file(path)
    assert users["t1"] == UserInfo("alice", ["system:authenticated"])
    assert users["t2"] == UserInfo("bob", ["devs", "ops", "system:authenticated"])
    path.write_text("only-a-token\n")
    with pytest.raises(UsageError, match=r"tokens\.csv:1"):
        rbac.load_token_file(path)


def test_fault_flags() -> None:
    config = faults.parse_flags(["error=create:0.5", "error=*:0.1:503", "latency=get:0.2", "drop-watches=3", "seed=7"])
    assert config.errors["create"] == faults.ErrorRule(0.5, 500) and config.errors["*"] == faults.ErrorRule(0.1, 503)
    assert config.latency == {"get": 0.2} and config.drop_watches_every == 3 and config.seed == 7


@pytest.mark.parametrize("flag", ["error=create", "error=fly:0.1", "error=get:2", "latency=get:x", "boom=1"])
def test_bad_fault_flags(flag: str) -> None:
    with pytest.raises(UsageError):
        faults.parse_flags([flag])
