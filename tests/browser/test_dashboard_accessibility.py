"""Accessibility of the dashboard in Chromium: keyboard order and visible focus, labels, WCAG AA contrast.

Contrast is computed from the styles the browser applied (text colour against the composited
backgrounds behind it), so a change to the CSS or to the markup that puts text on another
background is caught.
"""

from __future__ import annotations

import re
from typing import Any

from browser_helpers import CONTRAST_JS, FOCUSED_JS, UNLABELLED_JS, as_admin
from dashboard_env import Environment
from playwright.sync_api import expect

from tether.apps.ops import APPLICATION
from tether.dashboard.views import HEALTH_STATES, SYNC_STATES


def _sign_in_as_admin(page: Any, env: Environment) -> None:
    page.goto(f"{env.dashboard_url}login/local?code={env.dashboard.sessions.local_code()}")
    expect(page.get_by_role("heading", name="Applications")).to_be_visible()


def _tab_until(page: Any, done: Any, limit: int = 40) -> list[dict[str, Any]]:
    """Press Tab until ``done(focused)``; every element focused on the way, in order."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_JS)
        seen.append(focused)
        if done(focused):
            return seen
    raise AssertionError(f"Tab never reached the element; focused in turn: {[f['id'] or f['text'] for f in seen]}")


def _focus_is_visible(seen: list[dict[str, Any]]) -> None:
    hidden = [f for f in seen if f["outline"] == "none" or f["width"] < 2 or f["ratio"] < 3]
    assert not hidden, f"focus not visible (an outline of 2px or more with 3:1 contrast) on {hidden}"


def _is_app_link(focused: dict[str, Any]) -> bool:
    return focused["tag"] == "a" and re.fullmatch(r"/apps/[^/?]+/[^/?]+", focused["href"]) is not None


def test_the_keyboard_reaches_search_filters_apps_and_actions_in_order_with_focus_visible(
    page: Any, environment: Environment
) -> None:
    _sign_in_as_admin(page, environment)
    seen = _tab_until(page, _is_app_link)
    ids = [f["id"] for f in seen]
    controls = ["q", "namespace", "sync", "health", "label", "drift", "per_page"]
    assert [i for i in ids if i in controls] == controls  # each once, in the order they are shown
    apply = next(i for i, f in enumerate(seen) if f["tag"] == "button" and f["text"] == "Apply")
    assert ids.index("q") < ids.index("per_page") < apply < len(seen) - 1
    assert seen[-1]["href"] == "/apps/live/shop"  # the first app of the table
    _focus_is_visible(seen)

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/apps/live/shop$"))
    expect(page.get_by_role("heading", name=re.compile(r"^shop"))).to_be_visible()
    actions = _tab_until(page, lambda f: f["text"] == "Suspend")
    buttons = [f["text"] for f in actions if f["tag"] == "button"]
    assert buttons[-3:] == ["Sync now", "Refresh from Git", "Suspend"]
    _focus_is_visible(actions)


def test_every_form_control_has_a_label(page: Any, environment: Environment) -> None:
    page.goto(f"{environment.dashboard_url}login")
    assert page.evaluate(UNLABELLED_JS) == []
    _sign_in_as_admin(page, environment)
    for path in ("apps", "overview", "apps/team-a/web", "apps/live/shop/diff"):
        page.goto(environment.dashboard_url + path)
        assert page.evaluate(UNLABELLED_JS) == [], path
    # the history of team-a/web: a compare radio pair and a rollback button, each named by its revision
    page.goto(environment.dashboard_url + "apps/team-a/web")
    expect(page.get_by_role("button", name=re.compile(r"^Roll back here to b2b2b2b2"))).to_be_visible()
    expect(page.get_by_label("compare from b2b2b2b2")).to_be_visible()


def _contrast_failures(page: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    measured = page.evaluate(CONTRAST_JS)
    return measured, [m for m in measured if m["ratio"] < m["needed"]]


def test_text_and_status_badges_meet_wcag_aa_contrast(page: Any, environment: Environment) -> None:
    page.goto(f"{environment.dashboard_url}login")
    failures = _contrast_failures(page)[1]
    _sign_in_as_admin(page, environment)
    measured, failing = _contrast_failures(page)
    failures += failing
    badges = {m["element"] for m in measured if m["element"].startswith("span.badge ")}
    # every sync and health state the seeded apps are in has its badge on the list, each measured
    expected = {f"span.badge sync-{s.lower()}" for s in SYNC_STATES} | {
        f"span.badge health-{h.lower()}" for h in HEALTH_STATES
    }
    assert expected <= badges, expected - badges
    for path, ready in (
        ("overview", "Failing applications"),
        ("apps/team-a/worker", "Resources"),
        ("apps/live/shop", "Pending changes"),
    ):
        page.goto(environment.dashboard_url + path)
        expect(page.get_by_role("heading", name=re.compile(ready))).to_be_visible()
        if path == "apps/live/shop":  # the pending diff (added and removed lines) loads after the page
            expect(page.locator("#pending pre.diff, #pending p:not(:has(a))").first).to_be_visible()
        failures += _contrast_failures(page)[1]
    assert not failures, f"below WCAG AA contrast: {failures}"


def test_a_live_update_keeps_the_keyboard_focus_where_it_was(page: Any, environment: Environment) -> None:
    _sign_in_as_admin(page, environment)
    page.goto(f"{environment.dashboard_url}apps/team-a/web")
    expect(page.get_by_role("heading", name=re.compile(r"^web"))).to_be_visible()
    expect(page.locator("html")).to_have_attribute("data-live", "open")  # the event stream is open
    # a link in a live part (buttons in forms hold refreshes back while focused)
    focused = _tab_until(page, lambda f: f["href"] == "/apps?namespace=team-a")[-1]
    page.evaluate(
        "() => { window.__refreshed = false;"
        " document.addEventListener('tether:refreshed', () => { window.__refreshed = true; }, { once: true }); }"
    )

    async def touch(kube: Any) -> None:  # any change to the app: the page fetches itself and swaps its live parts
        await kube.patch(
            APPLICATION, "web", "team-a", {"metadata": {"annotations": {"example.com/touched": "1"}}}, field_manager="t"
        )

    as_admin(environment, touch)
    for _ in range(300):  # wait_for_function evaluates a string, which the page's CSP forbids
        if page.evaluate("() => window.__refreshed"):
            break
        page.wait_for_timeout(100)
    assert page.evaluate("() => window.__refreshed"), "the page never refreshed its live parts"
    after = page.evaluate(FOCUSED_JS)
    assert (after["tag"], after["href"]) == (focused["tag"], focused["href"]), after
