"""Benchmark of the dashboard: server time of the app list and app page at 1,000 and 10,000
Applications, and of the app page of an app with 1,000 objects (p50 and p90 of N requests); then
the time to interactive of the list and that app page in Chromium (p50 and p90 of M loads).

Run: ``.venv/bin/python -m bench.dashboard_bench [--apps 1000,10000] [--objects 1000] [--requests 20]
[--loads 10] [--no-browser]``. The sandbox runs in its own process (no simulation); the dashboard in
this one, signed in through its one-time local link. Server times are measured around each HTTP
request over loopback, so they are what the server took plus the loopback round trip; the
sandbox's own list time is part of the app page (it reads the app, its objects and Events through
the API as the user).

Time to interactive: Debian's Chromium (``/usr/bin/chromium``, headless; nothing is downloaded)
driven by Playwright loads each page ``--loads`` times after one warm-up load (static files then
come from its cache, as for a returning user). Each figure is the time from the start of the
navigation to the mark ``tether:interactive`` that ``dashboard.js`` sets when htmx has processed
the page (``domInteractive`` is printed next to it). The pending diff, which the app page loads
after it is interactive, is not requested: its time is Git's and the renderer's, not the page's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tether.apps.ops import APPLICATION
from tether.cli.demo_env import free_port
from tether.controller.api import install_crd
from tether.dashboard.server import Dashboard, DashboardOptions
from tether.engine import APP_LABEL, APP_NAMESPACE_LABEL, AppIdentity, update_inventory
from tether.kube import Kube
from tether.model import ObjectRef


def _app(i: int) -> dict[str, Any]:
    namespace = f"team-{i % 20}"
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": f"app-{i:05d}", "namespace": namespace, "labels": {"team": f"t{i % 7}"}},
        "spec": {"source": {"url": "https://git.example/apps.git", "ref": {"branch": "main"}, "path": f"a/{i}"}},
    }


_STATUS = {
    "sync": {"status": "Synced"},
    "health": {"status": "Healthy"},
    "lastAppliedRevision": "ab" * 20,
    "history": [{"revision": "ab" * 20, "author": "Dana", "deployedAt": "2025-06-01T10:00:00Z"}],
    "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "applied"}],
}


async def _populate(kube: Kube, start: int, stop: int) -> None:
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with gate:
            obj = _app(i)
            await kube.apply(APPLICATION, obj, field_manager="bench")
            await kube.patch(
                APPLICATION,
                obj["metadata"]["name"],
                obj["metadata"]["namespace"],
                {"status": _STATUS},
                subresource="status",
            )

    await asyncio.gather(*(one(i) for i in range(start, stop)))


async def _big_app(kube: Kube, objects: int) -> None:
    labels = {APP_LABEL: "app-00000", APP_NAMESPACE_LABEL: "team-0"}
    info = await kube.info("v1", "ConfigMap")
    gate = asyncio.Semaphore(16)
    refs = []

    async def one(i: int) -> None:
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"part-{i:04d}", "namespace": "team-0", "labels": labels},
            "data": {"i": str(i)},
        }
        refs.append(ObjectRef.of(obj))
        async with gate:
            await kube.apply(info, obj, field_manager="bench")

    await asyncio.gather(*(one(i) for i in range(objects)))
    await update_inventory(kube, AppIdentity("team-0", "app-00000"), add=refs)


async def _timed(client: httpx.AsyncClient, path: str, requests: int) -> tuple[float, float]:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return _p50_p90(samples)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_TIMINGS_JS = """() => { const nav = performance.getEntriesByType("navigation")[0];
  return [performance.getEntriesByName("tether:interactive")[0].startTime, nav.domInteractive]; }"""


def _p50_p90(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[max(int(len(samples) * 0.9) - 1, 0)]


async def _time_to_interactive(base: str, sign_in: str, pages: list[tuple[str, str]], loads: int, size: int) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 860})
            page = await context.new_page()
            await page.route("**/diff", lambda route: route.abort())
            await page.goto(base + sign_in)
            for label, path in pages:
                interactive, dom = [], []
                for load in range(loads + 1):
                    await page.goto(base + path, wait_until="load")
                    await page.wait_for_function("performance.getEntriesByName('tether:interactive').length > 0")
                    mark, dom_interactive = await page.evaluate(_TIMINGS_JS)
                    if load:  # the first load fills the browser's cache
                        interactive.append(mark)
                        dom.append(dom_interactive)
                p50, p90 = _p50_p90(interactive)
                print(f"{size:>7} {label:<31} {p50:>8.1f} {p90:>8.1f} {statistics.median(dom):>10.1f}", flush=True)
        finally:
            await browser.close()


async def run(sizes: list[int], objects: int, requests: int, loads: int = 0) -> None:
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="tether-dashboard-bench-"))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "sandbox",
            "--port",
            str(port),
            "--data",
            str(directory / "data"),
            "--no-simulation",
            "--kubeconfig-out",
            str(directory / "kubeconfig"),
        ],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if (directory / "kubeconfig").exists():
                break
            await asyncio.sleep(0.05)
        kube = await Kube.connect(kubeconfig=str(directory / "kubeconfig"))
        await install_crd(kube)
        namespaces = await kube.info("v1", "Namespace")
        for n in range(20):
            await kube.apply(namespaces, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{n}"}})
        await _big_app(kube, objects)
        print(f"{'apps':>7} {'page':<31} {'p50 ms':>8} {'p90 ms':>8}")
        made = 0
        for size in sizes:
            await _populate(kube, made, size)
            made = size
            dashboard = Dashboard(kube, DashboardOptions(local_sign_in=True))
            from aiohttp import web

            runner = web.AppRunner(dashboard.app, access_log=None)
            await runner.setup()
            web_port = free_port()
            await web.TCPSite(runner, "127.0.0.1", web_port).start()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=60) as client:
                await client.get(f"/login/local?code={dashboard.sessions.local_code()}")
                for label, path in (
                    ("list (first page of 50)", "/apps"),
                    ("list filtered (health, search)", "/apps?health=Healthy&q=app-01"),
                    ("health overview", "/overview"),
                    ("app page (few objects)", "/apps/team-1/app-00001"),
                    (f"app page ({objects} objects)", "/apps/team-0/app-00000"),
                ):
                    p50, p90 = await _timed(client, path, requests)
                    print(f"{size:>7} {label:<31} {p50:>8.1f} {p90:>8.1f}", flush=True)
            if loads:
                print(f"{'apps':>7} {'interactive in Chromium':<31} {'p50 ms':>8} {'p90 ms':>8} {'domInt. ms':>10}")
                await _time_to_interactive(
                    f"http://127.0.0.1:{web_port}",
                    f"/login/local?code={dashboard.sessions.local_code()}",
                    [("list (first page of 50)", "/apps"), (f"app page ({objects} objects)", "/apps/team-0/app-00000")],
                    loads,
                    size,
                )
            await runner.cleanup()
        await kube.close()
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="1000,10000")
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--loads", type=int, default=10, help="page loads per page in Chromium")
    parser.add_argument("--no-browser", action="store_true", help="server times only")
    args = parser.parse_args()
    loads = 0 if args.no_browser else args.loads
    if loads and not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is not installed (scripts/system-deps.sh installs it): server times only", flush=True)
        loads = 0
    asyncio.run(run([int(s) for s in args.apps.split(",")], args.objects, args.requests, loads))


if __name__ == "__main__":
    main()
