"""Render (and validate) benchmark: 1,000 and 10,000 plain objects.

Each size runs in a fresh child process so its peak RSS is its own. Reports wall time of
render (read + parse + substitute + namespace + labels) and of validate (schemas), peak RSS
and Python peak heap (tracemalloc would slow parsing down, so it is off: RSS is the figure).

    python bench/render_bench.py            # both sizes, table on stdout
    python bench/render_bench.py --json     # machine-readable
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (1_000, 10_000)
PER_FILE = 100


def object_yaml(i: int) -> str:
    kind = i % 3
    if kind == 0:
        return (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  labels: {{app: bench}}\n"
            f"data:\n  key: value-{i}\n  region: ${{REGION:=eu}}\n"
        )
    if kind == 1:
        return (
            f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\nspec:\n  selector: {{app: a{i}}}\n"
            f"  ports:\n    - port: 80\n      targetPort: 8080\n"
        )
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: dep-{i}\nspec:\n  replicas: 1\n"
        f"  selector:\n    matchLabels: {{app: a{i}}}\n  template:\n    metadata:\n      labels: {{app: a{i}}}\n"
        f"    spec:\n      containers:\n        - name: c\n          image: nginx:1.27.3\n"
        f"          resources:\n            limits: {{cpu: 100m, memory: 64Mi}}\n"
    )


def generate(directory: Path, count: int) -> None:
    for start in range(0, count, PER_FILE):
        text = "---\n".join(object_yaml(i) for i in range(start, min(start + PER_FILE, count)))
        (directory / f"objects-{start // PER_FILE:04d}.yaml").write_text(text)


def measure(count: int) -> dict[str, float]:
    """Runs inside the child process."""
    from tether.render import RenderOptions, render_source
    from tether.validate import validate_manifests

    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), count)
        options = RenderOptions(app="bench", namespace="bench", source_root=tmp)
        started = time.perf_counter()
        result = render_source(tmp, options)
        render_s = time.perf_counter() - started
        assert len(result.manifests) == count
        rss_render = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        report = validate_manifests(result.manifests)
        validate_s = time.perf_counter() - started
        assert report.valid, [str(f) for f in report.findings[:3]]
    return {
        "objects": count,
        "render_s": round(render_s, 3),
        "validate_s": round(validate_s, 3),
        "render_per_object_us": round(render_s / count * 1e6, 1),
        "peak_rss_after_render_mib": round(rss_render, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def schema_engines(count: int = 1_000) -> dict[str, float]:
    """Per-object cost of the two schema engines on Deployments, and the one-off compile cost."""
    from tether.validate import schema

    objects = [json.loads(json.dumps(__import__("yaml").safe_load(object_yaml(2 + 3 * i)))) for i in range(count)]
    name = "io.k8s.api.apps.v1.Deployment"
    schema.strict_definitions("1.32")
    started = time.perf_counter()
    detailed = schema._detailed_validator("1.32", name)
    for obj in objects:
        assert not list(detailed.iter_errors(obj))
    jsonschema_us = (time.perf_counter() - started) / count * 1e6
    started = time.perf_counter()
    fast = schema._fast_validator("1.32", name)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    for obj in objects:
        fast(obj)
    fast_us = (time.perf_counter() - started) / count * 1e6
    return {
        "jsonschema_us_per_deployment": round(jsonschema_us, 1),
        "fastjsonschema_compile_s": round(compile_s, 3),
        "fastjsonschema_us_per_deployment": round(fast_us, 1),
    }


def renderer_latency() -> dict[str, float]:
    """Wall time of one render of each example (includes the child process for Helm / Jsonnet)."""
    from tether.render import RenderOptions, render_source

    examples = Path(__file__).resolve().parents[1] / "examples/render"
    cases = {
        "plain (guestbook)": ("guestbook", RenderOptions()),
        "kustomize (overlay)": ("api-kustomize/overlays/prod", RenderOptions()),
        "helm (chart)": ("web-chart", RenderOptions(values_files=("values-prod.yaml",))),
        "jsonnet (app)": ("api-jsonnet", RenderOptions(tla_str=(("name", "api"),), ext_str=(("env", "prod"),))),
    }
    out = {}
    for label, (path, options) in cases.items():
        render_source(examples / path, options)  # warm caches (imports, page cache)
        started = time.perf_counter()
        render_source(examples / path, options)
        out[label] = round(time.perf_counter() - started, 3)
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(measure(int(sys.argv[2]))))
        return
    rows = []
    for count in SIZES:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(count)], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(done.stdout))
    engines, latency = schema_engines(), renderer_latency()
    if "--json" in sys.argv:
        print(json.dumps({"plain": rows, "schema_engines": engines, "renderer_latency_s": latency}, indent=2))
        return
    print(f"{'objects':>8} {'render s':>9} {'us/object':>10} {'validate s':>11} {'peak RSS MiB':>13}")
    for row in rows:
        print(
            f"{row['objects']:>8} {row['render_s']:>9} {row['render_per_object_us']:>10} {row['validate_s']:>11} "
            f"{row['peak_rss_mib']:>13}"
        )
    print()
    for key, value in {**engines, **latency}.items():
        print(f"{key:<36} {value}")


if __name__ == "__main__":
    main()
