"""The stages of one pass over an Application, and what the controller remembers between passes.

- ``fetch_revision``: Git is looked up when the app's interval passed, on a webhook or refresh,
  or when what is wanted changed (URL, ref, pin); otherwise the last revision stands.
- ``render_revision``: an app is rendered again only when its spec changed or a new commit
  touched its inputs (its path, the Kustomize bases it reaches, its values files).
- A failing stage raises ``StageError`` naming it; the reconciler turns that into status and
  keeps the cluster as it was (nothing is pruned after a failed stage).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from tether.controller.drift import Drift, detect
from tether.delivery.inputs import app_inputs, touches
from tether.delivery.render import render_tree_async
from tether.delivery.source import CommitInfo, SecretCredentials, SourceFetcher
from tether.errors import TetherError
from tether.model import Manifest, ObjectRef
from tether.render.pipeline import detect as renderer_of

REFRESH_ANNOTATION = "tether.dev/refresh-requested-at"
SYNC_ANNOTATION = "tether.dev/sync-requested-at"
#: an app deleted with this finalizer has its objects pruned first (``tether app delete --cascade``)
CASCADE_FINALIZER = "tether.dev/cascade"
MAX_DRIFT = 20


class StageError(TetherError):
    """A stage of the pipeline failed; ``stage`` names it for the status reason."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass
class AppMemory:
    """What the controller remembers of one app between passes (in memory only; Git is the record)."""

    commit: str = ""
    commit_info: CommitInfo | None = None
    wanted: tuple[str, str, str] = ("", "", "")  # (url, ref, pin) the commit was resolved for
    fetched_at: float = float("-inf")
    manifests: list[Manifest] | None = None
    rendered_commit: str = ""
    rendered_generation: int = -1
    rendered_key: Any = None  # the render options it was rendered with (see _render_key)
    rendered_helm: bool = False
    inputs: frozenset[str] = frozenset()
    handled_refresh: str = ""
    handled_sync: str = ""
    #: when a push of a commit was first announced (webhook), for commit-to-applied latency
    announced: dict[str, float] = field(default_factory=dict)
    ready_revision: str = ""
    failures: int = 0  # failed passes in a row (spec.retry counts them)
    started_reported: str = ""
    #: what the last apply wrote (object -> resourceVersion) and deleted: the watch events these
    #: cause are the echo of our own writes, not a change to reconcile again for
    own_writes: dict[ObjectRef, str] = field(default_factory=dict)
    own_deletes: frozenset[ObjectRef] = frozenset()

    def caused_by_own_write(self, event: str, obj: dict[str, Any]) -> bool:
        ref = ObjectRef.of(obj)
        if event == "DELETED":
            return ref in self.own_deletes
        version = (obj.get("metadata") or {}).get("resourceVersion")
        return bool(version) and self.own_writes.get(ref) == version


async def fetch_revision(
    fetcher: SourceFetcher,
    app: Any,
    memory: AppMemory,
    *,
    force: bool,
    secret_data: dict[str, str] | None,
    interval: float,
) -> bool:
    """Bring ``memory.commit`` up to date when due; True when it was looked up this pass.

    Due: the interval passed, a push/refresh asked for it, or what is wanted changed (URL, ref,
    pin). A pinned commit already in the mirror is resolved without touching the network.
    ``app`` is the typed ``Application``.
    """
    source = app.spec.source
    url = source.url
    pin = app.spec.pin.revision if app.spec.pin else ""
    wanted = (url, source.ref.as_ref_string() if source.ref else "", pin)
    changed = wanted != memory.wanted
    due = force or changed or time.monotonic() - memory.fetched_at >= interval or not memory.commit
    if not due or (pin and not changed and not force):
        return False  # a pinned commit never moves
    credentials = SecretCredentials(secret_data, url) if secret_data else None
    try:
        if not (pin and fetcher.has_commit(url, pin)):
            await fetcher.fetch(url, credentials.credentials if credentials else None, force=force)
        fetched = await fetcher.resolve(url, f"commit:{pin}" if pin else wanted[1])
    except TetherError as error:
        raise StageError("FetchFailed", str(error)) from None
    finally:
        if credentials is not None:
            credentials.close()
    memory.fetched_at = time.monotonic()
    memory.commit, memory.commit_info, memory.wanted = fetched.commit, fetched.info, wanted
    return True


