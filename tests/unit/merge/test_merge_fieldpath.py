"""Type info construction and the FieldsV1 encoding of field sets."""

import json

import pytest

from tether.sandbox.merge import builtin_type, crd_type
from tether.sandbox.merge.fieldpath import (
    difference,
    from_fields_v1,
    intersection,
    members,
    object_fields,
    path_string,
    to_fields_v1,
    union,
)

DEPLOY = builtin_type("apps", "v1", "Deployment")


def test_builtin_type_structure():
    spec = DEPLOY.root.fields["spec"]
    containers = spec.fields["template"].fields["spec"].fields["containers"]
    assert (containers.kind, containers.list_type, containers.keys) == ("list", "map", ("name",))
    assert containers.patch_merge_key == "name"
    ports = containers.item().fields["ports"]
    assert ports.keys == ("containerPort", "protocol")
    assert spec.fields["selector"].atomic  # LabelSelector is an atomic struct
    assert DEPLOY.root.fields["metadata"].fields["finalizers"].list_type == "set"
    assert spec.fields["strategy"].patch_strategy == "retainKeys"
    assert builtin_type("apps", "v1", "NoSuchKind") is None
    assert builtin_type("apps", "v1", "Deployment") is DEPLOY  # cached per GVK


SPEC = {
    "replicas": 2,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 8080}, {"containerPort": 80, "protocol": "UDP"}],
                    "resources": {},
                }
            ],
            "tolerations": [{"key": "k"}],
        },
    },
}

# Written by hand from the upstream FieldsV1 format: sorted fields, list items keyed by JSON of
# their key fields (ints numerically ordered, defaulted protocol), "." on list items only, and the
# empty "resources" struct a member (upstream's ToFieldSet owns empty and null objects).
EXPECTED_SPEC_FIELDS = {
    "f:replicas": {},
    "f:selector": {},
    "f:template": {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:containers": {
                'k:{"name":"web"}': {
                    ".": {},
                    "f:image": {},
                    "f:name": {},
                    "f:ports": {
                        'k:{"containerPort":80,"protocol":"UDP"}': {
                            ".": {},
                            "f:containerPort": {},
                            "f:protocol": {},
                        },
                        'k:{"containerPort":8080,"protocol":"TCP"}': {".": {}, "f:containerPort": {}},
                    },
                    "f:resources": {},
                }
            },
            "f:tolerations": {},
        },
    },
}


def test_fields_v1_encoding_of_deployment_spec():
    fields = object_fields({"spec": SPEC}, DEPLOY.root)
    encoded = to_fields_v1(fields)
    assert encoded == {"f:spec": EXPECTED_SPEC_FIELDS}
    # key order matters on the wire: compare the serialised form too
    assert json.dumps(encoded) == json.dumps({"f:spec": EXPECTED_SPEC_FIELDS})
    assert from_fields_v1(encoded) == fields


SET_CASES = [
    ("union", union, {"f:a": {".": None}}, {"f:b": {".": None}}, {"f:a": {".": None}, "f:b": {".": None}}),
    (
        "difference-leaf",
        difference,
        {"f:a": {".": None}, "f:b": {".": None}},
        {"f:a": {".": None}},
        {"f:b": {".": None}},
    ),
    (
        "difference-keeps-children",
        difference,
        {"f:a": {".": None, "f:x": {".": None}}},
        {"f:a": {".": None}},
        {"f:a": {"f:x": {".": None}}},
    ),
    (
        "intersection",
        intersection,
        {"f:a": {"f:x": {".": None}, "f:y": {".": None}}},
        {"f:a": {"f:y": {".": None}}},
        {"f:a": {"f:y": {".": None}}},
    ),
    ("intersection-empty", intersection, {"f:a": {".": None}}, {"f:b": {".": None}}, {}),
]


@pytest.mark.parametrize(("name", "op", "a", "b", "expected"), SET_CASES, ids=[c[0] for c in SET_CASES])
def test_set_algebra(name, op, a, b, expected):
    assert op(a, b) == expected


def test_member_path_strings():
    fields = object_fields({"spec": SPEC}, DEPLOY.root)
    paths = [path_string(p) for p in members(fields)]
    assert ".spec.replicas" in paths
    assert '.spec.template.spec.containers[name="web"].image' in paths
    assert '.spec.template.spec.containers[name="web"].ports[containerPort=8080,protocol="TCP"]' in paths
    assert path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'


