"""Server-side defaults per kind and the Service/Job allocation hook."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.sandbox import defaults, errors
from tether.sandbox.resources import Registry
from tether.sandbox.store import Store

POD_SPEC = {"containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}


def _subset(expected: Any, actual: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing in {actual!r}"
            _subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            _subset(want, got, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: expected {expected!r}, got {actual!r}"


TEMPLATE_DEFAULTS = {
    "restartPolicy": "Always",
    "dnsPolicy": "ClusterFirst",
    "terminationGracePeriodSeconds": 30,
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "containers": [
        {
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "resources": {},
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
        }
    ],
}

CASES = [
    (
        "Deployment",
        {"spec": {"template": {"spec": POD_SPEC}}},
        {
            "spec": {
                "replicas": 1,
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"spec": TEMPLATE_DEFAULTS},
            }
        },
    ),
    (
        "Deployment",
        {"spec": {"strategy": {"type": "Recreate"}, "template": {"spec": POD_SPEC}}},
        {"spec": {"strategy": {"type": "Recreate"}}},
    ),
    ("ReplicaSet", {"spec": {"template": {"spec": POD_SPEC}}}, {"spec": {"replicas": 1}}),
    (
        "StatefulSet",
        {
            "spec": {
                "template": {"spec": POD_SPEC},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}],
            }
        },
        {
            "spec": {
                "replicas": 1,
                "podManagementPolicy": "OrderedReady",
                "revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "volumeClaimTemplates": [
                    {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "spec": {"volumeMode": "Filesystem"},
                        "status": {"phase": "Pending"},
                    }
                ],
            }
        },
    ),
    (
        "DaemonSet",
        {"spec": {"template": {"spec": POD_SPEC}}},
        {
            "spec": {
                "revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            }
        },
    ),
    (
        "Job",
        {"spec": {"template": {"spec": POD_SPEC}}},
        {
            "spec": {
                "completions": 1,
                "parallelism": 1,
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "suspend": False,
                "podReplacementPolicy": "TerminatingOrFailed",
            }
        },
    ),
    ("Job", {"spec": {"parallelism": 3, "template": {"spec": POD_SPEC}}}, {"spec": {"parallelism": 3}}),
    (
        "CronJob",
        {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": POD_SPEC}}}}},
        {
            "spec": {
                "concurrencyPolicy": "Allow",
                "suspend": False,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"template": {"spec": TEMPLATE_DEFAULTS}}},
            }
        },
    ),
    (
        "Pod",
        {"spec": POD_SPEC},
        {
            "spec": {
                **TEMPLATE_DEFAULTS,
                "enableServiceLinks": True,
                "priority": 0,
                "serviceAccountName": "default",
                "tolerations": [
                    {
                        "key": "node.kubernetes.io/not-ready",
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": 300,
                    },
                    {
                        "key": "node.kubernetes.io/unreachable",
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": 300,
                    },
                ],
            }
        },
    ),
    (
        "Service",
        {"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}},
        {
            "spec": {
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "ports": [
                    {"port": 80, "protocol": "TCP", "targetPort": 80},
                    {"port": 53, "protocol": "UDP", "targetPort": "dns"},
                ],
            }
        },
    ),
    (
        "Service",
        {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
        {"spec": {"externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True}},
    ),
    ("PersistentVolumeClaim", {"spec": {"accessModes": ["ReadWriteOnce"]}}, {"spec": {"volumeMode": "Filesystem"}}),
    (
        "HorizontalPodAutoscaler",
        {"spec": {"maxReplicas": 3}},
        {
            "spec": {
                "minReplicas": 1,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                    }
                ],
            }
        },
    ),
    ("Secret", {}, {"type": "Opaque"}),
    (
        "RoleBinding",
        {"subjects": [{"kind": "User", "name": "u"}]},
        {"subjects": [{"apiGroup": "rbac.authorization.k8s.io"}]},
    ),
]


@pytest.mark.parametrize(("kind", "given", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_defaults_per_kind(kind: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    obj = defaults.apply_defaults(kind, given)
    _subset(expected, obj)
    # idempotent: defaulting a defaulted object changes nothing
    import copy

    again = copy.deepcopy(obj)
    assert defaults.apply_defaults(kind, again) == obj


def test_user_values_are_kept() -> None:
    obj = defaults.apply_defaults(
        "Deployment",
        {"spec": {"replicas": 0, "revisionHistoryLimit": 2, "template": {"spec": {"restartPolicy": "Never"}}}},
    )
    assert obj["spec"]["replicas"] == 0 and obj["spec"]["revisionHistoryLimit"] == 2
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_hpa_behavior_is_filled_only_when_given() -> None:
    assert "behavior" not in defaults.apply_defaults("HorizontalPodAutoscaler", {"spec": {}})["spec"]
    filled = defaults.apply_defaults("HorizontalPodAutoscaler", {"spec": {"behavior": {}}})["spec"]["behavior"]
    assert filled["scaleUp"]["selectPolicy"] == "Max" and filled["scaleDown"]["stabilizationWindowSeconds"] == 300


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry:5000/team/app", "Always"),
        ("registry:5000/team/app:v1", "IfNotPresent"),
        ("busybox@sha256:abc", "IfNotPresent"),
        ("ghcr.io/x/y:latest", "Always"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert defaults.image_pull_policy(image) == policy


# -- store-time hooks -----------------------------------------------------------------------------


def _store(tmp_path=None) -> Store:
    store = Store(Registry(), tmp_path)
    defaults.install(store, seed=1)
    return store


def _service(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"port": 80}], **spec},
    }


def test_cluster_ips_are_unique_in_range_and_survive_restart(tmp_path) -> None:
    store = _store(tmp_path)
    rt = store.registry.get("", "v1", "services")
    ips = {store.create(rt, _service(f"s{i}"))["spec"]["clusterIP"] for i in range(20)}
    assert len(ips) == 20
    assert all(ip.startswith("10.") and 96 <= int(ip.split(".")[1]) <= 111 for ip in ips)
    store.close()
    reopened = Store(Registry(), tmp_path)
    allocator = defaults.install(reopened, seed=1)  # same seed: would repeat if not derived from storage
    assert ips <= allocator.used_ips()
    fresh = reopened.create(rt, _service("after"))["spec"]["clusterIP"]
    assert fresh not in ips


def test_headless_external_name_and_node_ports() -> None:
    store = _store()
    rt = store.registry.get("", "v1", "services")
    headless = store.create(rt, _service("h", clusterIP="None", selector={"app": "x"}))["spec"]
    assert headless["clusterIP"] == "None" and headless["clusterIPs"] == ["None"]
    assert headless["ipFamilyPolicy"] == "SingleStack" and headless["ipFamilies"] == ["IPv4"]
    external = store.create(rt, _service("e", type="ExternalName", externalName="example.com"))["spec"]
    assert "clusterIP" not in external
    node = store.create(rt, _service("n", type="NodePort"))["spec"]
    assert 30000 <= node["ports"][0]["nodePort"] <= 32767


def test_update_keeps_allocated_ip_and_rejects_changes() -> None:
    store = _store()
    rt = store.registry.get("", "v1", "services")
    created = store.create(rt, _service("a", type="NodePort"))
    ip, port = created["spec"]["clusterIP"], created["spec"]["ports"][0]["nodePort"]
    update = _service("a", type="NodePort")  # an update that leaves the allocated values out
    updated = store.update(rt, update)
    assert updated["spec"]["clusterIP"] == ip and updated["spec"]["ports"][0]["nodePort"] == port
    with pytest.raises(errors.ApiError) as caught:
        store.update(rt, _service("a", type="NodePort", clusterIP="10.96.7.7"))
    assert caught.value.code == 422 and "field is immutable" in caught.value.message


def test_requested_cluster_ip_already_taken_is_invalid() -> None:
    store = _store()
    rt = store.registry.get("", "v1", "services")
    store.create(rt, _service("a", clusterIP="10.96.5.5"))
    with pytest.raises(errors.ApiError) as caught:
        store.create(rt, _service("b", clusterIP="10.96.5.5"))
    assert caught.value.code == 422 and "provided IP is already allocated" in caught.value.message


def test_job_gets_controller_uid_selector_and_labels() -> None:
    store = _store()
    rt = store.registry.get("batch", "v1", "jobs")
    job = store.create(
        rt,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j", "namespace": "default"},
            "spec": {"template": {"spec": POD_SPEC}},
        },
    )
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {defaults.JOB_UID_LABEL: uid}}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        defaults.JOB_UID_LABEL: uid,
        defaults.JOB_NAME_LABEL: "j",
        "controller-uid": uid,
        "job-name": "j",
    }
    manual = store.create(
        rt,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "m", "namespace": "default"},
            "spec": {
                "manualSelector": True,
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": POD_SPEC},
            },
        },
    )
    assert manual["spec"]["selector"] == {"matchLabels": {"a": "b"}}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "template",
                    "containers",
                    "ports",
                    "image",
                    "strategy",
                    "selector",
                    "volumes",
                    "env",
                    "tolerations",
                    "metrics",
                    "behavior",
                    "subjects",
                    "type",
                    "rollingUpdate",
                    "volumeClaimTemplates",
                    "jobTemplate",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from([c[0] for c in CASES] + ["Pod", "Namespace"]),
    obj=st.dictionaries(st.sampled_from(["spec", "metadata", "subjects", "type"]), JSON, max_size=3),
)
def test_defaults_tolerate_any_shape(kind: str, obj: dict[str, Any]) -> None:
    defaults.apply_defaults(kind, obj)  # runs before validation: must never raise
