"""The pending changes for a user who may read but not patch: rendered objects against what they can read.

The exact pending diff dry-runs every changed object with a server-side apply, which the API
server refuses to a user without ``patch`` (a dry run is authorised like the real request). For
such a user the dashboard compares instead, without writing anything: each rendered object (with
the labels and annotations tether adds) against the live object read with a GET as the user,
the live side cut down to the fields Git sets, so defaults the server filled in do not show as
changes. What this cannot see is said on the page: objects the user may not read are named,
prunes are not shown (they need the app's inventory and a list of every kind it holds), and a
field the server would change on apply (defaulting inside a desired field, a webhook) may differ.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

from tether.engine import AppIdentity
from tether.engine.diff import strip_noise, unified
from tether.engine.plan import prepare
from tether.kube import Forbidden, Kube, UnknownKind
from tether.model import Manifest

_READ_CONCURRENCY = 16


@dataclass(frozen=True)
class Compared:
    label: str
    action: str  # create | update | unchanged | unreadable
    lines: list[str] = field(default_factory=list)
    reason: str = ""  # for unreadable: the API server's answer


def _label(obj: dict[str, Any]) -> str:
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    group = api_version.rpartition("/")[0]
    meta = obj.get("metadata") or {}
    kind_text = f"{kind}.{group}" if group else kind
    return "/".join(p for p in (kind_text, meta.get("namespace") or "", meta.get("name") or "") if p)


def _fold_string_data(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret's stringData as the API server stores it (base64 in data), so it compares with a live Secret."""
    if obj.get("kind") != "Secret" or not isinstance(obj.get("stringData"), dict):
        return obj
    out = {k: v for k, v in obj.items() if k != "stringData"}
    data = dict(out.get("data") or {})
    data.update({k: base64.b64encode(str(v).encode()).decode() for k, v in obj["stringData"].items()})
    out["data"] = data
    return out


def project(live: Any, desired: Any) -> Any:
    """``live`` cut down to the fields ``desired`` has (lists element by element when their lengths match)."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return {key: project(live[key], value) for key, value in desired.items() if key in live}
    if isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live):
        return [project(lv, d) for lv, d in zip(live, desired, strict=True)]
    return live


async def compare_readable(
    kube: Kube, manifests: list[Manifest], identity: AppIdentity, default_namespace: str
) -> list[Compared]:
    """Each manifest against its live object, read as ``kube``'s user; nothing is written."""
    gate = asyncio.Semaphore(_READ_CONCURRENCY)

    async def one(manifest: Manifest) -> Compared:
        try:
            info = await kube.info(str(manifest.obj.get("apiVersion") or ""), str(manifest.obj.get("kind") or ""))
        except UnknownKind as error:
            return Compared(_label(manifest.obj), "unreadable", reason=str(error))
        desired = _fold_string_data(
            strip_noise(prepare(manifest, identity, default_namespace, info), keep_digest=False)
        )
        label = _label(desired)
        meta = desired["metadata"]
        if not meta.get("name"):  # generateName: a new object on every apply
            return Compared(label, "create", unified(None, desired, label))
        try:
            async with gate:
                live = await kube.get(info, meta["name"], meta.get("namespace"))
        except Forbidden as error:
            return Compared(label, "unreadable", reason=str(error))
        if live is None:
            return Compared(label, "create", unified(None, desired, label))
        before = project(strip_noise(live, keep_digest=False), desired)
        if before == desired:
            return Compared(label, "unchanged")
        return Compared(label, "update", unified(before, desired, label))

    return list(await asyncio.gather(*(one(m) for m in manifests)))
