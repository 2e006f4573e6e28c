"""Structural type information for server-side apply and strategic merge patch.

A ``TypeInfo`` is a tree of ``Node`` objects built once per kind (cached per GVK and Kubernetes
version) from the upstream OpenAPI definitions, or from a CRD version's ``openAPIV3Schema``.
Each node says how a value at that position merges:

* ``STRUCT``: named fields, merged field by field (``atomic`` when ``x-kubernetes-map-type``
  is ``atomic``); unknown fields (``x-kubernetes-preserve-unknown-fields``) are deduced.
* ``MAP``: string keys with one element type; granular unless ``x-kubernetes-map-type: atomic``.
* ``LIST``: ``atomic`` (the default), ``set`` (items are values) or ``map`` (items identified by
  ``keys``), following ``x-kubernetes-list-type`` and, as upstream, falling back to
  ``x-kubernetes-patch-strategy: merge`` for old definitions.
* ``SCALAR``: a leaf.
* ``DEDUCED``: untyped (int-or-string, quantities, raw JSON, preserved unknown fields): objects
  behave as granular maps, lists as atomic lists, everything else as scalars.

Strategic merge metadata (``patch_strategy``, ``patch_merge_key``) sits on the node of the field
that carries it.
"""

from __future__ import annotations

import functools
from typing import Any

from tether import schemas

STRUCT = "struct"
MAP = "map"
LIST = "list"
SCALAR = "scalar"
DEDUCED = "deduced"

# Defaults of list-map key fields that the JSON-schema form of the definitions lacks but the
# upstream OpenAPI v3 carries; without them ``ports`` items would key differently upstream.
_KEY_DEFAULTS: dict[str, dict[str, Any]] = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.EndpointPort": {"protocol": "TCP"},
}


# Fields without ``omitempty`` in the Go types: an empty object of the kind already holds them
# (as null), so upstream's comparison on create never sees them added.
_ALWAYS_SERIALIZED: dict[str, tuple[str, ...]] = {
    "io.k8s.api.core.v1.PodSpec": ("containers",),
}


class Node:
    """How the value at one position of an object merges."""

    __slots__ = (
        "always_present",
        "atomic",
        "elem",
        "fields",
        "key_defaults",
        "keys",
        "kind",
        "list_type",
        "patch_merge_key",
        "patch_strategy",
        "sorted_keys",
    )

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.atomic = False
        #: a field the API types serialize even when unset (no ``omitempty``): never seen created
        self.always_present = False
        #: STRUCT: field name -> node
        self.fields: dict[str, Node] = {}
        #: MAP/LIST element node; STRUCT node for fields not in ``fields`` (None: deduced)
        self.elem: Node | None = None
        #: LIST: "atomic" | "set" | "map"
        self.list_type = "atomic"
        self.keys: tuple[str, ...] = ()
        #: ``keys`` in the order upstream writes them in ``k:{...}`` path elements
        self.sorted_keys: tuple[str, ...] = ()
        self.key_defaults: dict[str, Any] = {}
        self.patch_strategy: str | None = None
        self.patch_merge_key: str | None = None

    def field(self, name: str) -> Node:
        """The node of a struct field or map element (deduced when unknown)."""
        if self.kind == STRUCT:
            found = self.fields.get(name)
            if found is not None:
                return found
            return self.elem or DEDUCED_NODE
        if self.kind == MAP:
            return self.elem or DEDUCED_NODE
        return DEDUCED_NODE

    def item(self) -> Node:
        """The node of a list item."""
        return self.elem or DEDUCED_NODE

    def with_patch_meta(self, strategy: str | None, merge_key: str | None) -> Node:
        """A shallow copy carrying field-level strategic merge metadata."""
        if strategy is None and merge_key is None:
            return self
        copy = Node(self.kind)
        for slot in Node.__slots__:
            setattr(copy, slot, getattr(self, slot))
        copy.patch_strategy = strategy
        copy.patch_merge_key = merge_key
        return copy

    def __repr__(self) -> str:
        extra = f" {self.list_type}{list(self.keys) if self.keys else ''}" if self.kind == LIST else ""
        return f"<Node {self.kind}{' atomic' if self.atomic else ''}{extra}>"


