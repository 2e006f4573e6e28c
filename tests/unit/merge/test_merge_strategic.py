"""Strategic merge patch against built-in type information."""

import copy

import pytest

from tether.sandbox.merge import PatchError, builtin_type, crd_type, strategic_merge_patch

DEPLOY = builtin_type("apps", "v1", "Deployment")
POD = builtin_type("", "v1", "Pod")


def pod(**spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


BASE_CONTAINERS = [
    {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}], "args": ["--x"]},
    {"name": "side", "image": "side:1"},
]

CASES = [
    (
        "containers-merged-by-name",
        pod(containers=BASE_CONTAINERS),
        {"spec": {"containers": [{"name": "app", "image": "app:2"}]}},
        pod(containers=[{**BASE_CONTAINERS[0], "image": "app:2"}, BASE_CONTAINERS[1]]),
    ),
    (
        # upstream orders patch items ahead of server-only ones unless the live list had them first
        "new-container-goes-first",
        pod(containers=BASE_CONTAINERS),
        {"spec": {"containers": [{"name": "new", "image": "n:1"}]}},
        pod(containers=[{"name": "new", "image": "n:1"}, *BASE_CONTAINERS]),
    ),
    (
        "new-container-after-patched-one",
        pod(containers=BASE_CONTAINERS),
        {"spec": {"containers": [{"name": "side", "image": "side:2"}, {"name": "new"}]}},
        pod(containers=[BASE_CONTAINERS[0], {"name": "side", "image": "side:2"}, {"name": "new"}]),
    ),
    (
        "patch-delete-list-item",
        pod(containers=BASE_CONTAINERS),
        {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}},
        pod(containers=[BASE_CONTAINERS[0]]),
    ),
    (
        "patch-replace-list",
        pod(containers=BASE_CONTAINERS),
        {"spec": {"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]}},
        pod(containers=[{"name": "only", "image": "o"}]),
    ),
    (
        "patch-replace-map",
        pod(containers=BASE_CONTAINERS, nodeSelector={"a": "1", "b": "2"}),
        {"spec": {"nodeSelector": {"$patch": "replace", "c": "3"}}},
        pod(containers=BASE_CONTAINERS, nodeSelector={"c": "3"}),
    ),
    (
        "patch-delete-map-empties-it",
        pod(containers=BASE_CONTAINERS, nodeSelector={"a": "1"}),
        {"spec": {"nodeSelector": {"$patch": "delete"}}},
        pod(containers=BASE_CONTAINERS, nodeSelector={}),
    ),
    (
        "nested-env-merged-by-name",
        pod(containers=BASE_CONTAINERS),
        {"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "2"}]}]}},
        pod(
            containers=[
                {**BASE_CONTAINERS[0], "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]},
                BASE_CONTAINERS[1],
            ]
        ),
    ),
    (
        "args-without-strategy-replaced",
        pod(containers=BASE_CONTAINERS),
        {"spec": {"containers": [{"name": "app", "args": ["--y"]}]}},
        pod(containers=[{**BASE_CONTAINERS[0], "args": ["--y"]}, BASE_CONTAINERS[1]]),
    ),
    (
        "null-deletes-field",
        pod(containers=BASE_CONTAINERS, hostname="h"),
        {"spec": {"hostname": None}},
        pod(containers=BASE_CONTAINERS),
    ),
    (
        "finalizers-merged-as-set",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["b", "c"]}},
        {"metadata": {"finalizers": ["a", "b", "c"]}},
    ),
    (
        "primitive-list-new-value-first",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["c"]}},
        {"metadata": {"finalizers": ["c", "a", "b"]}},
    ),
    (
        "delete-from-primitive-list",
        {"metadata": {"finalizers": ["a", "b", "c"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
        {"metadata": {"finalizers": ["a", "c"]}},
    ),
    (
        "set-element-order-reorders-by-key",
        pod(containers=BASE_CONTAINERS),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                "containers": [{"name": "app", "image": "app:3"}],
            }
        },
        pod(containers=[BASE_CONTAINERS[1], {**BASE_CONTAINERS[0], "image": "app:3"}]),
    ),
    (
        "set-element-order-keeps-server-only-slots",
        pod(containers=[{"name": "a"}, {"name": "s"}, {"name": "b"}]),
        {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}},
        pod(containers=[{"name": "s"}, {"name": "b"}, {"name": "a"}]),
    ),
    (
        "set-element-order-primitive",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}},
        {"metadata": {"finalizers": ["c", "b", "a"]}},
    ),
    (
        "retain-keys-drops-other-fields",
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        {"spec": {"strategy": {"type": "Recreate"}}},
    ),
    (
        "retain-keys-in-list-item",
        pod(containers=BASE_CONTAINERS, volumes=[{"name": "v", "emptyDir": {}}]),
        {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "c"}}]}},
        pod(containers=BASE_CONTAINERS, volumes=[{"name": "v", "configMap": {"name": "c"}}]),
    ),
    (
        "ports-merged-by-containerPort",
        pod(containers=[{"name": "app", "ports": [{"containerPort": 80}, {"containerPort": 443}]}]),
        {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 443, "name": "https"}]}]}},
        pod(containers=[{"name": "app", "ports": [{"containerPort": 80}, {"containerPort": 443, "name": "https"}]}]),
    ),
    (
        "labels-granular-merge",
        {"metadata": {"labels": {"a": "1", "b": "2"}}},
        {"metadata": {"labels": {"b": None, "c": "3"}}},
        {"metadata": {"labels": {"a": "1", "c": "3"}}},
    ),
    (
        # as upstream: a new key whose map carries $patch is dropped, new items are kept as sent
        "new-values-with-directives",
        pod(),
        {
            "spec": {
                "containers": [{"name": "x", "env": [{"name": "E", "value": "v"}]}],
                "nodeSelector": {"$patch": "replace", "k": "v"},
            }
        },
        pod(containers=[{"name": "x", "env": [{"name": "E", "value": "v"}]}]),
    ),
]