def _render_key(options: Any, helm: bool) -> Any:
    """What a render depends on besides the commit and the spec: the options (substitution
    variables read from ConfigMaps and Secrets among them) and, for a Helm chart only, the target
    cluster's version and APIs (``.Capabilities``), so a CRD installed later re-renders the charts
    that test for it and no other app."""
    if helm:
        return options
    return dataclasses.replace(options, kube_version="", api_versions=(), kube_version_given=False)


async def render_revision(fetcher: SourceFetcher, app: Any, memory: AppMemory, options: Any, decryptor: Any) -> bool:
    """Render when the spec or the render options changed or a new commit touched the app's
    inputs; True when rendered."""
    url, path, generation = app.spec.source.url, app.spec.source.path, app.generation
    same_inputs = memory.rendered_key == _render_key(options, memory.rendered_helm)
    if memory.manifests is not None and memory.rendered_generation == generation and same_inputs:
        if memory.rendered_commit == memory.commit:
            return False
        changed = await fetcher.changed_paths(url, memory.rendered_commit, memory.commit)
        if not touches(changed, memory.inputs):
            memory.rendered_commit = memory.commit  # the commit did not touch this app: same render
            return False
    try:
        root = await fetcher.export(url, memory.commit)
        manifests = await render_tree_async(root, path, options, decryptor)
    except TetherError as error:
        raise StageError("RenderFailed", f"{memory.commit[:12]}: {error}") from None
    helm = app.spec.render.helm
    values = tuple(helm.values_files) if helm else ()
    memory.inputs = app_inputs(root, path, values)
    memory.manifests, memory.rendered_commit, memory.rendered_generation = manifests, memory.commit, generation
    directory = (root / path) if path else root
    memory.rendered_helm = (options.renderer if options.renderer != "auto" else renderer_of(directory)) == "helm"
    memory.rendered_key = _render_key(options, memory.rendered_helm)
    return True


def drift_of(changes: list[Any], ours: set[str]) -> list[Drift]:
    """Drift entries for the changes a plan found while Git stayed at the applied revision."""
    drifts = []
    for change in changes[:MAX_DRIFT]:
        label = str(change.ref)
        drifts.append(detect(label, change.after, change.live, ours))
    return drifts


@dataclass
class PassResult:
    """What one pass found, before it is written as status."""

    stage: str = ""  # the failed stage's reason ("" = no failure)
    message: str = ""
    synced: bool | None = None  # None: unknown (nothing planned)
    applied: bool = False
    health: str = "Unknown"
    health_message: str = ""
    drift: list[Drift] = field(default_factory=list)
    drift_corrected: list[Drift] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    inventory: int | None = None
    pruned: int = 0
    prune_blocked: list[str] = field(default_factory=list)  # inventory entries not verified
    stale: set[Any] = field(default_factory=set)  # applied objects the watch cache had not seen yet
    waiting_on: str = ""  # a dependency that is not Ready
    requeue_after: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def render_options_for(
    app: Any,
    variables: tuple[tuple[str, str], ...] = (),
    chart_credentials: tuple[tuple[str, tuple[str, str]], ...] = (),
) -> Any:
    """The RenderOptions of an Application's spec.render (``app`` is the typed ``Application``);
    ``chart_credentials``: what ``app_inputs.chart_credentials`` read for spec.render.helm.repositories."""
    import json

    from tether.render import RenderOptions

    helm, jsonnet = app.spec.render.helm, app.spec.render.jsonnet
    return RenderOptions(
        app=app.name,
        namespace=app.spec.destination.namespace or app.namespace,
        values_files=tuple(helm.values_files) if helm else (),
        inline_values=json.dumps(helm.values, sort_keys=True) if helm and helm.values else "",
        release_name=(helm.release_name or "") if helm else "",
        tla_str=tuple(sorted(jsonnet.tla_str.items())) if jsonnet else (),
        tla_code=tuple(sorted(jsonnet.tla_code.items())) if jsonnet else (),
        ext_str=tuple(sorted(jsonnet.ext_str.items())) if jsonnet else (),
        ext_code=tuple(sorted(jsonnet.ext_code.items())) if jsonnet else (),
        variables=variables,
        substitute=app.spec.render.substitute is not None,  # opt-in, as Flux's postBuild
        chart_credentials=chart_credentials,
    )


def applied_digest(obj: dict[str, Any] | None) -> str | None:
    from tether.engine.diff import DIGEST_ANNOTATION

    return (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)


def ignore_rule(rule: Any) -> Any:
    from tether.engine.diff import IgnoreRule

    manager = rule.managed_fields_managers[0] if rule.managed_fields_managers else None
    return IgnoreRule(group=rule.group or "", kind=rule.kind, pointers=tuple(rule.json_pointers), manager=manager)
