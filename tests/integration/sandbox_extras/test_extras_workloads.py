"""Workload simulation through real clients: the kubernetes client, kubectl rollout / wait."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from extras_helpers import Http, conditions, deployment, eventually
from kubernetes import client, config

KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="module")
def k8s(fast) -> client.ApiClient:  # type: ignore[no-untyped-def]
    return config.new_client_from_config(str(fast.kubeconfig))


def _kubectl(fast, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(fast.kubeconfig), *args], capture_output=True, text=True, timeout=120
    )


def test_deployment_becomes_available_with_owned_replicaset_and_pods(http_fast: Http, k8s) -> None:
    ns = http_fast.namespace("wl-available")
    apps, core = client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    apps.create_namespaced_deployment(ns, deployment("web", replicas=3))

    def ready():
        d = apps.read_namespaced_deployment("web", ns)
        return d if (d.status.available_replicas or 0) == 3 else None

    d = eventually(ready)
    assert d.status.observed_generation == 1 and d.status.updated_replicas == 3 and d.status.ready_replicas == 3
    reasons = {c.type: (c.status, c.reason) for c in d.status.conditions}
    assert reasons == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    (rs,) = apps.list_namespaced_replica_set(ns).items
    owner = rs.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Deployment", "web", d.metadata.uid, True)
    template_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{template_hash}" and rs.status.ready_replicas == 3
    pods = core.list_namespaced_pod(ns, label_selector=f"app=web,pod-template-hash={template_hash}").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.spec.node_name == "sandbox-node" and pod.status.phase == "Running" and pod.status.pod_ip
        assert pod.metadata.owner_references[0].name == rs.metadata.name
        assert pod.status.container_statuses[0].ready and pod.status.container_statuses[0].state.running
    # managedFields name the upstream controllers, status written through the status subresource
    managers = {(m.manager, m.operation, m.subresource) for m in d.metadata.managed_fields}
    assert ("kube-controller-manager", "Update", "status") in managers
    pod_managers = {(m.manager, m.subresource) for m in pods[0].metadata.managed_fields}
    assert ("kubelet", "status") in pod_managers and ("kube-controller-manager", None) in pod_managers


def test_failing_image_ends_in_progress_deadline_exceeded(http_fast: Http) -> None:
    ns = http_fast.namespace("wl-failing")
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    code, _ = http_fast.post(
        base, deployment("broken", image="registry.example/fail-app:1", replicas=1, progressDeadlineSeconds=2)
    )
    assert code == 201
    broken = eventually(
        lambda: (lambda d: d if conditions(d).get("Progressing", ("", ""))[1] == "ProgressDeadlineExceeded" else None)(
            http_fast.get(f"{base}/broken")[1]
        )
    )
    assert conditions(broken) == {
        "Available": ("False", "MinimumReplicasUnavailable"),
        "Progressing": ("False", "ProgressDeadlineExceeded"),
    }
    code, pods = http_fast.get(f"/api/v1/namespaces/{ns}/pods?labelSelector=app%3Dbroken")
    (pod,) = pods["items"]
    assert pod["status"]["phase"] == "Pending"
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ImagePullBackOff" and "fail-app" in waiting["message"]


def test_rolling_update_replaces_the_replicaset(http_fast: Http, k8s) -> None:
    ns = http_fast.namespace("wl-rollout")
    apps = client.AppsV1Api(k8s)
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    eventually(lambda: (apps.read_namespaced_deployment("web", ns).status.available_replicas or 0) == 2)
    apps.patch_namespaced_deployment(
        "web", ns, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}}
    )

    def rolled():
        d = apps.read_namespaced_deployment("web", ns)
        sets = apps.list_namespaced_replica_set(ns).items
        done = (
            d.status.observed_generation == 2
            and d.status.updated_replicas == 2
            and d.status.replicas == 2
            and (d.status.available_replicas or 0) == 2
            and len(sets) == 2
        )
        return (d, sets) if done else None

    d, sets = eventually(rolled)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    by_revision = {rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs for rs in sets}
    assert by_revision["1"].spec.replicas == 0 and by_revision["2"].spec.replicas == 2
    assert by_revision["2"].spec.template.spec.containers[0].image == "nginx:1.28"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_rollout_status_and_wait(fast, http_fast: Http) -> None:  # type: ignore[no-untyped-def]
    ns = http_fast.namespace("wl-kubectl")
    assert http_fast.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("web"))[0] == 201
    rollout = _kubectl(fast, "-n", ns, "rollout", "status", "deployment/web", "--timeout=90s")
    assert rollout.returncode == 0, rollout.stderr
    assert 'deployment "web" successfully rolled out' in rollout.stdout
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
    }
    assert http_fast.post(f"/apis/batch/v1/namespaces/{ns}/jobs", job)[0] == 201
    wait = _kubectl(fast, "-n", ns, "wait", "--for=condition=Complete", "job/once", "--timeout=90s")
    assert wait.returncode == 0, wait.stderr


def test_statefulset_pods_are_ordered_and_claims_bind(http_fast: Http) -> None:
    ns = http_fast.namespace("wl-sts")
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db",
            "replicas": 3,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
                }
            ],
        },
    }
    assert http_fast.post(f"/apis/apps/v1/namespaces/{ns}/statefulsets", sts)[0] == 201
    done = eventually(
        lambda: (lambda s: s if (s.get("status") or {}).get("readyReplicas") == 3 else None)(
            http_fast.get(f"/apis/apps/v1/namespaces/{ns}/statefulsets/db")[1]
        )
    )
    assert done["status"]["currentRevision"] == done["status"]["updateRevision"]
    _, pods = http_fast.get(f"/api/v1/namespaces/{ns}/pods")
    names = sorted(p["metadata"]["name"] for p in pods["items"])
    assert names == ["db-0", "db-1", "db-2"]
    created = {p["metadata"]["name"]: p["metadata"]["creationTimestamp"] for p in pods["items"]}
    assert created["db-0"] <= created["db-1"] <= created["db-2"]  # OrderedReady: one after another
    claims = eventually(
        lambda: (
            lambda items: items if len(items) == 3 and all(c["status"]["phase"] == "Bound" for c in items) else None
        )(http_fast.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims")[1]["items"])
    )
    assert sorted(c["metadata"]["name"] for c in claims) == ["data-db-0", "data-db-1", "data-db-2"]
    assert all(c["status"]["capacity"] == {"storage": "2Gi"} and c["spec"]["volumeName"] for c in claims)


def test_failing_job_reports_backoff_limit_exceeded(http_fast: Http) -> None:
    ns = http_fast.namespace("wl-job-fail")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "doomed"},
        "spec": {
            "backoffLimit": 1,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "fail"}]}},
        },
    }
    assert http_fast.post(f"/apis/batch/v1/namespaces/{ns}/jobs", job)[0] == 201
    failed = eventually(
        lambda: (lambda j: j if conditions(j).get("Failed") else None)(
            http_fast.get(f"/apis/batch/v1/namespaces/{ns}/jobs/doomed")[1]
        )
    )
    assert conditions(failed)["Failed"] == ("True", "BackoffLimitExceeded")
    assert failed["status"]["failed"] == 2  # backoffLimit 1: the second failure ends it


def test_controllers_record_events(http_fast: Http) -> None:
    ns = http_fast.namespace("wl-events")
    assert http_fast.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("web", replicas=1))[0] == 201
    assert (
        http_fast.post(
            f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("bad", image="fail-image:1", replicas=1)
        )[0]
        == 201
    )

    def reasons():
        items = http_fast.get(f"/api/v1/namespaces/{ns}/events")[1]["items"]
        found = {(e["involvedObject"]["kind"], e["reason"], e["type"]) for e in items}
        wanted = {
            ("Deployment", "ScalingReplicaSet", "Normal"),
            ("ReplicaSet", "SuccessfulCreate", "Normal"),
            ("Pod", "Scheduled", "Normal"),
            ("Pod", "Started", "Normal"),
            ("Pod", "BackOff", "Warning"),
        }
        return items if wanted <= found else None

    items = eventually(reasons)
    scaling = next(e for e in items if e["reason"] == "ScalingReplicaSet" and e["involvedObject"]["name"] == "web")
    assert scaling["message"].startswith("Scaled up replica set web-") and scaling["message"].endswith("from 0 to 1")
    assert scaling["source"] == {"component": "deployment-controller"}
