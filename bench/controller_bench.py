"""Benchmark of the pull-mode controller, end to end on this machine, in one run.

Run: ``python -m bench.controller_bench [--apps 1000] [--objects 10] [--commits 50]``. It prints a
table and writes nothing else. The sandbox and the Git server run in this process (as in
``tether demo``); the controller and ``tether apply`` run as their own processes, so the
controller's peak RSS (``VmHWM``) is its own.

1. push -> applied: a commit pushed to the Git server (which announces it with a signed webhook)
   until the Application is Ready at that commit; ``--commits`` times, p50 and p99.
2. edit -> corrected: an out-of-band change of a managed ConfigMap until selfHeal reverted it.
3. cold sync: ``--apps`` Applications x ``--objects`` ConfigMaps from one repository, from the
   controller's start to every app Ready, against one ``tether apply`` of the same objects.
4. steady state: every app resynced (its interval passed) with nothing changed: writes and
   LIST requests counted on the sandbox's /metrics.
5. a commit touching one app of the monorepo: renders counted on the controller's /metrics.
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
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tether.cli.demo_env import LocalEnvironment, wait_until
from tether.kube import Kube

TETHER = [sys.executable, "-c", "from tether.cli.main import main; main()"]
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(metrics: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in metrics.items() if n == name and all((k, w) in ls for k, w in labels.items()))


def verbs(metrics: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for (name, labels), value in metrics.items():
        if name == "apiserver_request_total":
            verb = dict(labels).get("verb", "")
            out[verb] = out.get(verb, 0) + value
    return out


def configmap(name: str, value: str) -> str:
    return f'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: "{value}"\n'


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class ControllerProcess:
    def __init__(self, env: LocalEnvironment, directory: Path, port: int, *args: str) -> None:
        self.port = port
        self.log = (directory / f"controller-{port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                *TETHER,
                "controller",
                "--kubeconfig",
                str(env.kubeconfig),
                "-A",
                "--listen",
                f"127.0.0.1:{port}",
                "--webhook-secret",
                "tether-system/tether-webhooks",
                "--cache-dir",
                str(directory / "cache"),
                *args,
            ],
            stdout=self.log,
            stderr=self.log,
        )

    def metrics(self) -> dict:
        return scrape(f"http://127.0.0.1:{self.port}/metrics")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


async def _true(value: bool) -> bool:
    return value


async def app_ready(kube: Kube, name: str, commit: str) -> bool:
    app = await kube.get(await kube.info("tether.dev/v1alpha1", "Application"), name, "default")
    status = (app or {}).get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return ready.get("status") == "True" and status.get("lastAppliedRevision") == commit


async def latency(env: LocalEnvironment, kube: Kube, commits: int, edits: int) -> dict[str, Any]:
    info = await kube.info("tether.dev/v1alpha1", "Application")
    cms = await kube.info("v1", "ConfigMap")
    first = env.commit("Latency app", {f"latency/cm-{i}.yaml": configmap(f"lat-{i}", "0") for i in range(10)})
    app = env.application("latency", path="latency")
    app["spec"]["destination"] = {"namespace": "latency", "createNamespace": True}
    await kube.apply(info, app, force=True, field_manager="bench")
    await wait_until("the latency app", lambda: app_ready(kube, "latency", first), timeout=60)
    pushes = []
    for n in range(1, commits + 1):
        started = time.monotonic()
        commit = env.commit(f"Bump {n}", {f"latency/cm-{n % 10}.yaml": configmap(f"lat-{n % 10}", str(n))})
        await wait_until("a push", lambda commit=commit: app_ready(kube, "latency", commit), timeout=60, interval=0.01)
        pushes.append(time.monotonic() - started)
    corrections = []
    for n in range(edits):
        await kube.patch(cms, "lat-0", "latency", {"data": {"v": f"edited-{n}"}}, field_manager="kubectl-edit")
        started = time.monotonic()

        async def reverted() -> bool:
            live = await kube.get(cms, "lat-0", "latency")
            return not ((live or {}).get("data") or {}).get("v", "").startswith("edited")

        await wait_until("an edit to be corrected", reverted, timeout=60, interval=0.01)
        corrections.append(time.monotonic() - started)
        await asyncio.sleep(0.2)
    return {
        "push_p50": statistics.median(pushes),
        "push_p99": percentile(pushes, 0.99),
        "push_n": len(pushes),
        "edit_p50": statistics.median(corrections),
        "edit_n": len(corrections),
    }


async def create_apps(kube: Kube, env: LocalEnvironment, apps: int, interval: str) -> None:
    info = await kube.info("tether.dev/v1alpha1", "Application")
    semaphore = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        app = env.application(f"app-{i:04}", path=f"mono/app-{i:04}", interval=interval)
        app["spec"]["destination"] = {"namespace": "mono"}
        async with semaphore:
            await kube.apply(info, app, force=True, field_manager="bench")

    await asyncio.gather(*(one(i) for i in range(apps)))


def synced_apps(controller: ControllerProcess, commit: str) -> int:
    return sum(
        1
        for (name, labels), value in controller.metrics().items()
        if name == "tether_application_info"
        and value == 1
        and dict(labels).get("revision") == commit
        and dict(labels).get("name", "").startswith("app-")
        and dict(labels).get("sync") == "Synced"
        and dict(labels).get("health") == "Healthy"
    )


async def main(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="tether-controller-bench-"))
    env = LocalEnvironment(directory, sim_delay=0.2).start()
    rows: list[tuple[str, str, str]] = []
    kube = await Kube.connect(kubeconfig=str(env.kubeconfig))
    try:
        from tether.cli.demo_tour import _create_webhook_secret

        await _create_webhook_secret(kube, env)
        controller = ControllerProcess(env, directory, env.controller_port)
        await wait_until("the controller", lambda: _true(controller.ready()), timeout=60)
        progress("controller ready; measuring push and edit latency")
        figures = await latency(env, kube, args.commits, args.edits)
        controller.stop()
        rows += [
            (f"push -> applied (webhook), p50 of {figures['push_n']}", f"{figures['push_p50']:.3f} s", "< 1 s"),
            (f"push -> applied (webhook), p99 of {figures['push_n']}", f"{figures['push_p99']:.3f} s", "< 3 s"),
            (f"edit -> corrected (selfHeal), p50 of {figures['edit_n']}", f"{figures['edit_p50']:.3f} s", "< 1 s"),
        ]

        # ---- the monorepo: apps x objects, one repository
        files = {
            f"mono/app-{i:04}/cm-{k}.yaml": configmap(f"app-{i:04}-{k}", "1")
            for i in range(args.apps)
            for k in range(args.objects)
        }
        progress(f"committing the monorepo ({len(files)} files)")
        head = env.commit("The monorepo", files)
        await kube.apply(
            await kube.info("v1", "Namespace"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mono"}},
            force=True,
            field_manager="bench",
        )
        await create_apps(kube, env, args.apps, args.interval)
        sandbox_metrics = f"{env.sandbox_url}/metrics"
        progress("Applications created; cold sync")
        controller = ControllerProcess(env, directory, env.controller_port, "--concurrency", str(args.concurrency))
        started = time.monotonic()
        await wait_until("the controller", lambda: _true(controller.ready()), timeout=60)
        await wait_until(
            # every 2 s: a /metrics scrape of 1,000 apps' gauges costs the controller CPU the cold sync needs
            "every app Ready",
            lambda: _true(synced_apps(controller, head) == args.apps),
            timeout=1800,
            interval=2.0,
        )
        cold = time.monotonic() - started
        rss_cold = controller.peak_rss_mb()

        # ---- the same objects with one tether apply (into a namespace of its own: cold too)
        progress(f"cold sync {cold:.1f}s; one tether apply of the same objects")
        single = directory / "single"
        for i in range(args.apps):
            for k in range(args.objects):
                path = single / f"app-{i:04}" / f"cm-{k}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(configmap(f"app-{i:04}-{k}", "1"))
        await kube.apply(
            await kube.info("v1", "Namespace"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "single"}},
            force=True,
            field_manager="bench",
        )
        started = time.monotonic()
        done = subprocess.run(
            [*TETHER, "apply", str(single), "--app", "single", "-n", "single", "--kubeconfig", str(env.kubeconfig)],
            capture_output=True,
            text=True,
            check=False,
        )
        one_apply = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"tether apply failed: {done.stderr[-2000:]}")
        rows += [
            (f"cold sync, {args.apps} apps x {args.objects} objects (controller)", f"{cold:.1f} s", ""),
            (f"one tether apply of the same {args.apps * args.objects} objects", f"{one_apply:.1f} s", ""),
            ("cold sync / one tether apply", f"{cold / one_apply:.2f} x", "<= 1.5 x"),
        ]

        # ---- steady state: every app resynced (interval passed), nothing changed
        progress("steady state")
        before_sandbox, before = verbs(scrape(sandbox_metrics)), controller.metrics()
        reconciles = total(before, "tether_reconcile_total")
        wanted = reconciles + args.rounds * args.apps
        window = time.monotonic()
        await wait_until(
            "the resync rounds",
            lambda: _true(total(controller.metrics(), "tether_reconcile_total") >= wanted),
            timeout=1800,
            interval=1.0,
        )
        window = time.monotonic() - window
        after_sandbox, after = verbs(scrape(sandbox_metrics)), controller.metrics()
        resyncs = total(after, "tether_reconcile_total") - reconciles
        writes = sum(after_sandbox.get(v, 0) - before_sandbox.get(v, 0) for v in WRITE_VERBS)
        lists = after_sandbox.get("list", 0) - before_sandbox.get("list", 0)
        rows += [
            (f"steady state: {resyncs:.0f} resyncs in {window:.0f} s, writes", f"{writes:.0f}", "0"),
            (f"steady state: {resyncs:.0f} resyncs in {window:.0f} s, LIST requests", f"{lists:.0f}", "0"),
        ]

        # ---- a commit touching one app of the monorepo
        progress("a commit touching one app")
        renders = total(controller.metrics(), "tether_renders_total")
        started = time.monotonic()
        touched = env.commit("Touch one app", {"mono/app-0007/cm-0.yaml": configmap("app-0007-0", "2")})
        await wait_until("the touched app", lambda: app_ready(kube, "app-0007", touched), timeout=300, interval=0.05)
        touched_latency = time.monotonic() - started
        await wait_until(
            "every app at the new commit",
            lambda: _true(synced_apps(controller, touched) == args.apps),
            timeout=600,
            interval=0.5,
        )
        rerendered = total(controller.metrics(), "tether_renders_total") - renders
        rss = controller.peak_rss_mb()
        controller.stop()
        rows += [
            ("commit touching 1 app of the monorepo: renders", f"{rerendered:.0f}", "1"),
            ("  ... push -> that app applied", f"{touched_latency:.2f} s", ""),
            ("controller peak RSS (VmHWM) after the cold sync", f"{rss_cold:.0f} MB", "< 250 MB"),
            ("controller peak RSS (VmHWM) at the end", f"{rss:.0f} MB", "< 250 MB"),
        ]
    finally:
        await kube.close()
        env.stop()
    width = max(len(r[0]) for r in rows)
    print(
        f"controller bench: {os.cpu_count()} cores, python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(f"{'figure':<{width}}  {'measured':>12}  aim")
    for name, value, aim in rows:
        print(f"{name:<{width}}  {value:>12}  {aim}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--interval", default="30s", help="the monorepo apps' spec.interval (resync period)")
    parser.add_argument("--rounds", type=int, default=2, help="steady-state resyncs of every app")
    parser.add_argument("--concurrency", type=int, default=4)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
