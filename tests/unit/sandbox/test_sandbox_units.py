"""Pure parts of the sandbox: selectors, schema validation, tables, discovery, store semantics."""

from __future__ import annotations

import pytest

from tether.sandbox import discovery, errors, table, validation
from tether.sandbox.resources import Registry, version_priority
from tether.sandbox.selectors import parse_field_selector, parse_label_selector
from tether.sandbox.store import Store


def labelled(**labels: str) -> dict:
    return {"metadata": {"name": "x", "labels": labels}}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier notin (a,b)", {"tier": "b"}, False),
        ("tier notin (a,b)", {}, True),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("app=web,!canary", {"app": "web"}, True),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
    ],
)
def test_label_selectors(selector: str, labels: dict, expected: bool):
    predicate = parse_label_selector(selector)
    assert predicate is not None and predicate(labelled(**labels)) is expected


def test_bad_selectors_are_400():
    with pytest.raises(errors.ApiError) as error:
        parse_label_selector("app in x")
    assert error.value.code == 400
    with pytest.raises(errors.ApiError) as error:
        parse_field_selector("spec.foo=1", "ConfigMap")
    assert error.value.code == 400 and "field label not supported" in error.value.message
    predicate = parse_field_selector("status.phase!=Running,metadata.name=x", "Pod")
    assert predicate is not None and predicate({"metadata": {"name": "x"}, "status": {"phase": "Pending"}})


def test_builtin_validation_reports_paths_and_prunes_unknown_fields():
    node = validation.builtin_validator("io.k8s.api.apps.v1.Deployment")
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"a": 1}},
        "spec": {
            "replicas": "2",
            "bogus": True,
            "template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}},
        },
    }
    report = validation.validate(node, obj)
    fields = {e["field"]: e["reason"] for e in report.errors}
    assert fields == {
        "metadata.labels[a]": "FieldValueTypeInvalid",
        "spec.replicas": "FieldValueTypeInvalid",
        "spec.template.spec.containers[0].ports[0].containerPort": "FieldValueTypeInvalid",
        "spec.selector": "FieldValueRequired",
    }
    assert report.unknown == ["spec.bogus"] and "bogus" not in obj["spec"]


def test_crd_validation_defaults_and_preserves_unknown():
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer", "maximum": 5, "default": 1},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "port": {"x-kubernetes-int-or-string": True},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                },
            }
        },
    }
    node = validation.crd_validator(schema)
    obj = {
        "apiVersion": "x/v1",
        "kind": "X",
        "metadata": {"name": "x"},
        "spec": {"mode": "c", "free": {"any": {"thing": 1}}, "port": "http", "tags": ["a", "a"], "gone": 1},
    }
    report = validation.validate(node, obj, defaulting=True)
    assert obj["spec"]["size"] == 1 and obj["spec"]["free"] == {"any": {"thing": 1}}
    assert {e["field"]: e["reason"] for e in report.errors} == {
        "spec.mode": "FieldValueNotSupported",
        "spec.tags[1]": "FieldValueDuplicate",
    }
    assert report.unknown == ["spec.gone"]
    obj["spec"] = {"size": 9}
    report = validation.validate(node, obj, defaulting=True)
    assert report.errors[0]["field"] == "spec.size" and "less than or equal to 5" in report.errors[0]["message"]


def test_recursive_schema_compiles():
    node = validation.builtin_validator(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    )
    deep = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "x"},
        "spec": {
            "group": "g",
            "names": {"plural": "p", "kind": "K"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": deep}}],
        },
    }
    assert validation.validate(node, crd).errors == []


def test_table_ages_and_columns():
    assert table.age(None) == "<unknown>"
    registry = Registry()
    deployments = registry.get("apps", "v1", "deployments")
    assert deployments is not None
    obj = {
        "metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    rendered = table.render(deployments, [obj], 7)
    assert [c["name"] for c in rendered["columnDefinitions"]][:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert rendered["rows"][0]["cells"][:4] == ["web", "2/3", 3, 2]
    assert rendered["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table.json_path({"s": {"c": [{"type": "Ready", "status": "True"}]}}, '.s.c[?(@.type=="Ready")].status') == [
        "True"
    ]


def test_discovery_orders_groups_and_versions():
    registry = Registry()
    assert [g for g, _ in registry.groups()][:2] == ["", "apps"]
    assert sorted(["v1beta1", "v2", "v1", "v1alpha1", "foo"], key=version_priority) == [
        "v2",
        "v1",
        "v1beta1",
        "v1alpha1",
        "foo",
    ]
    assert discovery.wants_aggregated("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    assert discovery.wants_aggregated("application/json") is None
    resources = discovery.api_resource_list(registry, "apps", "v1")["resources"]
    scale = next(r for r in resources if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")


def test_store_lifecycle_without_a_server(tmp_path):
    registry = Registry()
    store = Store(registry, tmp_path)
    configmaps = registry.get("", "v1", "configmaps")
    assert configmaps is not None
    created = store.create(
        configmaps,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "default", "finalizers": ["x/y"]},
        },
    )
    rv = int(created["metadata"]["resourceVersion"])
    same = store.update(configmaps, {**created, "metadata": dict(created["metadata"])})
    assert same is created  # a no-op update writes nothing
    held, removed = store.delete(configmaps, "default", "a")
    assert not removed and held["metadata"]["deletionTimestamp"]
    final = store.update(configmaps, {**held, "metadata": {**held["metadata"], "finalizers": []}})
    assert store.get(configmaps, "default", "a") is None and int(final["metadata"]["resourceVersion"]) > rv
    with pytest.raises(errors.ApiError) as error:
        store.create(configmaps, {"metadata": {"name": "b", "namespace": "nowhere"}})
    assert error.value.code == 404
    last = store.rv
    store.close()
    again = Store(Registry(), tmp_path)
    assert again.rv == last and again.get(configmaps, "default", "a") is None
    again.close()
