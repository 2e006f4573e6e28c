"""Renderer child processes run within memory, output and time limits; each limit is a RenderError."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tether.errors import RenderError
from tether.render import RenderOptions, render_source
from tether.render.limits import Limits, run_limited

MiB = 1024 * 1024


def test_child_over_the_memory_limit_is_a_render_error() -> None:
    with pytest.raises(
        RenderError,
        match=r"^probe: ran out of memory under the limit of 268435456 bytes "
        r"\(256 MiB, RenderOptions.max_memory_bytes\)",
    ):
        run_limited([sys.executable, "-c", "x = bytearray(1024 ** 3)"], what="probe", limits=Limits(60, 256 * MiB, 0))


def test_child_within_the_memory_limit_runs() -> None:
    done = run_limited(
        [sys.executable, "-c", "x = bytearray(16 * 1024 ** 2); print('ok')"],
        what="probe",
        limits=Limits(60, 512 * MiB, 0),
    )
    assert (done.returncode, done.stdout) == (0, b"ok\n")


def test_endless_output_is_cut_at_the_limit() -> None:
    with pytest.raises(
        RenderError,
        match=r"^probe: output passed the limit of 1048576 bytes \(1 MiB, "
        r"RenderOptions.max_output_bytes\); stopped",
    ):
        run_limited(
            [sys.executable, "-c", "import sys\nwhile True: sys.stdout.write('x' * 65536)"],
            what="probe",
            limits=Limits(60, 0, MiB),
        )


def test_timeout_names_the_command_line_flag() -> None:
    with pytest.raises(RenderError, match=r"longer than 1s; stopped \(raise --render-timeout"):
        run_limited([sys.executable, "-c", "import time; time.sleep(30)"], what="probe", limits=Limits(1, 0, 0))


def test_stdin_larger_than_a_pipe_buffer_is_delivered() -> None:
    data = b"y" * (4 * MiB)
    done = run_limited(
        [sys.executable, "-c", "import sys; print(len(sys.stdin.buffer.read()))"],
        what="probe",
        limits=Limits(60, 0, 0),
        stdin=data,
    )
    assert done.stdout.strip() == str(len(data)).encode()


def _big_kustomization(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (app / "cm.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: {'z' * (2 * MiB)}\n"
    )
    return app


def test_kustomize_output_limit(tmp_path: Path) -> None:
    app = _big_kustomization(tmp_path)
    with pytest.raises(RenderError, match=r"^kustomization.yaml \(kustomize\): output passed the limit of 1048576"):
        render_source(app, RenderOptions(max_output_bytes=MiB, source_root=str(app)))
    assert render_source(app, RenderOptions(source_root=str(app))).manifests[0].obj["metadata"]["name"] == "big"


def test_kustomize_memory_limit(tmp_path: Path) -> None:
    app = _big_kustomization(tmp_path)
    with pytest.raises(RenderError, match=r"^kustomization.yaml \(kustomize\): ran out of memory under the limit"):
        render_source(app, RenderOptions(max_memory_bytes=300 * MiB, source_root=str(app)))


def test_jsonnet_memory_limit(tmp_path: Path) -> None:
    (tmp_path / "main.jsonnet").write_text(
        "local big = std.makeArray(50000000, function(i) {n: i}); [{apiVersion: 'v1', kind: 'ConfigMap', "
        "metadata: {name: 'x'}, data: {n: std.toString(std.length(big) + big[49999999].n)}}]\n"
    )
    with pytest.raises(RenderError, match=r"^main.jsonnet: ran out of memory under the limit of 536870912 bytes"):
        render_source(tmp_path, RenderOptions(max_memory_bytes=512 * MiB, source_root=str(tmp_path)))


def test_jsonnet_output_limit(tmp_path: Path) -> None:
    (tmp_path / "main.jsonnet").write_text(
        "[{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'c' + i}, data: {v: std.repeat('q', 10000)}} "
        "for i in std.range(1, 300)]\n".replace("'c' + i", "'c' + std.toString(i)")
    )
    with pytest.raises(RenderError, match=r"^main.jsonnet: output passed the limit of 1048576 bytes"):
        render_source(tmp_path, RenderOptions(max_output_bytes=MiB, source_root=str(tmp_path)))


def test_helm_output_limit(fixture_copy) -> None:
    chart = fixture_copy("helm") / "web"
    (chart / "templates" / "many.yaml").write_text(
        "{{- range $i := until 400 }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{{ $i }}\n"
        'data:\n  v: {{ repeat 5000 "q" | quote }}\n{{- end }}\n'
    )
    with pytest.raises(RenderError, match=r"^Chart.yaml \(helm chart\): output passed the limit of 1048576 bytes"):
        render_source(chart, RenderOptions(max_output_bytes=MiB))


def test_helm_memory_limit(fixture_copy) -> None:
    chart = fixture_copy("helm") / "web"
    with pytest.raises(RenderError, match=r"^Chart.yaml \(helm chart\): ran out of memory under the limit"):
        render_source(chart, RenderOptions(max_memory_bytes=400 * MiB))
