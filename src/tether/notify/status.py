"""Commit statuses: each deployment reported on the commit it deployed, one context per app.

Configured per Application with annotations (the repository's settings travel with the app):

- ``tether.dev/commit-status``: ``github``, ``gitlab``, ``gitea``, ``bitbucket``, or ``auto``
  (the provider derived from ``spec.source.url``; only the public hosts are unambiguous);
- ``tether.dev/commit-status-secret``: a Secret in the app's namespace whose key ``token``
  holds the API token (without it, ``TETHER_FORGE_TOKEN`` of the controller's environment);
- ``tether.dev/commit-status-api-url``: the API base URL of a self-hosted instance;
- ``tether.dev/commit-status-repository``: ``owner/name`` when the URL does not say it;
- ``tether.dev/commit-status-target-url``: the link shown next to the status (a dashboard).

States: ``pending`` when a pass of a new revision starts, ``success`` when Ready on it,
``failure`` with the reason when a sync failed or health degraded. Context ``tether/<ns>/<app>``.
Posts for one app are serialised and coalesced: only the newest wanted state is sent.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether.controller import reports as rp
from tether.controller.backoff import Backoff
from tether.controller.reports import AppReport
from tether.errors import TetherError, UsageError
from tether.forge import ForgeClient, ForgeError, forge_repo
from tether.kube import Kube
from tether.notify.delivery import NotifyMetrics

log = logging.getLogger("tether.notify.status")

PROVIDER_ANNOTATION = "tether.dev/commit-status"
SECRET_ANNOTATION = "tether.dev/commit-status-secret"
API_URL_ANNOTATION = "tether.dev/commit-status-api-url"
REPOSITORY_ANNOTATION = "tether.dev/commit-status-repository"
TARGET_URL_ANNOTATION = "tether.dev/commit-status-target-url"

AppLookup = Callable[[str, str], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Wanted:
    revision: str
    state: str
    description: str


def wanted_status(report: AppReport) -> Wanted | None:
    """The status a report asks for, or None (nothing to say: suspended, still progressing, ...)."""
    if not report.revision:
        return None
    if report.phase == "started":
        return Wanted(report.revision, "pending", f"applying {report.revision[:12]}")
    kinds = set(report.kinds)
    if report.ready:
        return Wanted(report.revision, "success", "Ready" + (f": {report.message}" if report.message else ""))
    if kinds & {rp.SYNC_FAILED, rp.HEALTH_DEGRADED}:
        failing = "; ".join(f"{obj}: {why}" for obj, why in report.failing[:3])
        text = report.message or failing or report.health
        return Wanted(report.revision, "failure", f"{report.reason or 'Failed'}: {text}")
    if rp.DEPENDENCY_NOT_READY in kinds:
        return Wanted(report.revision, "pending", f"waiting for a dependency: {report.message}")
    return None


class CommitStatusReporter:
    def __init__(
        self,
        kube: Kube,
        apps: AppLookup,
        metrics: NotifyMetrics,
        *,
        environ: dict[str, str] | None = None,
        attempts: int = 4,
        backoff: Backoff | None = None,
    ) -> None:
        self.kube, self.apps, self.metrics = kube, apps, metrics
        self.environ = os.environ if environ is None else environ
        self.attempts = attempts
        self.backoff = backoff or Backoff(base=1.0, factor=2.0, cap=30.0)
        self._wanted: dict[tuple[str, str], Wanted] = {}
        self._posted: dict[tuple[str, str], Wanted] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def on_report(self, report: AppReport) -> None:
        """A ``Reports`` listener (runs in its own task; a slow forge delays nobody else)."""
        wanted = wanted_status(report)
        if wanted is None:
            return
        key = (report.namespace, report.name)
        app = self.apps(*key)
        annotations = ((app or {}).get("metadata") or {}).get("annotations") or {}
        if not annotations.get(PROVIDER_ANNOTATION):
            return
        self._wanted[key] = wanted
        async with self._locks.setdefault(key, asyncio.Lock()):
            wanted = self._wanted[key]  # the newest, which may have arrived while we waited
            if self._posted.get(key) == wanted:
                return
            try:
                await self._post(report, annotations, wanted)
                self._posted[key] = wanted
            except TetherError as error:
                log.error("commit status of %s/%s on %s: %s", *key, wanted.revision[:12], error)

    async def _post(self, report: AppReport, annotations: dict[str, str], wanted: Wanted) -> None:
        provider = annotations[PROVIDER_ANNOTATION].strip().lower()
        repo = forge_repo(
            report.source_url,
            provider="" if provider == "auto" else provider,
            api_url=annotations.get(API_URL_ANNOTATION, ""),
            repository=annotations.get(REPOSITORY_ANNOTATION, ""),
        )
        token = await self._token(report.namespace, annotations)
        context = f"tether/{report.namespace}/{report.name}"
        async with ForgeClient(repo, token) as forge:
            for attempt in range(self.attempts):
                try:
                    await forge.set_status(
                        wanted.revision,
                        wanted.state,
                        context,  # type: ignore[arg-type]
                        wanted.description,
                        annotations.get(TARGET_URL_ANNOTATION, ""),
                    )
                    self.metrics.statuses.labels(repo.provider, wanted.state, "success").inc()
                    return
                except ForgeError as error:
                    self.metrics.statuses.labels(repo.provider, wanted.state, "failure").inc()
                    if not error.retryable or attempt + 1 == self.attempts:
                        raise
                    await asyncio.sleep(self.backoff.delay(attempt))

    async def _token(self, namespace: str, annotations: dict[str, str]) -> str:
        name = annotations.get(SECRET_ANNOTATION, "")
        if not name:
            token = self.environ.get("TETHER_FORGE_TOKEN", "")
            if not token:
                raise UsageError(
                    f"no token: annotate the Application with {SECRET_ANNOTATION}: NAME (a Secret "
                    "with key 'token') or set TETHER_FORGE_TOKEN for the controller"
                )
            return token
        secret = await self.kube.get(await self.kube.info("v1", "Secret"), name, namespace)
        raw = ((secret or {}).get("data") or {}).get("token")
        if not raw:
            raise UsageError(
                f"{SECRET_ANNOTATION} names Secret {namespace}/{name}, which "
                + ("has no key 'token'" if secret else "does not exist")
            )
        return base64.b64decode(raw).decode().strip()


__all__ = [
    "API_URL_ANNOTATION",
    "PROVIDER_ANNOTATION",
    "REPOSITORY_ANNOTATION",
    "SECRET_ANNOTATION",
    "TARGET_URL_ANNOTATION",
    "CommitStatusReporter",
    "Wanted",
    "wanted_status",
]
