"""The cascade finalizer: an Application deleted with ``tether.dev/cascade`` runs its delete hooks and
has its objects pruned before the finalizer is removed.

The hooks come from the last applied revision (``status.lastAppliedRevision``): the render the
controller keeps when it is of that commit, else that commit rendered again. Deletion is never
blocked by the source: an app that was never applied, or whose revision can no longer be fetched
or rendered, is pruned without hooks and an Event says why. A failing pre-delete hook does block
it, as Helm aborts an uninstall: nothing is pruned, a Warning Event and the Ready condition say
why, and the deletion is retried with the app's backoff until the hook succeeds or someone
removes the finalizer (which deletes the Application and leaves its objects in the cluster). A
failing post-delete hook is reported and the finalizer is removed all the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tether.controller.app_inputs import secret_data
from tether.controller.stages import CASCADE_FINALIZER, AppMemory, render_revision
from tether.delivery.source import SecretCredentials
from tether.errors import TetherError
from tether.model import Manifest

PRE_DELETE_HOOK_FAILED = "PreDeleteHookFailed"
POST_DELETE_HOOK_FAILED = "PostDeleteHookFailed"
DELETE_HOOKS_SKIPPED = "DeleteHooksSkipped"
DELETE_FAILED = "DeleteFailed"
DELETED = "Deleted"


async def applied_manifests(reconciler: Any, app: Any, kube: Any) -> tuple[list[Manifest] | None, str]:
    """(the render of the last applied revision, '') or (None, why there is none)."""
    revision = app.status.last_applied_revision or ""
    if not revision:
        return None, "the app was never applied"
    memory = reconciler.memory.get(app.key)
    if memory is not None and memory.manifests is not None and memory.rendered_commit == revision:
        return memory.manifests, ""
    source = app.spec.source
    try:
        if not reconciler.fetcher.has_commit(source.url, revision):
            data = (
                await secret_data(kube, app.namespace, source.secret_ref.name, field="spec.source.secretRef")
                if source.secret_ref
                else None
            )
            credentials = SecretCredentials(data, source.url) if data else None
            try:
                await reconciler.fetcher.fetch(source.url, credentials.credentials if credentials else None)
            finally:
                if credentials is not None:
                    credentials.close()
        again = AppMemory(commit=revision)
        options = await reconciler._render_options(kube, app)
        await render_revision(reconciler.fetcher, app, again, options, await reconciler._decryptor(kube, app))
    except TetherError as error:
        return None, f"revision {revision[:12]} could not be fetched or rendered: {error}"
    return again.manifests or [], ""


async def finalize_cascade(reconciler: Any, app: Any, kube: Any) -> float | None:
    """Delete hooks and prune for an app being deleted; None when done (the finalizer may go),
    else the seconds until the next attempt."""
    from tether.controller import conditions as c
    from tether.engine import AppIdentity, HookFailed
    from tether.engine.lifecycle_hooks import delete_app

    events = reconciler.events
    manifests, why = await applied_manifests(reconciler, app, kube)
    identity = AppIdentity(app.namespace, app.name)
    try:
        result = await delete_app(
            kube,
            identity,
            manifests,
            default_namespace=app.spec.destination.namespace or app.namespace,
            reader=reconciler.cache.reader(),
            timeout=app.spec.timeout.total_seconds(),
        )
    except TetherError as error:
        memory = reconciler.memory_of(app.key)
        memory.failures += 1
        reason = PRE_DELETE_HOOK_FAILED if isinstance(error, HookFailed) else DELETE_FAILED
        message = (
            f"{error}; nothing was pruned, the deletion is retried until the hook succeeds (to delete the "
            f"Application without it, leaving its objects in the cluster, remove the finalizer {CASCADE_FINALIZER})"
            if isinstance(error, HookFailed)
            else f"{error}; the deletion is retried"
        )
        await events.warning(app, reason, message)
        status = app.status.model_copy(deep=True)
        now = datetime.fromtimestamp(reconciler.clock(), UTC)
        status.conditions = list(c.mark_failed(status.conditions, reason, message, app.generation, now))
        await reconciler.status.write(app, status)
        return app.spec.retry.delay(memory.failures).total_seconds()
    skipped = why or result.hooks_skipped
    if skipped and why != "the app was never applied":
        await events.warning(app, DELETE_HOOKS_SKIPPED, f"no delete hooks ran: {skipped}")
    if result.post_delete_failure:
        await events.warning(app, POST_DELETE_HOOK_FAILED, result.post_delete_failure)
    await events.normal(app, DELETED, _summary(result, skipped))
    return None


def _summary(result: Any, skipped: str) -> str:
    parts = [f"pruned {result.pruned} object(s)"]
    if skipped:
        parts.append(f"no delete hooks ran ({skipped})")
    else:
        parts.append("pre-delete hooks: " + (", ".join(result.pre_delete) or "none"))
        parts.append("post-delete hooks: " + (", ".join(result.post_delete) or "none"))
    if result.lingering:
        parts.append(f"still being deleted when the post-delete hooks ran: {', '.join(result.lingering[:5])}")
    return "; ".join(parts)
