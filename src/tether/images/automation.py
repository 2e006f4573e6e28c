"""The image automation loop: scan repositories, choose images, write them to Git in batches.

``ImageAutomation(kube, ...).run()`` runs beside the Application loop. It keeps ImageRepositories,
ImagePolicies and ImageUpdates current with informers (one LIST each, then watches: see ``watch``)
and makes a pass at once when one of them is created, deleted or changed (a new generation or scan
request; not the echo of its own status writes), when a registry notification arrives, when a scan
or update falls due, and at the latest every ``resync`` seconds. A pass:

1. scans each repository whose ``spec.interval`` has passed, that was just announced by a registry
   notification, or whose ``tether.dev/scan-requested-at`` annotation changed;
2. evaluates every policy against its repository's last tags; a policy whose ``latestImage``
   changed opens an update window for the ImageUpdates of its namespace (``spec.batchInterval``;
   later changes inside the window join it);
3. runs each ImageUpdate whose window closed, whose ``spec.interval`` passed or whose spec changed:
   one commit for every image that changed, pushed only if a file changed; with ``spec.pullRequest``
   the commit goes to ``spec.git.pushBranch`` and one pull request from it is opened or updated.

Status is written only when it changed, conditions keep ``lastTransitionTime`` across writes of
the same status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.controller.informer import DELETED
from tether.errors import KubeError, TetherError
from tether.images import pullrequest, scanner
from tether.images.api import (
    FIELD_MANAGER,
    POLICY_INFO,
    REPOSITORY_INFO,
    SCAN_ANNOTATION,
    UPDATE_INFO,
    install_crds,
    key_of,
    now_iso,
    parse_duration,
    set_condition,
)
from tether.images.errors import ImageError, RegistryError
from tether.images.gittarget import git_target
from tether.images.notifications import PushedImage
from tether.images.reference import parse_image_name
from tether.images.setters import ChosenImage
from tether.images.watch import ImageObjects, spec_changed
from tether.images.writeback import GitTarget, GitWriteBack, PushResult
from tether.kube import Kube, ResourceInfo

log = logging.getLogger("tether.images")
Key = tuple[str, str]


@dataclass
class AutomationStats:
    scans: int = 0
    scan_failures: int = 0
    notifications: int = 0
    commits: int = 0
    updates_without_change: int = 0
    pull_requests_opened: int = 0
    pull_requests_updated: int = 0
    passes: int = 0  # runs of step()
    events: int = 0  # watch events of the three kinds (the informers' first LISTs included)
    wakeups: int = 0  # of those, the ones that changed what to do and so woke the loop


@dataclass
class _RepositoryMemory:
    tags: list[str] | None = None
    next_scan: float = 0.0
    handled_request: str | None = None
    generation: int | None = None
    scanned: int = 0  # the automation's scan count at this repository's last good scan (0: never)


@dataclass
class _UpdateMemory:
    next_run: float = 0.0
    window_closes: float | None = None
    generation: int | None = None  # at the last run: a new spec runs the update at once


@dataclass
class _State:
    repositories: dict[Key, _RepositoryMemory] = field(default_factory=dict)
    chosen: dict[Key, ChosenImage] = field(default_factory=dict)
    updates: dict[Key, _UpdateMemory] = field(default_factory=dict)
    scan_now: set[Key] = field(default_factory=set)
    #: per policy: (its repository's ``scanned``, the policy's generation) at its last good evaluation
    evaluated: dict[Key, tuple[int, Any]] = field(default_factory=dict)


class ImageAutomation:
    def __init__(
        self,
        kube: Kube,
        *,
        namespaces: Iterable[str] = (),
        work_dir: Path | None = None,
        resync: float = 10.0,
        notification_secret: bytes | None = None,
        install: bool = True,
        retry_after_failure: float = 10.0,
        webhook_secret: str = "",
    ) -> None:
        """``webhook_secret``: "NAMESPACE/NAME" of a Secret whose ``registry`` key is the notification
        token, read when ``run()`` starts (unless ``notification_secret`` is given)."""
        self.kube = kube
        self.namespaces = tuple(namespaces) or (None,)
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="tether-images-"))
        self.resync, self.install, self.retry_after_failure = resync, install, retry_after_failure
        #: the shared token / HMAC key registry notifications must carry (None: the receiver refuses all)
        self.notification_secret = notification_secret
        self.webhook_secret = webhook_secret
        self.stats = AutomationStats()
        self.git = GitWriteBack(self.work_dir / "git")
        self.state = _State()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self.objects = ImageObjects(kube, self.namespaces)

    # ------------------------------------------------------------ outside wake-ups

    def notify(self, pushed: list[PushedImage]) -> int:
        """A registry announced new tags: scan the matching ImageRepositories now. Returns how many."""
        self.stats.notifications += 1
        matched: set[Key] = set()
        for image in pushed:
            by_path = []
            for repository in self.objects.items("repositories"):
                try:
                    name = parse_image_name(str((repository.get("spec") or {}).get("image") or ""))
                except ImageError:
                    continue
                if name.path == image.path:
                    by_path.append((repository, name))
            exact = [r for r, n in by_path if image.host and n.host == image.host]
            matched.update(key_of(r) for r in (exact or [r for r, _ in by_path]))
        self.state.scan_now |= matched
        if matched:
            self._wake.set()
        return len(matched)

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    def routes(self) -> list[Any]:
        """The ``POST /hooks/registry`` receiver, for the controller's HTTP server."""
        from tether.images.receiver import registry_routes

        return registry_routes(self)

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        if self.install:
            await install_crds(self.kube)
        if self.notification_secret is None and self.webhook_secret:
            namespace, _, name = self.webhook_secret.rpartition("/")
            secret = await self.kube.get(await self.kube.info("v1", "Secret"), name, namespace or "tether-system")
            value = scanner._secret_value(secret, "registry")
            self.notification_secret = value.rstrip(b"\r\n") if value else None
        self.objects.start(self._on_change)
        try:
            if not await self._wait_synced():
                return
            while not self._stopping:
                # cleared before the pass: a change or notification during the pass makes another one
                self._wake.clear()
                await self.step()
                wait = max(0.0, min(self._due()) - time.monotonic())
                with contextlib.suppress(TimeoutError):  # asyncio.timeout: 3.11's wait_for can drop a cancel
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
        finally:
            await self.objects.stop()

    async def _wait_synced(self) -> bool:
        """Wait for the informers' first LISTs (retried by them with backoff); False when stopped first."""
        while not self._stopping:
            stopped = asyncio.ensure_future(self._stopped.wait())
            synced = asyncio.ensure_future(self.objects.wait_synced(30.0))
            try:
                await asyncio.wait({stopped, synced}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                synced.cancel()
            if synced.done() and not synced.cancelled():
                error = synced.exception()
                if error is None:
                    return not self._stopping
                log.warning("image automation: waiting for the first list: %s", error)
        return False

    def _due(self) -> list[float]:
        """When the next pass is due: the resync, and every scan and update that is not suspended."""
        due = [time.monotonic() + self.resync]
        for repository in self.objects.items("repositories"):
            memory = self.state.repositories.get(key_of(repository))
            if memory is not None and not (repository.get("spec") or {}).get("suspend"):
                due.append(memory.next_scan)
        for update in self.objects.items("updates"):
            memory_update = self.state.updates.get(key_of(update))
            if memory_update is not None and not (update.get("spec") or {}).get("suspend"):
                due.append(memory_update.window_closes or memory_update.next_run)
        return due

    def _on_change(self, kind: str, event: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """An informer event (the object held is already updated): wake the loop when it matters."""
        self.stats.events += 1
        if event == DELETED:
            self._forget(kind, key_of(obj))
        elif not spec_changed(event, obj, old):
            return
        self.stats.wakeups += 1
        self._wake.set()

    def _forget(self, kind: str, key: Key) -> None:
        """Drop what the loop remembers of a deleted object."""
        if kind == "repositories":
            self.state.repositories.pop(key, None)
            self.state.scan_now.discard(key)
        elif kind == "policies":
            self.state.chosen.pop(key, None)
            self.state.evaluated.pop(key, None)
        else:
            self.state.updates.pop(key, None)

    async def refresh(self) -> None:
        """LIST the three kinds once now, for driving ``step()`` by hand; ``run()`` does not call it
        (its informers keep the objects current)."""
        await self.objects.list_once()
        for kind, remembered in (
            ("repositories", set(self.state.repositories)),
            ("policies", set(self.state.chosen) | set(self.state.evaluated)),
            ("updates", set(self.state.updates)),
        ):
            for gone in remembered - self.objects.keys(kind):
                self._forget(kind, gone)

    async def step(self) -> None:
        """One pass: due scans, policy evaluation, due updates."""
        self.stats.passes += 1
        await self._scan_due()
        changed_namespaces = await self._evaluate_policies()
        now = time.monotonic()
        for update in self.objects.items("updates"):
            key = key_of(update)
            memory = self.state.updates.setdefault(key, _UpdateMemory())
            if key[0] in changed_namespaces and memory.window_closes is None:
                window = self._duration(update, "batchInterval", 0.0)
                memory.window_closes = now + window
        await self._update_due()

    # ------------------------------------------------------------ scans

    async def _scan_due(self) -> bool:
        now, scanned = time.monotonic(), False
        for repository in self.objects.items("repositories"):
            key, spec = key_of(repository), repository.get("spec") or {}
            memory = self.state.repositories.setdefault(key, _RepositoryMemory())
            requested = ((repository.get("metadata") or {}).get("annotations") or {}).get(SCAN_ANNOTATION)
            generation = (repository.get("metadata") or {}).get("generation")
            due = (
                key in self.state.scan_now
                or now >= memory.next_scan
                or requested != memory.handled_request
                or generation != memory.generation
            )
            if spec.get("suspend") or not due:
                continue
            self.state.scan_now.discard(key)
            memory.handled_request, memory.generation = requested, generation
            interval = self._duration(repository, "interval", 300.0)
            await self._scan(repository, memory, requested)
            memory.next_scan = time.monotonic() + (
                interval if memory.tags is not None else min(interval, self.retry_after_failure)
            )
            scanned = True
        return scanned

    async def _scan(self, repository: dict[str, Any], memory: _RepositoryMemory, requested: str | None) -> None:
        status = dict(repository.get("status") or {})
        generation = (repository.get("metadata") or {}).get("generation")
        self.stats.scans += 1
        try:
            result = await scanner.scan(self.kube, repository)
        except TetherError as error:
            self.stats.scan_failures += 1
            reason = error.reason if isinstance(error, RegistryError) else "ScanFailed"
            status["conditions"] = set_condition(
                status.get("conditions"), "Ready", False, reason, str(error), generation
            )
            log.warning("%s", error)
        else:
            memory.tags, memory.scanned = result.tags, self.stats.scans
            newest = sorted(result.tags, reverse=True)[: scanner.LATEST_TAGS_SHOWN]
            status["lastScanResult"] = {"tagCount": len(result.tags), "scanTime": now_iso(), "latestTags": newest}
            status["canonicalImageName"] = str(result.image)
            status["conditions"] = set_condition(
                status.get("conditions"), "Ready", True, "Succeeded", f"{len(result.tags)} tags found", generation
            )
        status["observedGeneration"] = generation
        if requested is not None:
            status["lastHandledScanAt"] = requested
        await self._write_status(REPOSITORY_INFO, repository, status)

    # ------------------------------------------------------------ policies

    async def _evaluate_policies(self) -> set[str]:
        """Evaluate each policy whose repository was scanned (or which changed) since its last evaluation;
        the namespaces where a chosen image changed. Once per scan, not per pass: a policy with
        ``digestReflectionPolicy: Always`` reads the digest again at every scan, and only then."""
        repositories = {key_of(r): r for r in self.objects.items("repositories")}
        changed: set[str] = set()
        for policy in self.objects.items("policies"):
            key, spec = key_of(policy), policy.get("spec") or {}
            ref = spec.get("imageRepositoryRef") or {}
            repo_key = (str(ref.get("namespace") or key[0]), str(ref.get("name") or ""))
            repository, memory = repositories.get(repo_key), self.state.repositories.get(repo_key)
            status = dict(policy.get("status") or {})
            generation = (policy.get("metadata") or {}).get("generation")
            if repository is None:
                status["conditions"] = set_condition(
                    status.get("conditions"),
                    "Ready",
                    False,
                    "RepositoryNotFound",
                    f"ImageRepository {repo_key[0]}/{repo_key[1]} does not exist",
                    generation,
                )
            elif memory is None or memory.tags is None:
                if not status.get("conditions"):
                    status["conditions"] = set_condition(
                        None,
                        "Ready",
                        False,
                        "RepositoryNotScanned",
                        f"ImageRepository {repo_key[1]} has no successful scan yet",
                        generation,
                    )
            elif self.state.evaluated.get(key) == (memory.scanned, generation):
                continue
            else:
                try:
                    chosen = await scanner.choose(self.kube, policy, repository, memory.tags, status.get("latestRef"))
                except TetherError as error:
                    reason = getattr(error, "reason", "PolicyFailed")
                    status["conditions"] = set_condition(
                        status.get("conditions"),
                        "Ready",
                        False,
                        reason if isinstance(reason, str) else "PolicyFailed",
                        str(error),
                        generation,
                    )
                else:
                    latest = chosen.full
                    if status.get("latestImage") and status.get("latestImage") != latest:
                        status["observedPreviousImage"] = status["latestImage"]
                    status["latestImage"] = latest
                    status["latestRef"] = {
                        "name": chosen.image,
                        "tag": chosen.tag,
                        **({"digest": chosen.digest} if chosen.digest else {}),
                    }
                    status["conditions"] = set_condition(
                        status.get("conditions"), "Ready", True, "Succeeded", f"latest image is {latest}", generation
                    )
                    self.state.evaluated[key] = (memory.scanned, generation)
                    if self.state.chosen.get(key) != chosen:
                        self.state.chosen[key] = chosen
                        changed.add(key[0])
            status["observedGeneration"] = generation
            await self._write_status(POLICY_INFO, policy, status)
        return changed

    # ------------------------------------------------------------ updates

    async def _update_due(self) -> None:
        now = time.monotonic()
        for update in self.objects.items("updates"):
            key = key_of(update)
            memory = self.state.updates.setdefault(key, _UpdateMemory())
            window_closed = memory.window_closes is not None and now >= memory.window_closes
            generation = (update.get("metadata") or {}).get("generation")
            due = window_closed or now >= memory.next_run or generation != memory.generation
            if (update.get("spec") or {}).get("suspend") or not due:
                continue
            memory.window_closes, memory.generation = None, generation
            ok = await self._update(update)
            interval = self._duration(update, "interval", 300.0)
            memory.next_run = time.monotonic() + (interval if ok else min(interval, self.retry_after_failure))

    async def _update(self, update: dict[str, Any]) -> bool:
        key, spec = key_of(update), update.get("spec") or {}
        status = dict(update.get("status") or {})
        generation = (update.get("metadata") or {}).get("generation")
        chosen = {image.key: image for k, image in self.state.chosen.items() if k[0] == key[0]}
        ok = True
        try:
            target = await git_target(self.kube, update)
            result = await asyncio.to_thread(self.git.update, target, chosen)
            if result.pushed:
                self.stats.commits += 1
                status.update(
                    lastPushCommit=result.commit,
                    lastPushTime=now_iso(),
                    lastChanges=[f"{c.file}:{c.line} {c.old} -> {c.new}" for c in result.changes][:20],
                )
            message = (
                f"pushed {result.commit[:12]} to {target.target_branch} ({len(result.changes)} changes)"
                if result.pushed
                else f"{target.target_branch} already holds {result.commit[:12]}"
                if result.commit
                else f"no change needed in {target.path} at {target.branch}"
            )
            if spec.get("pullRequest") and result.commit:
                message += await self._pull_request(update, target, result, status)
        except TetherError as error:
            ok = False
            status["conditions"] = set_condition(
                status.get("conditions"), "Ready", False, "UpdateFailed", str(error), generation
            )
            log.warning("%s", error)
        else:
            if not result.commit:
                self.stats.updates_without_change += 1
            status["lastRunTime"] = now_iso()
            status["observedPolicies"] = sorted(chosen)
            status["conditions"] = set_condition(
                status.get("conditions"), "Ready", True, "Succeeded", message, generation
            )
        status["observedGeneration"] = generation
        await self._write_status(UPDATE_INFO, update, status)
        return ok

    async def _pull_request(
        self, update: dict[str, Any], target: GitTarget, result: PushResult, status: dict[str, Any]
    ) -> str:
        """Open or update the pull request of a pushed branch; a branch already in an open pull request
        (recorded in the status) needs no call. Returns what to add to the Ready message."""
        recorded = status.get("pullRequest") or {}
        if not result.pushed and recorded.get("commit") == result.commit:
            return f"; pull request #{recorded.get('number')}"
        pull, created = await pullrequest.open_or_update(self.kube, update, target, result)
        if created:
            self.stats.pull_requests_opened += 1
        else:
            self.stats.pull_requests_updated += 1
        status["pullRequest"] = {
            "number": pull.number,
            "url": pull.url,
            "head": target.target_branch,
            "base": target.branch,
            "commit": result.commit,
        }
        return f"; pull request #{pull.number} {'opened' if created else 'updated'}"

    # ------------------------------------------------------------ helpers

    def _duration(self, obj: dict[str, Any], field_name: str, default: float) -> float:
        namespace, name = key_of(obj)
        try:
            return parse_duration(
                (obj.get("spec") or {}).get(field_name),
                f"{obj.get('kind')} {namespace}/{name} spec.{field_name}",
                default,
            )
        except ImageError as error:
            log.warning("%s", error)
            return default

    async def _write_status(self, info: ResourceInfo, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if status == (obj.get("status") or {}):
            return
        namespace, name = key_of(obj)
        try:
            written = await self.kube.patch(
                info, name, namespace, {"status": status}, subresource="status", field_manager=FIELD_MANAGER
            )
        except KubeError as error:
            log.warning("writing the status of %s %s/%s failed: %s", info.kind, namespace, name, error)
            return
        obj["status"] = (written or {}).get("status", status)


__all__ = ["AutomationStats", "ImageAutomation"]
