"""Plan: what applying the desired objects would change, as a value printable as a diff or JSON.

How an object is classified (and why this is fast at 10,000 objects):

1. Each kind is read once through a ``LiveReader`` (by default one list per kind, label
   ``tether.dev/app=<name>``; the controller passes its watch cache) instead of one GET per object.
2. Ownership first: a live object another app owns is a *conflict* (not applied) unless the
   user adopts it (``--adopt`` or the annotation ``tether.dev/adopt: "true"``); an object that
   exists without tether ownership is *adopt*.
3. Fast path: the desired object carries the annotation ``tether.dev/applied-digest`` (a hash
   of the object as tether applies it). If the live object has the same digest and every
   desired field still has the desired value, applying again cannot change anything:
   *unchanged*, no request at all.
4. Otherwise the object is applied server-side with ``dryRun=All`` (always with force: Git
   wins) and the result, which has the server's defaults and merge semantics, is compared with
   the live object: equal = *unchanged*, else *update*. Fields taken from other managers are
   listed from the live managedFields.
5. Objects not found are *create* (``generateName`` objects always: they are created on every
   apply and never addressed by name); inventory entries no longer desired are *delete* once
   ``prune`` verified them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tether.engine.annotations import PRUNE_ANNOTATION, create_only, ignore_reason, recreate_reason, wave_of
from tether.engine.changes import WRITES, Action, Change, Plan, Skipped
from tether.engine.diff import (
    DIGEST_ANNOTATION,
    MANAGED_BY_LABEL,
    IgnoreRule,
    apply_exclusions,
    digest,
    ignored_pointers,
    in_sync,
    mask_secret,
    strip_noise,
    without,
)
from tether.engine.fields import taken_fields
from tether.engine.hooks import Hook, classify, delete_policies, weight_of
from tether.engine.identity import (
    AppIdentity,
    Ownership,
    is_bookkeeping,
    is_dns_label,
    is_safe_name,
    owner_of,
    wants_adoption,
)
from tether.engine.immutable import as_recreated, immutable_fields, is_immutable_error
from tether.engine.inventory import DEFAULT_NAMESPACE, read_inventory
from tether.engine.prune import plan_deletes
from tether.engine.reader import Key, ListingReader, LiveReader, key_of
from tether.errors import ValidationError
from tether.kube import Invalid, Kube, NotFound, ResourceInfo, UnknownKind, infos_from_crd
from tether.model import Manifest, ObjectRef

# ---------------------------------------------------------------- preparing desired objects


def _check_addressable(manifest: Manifest, info: ResourceInfo) -> None:
    """Refuse objects whose name or namespace would not address exactly one object in a URL."""
    meta = manifest.obj.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    if name is None and meta.get("generateName"):
        if not isinstance(meta["generateName"], str) or not is_safe_name(meta["generateName"]):
            raise ValidationError(f"{manifest.where()}: metadata.generateName {meta['generateName']!r} is not valid")
    elif not isinstance(name, str) or not is_safe_name(name):
        raise ValidationError(
            f"{manifest.where()}: metadata.name {name!r} is empty or not a valid object name "
            "(no '/', '%', '.' or '..'); fix it in the source"
        )
    if info.namespaced and namespace is not None and not (isinstance(namespace, str) and is_dns_label(namespace)):
        raise ValidationError(
            f"{manifest.where()}: metadata.namespace {namespace!r} is not a valid namespace "
            "(a DNS label: lower-case letters, digits, '-')"
        )


def _refuse_bookkeeping(manifests: list[Manifest]) -> None:
    found = [m.where() for m in manifests if is_bookkeeping(m.obj)]
    if found:
        raise ValidationError(
            f"{', '.join(found[:5])}: tether-inventory-* ConfigMaps (and anything labelled tether.dev/inventory) "
            "are tether's own bookkeeping and only tether writes them; remove them from the source"
        )


def prepare(
    manifest: Manifest, identity: AppIdentity | str, default_namespace: str, info: ResourceInfo
) -> dict[str, Any]:
    """The object as tether applies it: identity labels, namespace rules, digest annotation."""
    if isinstance(identity, str):
        identity = AppIdentity(DEFAULT_NAMESPACE, identity)
    # Only metadata is changed: copy that level, share the rest with the manifest (read-only from here on).
    obj = dict(manifest.obj)
    meta = obj["metadata"] = dict(obj.get("metadata") or {})
    if info.namespaced:
        meta.setdefault("namespace", default_namespace)
    else:
        meta.pop("namespace", None)  # as kubectl: a namespace on a cluster-scoped object means nothing
    labels = meta["labels"] = dict(meta.get("labels") or {})
    labels.setdefault(MANAGED_BY_LABEL, "tether")
    labels.update(identity.labels)
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
        meta.pop(key, None)
    obj.pop("status", None)
    annotations = meta["annotations"] = dict(meta.get("annotations") or {})
    annotations.pop(DIGEST_ANNOTATION, None)
    annotations[DIGEST_ANNOTATION] = digest(obj)
    return obj


def _digest_of(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)


def _type_of(obj: dict[str, Any]) -> tuple[str, str]:
    return (obj.get("apiVersion") or "", obj.get("kind") or "")


async def _resolve_infos(kube: Kube, manifests: list[Manifest]) -> dict[tuple[str, str], ResourceInfo]:
    for manifest in manifests:
        if _type_of(manifest.obj) == ("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
            for info in infos_from_crd(manifest.obj):
                if kube.discovery.cached(info.api_version, info.kind) is None:
                    kube.discovery.register(info)
    wanted = sorted({_type_of(m.obj) for m in manifests})
    infos: dict[tuple[str, str], ResourceInfo] = {}
    problems: list[str] = []

    async def one(api_version: str, kind: str) -> None:
        try:
            infos[(api_version, kind)] = await kube.info(api_version, kind)
        except UnknownKind as error:
            users = [m.where() for m in manifests if _type_of(m.obj) == (api_version, kind)]
            problems.append(f"{error} (used by {', '.join(users[:3])}{' ...' if len(users) > 3 else ''})")

    await asyncio.gather(*(one(av, k) for av, k in wanted))
    if problems:
        raise ValidationError("; ".join(sorted(problems)))
    return infos


def _require_valid_names(manifests: list[Manifest]) -> None:
    """The render stage's name rules, where that stage provides them (the engine checks paths itself)."""
    try:
        from tether.validate.names import require_valid_names  # type: ignore[import-not-found]
    except ImportError:
        return
    require_valid_names(manifests)


