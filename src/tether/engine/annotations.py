"""Annotations from tether, Argo CD, Flux and Helm that change how the engine treats one object.

Each function reads one object's annotations and answers one question (keep it when it leaves
Git? create it but never update it? leave it alone?). docs/compatibility.md holds the table of
every annotation and what tether does with it; keep the two in step.
"""

from __future__ import annotations

from typing import Any

from tether.errors import ValidationError
from tether.model import ObjectRef

PRUNE_ANNOTATION = "tether.dev/prune"
WAVE_ANNOTATION = "tether.dev/wave"
RECREATE_ANNOTATION = "tether.dev/recreate"
ARGO_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
ARGO_COMPARE_OPTIONS = "argocd.argoproj.io/compare-options"
ARGO_SYNC_WAVE = "argocd.argoproj.io/sync-wave"
HELM_RESOURCE_POLICY = "helm.sh/resource-policy"
FLUX_PRUNE = "kustomize.toolkit.fluxcd.io/prune"
FLUX_SSA = "kustomize.toolkit.fluxcd.io/ssa"
FLUX_FORCE = "kustomize.toolkit.fluxcd.io/force"
FLUX_RECONCILE = "kustomize.toolkit.fluxcd.io/reconcile"


def annotations_of(obj: dict[str, Any] | None) -> dict[str, Any]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def _options(obj: dict[str, Any] | None, key: str) -> dict[str, str]:
    """Argo CD's comma-separated ``Name=value`` lists (``Prune=false,Replace=true``), names as written."""
    out: dict[str, str] = {}
    for item in str(annotations_of(obj).get(key) or "").split(","):
        name, _sep, value = item.strip().partition("=")
        if name:
            out[name.strip()] = value.strip()
    return out


def sync_options(obj: dict[str, Any] | None) -> dict[str, str]:
    return _options(obj, ARGO_SYNC_OPTIONS)


def keep_reason(obj: dict[str, Any] | None) -> str:
    """The annotation that keeps the object when it leaves Git ('' = it may be pruned)."""
    annotations = annotations_of(obj)
    if str(annotations.get(PRUNE_ANNOTATION, "")).lower() == "disabled":
        return f"{PRUNE_ANNOTATION}: disabled"
    if sync_options(obj).get("Prune", "").lower() == "false":
        return f"{ARGO_SYNC_OPTIONS}: Prune=false"
    if str(annotations.get(HELM_RESOURCE_POLICY, "")).lower() == "keep":
        return f"{HELM_RESOURCE_POLICY}: keep"
    if str(annotations.get(FLUX_PRUNE, "")).lower() == "disabled":
        return f"{FLUX_PRUNE}: disabled"
    return ""


def create_only(obj: dict[str, Any] | None) -> bool:
    """Flux's ``ssa: IfNotPresent``: created when missing, never updated afterwards."""
    return str(annotations_of(obj).get(FLUX_SSA, "")).lower() == "ifnotpresent"


def ignore_reason(obj: dict[str, Any] | None) -> str:
    """The annotation that tells tether to leave the object alone: neither applied nor pruned."""
    annotations = annotations_of(obj)
    if str(annotations.get(FLUX_SSA, "")).lower() == "ignore":
        return f"{FLUX_SSA}: Ignore"
    if str(annotations.get(FLUX_RECONCILE, "")).lower() == "disabled":
        return f"{FLUX_RECONCILE}: disabled"
    return ""


def ignore_extraneous(obj: dict[str, Any] | None) -> bool:
    """Argo CD's ``compare-options: IgnoreExtraneous``: leaving Git does not make the app differ."""
    return "IgnoreExtraneous" in _options(obj, ARGO_COMPARE_OPTIONS)


def recreate_reason(obj: dict[str, Any] | None) -> str:
    """The annotation that allows deleting and creating the object again when an immutable field changes."""
    annotations = annotations_of(obj)
    if str(annotations.get(RECREATE_ANNOTATION, "")).lower() in ("true", "enabled"):
        return f'{RECREATE_ANNOTATION}: "true"'
    options = sync_options(obj)
    for name in ("Replace", "Force"):
        if options.get(name, "").lower() == "true":
            return f"{ARGO_SYNC_OPTIONS}: {name}=true"
    if str(annotations.get(FLUX_FORCE, "")).lower() == "enabled":
        return f"{FLUX_FORCE}: enabled"
    return ""


def _int_annotation(obj: dict[str, Any], key: str, where: str) -> int | None:
    raw = annotations_of(obj).get(key)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValidationError(f"{where or ObjectRef.of(obj)}: annotation {key}={raw!r} is not an integer") from None


def wave_of(obj: dict[str, Any], where: str = "") -> int:
    """``tether.dev/wave``, else Argo CD's ``sync-wave`` (integers, default 0)."""
    for key in (WAVE_ANNOTATION, ARGO_SYNC_WAVE):
        value = _int_annotation(obj, key, where)
        if value is not None:
            return value
    return 0


__all__ = [
    "ARGO_COMPARE_OPTIONS",
    "ARGO_SYNC_OPTIONS",
    "ARGO_SYNC_WAVE",
    "FLUX_FORCE",
    "FLUX_PRUNE",
    "FLUX_RECONCILE",
    "FLUX_SSA",
    "HELM_RESOURCE_POLICY",
    "PRUNE_ANNOTATION",
    "RECREATE_ANNOTATION",
    "WAVE_ANNOTATION",
    "annotations_of",
    "create_only",
    "ignore_extraneous",
    "ignore_reason",
    "keep_reason",
    "recreate_reason",
    "sync_options",
    "wave_of",
]