@pytest.mark.parametrize(("name", "obj", "patch", "expected"), CASES, ids=[c[0] for c in CASES])
def test_strategic_merge_patch(name, obj, patch, expected):
    type_info = DEPLOY if "strategy" in str(obj) else POD
    before = copy.deepcopy(obj)
    assert strategic_merge_patch(obj, patch, type_info) == expected
    assert obj == before


ERRORS = [
    ("unknown-patch-directive", {"spec": {"$patch": "explode"}}, "unknown \\$patch directive"),
    ("missing-merge-key", {"spec": {"containers": [{"image": "x"}]}}, "lacks merge key 'name'"),
    ("retain-keys-not-list", {"spec": {"$retainKeys": "x"}}, "must be a list"),
    ("field-outside-retain-keys", {"spec": {"$retainKeys": ["a"], "hostname": "h"}}, "not listed in \\$retainKeys"),
    ("unknown-directive", {"spec": {"$frob": 1}}, "unknown directive"),
    ("merge-directive-in-list", {"spec": {"containers": [{"name": "app", "$patch": "merge"}]}}, "merging lists"),
    ("set-element-order-not-list", {"spec": {"$setElementOrder/containers": {"name": "a"}}}, "must be a list"),
    ("delete-from-primitive-not-list", {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "must be a list"),
]


@pytest.mark.parametrize(("name", "patch", "message"), ERRORS, ids=[c[0] for c in ERRORS])
def test_strategic_merge_patch_errors(name, patch, message):
    with pytest.raises(PatchError, match=message):
        strategic_merge_patch(pod(containers=BASE_CONTAINERS), patch, POD)


def test_untyped_lists_are_replaced_like_merge_patch():
    crd = crd_type({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    obj = {"spec": {"items": [1, 2], "m": {"a": 1}}}
    result = strategic_merge_patch(obj, {"spec": {"items": [3], "m": {"b": 2}}}, crd)
    assert result == {"spec": {"items": [3], "m": {"a": 1, "b": 2}}}
