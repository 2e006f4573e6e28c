"""Micro benchmark: server-side applies per second of a typical one-container Deployment.

Run: ``.venv/bin/python bench/merge_bench.py``. Prints applies/s for re-applying an unchanged
config (the steady state of a GitOps loop) and for applies that change the image.
"""

from __future__ import annotations

import time

from tether.sandbox.merge import apply_patch, builtin_type


def deployment(image: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "frontend"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [{"name": "MODE", "value": "prod"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                        }
                    ]
                },
            },
        },
    }


def run(seconds: float = 2.0) -> dict[str, float]:
    type_info = builtin_type("apps", "v1", "Deployment")
    live = apply_patch(
        None,
        deployment("nginx:1"),
        manager="tether",
        api_version="apps/v1",
        force=False,
        type_info=type_info,
        now="2024-01-01T00:00:00Z",
    )
    results = {}
    for label, images in (("unchanged", ["nginx:1"]), ("image-change", ["nginx:1", "nginx:2"])):
        configs = [deployment(image) for image in images]
        count = 0
        current = live
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for config in configs:
                current = apply_patch(
                    current,
                    config,
                    manager="tether",
                    api_version="apps/v1",
                    force=False,
                    type_info=type_info,
                    now="2024-01-01T00:00:01Z",
                )
                count += 1
        results[label] = count / (time.perf_counter() - start)
    return results


if __name__ == "__main__":
    for label, rate in run().items():
        print(f"{label:>13}: {rate:8.0f} applies/s ({1e6 / rate:6.0f} us/apply)")
