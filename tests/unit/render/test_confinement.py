"""Nothing a render reads may lie outside the source root: Kustomize bases, Helm values, Jsonnet imports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tether.errors import RenderError
from tether.render import RenderOptions, render_source

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


@pytest.fixture
def outside_base(tmp_path: Path) -> Path:
    """A kustomization outside the source tree, with a secret of its own."""
    base = tmp_path / "outside" / "base"
    base.mkdir(parents=True)
    (base / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (base / "cm.yaml").write_text(CM.format(name="stolen"))
    return base


def app_with(tmp_path: Path, kustomization: str) -> Path:
    app = tmp_path / "repo" / "app"
    app.mkdir(parents=True)
    (app / "kustomization.yaml").write_text(kustomization)
    (app / "cm.yaml").write_text(CM.format(name="own"))
    return app


def options(app: Path) -> RenderOptions:
    return RenderOptions(source_root=str(app.parent))


@pytest.mark.parametrize("field", ["resources", "bases", "components"])
def test_base_directory_climbing_out_with_dotdot(tmp_path: Path, outside_base: Path, field: str) -> None:
    app = app_with(tmp_path, f"{field}:\n  - ../../outside/base\n")
    with pytest.raises(
        RenderError,
        match=rf"^app/kustomization.yaml: {field} entry '../../outside/base' points "
        r"outside the source tree",
    ):
        render_source(app, options(app))


def test_base_directory_by_absolute_path(tmp_path: Path, outside_base: Path) -> None:
    app = app_with(tmp_path, f"resources:\n  - cm.yaml\n  - {outside_base}\n")
    with pytest.raises(RenderError, match=rf"resources entry '{outside_base}' points outside the source tree"):
        render_source(app, options(app))


def test_base_directory_through_a_symlink_elsewhere_in_the_tree(tmp_path: Path, outside_base: Path) -> None:
    app = app_with(tmp_path, "resources:\n  - ../shared\n")
    os.symlink(outside_base, tmp_path / "repo" / "shared")  # outside the rendered directory, inside the root
    with pytest.raises(
        RenderError,
        match=r"resources entry '../shared' leads outside the source tree through a "
        r"symlink",
    ):
        render_source(app, options(app))


def test_escape_in_a_nested_base_is_found(tmp_path: Path, outside_base: Path) -> None:
    app = app_with(tmp_path, "resources:\n  - ../middle\n")
    middle = tmp_path / "repo" / "middle"
    middle.mkdir()
    (middle / "kustomization.yaml").write_text("resources:\n  - ../../outside/base\n")
    with pytest.raises(RenderError, match=r"^middle/kustomization.yaml: resources entry '../../outside/base'"):
        render_source(app, options(app))


def test_generator_file_outside(tmp_path: Path) -> None:
    (tmp_path / "secret.env").write_text("A=1\n")
    app = app_with(tmp_path, "configMapGenerator:\n  - name: c\n    envs: [../../secret.env]\n")
    with pytest.raises(RenderError, match=r"configMapGenerator\[\].envs entry '../../secret.env' points outside"):
        render_source(app, options(app))


def test_bases_inside_the_tree_and_remote_references_are_fine(tmp_path: Path) -> None:
    app = app_with(tmp_path, "resources:\n  - cm.yaml\n  - ../base\n")
    base = tmp_path / "repo" / "base"
    base.mkdir()
    (base / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (base / "cm.yaml").write_text(CM.format(name="base"))
    result = render_source(app, options(app))
    assert sorted(m.obj["metadata"]["name"] for m in result.manifests) == ["base", "own"]

    from tether.render.confine import check_kustomization

    (app / "kustomization.yaml").write_text(
        "resources:\n  - cm.yaml\n  - https://example.com/org/repo//deploy?ref=v1\n  - github.com/org/repo/deploy\n"
    )
    check_kustomization(app, app.parent, 1 << 20)  # remote bases are kustomize's own business


def test_helm_values_file_climbing_out_of_the_tree(fixture_copy, tmp_path: Path) -> None:
    chart = fixture_copy("helm") / "web"
    (tmp_path / "stolen.yaml").write_text("replicaCount: 9\n")
    with pytest.raises(RenderError, match=r"^values file ../../stolen.yaml: points outside the source tree"):
        render_source(chart, RenderOptions(values_files=("../../stolen.yaml",), source_root=str(chart)))


def test_helm_values_file_symlinked_out_of_the_tree(fixture_copy, tmp_path: Path) -> None:
    chart = fixture_copy("helm") / "web"
    (tmp_path / "stolen.yaml").write_text("replicaCount: 9\n")
    os.symlink(tmp_path / "stolen.yaml", chart / "values-linked.yaml")
    with pytest.raises(RenderError, match=r"values-linked.yaml: symlink points outside the source tree"):
        render_source(chart, RenderOptions(values_files=("values-linked.yaml",), source_root=str(chart)))


def test_helm_chart_file_symlinked_out_of_the_tree(fixture_copy, tmp_path: Path) -> None:
    chart = fixture_copy("helm") / "web"
    (tmp_path / "evil.yaml").write_text(CM.format(name="evil"))
    os.symlink(tmp_path / "evil.yaml", chart / "templates" / "evil.yaml")
    with pytest.raises(RenderError, match=r"templates/evil.yaml: symlink points outside the source tree"):
        render_source(chart, RenderOptions(source_root=str(chart)))


def test_helm_values_file_of_the_operator_by_absolute_path(fixture_copy, tmp_path: Path) -> None:
    chart = fixture_copy("helm") / "web"
    (tmp_path / "mine.yaml").write_text("replicaCount: 5\n")
    result = render_source(chart, RenderOptions(values_files=(str(tmp_path / "mine.yaml"),), source_root=str(chart)))
    assert next(m for m in result.manifests if m.obj["kind"] == "Deployment").obj["spec"]["replicas"] == 5


def test_jsonnet_relative_import_climbing_out(tmp_path: Path) -> None:
    (tmp_path / "secret.libsonnet").write_text("{ s: 'x' }")
    app = tmp_path / "repo"
    app.mkdir()
    (app / "main.jsonnet").write_text("local s = import '../secret.libsonnet';\n[s]\n")
    with pytest.raises(
        RenderError,
        match=r"^main.jsonnet: .*import '../secret.libsonnet' resolves outside the "
        r"source tree",
    ):
        render_source(app, RenderOptions(source_root=str(app)))


def test_jsonnet_relative_library_path_climbing_out(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    app = tmp_path / "repo"
    app.mkdir()
    (app / "main.jsonnet").write_text("[]\n")
    with pytest.raises(RenderError, match=r"^-J ../lib: a relative library path is taken inside the source tree"):
        render_source(app, RenderOptions(jsonnet_paths=("../lib",), source_root=str(app)))


def test_jsonnet_relative_library_path_inside_the_tree(tmp_path: Path) -> None:
    app = tmp_path / "repo"
    (app / "vendor").mkdir(parents=True)
    (app / "vendor" / "k.libsonnet").write_text(
        "{ cm(n):: {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: n}} }"
    )
    (app / "main.jsonnet").write_text("local k = import 'k.libsonnet'; [k.cm('v')]\n")
    result = render_source(app, RenderOptions(jsonnet_paths=("vendor",), source_root=str(app)))
    assert [m.obj["metadata"]["name"] for m in result.manifests] == ["v"]


def test_jsonnet_library_symlinked_out_of_a_library_path(tmp_path: Path) -> None:
    (tmp_path / "secret.libsonnet").write_text("{ s: 'x' }")
    app = tmp_path / "repo"
    (app / "vendor").mkdir(parents=True)
    os.symlink(tmp_path / "secret.libsonnet", app / "vendor" / "s.libsonnet")
    (app / "main.jsonnet").write_text("local s = import 's.libsonnet';\n[s]\n")
    with pytest.raises(RenderError, match=r"s.libsonnet: symlink points outside|import 's.libsonnet' resolves outside"):
        render_source(app, RenderOptions(jsonnet_paths=("vendor",), source_root=str(app)))
