"""Noise removal, ignore rules, the fast in-sync check, masking and diff text."""

from __future__ import annotations

import base64

import pytest

from tether.engine.diff import (
    DIGEST_ANNOTATION,
    IgnoreRule,
    contains,
    digest,
    ignored_pointers,
    in_sync,
    load_ignore_rules,
    mask_secret,
    strip_noise,
    unified,
    without,
)
from tether.errors import UsageError
from tether.model import ObjectRef

DESIRED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}},
}


def with_digest(obj: dict) -> dict:
    out = {**obj, "metadata": {**obj["metadata"], "annotations": {DIGEST_ANNOTATION: digest(obj)}}}
    return out


def live_of(desired: dict) -> dict:
    """What a server returns: desired plus defaults, bookkeeping and status."""
    live = {
        **desired,
        "metadata": {
            **desired["metadata"],
            "uid": "u1",
            "resourceVersion": "7",
            "generation": 1,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{"manager": "tether", "operation": "Apply"}],
        },
        "status": {"replicas": 2},
    }
    spec = dict(live["spec"])
    containers = [
        {**c, "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"}
        for c in spec["template"]["spec"]["containers"]
    ]
    spec["template"] = {"spec": {"containers": containers, "restartPolicy": "Always"}}
    spec["strategy"] = {"type": "RollingUpdate"}
    live["spec"] = spec
    return live


def test_strip_noise_removes_server_bookkeeping() -> None:
    live = live_of(with_digest(DESIRED))
    clean = strip_noise(live, keep_digest=False)
    assert "status" not in clean
    assert set(clean["metadata"]) == {"name", "namespace", "labels"}
    assert DIGEST_ANNOTATION in strip_noise(live)["metadata"]["annotations"]
    assert "uid" in live["metadata"]  # the input is not modified


def test_digest_ignores_its_own_annotation_and_is_stable() -> None:
    assert digest(DESIRED) == digest(with_digest(DESIRED))
    changed = {**DESIRED, "spec": {**DESIRED["spec"], "replicas": 3}}
    assert digest(changed) != digest(DESIRED)


def test_in_sync_with_server_defaults() -> None:
    desired = with_digest(DESIRED)
    assert in_sync(desired, live_of(desired))


def test_not_in_sync_after_drift() -> None:
    desired = with_digest(DESIRED)
    live = live_of(desired)
    live["spec"]["replicas"] = 5
    assert not in_sync(desired, live)


def test_not_in_sync_when_desired_changed_even_if_contained() -> None:
    # A field removed from Git is still in live: only the digest reveals it.
    smaller = {**DESIRED, "metadata": {"name": "web", "namespace": "shop"}}
    assert contains(with_digest(smaller)["spec"], live_of(with_digest(DESIRED))["spec"])
    assert not in_sync(with_digest(smaller), live_of(with_digest(DESIRED)))


def test_not_in_sync_without_digest_or_extra_list_items() -> None:
    desired = with_digest(DESIRED)
    live = live_of(desired)
    live["metadata"]["annotations"] = {}
    assert not in_sync(desired, live)
    live = live_of(desired)
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"})
    assert not in_sync(desired, live)


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 1.0}, True),
        ({"a": True}, {"a": 1}, False),
        ({"a": "1"}, {"a": 1}, False),
        ({"a": None}, {"a": None}, False),
        ({"a": [1, 2]}, {"a": [2, 1]}, False),
        ({"a": {"b": {}}}, {"a": {"b": {"c": 1}}}, True),
        ({"a": {}}, {}, False),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}]}, True),
    ],
)
def test_contains_table(desired: dict, live: dict, expected: bool) -> None:
    assert contains(desired, live) is expected


def test_secret_string_data_compares_as_data() -> None:
    secret = with_digest(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "n"},
            "stringData": {"password": "hunter2"},
        }
    )
    live = {**secret, "data": {"password": base64.b64encode(b"hunter2").decode()}}
    del live["stringData"]
    assert in_sync(secret, live)
    live["data"]["password"] = base64.b64encode(b"other").decode()
    assert not in_sync(secret, live)


def test_ignore_rules_by_pointer_and_manager() -> None:
    ref = ObjectRef("apps", "Deployment", "shop", "web")
    live = live_of(DESIRED)
    live["metadata"]["managedFields"] = [
        {"manager": "hpa-controller", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]
    any_owner = IgnoreRule("apps", "Deployment", ("/spec/replicas",))
    by_hpa = IgnoreRule("apps", "*", ("/spec/replicas",), manager="hpa-controller")
    by_other = IgnoreRule("*", "Deployment", ("/spec/replicas",), manager="someone-else")
    other_kind = IgnoreRule("", "ConfigMap", ("/data",))
    assert ignored_pointers([any_owner], ref, live) == [["spec", "replicas"]]
    assert ignored_pointers([by_hpa], ref, live) == [["spec", "replicas"]]
    assert ignored_pointers([by_other, other_kind], ref, live) == []
    stripped = without(DESIRED, [["spec", "replicas"], ["spec", "template", "spec", "containers", "0", "image"]])
    assert "replicas" not in stripped["spec"]
    assert stripped["spec"]["template"]["spec"]["containers"] == [{"name": "app"}]
    assert DESIRED["spec"]["replicas"] == 2


def test_ignore_rule_file(tmp_path) -> None:
    path = tmp_path / "ignore.yaml"
    path.write_text("- group: apps\n  kind: Deployment\n  jsonPointers: [/spec/replicas]\n  manager: hpa\n")
    assert load_ignore_rules(str(path)) == [IgnoreRule("apps", "Deployment", ("/spec/replicas",), "hpa")]
    path.write_text("- kind: Deployment\n  jsonPointers: [spec/replicas]\n")
    with pytest.raises(UsageError, match="must start with '/'"):
        load_ignore_rules(str(path))
    path.write_text("- group: apps\n")
    with pytest.raises(UsageError, match="rule 1: needs kind"):
        load_ignore_rules(str(path))


def test_secret_values_masked_but_changes_visible() -> None:
    before = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"token": "c2VjcmV0MQ=="}}
    after = {**before, "data": {"token": "c2VjcmV0Mg=="}}
    lines = unified(before, after, "Secret/s")
    text = "\n".join(lines)
    assert "c2VjcmV0" not in text
    assert any(line.startswith("-  token: <masked sha256:") for line in lines)
    assert any(line.startswith("+  token: <masked sha256:") for line in lines)
    assert mask_secret(before)["data"]["token"] != mask_secret(after)["data"]["token"]


def test_unified_diff_of_change() -> None:
    after = {**DESIRED, "spec": {**DESIRED["spec"], "replicas": 3}}
    lines = unified(DESIRED, after, "Deployment/shop/web")
    assert lines[0] == "--- live/Deployment/shop/web"
    assert "-  replicas: 2" in lines and "+  replicas: 3" in lines
    assert unified(DESIRED, DESIRED, "x") == []
