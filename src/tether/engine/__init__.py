"""The engine: plan, apply, prune and health for one app, over a ``tether.kube.Kube``.

::

    plan = await make_plan(kube, manifests, AppIdentity("shop", "web"), reader=cache)
    result = await apply_plan(kube, plan, ApplyOptions(prune=True, wait=True))

``make_plan`` reads live objects through a ``LiveReader`` (``ListingReader`` lists from the
API server; the controller passes its watch cache). ``apply_plan`` returns an
``ApplyResult``; on failure it raises ``ApplyFailed`` (an ``ApplyError``) or a health error,
each carrying ``.result`` with the per-object outcomes so far; a failing hook raises
``HookFailed`` (also with ``.result``). Waves, hooks and the Argo CD / Flux / Helm annotations
the engine honours are described in docs/compatibility.md.
"""

from tether.engine.apply import ApplyFailed, ApplyOptions, ApplyResult, Outcome, apply_plan
from tether.engine.changes import WRITES, Action, Change, Plan, Skipped
from tether.engine.diff import IgnoreRule, load_ignore_rules
from tether.engine.fields import FieldTake
from tether.engine.health import HealthFailed, HealthResult, HealthTimedOut, ObjectHealth, Status, wait_healthy
from tether.engine.hooks import Hook, HookFailed, HookPhase
from tether.engine.identity import ADOPT_ANNOTATION, APP_LABEL, APP_NAMESPACE_LABEL, AppIdentity, Ownership, owner_of
from tether.engine.inventory import DEFAULT_NAMESPACE, Inventory, read_inventory, update_inventory
from tether.engine.plan import make_plan
from tether.engine.reader import ListingReader, LiveReader

__all__ = [
    "ADOPT_ANNOTATION",
    "APP_LABEL",
    "APP_NAMESPACE_LABEL",
    "DEFAULT_NAMESPACE",
    "WRITES",
    "Action",
    "AppIdentity",
    "ApplyFailed",
    "ApplyOptions",
    "ApplyResult",
    "Change",
    "FieldTake",
    "HealthFailed",
    "HealthResult",
    "HealthTimedOut",
    "Hook",
    "HookFailed",
    "HookPhase",
    "IgnoreRule",
    "Inventory",
    "ListingReader",
    "LiveReader",
    "ObjectHealth",
    "Outcome",
    "Ownership",
    "Plan",
    "Skipped",
    "Status",
    "apply_plan",
    "load_ignore_rules",
    "make_plan",
    "owner_of",
    "read_inventory",
    "update_inventory",
    "wait_healthy",
]
