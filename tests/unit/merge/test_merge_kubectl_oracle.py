"""Differential tests: the patch functions against kubectl's own implementation.

``kubectl patch --local`` runs the upstream apimachinery code (strategic merge patch with the
built-in Go types' metadata, JSON merge patch, JSON patch) without a server, so every case here
is checked against the real thing rather than against expectations written by hand.
"""

import json
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.sandbox.merge import PatchError, builtin_type, json_patch, merge_patch, strategic_merge_patch

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "finalizers": ["example.com/a"], "labels": {"a": "1", "b": "2"}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "a:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "args": ["--x"],
                "ports": [{"containerPort": 80}, {"containerPort": 443, "protocol": "TCP"}],
            },
            {"name": "side", "image": "s:1"},
        ],
        "volumes": [{"name": "v", "emptyDir": {}}],
        "tolerations": [{"key": "t1"}],
    },
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d", "labels": {"a": "1"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"a": "1"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        "template": {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    },
}
TYPES = {"Pod": builtin_type("", "v1", "Pod"), "Deployment": builtin_type("apps", "v1", "Deployment")}

STRATEGIC = [
    ("merge-container-by-name", POD, {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}),
    (
        "new-container-and-merge",
        POD,
        {
            "spec": {
                "containers": [{"name": "new", "image": "n"}, {"name": "app", "env": [{"name": "C", "value": "3"}]}]
            }
        },
    ),
    ("finalizer-union", POD, {"metadata": {"finalizers": ["example.com/b"]}}),
    ("delete-item", POD, {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}),
    ("replace-list", POD, {"spec": {"containers": [{"name": "x", "image": "x"}, {"$patch": "replace"}]}}),
    ("replace-existing-map", POD, {"metadata": {"labels": {"$patch": "replace", "z": "9"}}}),
    (
        "set-element-order",
        POD,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                "containers": [{"name": "app", "image": "a:2"}],
            }
        },
    ),
    (
        "set-element-order-env",
        POD,
        {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "$setElementOrder/env": [{"name": "B"}, {"name": "C"}, {"name": "A"}],
                        "env": [{"name": "C", "value": "3"}],
                    }
                ]
            }
        },
    ),
    ("delete-from-primitive-list", POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
    (
        "primitive-order",
        POD,
        {"metadata": {"$setElementOrder/finalizers": ["c", "example.com/a"], "finalizers": ["c"]}},
    ),
    ("nested-delete", POD, {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}}),
    (
        "non-merge-list-replaced",
        POD,
        {"spec": {"tolerations": [{"key": "t2"}], "containers": [{"name": "app", "args": ["--y"]}]}},
    ),
    (
        "ports-by-container-port",
        POD,
        {
            "spec": {
                "containers": [
                    {"name": "app", "ports": [{"containerPort": 8080}, {"containerPort": 443, "name": "https"}]}
                ]
            }
        },
    ),
    ("null-deletes", POD, {"metadata": {"labels": {"a": None}}, "spec": {"tolerations": None}}),
    ("retain-keys", DEPLOYMENT, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    (
        "retain-keys-in-item",
        POD,
        {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}},
    ),
    ("selector-merges-under-smp", DEPLOYMENT, {"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
    (
        "new-non-merge-list-with-directive",
        POD,
        {"spec": {"hostAliases": None, "tolerations": [{"key": "k", "$patch": "delete"}]}},
    ),
    (
        "retain-keys-violated",
        DEPLOYMENT,
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {"maxSurge": 2}}}},
    ),
    ("missing-merge-key", POD, {"spec": {"containers": [{"image": "x"}]}}),
    ("new-key-with-replace-directive", POD, {"spec": {"nodeSelector": {"$patch": "replace", "a": "b"}}}),
    ("merge-directive-in-existing-map", POD, {"metadata": {"labels": {"$patch": "merge", "c": "3"}}}),
    ("new-key-with-merge-directive", POD, {"spec": {"nodeSelector": {"$patch": "merge", "a": "b"}}}),
    (
        "new-nested-map-with-directive",
        POD,
        {"spec": {"securityContext": {"runAsUser": 1, "seLinuxOptions": {"$patch": "replace", "user": "u"}}}},
    ),
    (
        "new-list-drops-directive-items",
        POD,
        {
            "spec": {
                "hostAliases": [{"ip": "1.2.3.4", "$patch": "replace"}],
                "securityContext": {"sysctls": [{"name": "x", "$patch": "delete"}, {"name": "y"}]},
            }
        },
    ),
    ("new-list-with-replace-marker", POD, {"spec": {"hostAliases": [{"ip": "1"}, {"$patch": "replace"}]}}),
    (
        "appended-item-kept-as-sent",
        POD,
        {
            "spec": {
                "containers": [
                    {
                        "name": "new",
                        "env": [{"name": "A", "$patch": "delete"}, {"name": "B"}],
                        "securityContext": {"capabilities": {"$patch": "delete"}},
                        "resources": {"$patch": "replace", "limits": {"cpu": "1"}},
                    }
                ]
            }
        },
    ),
    ("delete-existing-map", POD, {"metadata": {"labels": {"$patch": "delete"}}}),
    ("existing-list-replaced-as-sent", POD, {"spec": {"tolerations": [{"key": "k", "$patch": "delete"}]}}),
    (
        "patch-list-out-of-set-element-order",
        POD,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                "containers": [{"name": "side", "image": "x"}, {"name": "app"}],
            }
        },
    ),
]

