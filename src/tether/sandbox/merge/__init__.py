"""Merge semantics of the Kubernetes API server: server-side apply with managed fields,
JSON patch, JSON merge patch and strategic merge patch, driven by structural type info.

Pure functions over JSON-like values; inputs are never mutated.
"""

from tether.sandbox.merge.patch import PatchError, json_patch, merge_patch
from tether.sandbox.merge.strategic import strategic_merge_patch
from tether.sandbox.merge.typeinfo import TypeInfo, builtin_type, crd_type

__all__ = [
    "PatchError",
    "TypeInfo",
    "builtin_type",
    "crd_type",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
]
