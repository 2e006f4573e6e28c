"""The actions of the app page, as ``tether app`` does them: merge patches made as the signed-in user.

sync / refresh set the request annotation the controller answers; suspend / resume set
``spec.suspend``; rollback sets ``spec.pin`` (``{revision, reason}``) and unpin removes it. The
API server's RBAC decides: a user without ``patch`` on the Application gets its 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tether.apps import ops as app_ops
from tether.errors import UsageError
from tether.kube import Kube

FIELD_MANAGER = "tether-dashboard"


def _annotation(name: str) -> Callable[[dict[str, Any], str, dict[str, str]], dict[str, Any]]:
    def patch(obj: dict[str, Any], user: str, form: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"annotations": {name: app_ops.now_rfc3339()}}}

    return patch


def _suspend(value: bool) -> Callable[[dict[str, Any], str, dict[str, str]], dict[str, Any]]:
    def patch(obj: dict[str, Any], user: str, form: dict[str, str]) -> dict[str, Any]:
        return {"spec": {"suspend": value}}

    return patch


def _rollback(obj: dict[str, Any], user: str, form: dict[str, str]) -> dict[str, Any]:
    revision = app_ops.rollback_revision(obj, form.get("revision", "").strip() or None, force=False)
    reason = form.get("reason", "").strip() or f"rollback by {user} via tether dashboard"
    return {"spec": {"pin": {"revision": revision, "reason": reason[:500]}}}


def _unpin(obj: dict[str, Any], user: str, form: dict[str, str]) -> dict[str, Any]:
    return {"spec": {"pin": None}}


ACTIONS: dict[str, tuple[str, Callable[[dict[str, Any], str, dict[str, str]], dict[str, Any]]]] = {
    "sync": ("Sync requested", _annotation(app_ops.SYNC_ANNOTATION)),
    "refresh": ("Refresh requested", _annotation(app_ops.REFRESH_ANNOTATION)),
    "suspend": ("Suspended", _suspend(True)),
    "resume": ("Resumed", _suspend(False)),
    "rollback": ("Pinned", _rollback),
    "unpin": ("Unpinned", _unpin),
}


async def perform(
    kube: Kube, action: str, namespace: str, name: str, user: str, form: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """Do ``action``; returns a message for the page and the object as the server stored it."""
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}: expected one of {', '.join(ACTIONS)}")
    done, build = ACTIONS[action]
    obj = await app_ops.get_app(kube, name, namespace)
    patch = build(obj, user, form)
    stored = await kube.patch(app_ops.APPLICATION, name, namespace, patch, field_manager=FIELD_MANAGER)
    if action == "rollback":
        done += f" to {patch['spec']['pin']['revision'][:12]}"
    return f"{done}: {app_ops.where(namespace, name)}", stored
