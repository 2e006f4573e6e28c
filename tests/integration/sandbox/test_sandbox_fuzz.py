"""Malformed and random request bodies always get a Kubernetes Status, never a crash or a 500."""

from __future__ import annotations

import json
import os

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "data",
        "status",
        "name",
        "labels",
        "template",
        "containers",
        "selector",
        "replicas",
        "finalizers",
        "$patch",
        "stringData",
    ]
)
OBJECTISH = st.dictionaries(FIELDS, JSON_VALUES | st.dictionaries(FIELDS, JSON_VALUES, max_size=4), max_size=6)
BODIES = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200).map(lambda b: b"k8s\x00" + b),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    OBJECTISH.map(lambda v: json.dumps(v).encode()),
)
TARGETS = st.sampled_from(
    [
        ("POST", "/api/v1/namespaces/{ns}/configmaps", "application/json"),
        ("POST", "/apis/apps/v1/namespaces/{ns}/deployments", "application/json"),
        ("PUT", "/api/v1/namespaces/{ns}/configmaps/fuzz", "application/json"),
        ("PATCH", "/api/v1/namespaces/{ns}/configmaps/fuzz", "application/merge-patch+json"),
        ("PATCH", "/apis/apps/v1/namespaces/{ns}/deployments/fuzz", "application/strategic-merge-patch+json"),
        ("PATCH", "/apis/apps/v1/namespaces/{ns}/deployments/fuzz", "application/json-patch+json"),
        ("PATCH", "/apis/apps/v1/namespaces/{ns}/deployments/fuzz?fieldManager=f", "application/apply-patch+yaml"),
        ("DELETE", "/api/v1/namespaces/{ns}/configmaps/fuzz", "application/json"),
        ("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "application/json"),
        ("POST", "/api/v1/namespaces/{ns}/secrets", "application/yaml"),
        ("POST", "/api/v1/namespaces/{ns}/configmaps", "application/vnd.kubernetes.protobuf"),
    ]
)


@settings(
    max_examples=int(os.environ.get("TETHER_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(target=TARGETS, body=BODIES)
def test_any_body_gets_a_status(sandbox, sandbox_namespace, target, body):
    method, path, content_type = target
    url = sandbox.url + path.format(ns=sandbox_namespace)
    response = requests.request(method, url, data=body, headers={"Content-Type": content_type}, timeout=30)
    assert response.status_code != 500, response.text
    payload = response.json()
    if response.status_code >= 400:
        assert payload["kind"] == "Status" and payload["status"] == "Failure"
        assert payload["code"] == response.status_code and payload["reason"]
    assert requests.get(sandbox.url + "/healthz", timeout=30).status_code == 200
