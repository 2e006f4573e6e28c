"""Merge semantics of the Kubernetes API server: server-side apply with managed fields,
JSON patch, JSON merge patch and strategic merge patch, driven by structural type info.

Pure functions over JSON-like values; inputs are never mutated.
"""

from tether.sandbox.merge.apply import ApplyConflictError, Conflict, apply_patch
from tether.sandbox.merge.managed import record_update
from tether.sandbox.merge.patch import PatchError, json_patch, merge_patch
from tether.sandbox.merge.strategic import strategic_merge_patch
from tether.sandbox.merge.typeinfo import TypeInfo, builtin_type, crd_type

__all__ = [
    "ApplyConflictError",
    "Conflict",
    "PatchError",
    "TypeInfo",
    "apply_patch",
    "builtin_type",
    "crd_type",
    "json_patch",
    "merge_patch",
    "record_update",
    "strategic_merge_patch",
]
