"""The image automation API (``tether.dev/v1alpha1``): CRDs, resource handles, durations, conditions.

The CRDs are data in ``crds/`` shipped with the package; ``install_crds`` applies them and waits
until they are served.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tether.errors import KubeError
from tether.images.errors import ImageError
from tether.kube import Kube, ResourceInfo

GROUP, VERSION = "tether.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CRD_DIR = Path(__file__).parent / "crds"
_VERBS = frozenset({"create", "delete", "get", "list", "patch", "update", "watch"})
REPOSITORY_INFO = ResourceInfo(GROUP, VERSION, "ImageRepository", "imagerepositories", True, _VERBS)
POLICY_INFO = ResourceInfo(GROUP, VERSION, "ImagePolicy", "imagepolicies", True, _VERBS)
UPDATE_INFO = ResourceInfo(GROUP, VERSION, "ImageUpdate", "imageupdates", True, _VERBS)
CRD_INFO = ResourceInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False)
#: set (to any new value, e.g. a timestamp) to ask for a scan now; ``tether image scan`` does
SCAN_ANNOTATION = "tether.dev/scan-requested-at"
FIELD_MANAGER = "tether-image-automation"


@functools.cache
def _crds() -> tuple[str, ...]:
    return tuple(path.read_text(encoding="utf-8") for path in sorted(CRD_DIR.glob("*.yaml")))


def load_crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(text) for text in _crds()]


async def install_crds(kube: Kube, *, timeout: float = 60.0) -> None:
    """Server-side apply the three CRDs and wait until each kind is served."""
    for crd in load_crds():
        await kube.apply(CRD_INFO, crd, force=True, field_manager=FIELD_MANAGER)
    for info in (REPOSITORY_INFO, POLICY_INFO, UPDATE_INFO):

        async def served(kind: str = info.kind) -> bool:
            try:
                await kube.info(API_VERSION, kind, refresh=True)
            except KubeError:
                return False
            return True

        await kube.wait_for(f"{API_VERSION} {info.kind} to be served", served, timeout)


_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ms|s|m|h)")


def parse_duration(text: str | None, where: str, default: float) -> float:
    """Seconds of a Go duration (``30s``, ``5m``, ``1h30m``, ``0s``); ``default`` when empty."""
    if text is None or text == "":
        return default
    text = str(text)
    if text == "0":
        return 0.0
    if not _DURATION.fullmatch(text) and not re.fullmatch(r"(?:\d+(?:\.\d*)?(?:ms|s|m|h))+", text):
        raise ImageError(f"{where}: {text!r} is not a duration such as '30s', '5m' or '1h30m'")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in _DURATION.findall(text))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, Any]] | None, type_: str, status: bool, reason: str, message: str, generation: int | None
) -> list[dict[str, Any]]:
    """The conditions with ``type_`` set; ``lastTransitionTime`` moves only when the status changes."""
    value = "True" if status else "False"
    kept = [dict(c) for c in conditions or [] if c.get("type") != type_]
    old = next((c for c in conditions or [] if c.get("type") == type_), None)
    transition = old.get("lastTransitionTime") if old and old.get("status") == value else now_iso()
    condition = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:2000],
        "lastTransitionTime": transition or now_iso(),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return [*kept, condition]


def key_of(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


__all__ = [
    "API_VERSION",
    "FIELD_MANAGER",
    "POLICY_INFO",
    "REPOSITORY_INFO",
    "SCAN_ANNOTATION",
    "UPDATE_INFO",
    "install_crds",
    "key_of",
    "load_crds",
    "now_iso",
    "parse_duration",
    "set_condition",
]