# ---------------------------------------------------------------- planning


async def make_plan(
    kube: Kube,
    manifests: list[Manifest],
    identity: AppIdentity | str,
    *,
    reader: LiveReader | None = None,
    ignore_rules: list[IgnoreRule] | tuple[IgnoreRule, ...] = (),
    inventory_namespace: str = DEFAULT_NAMESPACE,
    default_namespace: str | None = None,
    exact: bool = False,
    force: bool = True,
    adopt: bool = False,
    concurrency: int = 16,
) -> Plan:
    """Compare desired manifests with the cluster.

    ``identity`` is the app (a plain name means ``AppIdentity(inventory_namespace, name)``).
    ``exact`` (used by ``diff``) also dry-runs objects to be created so the printed diff is
    what the server would store; ``apply`` skips that because the apply itself does the same
    work. ``force`` is accepted for compatibility: the dry-run always takes fields (Git wins)
    and ``takes`` says from whom; apply decides whether to force.
    """
    del force
    if isinstance(identity, str):
        identity = AppIdentity(inventory_namespace, identity)
    reader = reader if reader is not None else ListingReader(kube)
    namespace = default_namespace or kube.namespace
    manager = identity.field_manager
    _refuse_bookkeeping(manifests)
    _require_valid_names(manifests)
    infos = await _resolve_infos(kube, manifests)
    inventory = await read_inventory(kube, identity)

    desired: list[tuple[Manifest, ResourceInfo, dict[str, Any], int]] = []
    seen: dict[Key, Manifest] = {}
    hooks: list[Hook] = []
    not_run: list[tuple[str, str]] = []
    ignored: list[tuple[ObjectRef, str]] = []
    install = not inventory.resource_version  # no inventory yet: the app is being installed (Helm's sense)
    for manifest in manifests:
        info = infos[_type_of(manifest.obj)]
        _check_addressable(manifest, info)
        phase, origin, why_not = classify(manifest.obj, install=install, where=manifest.where())
        if origin and phase is None:
            not_run.append((manifest.where(), why_not))
            continue
        obj = prepare(manifest, identity, namespace, info)
        if phase is not None:
            hooks.append(
                Hook(
                    phase,
                    weight_of(obj, manifest.where()),
                    delete_policies(obj, manifest.where()),
                    info,
                    obj,
                    manifest,
                    origin,
                )
            )
            continue
        reason = ignore_reason(obj)
        if reason:
            ignored.append((ObjectRef.of(obj), reason))
            continue
        key = key_of(obj)
        if key[3]:  # generateName objects have no name: each is its own object
            if key in seen:
                raise ValidationError(f"{manifest.where()}: duplicate of {seen[key].where()}")
            seen[key] = manifest
        desired.append((manifest, info, obj, wave_of(obj, manifest.where())))

    namespaces = {key[2] for key in seen} | {ref.namespace for ref in inventory.entries}
    index = await reader.list_app_objects(list(set(infos.values())), identity, namespaces=namespaces)
    semaphore = asyncio.Semaphore(concurrency)

    def ownership(obj: dict[str, Any], ref: ObjectRef, live: dict[str, Any]) -> tuple[Action | None, str]:
        """CONFLICT/ADOPT when the live object is not (yet) this app's; None when it is."""
        owned, owner = owner_of(live, identity)
        if owned is Ownership.MINE or (owned is Ownership.LEGACY_MINE and ref in inventory.entries):
            return None, ""
        if owned is Ownership.NONE:
            return Action.ADOPT, ""
        if adopt or wants_adoption(obj):
            return Action.ADOPT, owner
        if owned is Ownership.LEGACY_MINE:
            owner = f"{owner} (labelled by an older tether, not in this app's inventory)"
        return Action.CONFLICT, owner

    def quick(manifest: Manifest, info: ResourceInfo, obj: dict[str, Any], wave: int) -> Change | None:
        """Classify without any request where possible (the common case); None = ask the server."""
        ref = ObjectRef.of(obj)
        source = str(manifest.source) if manifest.source else ""
        if not ref.name:
            return Change(ref, Action.CREATE, info, obj, None, obj, source, wave, manifest, create_only=True)
        live = index.get(key_of(obj))
        if live is None:
            return None  # a GET tells create (nothing there) from adopt or conflict
        verdict, owner = ownership(obj, ref, live)
        if verdict is Action.CONFLICT:
            return Change(ref, Action.CONFLICT, info, obj, live, None, source, wave, manifest, owner=owner)
        if create_only(obj) or ignore_reason(live):
            return Change(ref, Action.UNCHANGED, info, obj, live, live, source, wave, manifest)
        if verdict is not None:
            return None
        pointers = ignored_pointers(ignore_rules, ref, live)
        to_apply = without(obj, apply_exclusions(ignore_rules, ref, live))
        if in_sync(to_apply, live, pointers):
            return Change(ref, Action.UNCHANGED, info, to_apply, live, live, source, wave, manifest)
        if not exact and _digest_of(live) != _digest_of(to_apply):
            # Desired content changed since the last apply (or tether never applied it): the
            # apply writes at least the new digest, so it is an update; no need to ask first.
            return Change(
                ref,
                Action.UPDATE,
                info,
                to_apply,
                live,
                to_apply,
                source,
                wave,
                manifest,
                takes=taken_fields(live, to_apply, manager),
            )
        return None

    async def ask(manifest: Manifest, info: ResourceInfo, obj: dict[str, Any], wave: int) -> Change:
        """Classify with the server: a server-side dry-run of the apply, compared with the live object."""
        ref = ObjectRef.of(obj)
        source = str(manifest.source) if manifest.source else ""
        live = index.get(key_of(obj))
        async with semaphore:
            if live is None:
                live = await reader.get(info, ref.name, ref.namespace or None)
            if live is None:
                after = obj
                if exact and kube.discovery.served(info):
                    # NotFound: its namespace comes with this same plan; show the object as written
                    with contextlib.suppress(NotFound):
                        after = await kube.apply(info, obj, force=True, dry_run=True, field_manager=manager)
                return Change(ref, Action.CREATE, info, obj, None, after, source, wave, manifest)
            verdict, owner = ownership(obj, ref, live)
            if verdict is Action.CONFLICT:
                return Change(ref, Action.CONFLICT, info, obj, live, None, source, wave, manifest, owner=owner)
            if create_only(obj) or ignore_reason(live):
                return Change(ref, Action.UNCHANGED, info, obj, live, live, source, wave, manifest)
            pointers = ignored_pointers(ignore_rules, ref, live)
            to_apply = without(obj, apply_exclusions(ignore_rules, ref, live))
            takes = taken_fields(live, to_apply, manager)
            if verdict is Action.ADOPT and not exact:
                return Change(
                    ref, Action.ADOPT, info, to_apply, live, to_apply, source, wave, manifest, owner=owner, takes=takes
                )
            try:
                after = await kube.apply(info, to_apply, force=True, dry_run=True, field_manager=manager)
            except Invalid as error:
                if not is_immutable_error(error):
                    raise
                return Change(
                    ref,
                    Action.ADOPT if verdict is Action.ADOPT else Action.UPDATE,
                    info,
                    to_apply,
                    without(live, pointers),
                    as_recreated(without(live, pointers), to_apply),
                    source,
                    wave,
                    manifest,
                    owner=owner,
                    takes=takes,
                    immutable=immutable_fields(error),
                    immutable_error=str(error),
                    recreate=recreate_reason(to_apply),
                )
        if verdict is Action.ADOPT:
            action = Action.ADOPT
        else:
            same = without(strip_noise(after), pointers) == without(strip_noise(live), pointers)
            action = Action.UNCHANGED if same else Action.UPDATE
        return Change(
            ref,
            action,
            info,
            to_apply,
            without(live, pointers),
            without(after, pointers),
            source,
            wave,
            manifest,
            owner=owner,
            takes=takes if action is not Action.UNCHANGED else [],
        )

    # No coroutine per object: at 10,000 objects the event loop's own overhead would dominate.
    changes: list[Change | None] = [quick(*entry) for entry in desired]
    asked = [i for i, change in enumerate(changes) if change is None]
    for i, change in zip(asked, await asyncio.gather(*(ask(*desired[i]) for i in asked)), strict=True):
        changes[i] = change
    done = [c for c in changes if c is not None]
    # a conflicting object is still desired: never a prune candidate, whoever owns it now
    wanted = {c.ref for c in done if c.ref.name} | {ref for ref, _reason in ignored}
    deletes, kept, skipped, keep_reasons = await plan_deletes(kube, reader, identity, inventory, wanted, index)
    done.extend(deletes)
    return Plan(
        identity,
        done,
        inventory,
        identity.namespace,
        kept,
        skipped,
        keep_reasons=keep_reasons,
        ignored=ignored,
        hooks=hooks,
        not_run=not_run,
    )


__all__ = [
    "PRUNE_ANNOTATION",
    "WRITES",
    "Action",
    "Change",
    "Plan",
    "Skipped",
    "make_plan",
    "mask_secret",
    "prepare",
    "read_inventory",
]