def test_crd_schema_types():
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "hosts": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "rules": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["id"],
                        "items": {"type": "object", "properties": {"id": {"type": "integer"}}},
                    },
                    "plain": {"type": "array", "items": {"type": "string"}},
                    "settings": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "x-kubernetes-map-type": "atomic",
                    },
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "port": {"x-kubernetes-int-or-string": True},
                },
            }
        },
    }
    root = crd_type(schema).root
    spec = root.fields["spec"]
    assert spec.fields["hosts"].list_type == "set"
    assert spec.fields["rules"].keys == ("id",)
    assert spec.fields["plain"].list_type == "atomic"
    assert spec.fields["settings"].atomic
    assert spec.fields["extra"].kind == "deduced"
    assert spec.fields["port"].kind == "deduced"
    assert root.fields["metadata"].fields["labels"].kind == "map"  # ObjectMeta imposed
    fields = object_fields(
        {"spec": {"extra": {"a": {"b": [1, 2]}}, "rules": [{"id": 2, "v": 1}], "settings": {"x": "y"}}}, root
    )
    assert to_fields_v1(fields) == {
        "f:spec": {
            "f:extra": {"f:a": {".": {}, "f:b": {}}},
            "f:rules": {'k:{"id":2}': {".": {}, "f:id": {}, "f:v": {}}},
            "f:settings": {},
        }
    }
    assert crd_type(None).root.field("anything").kind == "deduced"


KEY_ENCODING_CASES = [
    ("plain-string", {"name": "web"}, 'k:{"name":"web"}'),
    ("quote-escaped", {"name": 'a"b'}, 'k:{"name":"a\\"b"}'),
    ("html-escaped-as-go", {"name": "a<b>&c"}, 'k:{"name":"a\\u003cb\\u003e\\u0026c"}'),
    ("non-ascii-kept", {"name": "café"}, 'k:{"name":"café"}'),
    ("integer", {"name": 7}, 'k:{"name":7}'),
]


@pytest.mark.parametrize(("name", "item", "expected"), KEY_ENCODING_CASES, ids=[c[0] for c in KEY_ENCODING_CASES])
def test_map_list_key_encoding(name, item, expected):
    from tether.sandbox.merge.fieldpath import item_key

    containers = DEPLOY.root.fields["spec"].fields["template"].fields["spec"].fields["containers"]
    assert item_key(item, containers) == expected


def _containers(**fields):
    return {"spec": {"template": {"spec": {"containers": [{"name": "c", **fields}]}}}}


def _in_container(encoded):
    return encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']


EMPTY_VALUE_CASES = [
    ("empty-struct-is-a-member", {"resources": {}}, {}),
    ("empty-atomic-list-is-a-member", {"args": []}, {}),
    ("empty-associative-list-contributes-nothing", {"ports": []}, None),
    ("null-scalar-is-a-member", {"image": None}, {}),
    ("null-struct-is-a-member", {"securityContext": None}, {}),
    ("null-associative-list-is-a-member", {"ports": None}, {}),
]


@pytest.mark.parametrize(("name", "fields", "expected"), EMPTY_VALUE_CASES, ids=[c[0] for c in EMPTY_VALUE_CASES])
def test_applied_set_of_empty_and_null_values(name, fields, expected):
    item = _in_container(to_fields_v1(object_fields(_containers(**fields), DEPLOY.root)))
    field = "f:" + next(iter(fields))
    if expected is None:
        assert field not in item
    else:
        assert item[field] == expected


def test_update_flavour_marks_new_maps_and_empty_values():
    obj = {
        "metadata": {"labels": {"a": "1"}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {}}]}}},
    }
    encoded = to_fields_v1(object_fields(obj, DEPLOY.root, mark_maps=True))
    assert encoded["f:metadata"] == {"f:labels": {".": {}, "f:a": {}}}
    assert _in_container(encoded) == {".": {}, "f:name": {}, "f:resources": {}}


def test_crd_validation_only_any_of_keeps_structure():
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
                "properties": {
                    "a": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "b": {"type": "string"},
                },
            }
        },
    }
    spec = crd_type(schema).root.fields["spec"]
    assert spec.kind == "struct"
    assert spec.fields["a"].list_type == "set"
