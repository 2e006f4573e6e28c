"""Access to the upstream Kubernetes OpenAPI definitions shipped by ``kubernetes-validate``.

The package carries the definitions of every Kubernetes minor version, including the
``x-kubernetes-list-type`` / ``list-map-keys`` / ``patch-merge-key`` / ``patch-strategy``
metadata that server-side apply and strategic merge patch need. The sandbox serves them
as OpenAPI, validates writes against them and merges with them; the engine validates
rendered objects against them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import kubernetes_validate

from tether.errors import UsageError

DEFAULT_KUBE_VERSION = "1.32"
_SCHEMA_ROOT = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def available_versions() -> list[str]:
    """Kubernetes minor versions with shipped schemas, e.g. ``["1.25", ..., "1.37"]``."""
    found = []
    for entry in _SCHEMA_ROOT.iterdir():
        if entry.name.endswith("-local") and entry.name.startswith("v"):
            major, minor, _ = entry.name[1:].removesuffix("-local").split(".")
            found.append(f"{major}.{minor}")
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def _schema_dir(kube_version: str) -> Path:
    minor = ".".join(kube_version.lstrip("v").split(".")[:2])
    path = _SCHEMA_ROOT / f"v{minor}.0-local"
    if not path.is_dir():
        raise UsageError(
            f"no Kubernetes schemas for version {kube_version!r}; available: {', '.join(available_versions())}"
        )
    return path


@functools.cache
def definitions(kube_version: str = DEFAULT_KUBE_VERSION) -> dict[str, dict]:
    """All definitions by OpenAPI name (``io.k8s.api.apps.v1.Deployment``).

    References inside use the JSON-schema form ``#/$defs/<name>``; the ``type`` of optional
    fields is ``[T, "null"]``. The returned mapping is shared: treat it as read-only.
    """
    with open(_schema_dir(kube_version) / "_definitions.json", "rb") as handle:
        return json.load(handle)["$defs"]


@functools.cache
def gvk_index(kube_version: str = DEFAULT_KUBE_VERSION) -> dict[tuple[str, str, str], str]:
    """Maps ``(group, version, kind)`` to the definition name of that top-level kind."""
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions(kube_version).items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return index


def ref_name(ref: str) -> str:
    """The definition name a ``$ref`` points at."""
    return ref.rsplit("/", 1)[-1]