MERGE = [
    ("merge-patch-labels", POD, {"metadata": {"labels": {"a": None, "c": "3"}}}),
    ("merge-patch-replaces-lists", POD, {"spec": {"containers": [{"name": "only"}]}}),
]

JSON = [
    (
        "json-patch-ops",
        POD,
        [
            {"op": "add", "path": "/metadata/labels/c", "value": "3"},
            {"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/z"},
            {"op": "copy", "from": "/spec/containers/1", "path": "/spec/containers/0"},
            {"op": "test", "path": "/spec/containers/0/name", "value": "side"},
            {"op": "remove", "path": "/spec/tolerations/0"},
        ],
    ),
    ("json-patch-failed-test", POD, [{"op": "test", "path": "/metadata/name", "value": "q"}]),
    ("json-patch-bad-index", POD, [{"op": "add", "path": "/spec/containers/5", "value": {}}]),
    (
        "json-patch-library-leniency",
        POD,
        [
            {"op": "add", "path": "/spec/containers/-1", "value": {"name": "z"}},
            {"op": "remove", "path": "/spec/containers/00"},
            {"op": "add", "path": "/spec/containers/+1", "value": {"name": "q"}},
            {"op": "test", "path": "/metadata/nope", "value": None},
            {"op": "add", "path": "/metadata/x"},
            {"op": "replace", "path": "/metadata/x"},
        ],
    ),
    ("json-patch-test-without-value", POD, [{"op": "test", "path": "/metadata/name"}]),
    ("json-patch-negative-out-of-range", POD, [{"op": "remove", "path": "/spec/containers/-3"}]),
]


