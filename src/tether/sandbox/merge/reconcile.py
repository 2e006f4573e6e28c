"""Stored field sets brought in line with the current schema of their object.

A CRD upgrade can turn a granular struct, map or list into an atomic one. Sets written before
still hold the sub-fields, which the atomic value no longer has as separate owners; as upstream
(structured-merge-diff's ``ReconcileFieldSetWithSchema``, run before every write), such a set
owns the atomic value itself instead, so a later apply of that value conflicts with it.
"""

from __future__ import annotations

from tether.sandbox.merge.fieldpath import MEMBER, FieldSet
from tether.sandbox.merge.typeinfo import LIST, MAP, STRUCT, Node


def _atomic(node: Node) -> bool:
    if node.kind in (STRUCT, MAP):
        return node.atomic
    return node.kind == LIST and node.list_type == "atomic"


def reconcile_with_schema(fields: FieldSet, node: Node) -> FieldSet:
    """``fields`` with every subtree under a now-atomic value folded into that value (the
    same object when nothing needed folding)."""
    out = fields
    for key, sub in fields.items():
        if key == MEMBER or (len(sub) == 1 and MEMBER in sub):
            continue
        if key[0] == "f":
            child = node.field(key[2:]) if node.kind in (STRUCT, MAP) else None
        else:
            child = node.item() if node.kind == LIST else None
        if child is None:
            continue
        new = {MEMBER: None} if _atomic(child) else reconcile_with_schema(sub, child)
        if new is not sub and new != sub:
            if out is fields:
                out = dict(fields)
            out[key] = new
    return out
