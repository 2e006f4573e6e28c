"""State the extras derive from the store survives a restart of the sandbox."""

from __future__ import annotations

from extras_helpers import Http, deployment, eventually, start_sandbox

from tether.sandbox.extras import ExtrasConfig


def test_restart_keeps_allocations_and_keeps_simulating(tmp_path) -> None:
    options = {"extras": ExtrasConfig(sim_delay=0.2)}
    first = start_sandbox(tmp_path, **options)
    try:
        http = Http(first.url)
        ns = http.namespace("restart")
        ips = {
            http.post(
                f"/api/v1/namespaces/{ns}/services",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"s{i}"},
                    "spec": {"ports": [{"port": 80}]},
                },
            )[1]["spec"]["clusterIP"]
            for i in range(5)
        }
        assert http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("web", replicas=1))[0] == 201
        eventually(
            lambda: (
                http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web")[1].get("status", {}).get("availableReplicas")
                == 1
            )
        )
    finally:
        first.thread.stop()
    second = start_sandbox(tmp_path, **options)
    try:
        http = Http(second.url)
        code, svc = http.post(
            f"/api/v1/namespaces/{ns}/services",
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "later"}, "spec": {"ports": [{"port": 80}]}},
        )
        assert code == 201 and svc["spec"]["clusterIP"] not in ips
        # the controllers pick the stored workloads up again: scaling works after the restart
        code, _ = http.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{ns}/deployments/web",
            {"spec": {"replicas": 3}},
            content_type="application/merge-patch+json",
        )
        assert code == 200
        eventually(
            lambda: (
                http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web")[1].get("status", {}).get("availableReplicas")
                == 3
            )
        )
        _, pods = http.get(f"/api/v1/namespaces/{ns}/pods")
        assert len(pods["items"]) == 3
    finally:
        second.thread.stop()