def decoded(value):
    """What the API server keeps of kubectl's raw output: decoding into the typed object drops
    the ``$``-directive keys that a replaced list may carry."""
    if isinstance(value, dict):
        return {k: decoded(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [decoded(v) for v in value]
    return value


def kubectl_patch(obj: dict, kind: str, patch, tmp_path) -> dict | None:
    source = tmp_path / "obj.json"
    source.write_text(json.dumps(obj))
    done = subprocess.run(
        [KUBECTL, "patch", "-f", str(source), "--local", "--type", kind, "-p", json.dumps(patch), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return decoded(json.loads(done.stdout)) if done.returncode == 0 else None


def mine(function, *args) -> dict | None:
    try:
        return function(*args)
    except PatchError:
        return None


@pytest.mark.parametrize(("name", "obj", "patch"), STRATEGIC, ids=[c[0] for c in STRATEGIC])
def test_strategic_merge_patch_matches_kubectl(name, obj, patch, tmp_path):
    expected = kubectl_patch(obj, "strategic", patch, tmp_path)
    assert mine(strategic_merge_patch, obj, patch, TYPES[obj["kind"]]) == expected


@pytest.mark.parametrize(("name", "obj", "patch"), MERGE, ids=[c[0] for c in MERGE])
def test_merge_patch_matches_kubectl(name, obj, patch, tmp_path):
    assert mine(merge_patch, obj, patch) == kubectl_patch(obj, "merge", patch, tmp_path)


@pytest.mark.parametrize(("name", "obj", "patch"), JSON, ids=[c[0] for c in JSON])
def test_json_patch_matches_kubectl(name, obj, patch, tmp_path):
    assert mine(json_patch, obj, patch) == kubectl_patch(obj, "json", patch, tmp_path)


# Random strategic merge patches over containers (merge key), env (nested merge key), args (no
# strategy), finalizers (primitive merge list) and labels, with every directive, checked against
# kubectl. Kept small: each example runs kubectl once.
names = st.sampled_from(["app", "side", "new"])
env_names = st.sampled_from(["A", "B", "C"])


@st.composite
def env_patch(draw):
    items = []
    for name in draw(st.lists(env_names, max_size=3, unique=True)):
        kind = draw(st.sampled_from(["set", "delete"]))
        items.append(
            {"name": name, "value": draw(st.sampled_from(["1", "9"]))}
            if kind == "set"
            else {"name": name, "$patch": "delete"}
        )
    return items


@st.composite
def container_patch(draw, name):
    item: dict = {"name": name}
    if draw(st.booleans()):
        item["image"] = draw(st.sampled_from(["a:2", "z"]))
    if draw(st.booleans()):
        item["env"] = draw(env_patch())
    if draw(st.booleans()):
        item["args"] = draw(st.lists(st.sampled_from(["-a", "-b"]), max_size=2))
    if draw(st.booleans()):
        item["$patch"] = "delete"
    return item


@st.composite
def random_patch(draw):
    spec: dict = {}
    meta: dict = {}
    if draw(st.booleans()):
        chosen = draw(st.lists(names, min_size=1, max_size=3, unique=True))
        spec["containers"] = [draw(container_patch(n)) for n in chosen]
        if draw(st.booleans()):
            spec["containers"].append({"$patch": "replace"})
        if draw(st.booleans()):
            order = chosen + [n for n in ("app", "side") if n not in chosen]
            spec["$setElementOrder/containers"] = [{"name": n} for n in order]
    # a list and its $deleteFromPrimitiveList together are applied in Go map order upstream
    # (either result is possible), so a patch carries one of them
    finalizers = draw(st.sampled_from(["none", "merge", "delete"]))
    if finalizers == "merge":
        meta["finalizers"] = draw(st.lists(st.sampled_from(["example.com/a", "b", "c"]), max_size=2, unique=True))
    elif finalizers == "delete":
        meta["$deleteFromPrimitiveList/finalizers"] = draw(
            st.lists(st.sampled_from(["example.com/a", "b"]), max_size=1)
        )
    if draw(st.booleans()):
        meta["labels"] = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.none() | st.just("x"), max_size=2))
    patch = {}
    if spec:
        patch["spec"] = spec
    if meta:
        patch["metadata"] = meta
    return patch


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(random_patch())
def test_random_strategic_patches_match_kubectl(tmp_path, patch):
    expected = kubectl_patch(POD, "strategic", patch, tmp_path)
    assert mine(strategic_merge_patch, POD, patch, TYPES["Pod"]) == expected