DEDUCED_NODE = Node(DEDUCED)


class TypeInfo:
    """The root node of one kind plus a name for messages."""

    __slots__ = ("name", "root")

    def __init__(self, root: Node, name: str = "") -> None:
        self.root = root
        self.name = name

    def __repr__(self) -> str:
        return f"<TypeInfo {self.name or self.root!r}>"


def _types(schema: dict) -> set[str]:
    raw = schema.get("type")
    if raw is None:
        return set()
    if isinstance(raw, str):
        return {raw}
    return {t for t in raw if t != "null"}


class _Builder:
    """Converts JSON-schema definitions into nodes, memoising ``$ref`` targets (recursion-safe)."""

    def __init__(self, defs: dict[str, dict]) -> None:
        self.defs = defs
        self.memo: dict[str, Node] = {}

    def ref(self, name: str) -> Node:
        node = self.memo.get(name)
        if node is not None:
            return node
        schema = self.defs.get(name)
        if schema is None:
            return DEDUCED_NODE
        node = Node(DEDUCED)
        self.memo[name] = node  # registered before filling so recursive refs resolve
        self._fill(node, schema, name)
        return node

    def build(self, schema: dict | None, owner: str = "") -> Node:
        if not schema:
            return DEDUCED_NODE
        ref = schema.get("$ref")
        if ref is None and len(schema.get("allOf", ())) == 1 and "$ref" in schema["allOf"][0]:
            ref = schema["allOf"][0]["$ref"]
        if ref is not None:
            node = _with_overrides(self.ref(schemas.ref_name(ref)), schema)
            return node.with_patch_meta(
                schema.get("x-kubernetes-patch-strategy"), schema.get("x-kubernetes-patch-merge-key")
            )
        node = Node(DEDUCED)
        self._fill(node, schema, owner)
        return node

    def _fill(self, node: Node, schema: dict, name: str) -> None:
        node.patch_strategy = schema.get("x-kubernetes-patch-strategy")
        node.patch_merge_key = schema.get("x-kubernetes-patch-merge-key")
        types = _types(schema)
        if schema.get("x-kubernetes-int-or-string"):
            node.kind = DEDUCED
            return
        if ("oneOf" in schema or "anyOf" in schema) and not types and "properties" not in schema:
            node.kind = DEDUCED  # a union of types (int-or-string, quantity); validation-only
            return  # anyOf/oneOf next to a type leave the structure alone
        if "array" in types or ("items" in schema and not types):
            self._fill_list(node, schema, name)
            return
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        if props:
            node.kind = STRUCT
            node.atomic = schema.get("x-kubernetes-map-type") == "atomic"
            # fields are filled after kind is set, so self-references see a struct
            node.fields = {key: self.build(sub, "") for key, sub in props.items()}
            for key in _ALWAYS_SERIALIZED.get(name, ()):
                if key in node.fields:
                    node.fields[key] = _always_present(node.fields[key])
            if isinstance(addl, dict):
                node.elem = self.build(addl)
            elif preserve or addl is True:
                node.elem = DEDUCED_NODE
            return
        if isinstance(addl, dict) and addl:
            node.kind = MAP
            node.atomic = schema.get("x-kubernetes-map-type") == "atomic"
            node.elem = self.build(addl)
            return
        if "object" in types or preserve or not types:
            # free-form object or no information: deduced (granular map semantics)
            node.kind = DEDUCED
            if "object" in types and schema.get("x-kubernetes-map-type") == "atomic":
                node.kind = MAP
                node.atomic = True
            return
        node.kind = SCALAR

    def _fill_list(self, node: Node, schema: dict, name: str) -> None:
        node.kind = LIST
        items = schema.get("items")
        node.elem = self.build(items) if isinstance(items, dict) else DEDUCED_NODE
        list_type = schema.get("x-kubernetes-list-type")
        strategy = schema.get("x-kubernetes-patch-strategy") or ""
        merge_key = schema.get("x-kubernetes-patch-merge-key")
        if list_type in ("atomic", "set", "map"):
            node.list_type = list_type
            if list_type == "map":
                node.keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
        elif "merge" in strategy.split(","):
            # older definitions describe associativity only through the patch strategy
            node.list_type = "map" if merge_key else "set"
            node.keys = (merge_key,) if merge_key else ()
        node.sorted_keys = tuple(sorted(node.keys))
        if node.list_type == "map":
            node.key_defaults = self._key_defaults(items or {}, node.keys)
            if not node.keys:
                node.list_type = "atomic"

    def _key_defaults(self, items: dict, keys: tuple[str, ...]) -> dict[str, Any]:
        target = items
        ref = items.get("$ref")
        defaults: dict[str, Any] = {}
        if ref is not None:
            ref_name = schemas.ref_name(ref)
            defaults.update(_KEY_DEFAULTS.get(ref_name, {}))
            target = self.defs.get(ref_name, {})
        for key in keys:
            sub = (target.get("properties") or {}).get(key) or {}
            if "default" in sub:
                defaults[key] = sub["default"]
        return {k: v for k, v in defaults.items() if k in keys}


