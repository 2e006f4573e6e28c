"""The official kubernetes Python client and lightkube against the sandbox."""

from __future__ import annotations

import threading

import kubernetes
import pytest
from kubernetes.client.rest import ApiException
from lightkube import Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap


@pytest.fixture
def k8s(sandbox):
    api_client = kubernetes.config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    yield api_client
    api_client.close()


def test_kubernetes_client_crud_and_errors(k8s, sandbox_namespace):
    core = kubernetes.client.CoreV1Api(k8s)
    ns = sandbox_namespace
    body = kubernetes.client.V1ConfigMap(
        metadata=kubernetes.client.V1ObjectMeta(name="pc", labels={"a": "b"}), data={"x": "1"}
    )
    created = core.create_namespaced_config_map(ns, body)
    assert created.metadata.uid and created.data == {"x": "1"}
    listed = core.list_namespaced_config_map(ns, label_selector="a=b")
    assert [c.metadata.name for c in listed.items] == ["pc"]
    created.data = {"x": "2"}
    replaced = core.replace_namespaced_config_map("pc", ns, created)
    assert replaced.data == {"x": "2"}
    with pytest.raises(ApiException) as error:
        core.replace_namespaced_config_map("pc", ns, created)  # stale resourceVersion
    assert error.value.status == 409
    core.delete_namespaced_config_map("pc", ns)
    with pytest.raises(ApiException) as error:
        core.read_namespaced_config_map("pc", ns)
    assert error.value.status == 404


def test_kubernetes_client_watch(k8s, sandbox_namespace):
    core = kubernetes.client.CoreV1Api(k8s)
    ns = sandbox_namespace
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        watcher = kubernetes.watch.Watch()
        for event in watcher.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=30):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                watcher.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    core.create_namespaced_config_map(ns, {"metadata": {"name": "k1"}})
    core.delete_namespaced_config_map("k1", ns)
    thread.join(60)
    assert seen == [("ADDED", "k1"), ("DELETED", "k1")]


def test_kubernetes_client_apps_and_discovery(k8s, sandbox_namespace):
    apps = kubernetes.client.AppsV1Api(k8s)
    ns = sandbox_namespace
    body = {
        "metadata": {"name": "kd"},
        "spec": {
            "selector": {"matchLabels": {"app": "kd"}},
            "template": {
                "metadata": {"labels": {"app": "kd"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
            },
        },
    }
    created = apps.create_namespaced_deployment(ns, body)
    assert created.spec.replicas == 1 and created.metadata.generation == 1
    groups = kubernetes.client.ApisApi(k8s).get_api_versions()
    assert "apps" in [g.name for g in groups.groups]


def test_lightkube_create_get_list_delete_watch(sandbox, sandbox_namespace):
    client = Client(KubeConfig.from_file(str(sandbox.kubeconfig)), field_manager="tests")
    ns = sandbox_namespace
    created = client.create(ConfigMap(metadata=ObjectMeta(name="lk", namespace=ns), data={"a": "1"}))
    assert created.metadata.resourceVersion
    assert client.get(ConfigMap, "lk", namespace=ns).data == {"a": "1"}
    assert [c.metadata.name for c in client.list(ConfigMap, namespace=ns)] == ["lk"]
    client.delete(ConfigMap, "lk", namespace=ns)
    for kind, obj in client.watch(ConfigMap, namespace=ns, resource_version=created.metadata.resourceVersion):
        assert (kind, obj.metadata.name) == ("DELETED", "lk")
        break
    deployments = list(client.list(Deployment, namespace=ns))
    assert deployments == []


def test_lightkube_server_side_apply(sandbox, sandbox_namespace):
    from lightkube.core.exceptions import ApiError

    ns = sandbox_namespace
    client = Client(KubeConfig.from_file(str(sandbox.kubeconfig)), field_manager="lk-one")
    applied = client.apply(ConfigMap(metadata=ObjectMeta(name="ssa", namespace=ns), data={"a": "1"}))
    assert applied.data == {"a": "1"}
    entry = applied.metadata.managedFields[0]
    assert (entry.manager, entry.operation, entry.fieldsType) == ("lk-one", "Apply", "FieldsV1")
    assert entry.fieldsV1 == {"f:data": {"f:a": {}}}
    other = Client(KubeConfig.from_file(str(sandbox.kubeconfig)), field_manager="lk-two")
    with pytest.raises(ApiError) as error:
        other.apply(ConfigMap(metadata=ObjectMeta(name="ssa", namespace=ns), data={"a": "2"}))
    assert error.value.status.code == 409 and "lk-one" in error.value.status.message
    forced = other.apply(ConfigMap(metadata=ObjectMeta(name="ssa", namespace=ns), data={"a": "2"}), force=True)
    assert forced.data == {"a": "2"}
    # the first manager stops applying "a": its ownership moved, so the value stays
    kept = client.apply(ConfigMap(metadata=ObjectMeta(name="ssa", namespace=ns), data={"b": "1"}))
    assert kept.data == {"a": "2", "b": "1"}
    dry = client.apply(ConfigMap(metadata=ObjectMeta(name="ssa", namespace=ns), data={"b": "9"}), dry_run=True)
    assert dry.data["b"] == "9" and client.get(ConfigMap, "ssa", namespace=ns).data["b"] == "1"
