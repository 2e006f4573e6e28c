"""A sandbox with RBAC, apps in every state, a Git server, optionally a controller, and the dashboard.

Apps whose state needs no controller are written directly (spec and status); one app in the
namespace ``live`` is reconciled by a real controller (watching only that namespace, so the
written statuses stay as written). The dashboard runs on its own event loop in a thread, as it
would in its own process, connected as the admin (system:masters: it may review tokens and
impersonate). Users:

* ``alice-token`` (static token, user ``alice``): may read and patch Applications, and read their
  objects and Events, in ``team-a`` only.
* the ServiceAccount ``team-b/viewer`` (token from a TokenRequest): may read Applications in
  ``team-b`` only, and patch nothing.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.cli.demo_env import free_port, git
from tether.controller.api import install_crd
from tether.engine import APP_LABEL, APP_NAMESPACE_LABEL, AppIdentity, update_inventory
from tether.kube import Kube
from tether.model import ObjectRef
from tether.sandbox.extras import ExtrasConfig
from tether.sandbox.git_server import GitServer
from tether.sandbox.server import SandboxConfig, SandboxThread

ADMIN_TOKEN = "dashboard-admin-token"
ALICE_TOKEN = "alice-token"
RBAC = "rbac.authorization.k8s.io/v1"
APPS = "tether.dev/v1alpha1"
SHA = ["a1" * 20, "b2" * 20, "c3" * 20]


@dataclass
class Environment:
    directory: Path
    sandbox: SandboxThread | None = None
    git_server: GitServer | None = None
    kubeconfig: Path = field(default_factory=Path)
    repo_url: str = ""
    work: Path = field(default_factory=Path)
    viewer_token: str = ""
    dashboard_url: str = ""
    dashboard_port: int = 0
    dashboard: Any = None
    _threads: list[Any] = field(default_factory=list)

    # ------------------------------------------------------------ lifecycle

    def start(self, *, controller: bool = False) -> Environment:
        tokens = self.directory / "tokens.csv"
        tokens.write_text(f"{ALICE_TOKEN},alice,1\n")
        self.sandbox = SandboxThread(
            SandboxConfig(
                port=0,
                data_dir=self.directory / "sandbox",
                tokens=[ADMIN_TOKEN],
                extras=ExtrasConfig(sim_delay=0.2, authz="rbac", token_file=tokens),
            )
        )
        server = self.sandbox.start()
        self.kubeconfig = server.write_kubeconfig(self.directory / "kubeconfig")
        self.git_server = GitServer(self.directory / "git").start()
        self.git_server.create("shop.git")
        self.repo_url = self.git_server.url("shop.git")
        self._init_repo()
        run_async(self._seed)
        if controller:
            self._threads.append(_LoopThread(self._controller).start())
        self.dashboard_port = free_port()
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}/"
        dashboard = _LoopThread(self._dashboard).start()
        self._threads.append(dashboard)
        _wait_http(self.dashboard_url + "healthz")
        return self

    def stop(self) -> None:
        for thread in reversed(self._threads):
            thread.stop()
        if self.git_server is not None:
            self.git_server.stop()
        if self.sandbox is not None:
            self.sandbox.stop()

    async def _controller(self, stop: asyncio.Event) -> None:
        from tether.controller.run import Controller, ControllerOptions

        kube = await Kube.connect(kubeconfig=str(self.kubeconfig))
        try:
            controller = Controller(
                kube,
                ControllerOptions(namespaces=("live",), install_crd=False, cache_dir=str(self.directory / "cache")),
            )
            task = asyncio.create_task(controller.run())
            await stop.wait()
            controller.stop()
            await asyncio.wait_for(task, 30)
        finally:
            await kube.close()

    async def _dashboard(self, stop: asyncio.Event) -> None:
        from tether.dashboard import DashboardOptions, serve

        kube = await Kube.connect(kubeconfig=str(self.kubeconfig))
        try:
            await serve(
                kube,
                "127.0.0.1",
                self.dashboard_port,
                DashboardOptions(local_sign_in=True, cache_dir=str(self.directory / "dash-cache")),
                stop=stop,
                on_ready=lambda dashboard, _runner: setattr(self, "dashboard", dashboard),
            )
        finally:
            await kube.close()

    # ------------------------------------------------------------ Git

    def _init_repo(self) -> None:
        self.work = self.directory / "work"
        self.work.mkdir()
        git(self.work, "init", "-q", "-b", "main")
        (self.work / "shop").mkdir()
        (self.work / "shop" / "settings.yaml").write_text(_configmap("settings", {"colour": "blue"}))
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", "Add the shop settings")
        git(self.work, "remote", "add", "origin", self.repo_url)
        git(self.work, "push", "-q", "origin", "main")

    def commit(self, message: str, files: dict[str, str]) -> str:
        for name, content in files.items():
            (self.work / name).write_text(content)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")

    # ------------------------------------------------------------ the cluster

    async def admin(self) -> Kube:
        return await Kube.connect(kubeconfig=str(self.kubeconfig))

    async def _seed(self) -> None:
        kube = await self.admin()
        try:
            await install_crd(kube)
            ns_info = await kube.info("v1", "Namespace")
            for ns in ("team-a", "team-b", "live", "live-dest"):
                await kube.apply(ns_info, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            await _grant(kube)
            self.viewer_token = await _service_account_token(kube, "team-b", "viewer")
            for app in _seeded_apps(self.repo_url):
                await write_app(kube, app)
            await _degraded_workload(kube)
            await write_app(
                kube,
                {
                    "name": "shop",
                    "namespace": "live",
                    "url": self.repo_url,
                    "path": "shop",
                    "automated": False,
                    "destination": "live-dest",
                },
            )
        finally:
            await kube.close()


def _configmap(name: str, data: dict[str, str]) -> str:
    lines = [f"  {k}: {v}" for k, v in data.items()]
    return "\n".join(["apiVersion: v1", "kind: ConfigMap", f"metadata:\n  name: {name}", "data:", *lines]) + "\n"


def _seeded_apps(url: str) -> list[dict[str, Any]]:
    def history(*revisions: str, author: str = "Dana Developer") -> list[dict[str, Any]]:
        return [
            {
                "revision": r,
                "author": author,
                "subject": f"change {i}",
                "deployedAt": f"2025-06-0{3 - i}T10:00:00Z",
                "result": "Succeeded",
                "objects": {"total": 3},
            }
            for i, r in enumerate(revisions)
        ]

    def ready(status: str, reason: str, message: str) -> list[dict[str, Any]]:
        return [
            {
                "type": "Ready",
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": "2025-06-03T10:00:00Z",
            }
        ]

    return [
        {
            "name": "web",
            "namespace": "team-a",
            "url": url,
            "labels": {"team": "shop"},
            "status": {
                "sync": {"status": "Synced", "revision": SHA[0]},
                "health": {"status": "Healthy"},
                "lastAppliedRevision": SHA[0],
                "history": history(SHA[0], SHA[1]),
                "conditions": ready("True", "Succeeded", "applied 3 objects"),
            },
        },
        {
            "name": "api",
            "namespace": "team-a",
            "url": url,
            "status": {
                "sync": {"status": "OutOfSync"},
                "health": {"status": "Progressing", "message": "rolling out"},
                "lastAppliedRevision": SHA[1],
                "history": history(SHA[1]),
                "conditions": ready("Unknown", "Progressing", "waiting for Deployment api"),
            },
        },
        {
            "name": "worker",
            "namespace": "team-a",
            "url": url,
            "status": {
                "sync": {"status": "Synced"},
                "health": {"status": "Degraded", "message": "1 object failed"},
                "lastAppliedRevision": SHA[2],
                "history": history(SHA[2], SHA[1]),
                "conditions": ready("False", "HealthFailed", "Deployment team-a/worker failed"),
            },
        },
        {
            "name": "batch",
            "namespace": "team-a",
            "url": url,
            "suspend": True,
            "status": {
                "sync": {"status": "Synced"},
                "health": {"status": "Suspended"},
                "lastAppliedRevision": SHA[0],
                "conditions": ready("False", "Suspended", "spec.suspend is true"),
            },
        },
        {
            "name": "billing",
            "namespace": "team-b",
            "url": url,
            "labels": {"team": "money"},
            "status": {
                "sync": {"status": "Synced"},
                "health": {"status": "Healthy"},
                "lastAppliedRevision": SHA[0],
                "history": history(SHA[0], author="Bo Builder"),
                "drift": [
                    {
                        "object": "apps/v1/Deployment team-b/billing",
                        "fields": ["/spec/replicas"],
                        "manager": "kubectl-edit",
                        "time": "2025-06-03T11:00:00Z",
                    }
                ],
                "conditions": ready("True", "Succeeded", "applied"),
            },
        },
        {
            "name": "legacy",
            "namespace": "team-b",
            "url": url,
            "status": {
                "sync": {"status": "OutOfSync"},
                "health": {"status": "Missing"},
                "conditions": ready("False", "FetchFailed", "cannot reach the repository"),
            },
        },
        {"name": "fresh", "namespace": "team-b", "url": url},
    ]


async def write_app(kube: Kube, app: dict[str, Any]) -> None:
    """An Application with the given spec bits; its status written as given (no controller needed)."""
    from tether.apps.ops import APPLICATION

    spec: dict[str, Any] = {
        "source": {"url": app["url"], "ref": {"branch": "main"}, "path": app.get("path", ".")},
        "interval": "1h",
        "syncPolicy": {"automated": app.get("automated", True)},
        "suspend": app.get("suspend", False),
    }
    if app.get("destination"):
        spec["destination"] = {"namespace": app["destination"]}
    obj = {
        "apiVersion": APPS,
        "kind": "Application",
        "metadata": {"name": app["name"], "namespace": app["namespace"], "labels": app.get("labels", {})},
        "spec": spec,
    }
    await kube.apply(APPLICATION, obj, field_manager="tests")
    if "status" in app:
        await kube.patch(APPLICATION, app["name"], app["namespace"], {"status": app["status"]}, subresource="status")


async def _degraded_workload(kube: Kube) -> None:
    """team-a/worker's Deployment, whose image never pulls: its Pod shows the reason."""
    labels = {APP_LABEL: "worker", APP_NAMESPACE_LABEL: "team-a"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "worker", "namespace": "team-a", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "worker"}},
            "template": {
                "metadata": {"labels": {"app": "worker"}},
                "spec": {"containers": [{"name": "worker", "image": "registry.local/worker-fail:1"}]},
            },
        },
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "worker", "namespace": "team-a", "labels": labels},
        "data": {"queue": "jobs"},
    }
    await kube.apply(await kube.info("apps/v1", "Deployment"), deployment, field_manager="tests")
    await kube.apply(await kube.info("v1", "ConfigMap"), config, field_manager="tests")
    await update_inventory(kube, AppIdentity("team-a", "worker"), add=[ObjectRef.of(deployment), ObjectRef.of(config)])


