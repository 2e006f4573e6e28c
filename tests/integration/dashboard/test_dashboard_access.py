"""The dashboard acts as the signed-in user: RBAC decides what is listed, shown and changed."""

from __future__ import annotations

import asyncio
import re

import httpx2 as httpx
from dashboard_env import ALICE_TOKEN, Environment, run_async

from tether.apps.ops import APPLICATION, SYNC_ANNOTATION


def _client(env: Environment, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=env.dashboard_url, headers=headers, timeout=30, follow_redirects=False)


def _listed(html: str) -> list[str]:
    return re.findall(r'data-app="([^"]+)"', html)


def _get_app(env: Environment, namespace: str, name: str) -> dict:
    async def read() -> dict:
        kube = await env.admin()
        try:
            return await kube.get(APPLICATION, name, namespace)
        finally:
            await kube.close()

    return run_async(read)


def test_a_user_of_one_namespace_sees_only_its_apps_and_is_refused_elsewhere(environment: Environment) -> None:
    alice = _client(environment, ALICE_TOKEN)
    page = alice.get("/apps")
    assert page.status_code == 200
    assert _listed(page.text) == ["team-a/api", "team-a/batch", "team-a/web", "team-a/worker"]
    assert "Signed in as <strong>alice</strong>" in page.text
    assert alice.get("/apps/team-b/billing").status_code == 403
    refused = alice.post("/apps/team-b/billing/actions/sync", headers={"Accept": "text/html"})
    assert refused.status_code == 403
    assert "User &#34;alice&#34; cannot get resource &#34;applications&#34;" in refused.text
    assert SYNC_ANNOTATION not in (_get_app(environment, "team-b", "billing")["metadata"].get("annotations") or {})

    done = alice.post("/apps/team-a/web/actions/sync")
    assert done.status_code == 303 and done.headers["location"] == "/apps/team-a/web"
    assert SYNC_ANNOTATION in _get_app(environment, "team-a", "web")["metadata"]["annotations"]


def test_a_service_account_token_signs_in_through_a_token_review(environment: Environment) -> None:
    browser = _client(environment)
    assert browser.get("/apps").status_code == 303  # to the sign-in page
    refused = browser.post("/login", data={"token": "not-a-token", "next": "/apps"})
    assert refused.status_code == 401 and "did not accept the token" in refused.text
    signed_in = browser.post("/login", data={"token": environment.viewer_token, "next": "//evil.example/"})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/apps"
    page = browser.get("/apps")
    assert _listed(page.text) == ["team-b/billing", "team-b/fresh", "team-b/legacy"]
    assert "system:serviceaccount:team-b:viewer" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/apps/team-b/billing").text).group(1)
    # read-only: the API server refuses the patch, the dashboard shows its 403
    refused = browser.post("/apps/team-b/billing/actions/suspend", data={"csrf": csrf})
    assert refused.status_code == 403 and "cannot patch" in refused.text
    assert browser.post("/apps/team-b/billing/actions/suspend", data={"csrf": "forged"}).status_code == 403
    assert _get_app(environment, "team-b", "billing")["spec"]["suspend"] is False


def test_filters_search_and_pages_are_server_side(environment: Environment) -> None:
    admin = _client(environment)
    code = environment.dashboard.sessions.local_code()
    assert admin.get(f"/login/local?code={code}").status_code == 303
    assert admin.get(f"/login/local?code={code}").status_code == 401  # one use only
    assert _listed(admin.get("/apps?health=Degraded").text) == ["team-a/worker"]
    assert _listed(admin.get("/apps?drift=1").text) == ["team-b/billing"]
    assert _listed(admin.get("/apps?label=team%3Dshop").text) == ["team-a/web"]
    assert _listed(admin.get("/apps?q=leg").text) == ["team-b/legacy"]
    assert _listed(admin.get("/apps?namespace=live").text) == ["live/shop"]
    first, second = admin.get("/apps?per_page=25").text, admin.get("/apps?per_page=25&page=2").text
    assert len(_listed(first)) == 8 and "page 1" not in first  # 8 apps fit on one page
    assert _listed(second) == _listed(first)  # a page past the end shows the last one
    overview = admin.get("/overview").text
    assert overview.index("team-a/worker") < overview.index("team-b/legacy")  # Degraded before Missing


def test_the_event_stream_names_only_apps_the_user_may_see(environment: Environment) -> None:
    async def scenario() -> list[str]:
        async with (
            httpx.AsyncClient(
                base_url=environment.dashboard_url, timeout=30, headers={"Authorization": f"Bearer {ALICE_TOKEN}"}
            ) as alice,
            alice.stream("GET", "/events") as stream,
        ):
            lines = stream.aiter_lines()
            assert await anext(lines) == "retry: 5000"
            kube = await environment.admin()
            try:  # a change alice may not see, then one she may: the first event must be the second
                for namespace, name in (("team-b", "legacy"), ("team-a", "api")):
                    await kube.patch(APPLICATION, name, namespace, {"metadata": {"labels": {"touched": "1"}}})
            finally:
                await kube.close()
            return [line async for line in _first_data(lines)]

    assert asyncio.run(scenario()) == ["data: team-a/api"]


async def _first_data(lines):  # type: ignore[no-untyped-def]
    async for line in lines:
        if line.startswith("data: "):
            yield line
            return
