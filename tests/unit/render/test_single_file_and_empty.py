"""PATH may name one file; a source that renders nothing says so instead of passing silently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tether.errors import RenderError
from tether.render import RenderOptions, render_source

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def test_single_yaml_file_renders_only_that_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(CM.format(name="a"))
    (tmp_path / "b.yaml").write_text(CM.format(name="b") + "---\n" + CM.format(name="b2"))
    result = render_source(tmp_path / "b.yaml", RenderOptions(source_root=str(tmp_path), namespace="ns"))
    assert [(m.obj["metadata"]["name"], m.source.file, m.source.line) for m in result.manifests] == [
        ("b", "b.yaml", 1),
        ("b2", "b.yaml", 6),
    ]
    assert result.manifests[0].obj["metadata"]["namespace"] == "ns"
    assert result.renderer == "yaml" and result.warnings == []


def test_single_file_inside_a_kustomize_directory_is_read_as_yaml(fixture_copy) -> None:
    base = fixture_copy("kustomize") / "base"
    result = render_source(base / "service.yaml", RenderOptions())
    assert [m.obj["kind"] for m in result.manifests] == ["Service"]


def test_single_json_and_jsonnet_files(fixture_copy, tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}')
    assert render_source(tmp_path / "x.json", RenderOptions()).manifests[0].obj["metadata"]["name"] == "j"
    app = fixture_copy("jsonnet")
    result = render_source(app / "main.jsonnet", RenderOptions(tla_str=(("name", "x"),), ext_str=(("env", "e"),)))
    assert result.renderer == "jsonnet" and result.manifests


def test_kustomization_file_asks_for_its_directory(fixture_copy) -> None:
    base = fixture_copy("kustomize") / "base"
    with pytest.raises(
        RenderError,
        match=r"kustomization.yaml: this file belongs to a kustomization; pass its "
        r"directory",
    ):
        render_source(base / "kustomization.yaml", RenderOptions())


def test_single_file_symlinked_out_of_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(CM.format(name="o"))
    app = tmp_path / "app"
    app.mkdir()
    os.symlink(outside, app / "link.yaml")
    with pytest.raises(RenderError, match=r"^link.yaml: symlink points outside the source tree"):
        render_source(app / "link.yaml", RenderOptions(source_root=str(app)))


def test_single_file_from_git(tmp_path: Path) -> None:
    import subprocess

    repo = tmp_path / "repo"
    (repo / "apps").mkdir(parents=True)
    (repo / "apps" / "cm.yaml").write_text(CM.format(name="from-git"))
    (repo / "apps" / "other.yaml").write_text(CM.format(name="other"))
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    result = render_source(f"{repo}//apps/cm.yaml?ref=main", RenderOptions(cache_dir=str(tmp_path / "cache")))
    assert [m.obj["metadata"]["name"] for m in result.manifests] == ["from-git"]
    assert result.manifests[0].source.file == "apps/cm.yaml"


@pytest.mark.parametrize("content", [None, "README.md", "empty.yaml"])
def test_nothing_rendered_is_a_warning(tmp_path: Path, content: str | None) -> None:
    app = tmp_path / "app"
    app.mkdir()
    if content:
        (app / content).write_text("# nothing\n" if content.endswith(".yaml") else "hello\n")
    result = render_source(app, RenderOptions(source_root=str(app)))
    assert result.manifests == []
    assert result.warnings == [f"0 objects rendered from {app}"]


def test_objects_rendered_means_no_warning(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(CM.format(name="a"))
    assert render_source(tmp_path, RenderOptions(source_root=str(tmp_path))).warnings == []


def test_errors_can_be_collected_per_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n")
    (tmp_path / "b.yaml").write_text(CM.format(name="b"))
    (tmp_path / "c.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: ${NOPE}\n")
    errors: list[RenderError] = []
    result = render_source(tmp_path, RenderOptions(source_root=str(tmp_path), substitute=True), on_error=errors.append)
    assert [m.obj["metadata"]["name"] for m in result.manifests] == ["b"]
    assert [str(e).split(":")[0] for e in errors] == ["a.yaml", "c.yaml"]
    with pytest.raises(RenderError, match=r"^a.yaml:5:1"):
        render_source(tmp_path, RenderOptions(source_root=str(tmp_path)))
