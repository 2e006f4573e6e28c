"""Impersonation views act as another identity over the same connections (RBAC enforced)."""

from __future__ import annotations

from typing import Any

import pytest
from kube_helpers import Cluster, run

from tether.kube import Forbidden, Kube, UnsafeName, service_account_user

RBAC = "rbac.authorization.k8s.io/v1"


def _cm(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"a": "b"}}


async def _grant_configmaps(kube: Kube, ns: str, account: str) -> None:
    """ServiceAccount ``account`` in ``ns`` may do anything with ConfigMaps there, and nothing else."""
    await kube.apply(
        await kube.info("v1", "ServiceAccount"),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": ns}},
    )
    await kube.apply(
        await kube.info(RBAC, "Role"),
        {
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": {"name": "configmaps", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}],
        },
    )
    await kube.apply(
        await kube.info(RBAC, "RoleBinding"),
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": "configmaps", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
        },
    )


def test_a_service_account_view_writes_where_bound_and_is_forbidden_elsewhere(secured: Cluster) -> None:
    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(secured.kubeconfig))
        try:
            namespaces, cms = await kube.info("v1", "Namespace"), await kube.info("v1", "ConfigMap")
            for ns in ("team-a", "team-b"):
                await kube.apply(namespaces, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            await _grant_configmaps(kube, "team-a", "deployer")

            user, groups = service_account_user("team-a", "deployer")
            view = kube.impersonate(user, groups)
            assert view.discovery is kube.discovery  # one discovery cache
            made = await view.apply(cms, _cm("settings", "team-a"))
            assert made["metadata"]["managedFields"][0]["manager"] == "tether"
            assert (await view.get(cms, "settings", "team-a"))["data"] == {"a": "b"}
            assert await view.delete(cms, "settings", "team-a") is True
            await view.apply(cms, _cm("settings", "team-a"))

            with pytest.raises(
                Forbidden,
                match=r'system:serviceaccount:team-a:deployer" cannot patch resource '
                r'"configmaps".*"team-b"',
            ):
                await view.apply(cms, _cm("settings", "team-b"))
            with pytest.raises(Forbidden):
                await view.list(cms, "team-b")
            with pytest.raises(Forbidden):  # and nothing cluster-wide
                await view.get(namespaces, "team-a")
            assert kube.responses[("PATCH", 403)] == 1  # a refusal is final: not retried

            # the view's identity does not leak into the client it came from
            await kube.apply(cms, _cm("by-admin", "team-b"))
            await view.close()  # leaves the shared pool open
            assert (await kube.get(cms, "by-admin", "team-b"))["data"] == {"a": "b"}
            assert await kube.get(cms, "settings", "team-b") is None
            assert (await kube.get(cms, "settings", "team-a"))["data"] == {"a": "b"}
            # the view counts into the same metrics
            assert kube.requests is view.requests and kube.responses is view.responses
        finally:
            await kube.close()

    run(scenario())


def test_groups_and_users_of_a_view(secured: Cluster) -> None:
    async def scenario() -> None:
        kube = await Kube.connect(kubeconfig=str(secured.kubeconfig))
        try:
            cms = await kube.info("v1", "ConfigMap")
            nobody = kube.impersonate("nobody")
            with pytest.raises(Forbidden, match='User "nobody" cannot list'):
                await nobody.list(cms, "default")
            # a view of a view acts as the newest identity only
            masters = nobody.impersonate("someone", ["system:masters"])
            assert isinstance(await masters.list(cms, "default"), list)
            for bad in ("", "line\nbreak", "nul\x00"):
                with pytest.raises(UnsafeName):
                    kube.impersonate(bad)
                with pytest.raises(UnsafeName):
                    kube.impersonate("someone", [bad])
        finally:
            await kube.close()

    run(scenario())