async def _grant(kube: Kube) -> None:
    role, binding = await kube.info(RBAC, "ClusterRole"), await kube.info(RBAC, "RoleBinding")
    sa = await kube.info("v1", "ServiceAccount")
    await kube.apply(
        role,
        {
            "apiVersion": RBAC,
            "kind": "ClusterRole",
            "metadata": {"name": "app-operator"},
            "rules": [
                {
                    "apiGroups": ["tether.dev"],
                    "resources": ["applications"],
                    "verbs": ["get", "list", "watch", "patch"],
                },
                {
                    "apiGroups": ["", "apps"],
                    "resources": ["configmaps", "pods", "events", "deployments", "replicasets"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
    )
    await kube.apply(
        role,
        {
            "apiVersion": RBAC,
            "kind": "ClusterRole",
            "metadata": {"name": "app-viewer"},
            "rules": [{"apiGroups": ["tether.dev"], "resources": ["applications"], "verbs": ["get", "list", "watch"]}],
        },
    )
    await kube.apply(
        binding,
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": "alice", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "app-operator"},
            "subjects": [{"kind": "User", "name": "alice"}],
        },
    )
    await kube.apply(
        sa, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "viewer", "namespace": "team-b"}}
    )
    await kube.apply(
        binding,
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": "viewer", "namespace": "team-b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "app-viewer"},
            "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": "team-b"}],
        },
    )


async def _service_account_token(kube: Kube, namespace: str, name: str) -> str:
    from tether.kube import ResourceInfo

    token_info = ResourceInfo("authentication.k8s.io", "v1", "TokenRequest", "serviceaccounts", True)
    answer = await kube._request(
        "POST",
        token_info.object_path(namespace, name, "token"),
        what="token request",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    return str(answer["status"]["token"])


class _LoopThread:
    """Runs ``main(stop_event)`` on its own event loop in a daemon thread."""

    def __init__(self, main: Any) -> None:
        self.main = main
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def wrapper() -> None:
            self.stop_event = asyncio.Event()
            self._started.set()
            await self.main(self.stop_event)

        try:
            self.loop.run_until_complete(wrapper())
        except BaseException as error:  # reported through .error
            self.error = error
            self._started.set()

    def start(self) -> _LoopThread:
        self._thread.start()
        self._started.wait(30)
        return self

    def stop(self) -> None:
        if self.stop_event is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self._thread.join(30)


def _wait_http(url: str, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def run_async(make: Any) -> Any:
    """``asyncio.run(make())`` on a thread of its own: Playwright's sync API keeps a loop running on this one."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as error:  # re-raised on the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