def _always_present(node: Node) -> Node:
    copy = Node(node.kind)
    for slot in Node.__slots__:
        setattr(copy, slot, getattr(node, slot))
    copy.always_present = True
    return copy


def _with_overrides(node: Node, schema: dict) -> Node:
    """``node`` as a field declares it: ``x-kubernetes-map-type`` / ``x-kubernetes-list-type``
    written beside a ``$ref`` win over the referenced definition's, as upstream honours them
    (PersistentVolume ``spec.claimRef`` is a granular ObjectReference)."""
    map_type = schema.get("x-kubernetes-map-type")
    list_type = schema.get("x-kubernetes-list-type")
    atomic = node.atomic
    if map_type in ("atomic", "granular") and node.kind in (STRUCT, MAP):
        atomic = map_type == "atomic"
    new_list_type = node.list_type
    if list_type in ("atomic", "set") and node.kind == LIST:
        new_list_type = list_type
    if atomic == node.atomic and new_list_type == node.list_type:
        return node
    copy = Node(node.kind)
    for slot in Node.__slots__:
        setattr(copy, slot, getattr(node, slot))
    copy.atomic = atomic
    copy.list_type = new_list_type
    return copy


@functools.cache
def _builder(kube_version: str) -> _Builder:
    return _Builder(schemas.definitions(kube_version))


@functools.cache
def builtin_type(group: str, version: str, kind: str, kube_version: str = "1.32") -> TypeInfo | None:
    """Type information of a built-in kind, or None when the version has no such kind."""
    name = schemas.gvk_index(kube_version).get((group, version, kind))
    if name is None:
        return None
    return TypeInfo(_builder(kube_version).ref(name), name)


def crd_type(open_api_v3_schema: dict | None, kube_version: str = "1.32") -> TypeInfo:
    """Type information from a CRD version's ``openAPIV3Schema`` (None: fully deduced).

    ``metadata`` always has the upstream ObjectMeta structure, as the API server enforces it
    regardless of what the CRD declares.
    """
    meta = _builder(kube_version).ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    builder = _Builder({})
    root = builder.build(open_api_v3_schema or {})
    if root.kind != STRUCT:
        struct = Node(STRUCT)
        struct.elem = DEDUCED_NODE
        root = struct
    else:
        copy = Node(STRUCT)
        for slot in Node.__slots__:
            setattr(copy, slot, getattr(root, slot))
        copy.fields = dict(root.fields)
        root = copy
    root.fields["metadata"] = meta
    root.fields.setdefault("apiVersion", Node(SCALAR))
    root.fields.setdefault("kind", Node(SCALAR))
    return TypeInfo(root, "crd")
