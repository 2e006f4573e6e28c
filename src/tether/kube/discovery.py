"""API discovery: which resource (URL path, scope, verbs) serves an apiVersion + kind.

Documents are fetched per group-version on first use and cached for the life of the client
(a plan touches a handful of group-versions, so this is a handful of requests). A kind the
cache does not know triggers one re-fetch of its group-version, which is how a CRD applied
earlier in the same run becomes usable; ``register`` lets the engine add the resource a CRD
in the desired set *will* serve before the server has it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tether.errors import KubeError
from tether.kube import names
from tether.kube.errors import UnsafeName


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str] = field(default_factory=frozenset)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The collection path (``name`` None) or one object's path, from checked segments.

        For a namespaced resource, a collection path without a namespace (None or "") spans all
        namespaces; an object path needs a valid namespace. Cluster-scoped resources ignore the
        namespace. A ``name`` of "" is refused rather than taken to mean the collection.
        """
        if name is None:
            return self.collection_path(namespace)
        return self.object_path(namespace, name)

    def collection_path(self, namespace: str | None = None) -> str:
        segments = names.api_prefix(self.group, self.version)
        if self.namespaced and namespace:
            segments += ["namespaces", names.check_namespace(namespace)]
        segments.append(names.check_segment(self.plural, f"{self.kind} resource name"))
        return names.join(*segments)

    def object_path(self, namespace: str | None, name: str, subresource: str = "") -> str:
        """Exactly one object (or one of its subresources): never a collection or a parent path."""
        what = f"{self.kind} name"
        segments = names.api_prefix(self.group, self.version)
        if self.namespaced:
            if not namespace:
                raise UnsafeName(f"refusing to send a request: {self.kind} {name!r} is namespaced but has no namespace")
            segments += ["namespaces", names.check_namespace(namespace, f"namespace of {self.kind} {name!r}")]
        segments += [names.check_segment(self.plural, f"{self.kind} resource name"), names.check_segment(name, what)]
        if subresource:
            segments.append(names.check_segment(subresource, f"subresource of {self.kind} {name!r}"))
        return names.join(*segments)


class UnknownKind(KubeError):
    """The API server does not serve this apiVersion/kind."""


def infos_from_crd(crd: dict[str, Any]) -> list[ResourceInfo]:
    """The resources a CustomResourceDefinition manifest serves, one per served version."""
    spec = crd.get("spec") or {}
    crd_names = spec.get("names") or {}
    group, kind, plural = spec.get("group", ""), crd_names.get("kind", ""), crd_names.get("plural", "")
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    verbs = frozenset({"create", "delete", "get", "list", "patch", "update", "watch", "deletecollection"})
    return [
        ResourceInfo(group, version["name"], kind, plural, namespaced, verbs)
        for version in spec.get("versions") or []
        if isinstance(version, dict) and version.get("served", True) and version.get("name")
    ]


class Discovery:
    def __init__(self, get_json: Callable[[str], Awaitable[Any]]) -> None:
        self._get_json = get_json
        self._by_gv: dict[str, dict[str, ResourceInfo]] = {}
        self._pending: dict[str, ResourceInfo] = {}
        self._lock = asyncio.Lock()

    async def _load(self, api_version: str) -> dict[str, ResourceInfo]:
        group, _, version = api_version.rpartition("/")
        try:
            path = names.join(*names.api_prefix(group, version))  # apiVersion comes from manifests: check it
        except UnsafeName as error:
            raise UnknownKind(f"apiVersion {api_version!r} cannot be served: {error}") from None
        document = await self._get_json(path) or {}
        kinds: dict[str, ResourceInfo] = {}
        for resource in document.get("resources") or []:
            name = resource.get("name", "")
            if "/" in name:  # subresources (status, scale, ...)
                continue
            kinds[resource["kind"]] = ResourceInfo(
                group,
                version,
                resource["kind"],
                name,
                bool(resource.get("namespaced")),
                frozenset(resource.get("verbs") or ()),
            )
        self._by_gv[api_version] = kinds
        return kinds

    async def resolve(self, api_version: str, kind: str, *, refresh: bool = False) -> ResourceInfo:
        async with self._lock:
            kinds = self._by_gv.get(api_version)
            if kinds is None or refresh or kind not in kinds:
                # one re-fetch on a miss: a CRD may have been established since the last look
                kinds = await self._load(api_version)
        info = kinds.get(kind) or self._pending.get(f"{api_version}/{kind}")
        if info is None:
            raise UnknownKind(
                f"unknown kind {kind} in apiVersion {api_version}: the API server does not serve it "
                "(misspelt, or its CustomResourceDefinition is not installed)"
            )
        return info

    def cached(self, api_version: str, kind: str) -> ResourceInfo | None:
        return (self._by_gv.get(api_version) or {}).get(kind) or self._pending.get(f"{api_version}/{kind}")

    def served(self, info: ResourceInfo) -> bool:
        """Has the server (at the last look) listed this resource? False for CRD-announced ones."""
        return info.kind in (self._by_gv.get(info.api_version) or {})

    def register(self, info: ResourceInfo) -> None:
        """Remember a resource a CRD of the desired set is about to serve."""
        self._pending[f"{info.api_version}/{info.kind}"] = info

    def forget(self, api_version: str) -> None:
        self._by_gv.pop(api_version, None)
