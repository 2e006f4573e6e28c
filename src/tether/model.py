"""Domain types shared by every stage of the pipeline.

Objects travel between stages as plain ``dict`` (the JSON form Kubernetes speaks), wrapped
in a ``Manifest`` that remembers where the object came from so any later error can name
the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Identity of one Kubernetes object: group, kind, namespace, name (plus the version seen)."""

    group: str
    kind: str
    namespace: str
    name: str
    version: str = field(default="", compare=False)

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        api_version = obj.get("apiVersion") or ""
        group, _, version = api_version.rpartition("/")
        meta = obj.get("metadata") or {}
        return cls(
            group=group,
            kind=obj.get("kind") or "",
            namespace=meta.get("namespace") or "",
            name=meta.get("name") or "",
            version=version,
        )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"


@dataclass(frozen=True)
class SourceLocation:
    """Where a manifest was read: a file relative to the source root, line (1-based), document index."""

    file: str
    line: int | None = None
    document: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class Manifest:
    """One desired object and where it came from."""

    obj: dict[str, Any]
    source: SourceLocation | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.obj)

    def where(self) -> str:
        return f"{self.source} ({self.ref})" if self.source else str(self.ref)


@dataclass(frozen=True)
class SourceRevision:
    """Which Git revision a render came from (``None`` in a RenderResult for a plain directory)."""

    url: str  # credentials masked
    ref: str  # what was asked for (branch, tag, semver range, sha, or "" for HEAD)
    commit: str  # resolved commit SHA
    path: str = ""  # sub directory inside the repository
