"""Every bad input gives a RenderError that names the file, and nothing is returned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tether.errors import RenderError
from tether.render import RenderOptions, render_source

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n"


def write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(RenderError, match=r"^b.yaml:5:1: invalid YAML"):
        render_source(tmp_path, RenderOptions())


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    write(tmp_path, "x.json", '{\n  "apiVersion": "v1",\n  "kind": }\n')
    with pytest.raises(RenderError, match=r"^x.json:3:11: invalid JSON"):
        render_source(tmp_path, RenderOptions())


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "bomb.yaml", BOMB)
    with pytest.raises(RenderError, match=r"^bomb.yaml:1: YAML aliases expand to more than"):
        render_source(tmp_path, RenderOptions())


def test_small_aliases_are_fine(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: &l {a: b}\n  annotations: *l\n",
    )
    result = render_source(tmp_path, RenderOptions())
    # the alias is a copy: labels added to one do not appear in the other
    assert result.manifests[0].obj["metadata"]["annotations"] == {"a": "b"}


def test_timestamps_stay_strings(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  day: 2024-01-31\n")
    assert render_source(tmp_path, RenderOptions()).manifests[0].obj["data"]["day"] == "2024-01-31"


def test_non_utf8_bytes(tmp_path: Path) -> None:
    write(tmp_path, "latin1.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf" + b"\xe9\n")
    with pytest.raises(RenderError, match=r"^latin1.yaml:4:12: not valid UTF-8 \(byte 0xe9\)"):
        render_source(tmp_path, RenderOptions())


def test_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:  # sparse: 100 MB on paper, nothing on disk
        handle.truncate(100 * 1024 * 1024)
    with pytest.raises(RenderError, match=r"^huge.yaml: file is 104857600 bytes, over the limit"):
        render_source(tmp_path, RenderOptions())


def test_symlink_out_of_the_tree(tmp_path: Path) -> None:
    outside = write(tmp_path, "outside/secret.yaml", GOOD)
    app = tmp_path / "app"
    write(app, "a.yaml", GOOD)
    os.symlink(outside, app / "link.yaml")
    with pytest.raises(RenderError, match=r"^link.yaml: symlink points outside the source tree"):
        render_source(app, RenderOptions())


def test_symlinked_directory_out_of_the_tree_refused_for_kustomize(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "cm.yaml", GOOD)
    app = tmp_path / "app"
    write(app, "kustomization.yaml", "resources: [stolen/cm.yaml]\n")
    os.symlink(outside, app / "stolen")
    with pytest.raises(RenderError, match=r"^stolen: symlink points outside"):
        render_source(app, RenderOptions())


def test_symlink_inside_the_tree_is_fine(tmp_path: Path) -> None:
    write(tmp_path, "real/a.yaml", GOOD)
    os.symlink("real/a.yaml", tmp_path / "b.yml")
    result = render_source(tmp_path, RenderOptions())
    assert [m.source.file for m in result.manifests] == ["b.yml", "real/a.yaml"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- just\n- a list\n", r"expected a Kubernetes object \(a mapping\), got list"),
        ("kind: ConfigMap\nmetadata: {name: x}\n", "object has no apiVersion"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "ConfigMap has no metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: [a]}\n", "metadata.labels must be a mapping"),
    ],
)
def test_not_an_object(tmp_path: Path, content: str, message: str) -> None:
    write(tmp_path, "x.yaml", content)
    with pytest.raises(RenderError, match=rf"^x.yaml:1: {message}"):
        render_source(tmp_path, RenderOptions())


def test_list_kind_is_expanded(tmp_path: Path) -> None:
    write(
        tmp_path,
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- "
        + GOOD.replace("\n", "\n  ").rstrip()
        + "\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n",
    )
    result = render_source(tmp_path, RenderOptions())
    assert [m.obj["kind"] for m in result.manifests] == ["ConfigMap", "Secret"]


def test_unknown_renderer(tmp_path: Path) -> None:
    from tether.errors import UsageError

    with pytest.raises(UsageError, match="unknown renderer"):
        render_source(tmp_path, RenderOptions(renderer="ksonnet"))


def test_missing_path(tmp_path: Path) -> None:
    from tether.source import PathNotFound

    with pytest.raises(PathNotFound, match="missing: no such file or directory"):
        render_source(tmp_path / "missing", RenderOptions())


@pytest.mark.parametrize("where", ["file", "directory"])
def test_symlink_loop_in_the_tree_is_a_render_error(tmp_path: Path, where: str) -> None:
    write(tmp_path, "a.yaml", GOOD)
    sub = tmp_path / "sub"
    sub.mkdir()
    names = ("x.yaml", "y.yaml") if where == "file" else ("x", "y")
    os.symlink(names[1], sub / names[0])
    os.symlink(names[0], sub / names[1])
    with pytest.raises(RenderError, match=r"^sub/x(\.yaml)?: symlink loop"):
        render_source(tmp_path, RenderOptions(source_root=str(tmp_path)))


def test_symlink_loop_in_a_kustomization_is_a_render_error(tmp_path: Path) -> None:
    write(tmp_path, "kustomization.yaml", "resources: [cm.yaml]\n")
    write(tmp_path, "cm.yaml", GOOD)
    os.symlink("self.yaml", tmp_path / "self.yaml")
    with pytest.raises(RenderError, match=r"^self.yaml: symlink loop"):
        render_source(tmp_path, RenderOptions(source_root=str(tmp_path)))


def test_path_itself_a_symlink_loop(tmp_path: Path) -> None:
    from tether.errors import SourceError

    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(SourceError, match=r"loop: a symlink loop or a symlink to nothing"):
        render_source(tmp_path / "loop", RenderOptions())


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, "dup.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n")
    with pytest.raises(RenderError, match=r"^dup.yaml:5:3: invalid YAML: duplicate key 'name' \(first at line 4\)"):
        render_source(tmp_path, RenderOptions())


def test_merge_keys_may_override(tmp_path: Path) -> None:
    write(
        tmp_path,
        "merge.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  <<: {x: '1', y: '2'}\n  y: '3'\n",
    )
    assert render_source(tmp_path, RenderOptions()).manifests[0].obj["data"] == {"x": "1", "y": "3"}
