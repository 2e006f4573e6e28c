"""Validate and plan one app's rendered manifests: the part push mode and the controller share.

Validation runs on what the plan would write (creates, adoptions and updates), not on the whole
set: an unchanged object is byte for byte what the server already accepted, and skipping it
keeps a no-op pass of 10,000 objects fast (and free of the CRD LIST a custom resource needs).
Unknown kinds, duplicates and unsafe names are refused by the plan itself, for every object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tether.engine import AppIdentity, IgnoreRule, LiveReader, Plan, make_plan
from tether.errors import ValidationError
from tether.kube import Kube
from tether.model import Manifest
from tether.schemas import gvk_index

#: findings shown in a ValidationError before "... and N more"
SHOWN_FINDINGS = 20


async def validation_report(
    kube: Kube | None, manifests: list[Manifest], kube_version: str, root: Path | None = None
) -> Any:
    """The validate stage's report, with CRD schemas from the set and (when needed, and a ``kube`` is
    given) from the cluster: one LIST of CRDs, only when a kind is not built in."""
    # imported here: schema and CEL machinery is only needed when something is about to be written
    from tether.validate import validate_manifests
    from tether.validate.crd import index_crds

    builtin = gvk_index(kube_version)
    crds: dict[tuple[str, str, str], dict[str, Any]] = {}
    if kube is not None and any((m.ref.group, m.ref.version, m.ref.kind) not in builtin for m in manifests):
        crds = index_crds(await kube.list(await kube.info("apiextensions.k8s.io/v1", "CustomResourceDefinition")))
    return validate_manifests(
        manifests,
        kube_version=kube_version,
        root=root,
        crd_lookup=lambda group, version, kind: crds.get((group, version, kind)),
    )


async def validate_changes(kube: Kube, manifests: list[Manifest], kube_version: str, root: Path | None = None) -> None:
    """The validate stage: raises a ValidationError listing the errors (nothing is applied then)."""
    report = await validation_report(kube, manifests, kube_version, root)
    if not report.valid:
        shown = [str(f) for f in report.errors[:SHOWN_FINDINGS]]
        more = f"\n... and {len(report.errors) - SHOWN_FINDINGS} more" if len(report.errors) > SHOWN_FINDINGS else ""
        raise ValidationError(
            f"{len(report.errors)} validation error(s); nothing was applied:\n" + "\n".join(shown) + more
        )


async def plan_app(
    kube: Kube,
    manifests: list[Manifest],
    identity: AppIdentity,
    *,
    reader: LiveReader | None = None,
    ignore_rules: list[IgnoreRule] | tuple[IgnoreRule, ...] = (),
    default_namespace: str | None = None,
    exact: bool = False,
    adopt: bool = False,
    validate: bool = True,
    kube_version: str = "1.32",
    root: Path | None = None,
) -> Plan:
    """Plan, then validate what the plan would write; raises before anything is written."""
    plan = await make_plan(
        kube,
        manifests,
        identity,
        reader=reader,
        ignore_rules=ignore_rules,
        exact=exact,
        adopt=adopt,
        default_namespace=default_namespace,
    )
    if validate and plan.changed_manifests():
        await validate_changes(kube, plan.changed_manifests(), kube_version, root)
    return plan
