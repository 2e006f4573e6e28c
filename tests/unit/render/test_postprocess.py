from __future__ import annotations

import pytest

from tether.errors import RenderError
from tether.model import Manifest, SourceLocation
from tether.render import RenderOptions
from tether.render.postprocess import postprocess
from tether.render.scope import ScopeResolver


def cm(data: dict, annotations: dict | None = None) -> Manifest:
    meta: dict = {"name": "c"}
    if annotations:
        meta["annotations"] = annotations
    return Manifest(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}, SourceLocation("cm.yaml", 3)
    )


@pytest.mark.parametrize(
    ("value", "variables", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("x-${A}-${B}", {"A": "1", "B": "2"}, "x-1-2"),
        ("${A:=fallback}", {}, "fallback"),
        ("${A:=fallback}", {"A": "set"}, "set"),
        ("${A:=}", {}, ""),
        ("$${A}", {"A": "1"}, "${A}"),
        ("$A and {A}", {"A": "1"}, "$A and {A}"),
        ("${A}", {"A": "a: b\nc: [d]"}, "a: b\nc: [d]"),  # values never become structure
    ],
)
def test_substitution(value: str, variables: dict, expected: str) -> None:
    out = postprocess([cm({"k": value})], app="", namespace="", variables=variables, add_labels=False)
    assert out[0].obj["data"]["k"] == expected


def test_keys_are_not_substituted() -> None:
    out = postprocess([cm({"${A}": "v"})], app="", namespace="", variables={"A": "1"})
    assert out[0].obj["data"] == {"${A}": "v"}


def test_disabled_substitution_keeps_missing_variables() -> None:
    manifest = cm({"k": "${MISSING}"}, {"tether.dev/substitute": "disabled"})
    out = postprocess([manifest], app="", namespace="", variables={})
    assert out[0].obj["data"]["k"] == "${MISSING}"


def test_missing_variable_error() -> None:
    with pytest.raises(RenderError, match=r"^cm.yaml:3 \(ConfigMap c\): variable \$\{MISSING\} at \.data\.k"):
        postprocess([cm({"k": "${MISSING}"})], app="", namespace="", variables={})


def test_no_variables_means_no_substitution() -> None:
    out = postprocess([cm({"k": "${MISSING}"})], app="", namespace="", variables=None)
    assert out[0].obj["data"]["k"] == "${MISSING}"


def crd(group: str, kind: str, scope: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"x.{group}"},
        "spec": {"group": group, "scope": scope, "names": {"kind": kind}},
    }


@pytest.mark.parametrize(
    ("obj", "namespaced"),
    [
        ({"apiVersion": "v1", "kind": "ConfigMap"}, True),
        ({"apiVersion": "v1", "kind": "Namespace"}, False),
        ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole"}, False),
        ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role"}, True),
        ({"apiVersion": "example.com/v1", "kind": "Cluster"}, False),  # from the CRD in the set
        ({"apiVersion": "example.com/v1", "kind": "Widget"}, True),
        ({"apiVersion": "unknown.io/v1", "kind": "Thing"}, True),  # unknown: namespaced
    ],
)
def test_scope(obj: dict, namespaced: bool) -> None:
    resolver = ScopeResolver([crd("example.com", "Cluster", "Cluster"), crd("example.com", "Widget", "Namespaced")])
    assert resolver.namespaced(obj) is namespaced


def test_namespace_defaulting_uses_crds_in_the_set() -> None:
    objs = [
        Manifest(crd("example.com", "Cluster", "Cluster")),
        Manifest({"apiVersion": "example.com/v1", "kind": "Cluster", "metadata": {"name": "c1"}}),
        Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "keep"}}),
        Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}),
    ]
    out = postprocess(objs, app="app", namespace="ns", variables=None)
    assert [m.obj["metadata"].get("namespace") for m in out] == [None, None, "keep", "ns"]
    assert all(
        m.obj["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "tether", "tether.dev/app": "app"} for m in out
    )


def test_every_missing_variable_is_named_in_one_error() -> None:
    first = cm({"a": "${ONE}", "b": "${TWO} and ${ONE:=x}"})
    second = Manifest(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, "data": {"s": "${THREE}"}},
        SourceLocation("other.yaml", 1, 0),
    )
    with pytest.raises(RenderError) as caught:
        postprocess([first, second], app="", namespace="", variables={})
    text = str(caught.value)
    assert "variables ${ONE} at .data.a, ${TWO} at .data.b have no value" in text
    assert "--var ONE=VALUE --var TWO=VALUE" in text
    assert "other.yaml:1 (ConfigMap d): variable ${THREE} at .data.s" in text


def test_substitution_is_opt_in() -> None:
    assert RenderOptions().substitution is None
    assert RenderOptions(substitute=True).substitution == {}
    assert RenderOptions(variables=(("A", "1"),)).substitution == {"A": "1"}


def test_a_charts_own_manager_label_is_kept() -> None:
    manifest = Manifest(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"app.kubernetes.io/managed-by": "Helm"}},
        },
        SourceLocation("t.yaml", 1),
    )
    [out] = postprocess([manifest], app="web", namespace="", variables=None)
    assert out.obj["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "Helm", "tether.dev/app": "web"}
