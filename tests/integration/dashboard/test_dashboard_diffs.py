"""The app page's diffs against a real Git repository: history between two commits, pending changes read-only.

The app ``team-a/hist`` (and its copy ``team-b/hist``) is rendered from the directory ``hist/`` of
the repository the local Git server serves; its history names two real commits, each with a
ConfigMap and a Secret whose values differ. Revision A is applied to the cluster by the engine as
the admin, as a sync would have.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from dashboard_env import ALICE_TOKEN, Environment, run_async, write_app

from tether.engine import AppIdentity, ApplyOptions, apply_plan, make_plan
from tether.model import Manifest

SECRET_VALUES = ("first-password-value", "second-password-value")


def _configmap(colour: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hist-settings\ndata:\n  colour: {colour}\n"


def _secret(password: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: hist-secret\nstringData:\n  password: {password}\n"


def _history(*revisions: str) -> list[dict]:
    return [
        {
            "revision": r,
            "author": "Dana Developer",
            "subject": f"hist {i}",
            "result": "Succeeded",
            "deployedAt": f"2025-06-0{5 - i}T10:00:00Z",
        }
        for i, r in enumerate(revisions)
    ]


@pytest.fixture(scope="module")
def revisions(environment: Environment) -> Iterator[tuple[str, str]]:
    (environment.work / "hist").mkdir()
    first = environment.commit(
        "hist: red", {"hist/settings.yaml": _configmap("red"), "hist/secret.yaml": _secret(SECRET_VALUES[0])}
    )
    second = environment.commit(
        "hist: green", {"hist/settings.yaml": _configmap("green"), "hist/secret.yaml": _secret(SECRET_VALUES[1])}
    )

    async def seed() -> None:
        kube = await environment.admin()
        try:
            for namespace in ("team-a", "team-b"):
                await write_app(
                    kube,
                    {
                        "name": "hist",
                        "namespace": namespace,
                        "url": environment.repo_url,
                        "path": "hist",
                        "destination": namespace,
                        "automated": False,
                        "status": {
                            "sync": {"status": "OutOfSync"},
                            "health": {"status": "Healthy"},
                            "lastAppliedRevision": first,
                            "sourceRevision": second,
                            "history": _history(second, first),
                        },
                    },
                )
            # revision A as a sync applied it (labels, digest and inventory included)
            settings = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "hist-settings"},
                "data": {"colour": "red"},
            }
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "hist-secret"},
                "stringData": {"password": SECRET_VALUES[0]},
            }
            manifests = [Manifest(settings), Manifest(secret)]
            plan = await make_plan(kube, manifests, AppIdentity("team-a", "hist"), default_namespace="team-a")
            await apply_plan(kube, plan, ApplyOptions())
        finally:
            await kube.close()

    run_async(seed)
    yield first, second


def _signed_in_admin(env: Environment) -> httpx.Client:
    client = httpx.Client(base_url=env.dashboard_url, timeout=60, follow_redirects=False)
    assert client.get(f"/login/local?code={env.dashboard.sessions.local_code()}").status_code == 303
    return client


def _as(env: Environment, token: str) -> httpx.Client:
    return httpx.Client(base_url=env.dashboard_url, timeout=60, headers={"Authorization": f"Bearer {token}"})


def _no_secret_values(text: str) -> None:
    for value in SECRET_VALUES:
        assert value not in text
        assert base64.b64encode(value.encode()).decode() not in text


def _diff_lines(page: str, kind: str) -> list[str]:
    return [html.unescape(line) for line in re.findall(rf'<span class="{kind}">([^<]*)</span>', page)]


def test_the_history_compares_two_real_commits_with_secret_values_masked(
    environment: Environment, revisions: tuple[str, str]
) -> None:
    first, second = revisions
    page = _signed_in_admin(environment).get(f"/apps/team-a/hist?from={first[:10]}&to={second[:10]}")
    assert page.status_code == 200
    assert f"Changes from <code>{first[:8]}</code> to <code>{second[:8]}</code>" in page.text
    removed, added = _diff_lines(page.text, "del"), _diff_lines(page.text, "add")
    assert "-  colour: red" in removed and "+  colour: green" in added
    # the Secret changed, so its (masked) value lines differ; the values themselves never appear
    masked_removed = [line for line in removed if "password: <masked sha256:" in line]
    masked_added = [line for line in added if "password: <masked sha256:" in line]
    assert len(masked_removed) == 1 and len(masked_added) == 1 and masked_removed[0][1:] != masked_added[0][1:]
    assert f"Secret team-a/hist-secret @ {first[:12]}" in page.text
    assert f"Secret team-a/hist-secret @ {second[:12]}" in page.text
    _no_secret_values(page.text)


def test_a_user_who_may_not_patch_sees_a_read_only_pending_diff(
    environment: Environment, revisions: tuple[str, str]
) -> None:
    alice = _as(environment, ALICE_TOKEN).get("/apps/team-a/hist/diff")
    assert alice.status_code == 200
    text = html.unescape(alice.text)
    assert "Read-only comparison" in text
    assert 'User "alice" cannot' in text  # the API server's refusal, as it gave it
    # alice may read ConfigMaps in team-a: the change from Git is shown, against the live object
    assert "ConfigMap/team-a/hist-settings" in text
    assert "-  colour: red" in _diff_lines(alice.text, "del") and "+  colour: green" in _diff_lines(alice.text, "add")
    # ...but not Secrets: named, with the reason, its content not shown
    assert re.search(r'<li><code>Secret/team-a/hist-secret</code>: [^<]*cannot get resource "secrets"', text)
    _no_secret_values(alice.text)

    # the admin may dry-run: the exact diff, which includes the Secret (masked)
    admin = html.unescape(_signed_in_admin(environment).get("/apps/team-a/hist/diff").text)
    assert "Read-only comparison" not in admin
    assert "Secret/team-a/hist-secret" in admin and "password: <masked sha256:" in admin
    _no_secret_values(admin)


def test_a_user_who_may_read_no_objects_is_told_why_nothing_can_be_compared(
    environment: Environment, revisions: tuple[str, str]
) -> None:
    viewer = _as(environment, environment.viewer_token).get("/apps/team-b/hist/diff")
    assert viewer.status_code == 200
    text = html.unescape(viewer.text)
    assert "Read-only comparison" in text
    assert "You may not read 2 of the objects" in text
    assert re.search(r'<li><code>ConfigMap/team-b/hist-settings</code>: [^<]*cannot get resource "configmaps"', text)
    assert "No changes among the objects you can read (0 unchanged)" in text
