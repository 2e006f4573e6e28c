"""The dashboard in a real browser: list, resource tree of a degraded app, sync, and a tenant's view."""

from __future__ import annotations

import re
from typing import Any

from browser_helpers import as_admin, screenshot
from dashboard_env import ALICE_TOKEN, Environment
from playwright.sync_api import expect

from tether.apps.ops import APPLICATION


def _sign_in_as_admin(page: Any, env: Environment) -> None:
    page.goto(f"{env.dashboard_url}login/local?code={env.dashboard.sessions.local_code()}")
    expect(page.get_by_role("heading", name="Applications")).to_be_visible()


def test_the_list_shows_every_apps_sync_and_health(page: Any, environment: Environment) -> None:
    _sign_in_as_admin(page, environment)
    expected = {
        "team-a/web": ("Synced", "Healthy"),
        "team-a/api": ("OutOfSync", "Progressing"),
        "team-a/worker": ("Synced", "Degraded"),
        "team-a/batch": ("Synced", "Suspended"),
        "team-b/billing": ("Synced", "Healthy"),
        "team-b/legacy": ("OutOfSync", "Missing"),
        "team-b/fresh": ("Unknown", "Unknown"),
    }
    for app, (sync, health) in expected.items():
        row = page.locator(f'tr[data-app="{app}"]')
        expect(row.locator("td").nth(4)).to_have_text(sync)
        expect(row.locator("td").nth(5)).to_contain_text(health)
    expect(page.locator('tr[data-app="team-b/billing"]')).to_contain_text("1 drifted")
    expect(page.locator('tr[data-app="team-a/web"]')).to_contain_text("by Dana Developer")
    screenshot(page, "list")
    page.get_by_role("link", name="Health overview").click()
    expect(page.get_by_role("heading", name="Failing applications")).to_be_visible()
    screenshot(page, "overview")


def test_a_click_opens_the_tree_of_a_degraded_app_with_the_failing_pods_reason(
    page: Any, environment: Environment
) -> None:
    _sign_in_as_admin(page, environment)
    page.get_by_label("Health").select_option("Degraded")
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("link", name="worker", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^worker"))).to_be_visible()
    pod = page.locator("li.node", has=page.locator(".kind", has_text=re.compile("^Pod$"))).first
    # the Pod appears under its ReplicaSet under the Deployment; its image never pulls
    expect(pod).to_contain_text("ImagePullBackOff")
    expect(pod).to_contain_text("Degraded")
    expect(page.locator("li.node", has_text="ReplicaSet").first).to_be_visible()
    screenshot(page, "app-degraded")


def test_the_sync_button_applies_a_pending_change(page: Any, environment: Environment) -> None:
    def reported(kube: Any) -> Any:
        async def check() -> Any:
            obj = await kube.get(APPLICATION, "shop", "live")
            return ((obj.get("status") or {}).get("sync") or {}).get("status") == "OutOfSync"

        return kube.wait_for("live/shop reported OutOfSync", check, 60)

    as_admin(environment, reported)
    _sign_in_as_admin(page, environment)
    page.goto(f"{environment.dashboard_url}apps/live/shop")
    expect(page.locator("#pending")).to_contain_text("ConfigMap/live-dest/settings")
    expect(page.locator("#pending")).to_contain_text("colour: blue")
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_role("status").first).to_contain_text("Sync requested")

    async def settings(kube: Any) -> Any:
        info = await kube.info("v1", "ConfigMap")

        async def check() -> Any:
            return await kube.get(info, "settings", "live-dest")

        return await kube.wait_for("the ConfigMap applied by the sync", check, 60)

    assert as_admin(environment, settings)["data"] == {"colour": "blue"}
    # the page follows the controller's status by itself (server-sent events)
    expect(page.locator("h1 .badge").first).to_have_text("Synced", timeout=60_000)
    screenshot(page, "app-synced")


def test_a_tenant_sees_only_its_namespace_and_gets_403_elsewhere(page: Any, environment: Environment) -> None:
    page.goto(f"{environment.dashboard_url}apps")
    page.get_by_label("Bearer token").fill(ALICE_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as alice")).to_be_visible()
    rows = page.locator("tbody tr[data-app]")
    expect(rows).to_have_count(4)
    assert all(name.startswith("team-a/") for name in rows.evaluate_all("rows => rows.map(r => r.dataset.app)"))
    response = page.goto(f"{environment.dashboard_url}apps/team-b/billing")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text('User "alice" cannot get resource "applications"')
    screenshot(page, "forbidden")
    status = page.evaluate("""async () => {
        const form = new FormData();
        return (await fetch('/apps/team-b/billing/actions/sync', {method: 'POST', body: form})).status; }""")
    assert status == 403
