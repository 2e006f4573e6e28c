"""What a target cluster offers Helm templates: its version and served APIs, from discovery.

``cluster_capabilities(kube)`` reads ``/version``, ``/api`` and ``/apis`` and each served
group/version's resource list, as ``helm install`` does, and returns the version (``1.32.4``) and
every ``group/version`` and ``group/version/Kind``. ``CapabilitiesCache`` keeps the answer for a
while: one discovery per command run, and in the controller one per ``ttl`` seconds (new CRDs are
seen within that time), not one per reconcile.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from tether.errors import TetherError
from tether.render import RenderOptions

#: seconds a controller keeps a cluster's discovery answer before asking again
DEFAULT_TTL = 300.0


async def cluster_capabilities(kube: Any) -> tuple[str, tuple[str, ...]]:
    """(Kubernetes version such as ``1.32.4``, served ``group/version`` and ``group/version/Kind``)."""
    version_info = await kube.get_raw("/version") or {}
    match = re.match(r"^v?(\d+\.\d+\.\d+)", str(version_info.get("gitVersion") or ""))
    if match:
        version = match.group(1)
    else:  # some distributions report only major/minor ("1", "32+")
        major = re.sub(r"\D", "", str(version_info.get("major") or ""))
        minor = re.sub(r"\D", "", str(version_info.get("minor") or ""))
        version = f"{major}.{minor}" if major and minor else ""
    core = await kube.get_raw("/api") or {}
    groups = await kube.get_raw("/apis") or {}
    group_versions = [("/api/" + v, v) for v in core.get("versions") or []]
    for group in groups.get("groups") or []:
        for entry in group.get("versions") or []:
            if entry.get("groupVersion"):
                group_versions.append(("/apis/" + entry["groupVersion"], entry["groupVersion"]))
    documents = await asyncio.gather(*(_resources(kube, path) for path, _gv in group_versions))
    out: list[str] = []
    for (_path, group_version), document in zip(group_versions, documents, strict=True):
        out.append(group_version)
        kinds = {r.get("kind") for r in (document or {}).get("resources") or [] if "/" not in r.get("name", "/")}
        out.extend(f"{group_version}/{kind}" for kind in sorted(k for k in kinds if k))
    return version, tuple(dict.fromkeys(out))


async def _resources(kube: Any, path: str) -> Any:
    try:
        return await kube.get_raw(path)
    except TetherError:  # an aggregated API that is down: its group/version is listed without kinds
        return None


class CapabilitiesCache:
    """One cluster's discovery answer, asked again after ``ttl`` seconds (``None``: never)."""

    def __init__(self, ttl: float | None = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._answer: tuple[str, tuple[str, ...]] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, kube: Any) -> tuple[str, tuple[str, ...]]:
        async with self._lock:
            stale = self.ttl is not None and self.clock() - self._at >= self.ttl
            if self._answer is None or stale:
                self._answer, self._at = await cluster_capabilities(kube), self.clock()
            return self._answer

    async def options_for(self, kube: Any, options: RenderOptions) -> RenderOptions:
        """``options`` with the cluster's version (unless the user gave one) and its APIs."""
        version, api_versions = await self.get(kube)
        return options.for_cluster(version, api_versions)
