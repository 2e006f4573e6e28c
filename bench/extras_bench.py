"""What the workload simulation costs and how fast it converges.

Run: ``.venv/bin/python bench/extras_bench.py``. Starts in-process sandboxes and prints, with the
simulation on and off: server-side applies per second of distinct 2-replica Deployments over HTTP,
the store writes each Deployment causes, and the time until they are all Available.
"""

from __future__ import annotations

import http.client
import json
import tempfile
import time
from pathlib import Path

from tether.sandbox.extras import ExtrasConfig
from tether.sandbox.server import SandboxConfig, SandboxThread


def deployment(name: str) -> bytes:
    pod = {"containers": [{"name": "web", "image": "nginx:1.27"}]}
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
            },
        }
    ).encode()


def run(simulate: bool, count: int = 200, delay: float = 1.0) -> dict[str, float]:
    thread = SandboxThread(
        SandboxConfig(
            port=0, data_dir=Path(tempfile.mkdtemp()), extras=ExtrasConfig(simulate=simulate, sim_delay=delay)
        )
    )
    server = thread.start()
    host, port = server.url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    rv_before = thread.call(lambda: server.store.rv)
    started = time.perf_counter()
    for i in range(count):
        conn.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/default/deployments/web-{i}?fieldManager=bench",
            body=deployment(f"web-{i}"),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        response = conn.getresponse()
        response.read()
        assert response.status == 201, response.status
    applied = time.perf_counter() - started
    result = {"applies_per_s": count / applied}
    if simulate:

        def available() -> int:
            bucket = server.store.objects.get(("apps", "deployments"), {})
            return sum(1 for d in bucket.values() if (d.get("status") or {}).get("availableReplicas") == 2)

        while thread.call(available) < count:
            time.sleep(0.05)
        result["all_available_after_s"] = time.perf_counter() - started
    time.sleep(0.2)
    result["writes_per_deployment"] = (thread.call(lambda: server.store.rv) - rv_before) / count
    thread.stop()
    return result


if __name__ == "__main__":
    for simulate in (False, True):
        figures = run(simulate)
        print(f"simulation {'on ' if simulate else 'off'}: " + ", ".join(f"{k}={v:.1f}" for k, v in figures.items()))
