"""Plain directories holding Kustomize bases (Flux's clusters/<env>/ layout) and kustomize's warnings."""

from __future__ import annotations

from pathlib import Path

from tether.render import RenderOptions, render_source

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


def test_a_subdirectory_with_a_kustomization_is_built_not_read(tmp_path: Path) -> None:
    (tmp_path / "namespace.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n")
    base = tmp_path / "podinfo"
    base.mkdir()
    (base / "config.yaml").write_text(CM.format(name="podinfo"))
    (base / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: prod-\n"
        "commonLabels:\n  env: prod\nresources:\n  - config.yaml\n"
    )
    result = render_source(tmp_path, RenderOptions(source_root=str(tmp_path)))
    names = sorted((m.obj["kind"], m.obj["metadata"]["name"]) for m in result.manifests)
    assert names == [("ConfigMap", "prod-podinfo"), ("Namespace", "apps")]  # no Kustomization object
    config = next(m for m in result.manifests if m.obj["kind"] == "ConfigMap")
    assert config.obj["metadata"]["labels"]["env"] == "prod"
    assert config.source is not None and config.source.file == "podinfo/config.yaml"
    assert any("podinfo/kustomization.yaml: kustomize:" in w and "commonLabels" in w for w in result.warnings), (
        result.warnings
    )


def test_a_stray_kustomization_file_is_never_an_object(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(CM.format(name="a"))
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - a.yaml\n")
    result = render_source(tmp_path, RenderOptions(source_root=str(tmp_path), renderer="yaml"))
    assert [m.obj["metadata"]["name"] for m in result.manifests] == ["a"]
