"""How planning reads live objects: a small protocol, so the controller can pass its watch cache.

``ListingReader`` is the default (push mode): one list request per kind, selected by the app
label, cluster-wide; when a cluster-wide list is Forbidden (a client allowed only some
namespaces) it lists each namespace the plan touches instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

from tether.engine.identity import AppIdentity
from tether.kube import Forbidden, Kube, ResourceInfo, UnknownKind

Key = tuple[str, str, str, str]  # (group, kind, namespace, name)


def key_of(obj: dict[str, Any]) -> Key:
    """(group, kind, namespace, name) straight from the dict: plans build 10,000s of these."""
    meta = obj.get("metadata") or {}
    group = (obj.get("apiVersion") or "").rpartition("/")[0]
    return (group, obj.get("kind") or "", meta.get("namespace") or "", meta.get("name") or "")


class LiveReader(Protocol):
    async def list_app_objects(
        self, infos: list[ResourceInfo], identity: AppIdentity, *, namespaces: Iterable[str] = ()
    ) -> dict[Key, dict[str, Any]]:
        """Live objects labelled with the app's name (any app namespace) of these kinds.

        ``namespaces``: where the plan's namespaced objects live; a reader that cannot list
        cluster-wide lists these.
        """
        ...

    async def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """One live object, None when it does not exist."""
        ...


class ListingReader:
    """Reads straight from the API server (one LIST per kind; GETs for single objects)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return await self.kube.get(info, name, namespace)

    async def list_app_objects(
        self, infos: list[ResourceInfo], identity: AppIdentity, *, namespaces: Iterable[str] = ()
    ) -> dict[Key, dict[str, Any]]:
        kube = self.kube
        index: dict[Key, dict[str, Any]] = {}
        wanted_namespaces = sorted({ns for ns in namespaces if ns})

        async def one(info: ResourceInfo) -> None:
            if not kube.discovery.served(info):
                # announced by a CRD of this run: it may be served by now; if not, nothing exists yet
                try:
                    info = await kube.info(info.api_version, info.kind)
                except UnknownKind:
                    return
                if not kube.discovery.served(info):
                    return
            if "list" not in info.verbs:
                return
            try:
                items = await kube.list(info, label_selector=identity.selector)
            except Forbidden:
                if not info.namespaced or not wanted_namespaces:
                    raise
                lists = await asyncio.gather(
                    *(kube.list(info, ns, label_selector=identity.selector) for ns in wanted_namespaces)
                )
                items = [item for listed in lists for item in listed]
            for item in items:
                index[key_of(item)] = item

        await asyncio.gather(*(one(info) for info in infos))
        return index


__all__ = ["Key", "ListingReader", "LiveReader", "key_of"]
