"""Which commits touch an app: its directory and what its kustomization reaches, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.delivery.inputs import WHOLE_TREE, app_inputs, touches


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "apps" / "web").mkdir(parents=True)
    (tmp_path / "apps" / "api").mkdir(parents=True)
    (tmp_path / "base" / "common").mkdir(parents=True)
    (tmp_path / "apps" / "web" / "kustomization.yaml").write_text(
        "resources: [../../base/common, deploy.yaml, https://example.com/remote.yaml]\n"
        "configMapGenerator:\n- name: c\n  files: [conf=settings/app.conf]\n"
        "patches:\n- path: patch.yaml\n"
    )
    (tmp_path / "base" / "common" / "kustomization.yaml").write_text("resources: [ns.yaml]\n")
    return tmp_path


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (["apps/web/deploy.yaml"], True),
        (["base/common/ns.yaml"], True),  # a base the overlay reaches
        (["apps/web/settings/app.conf"], True),  # a generator input
        (["apps/api/deploy.yaml"], False),  # another app
        (["base/other/x.yaml"], False),
        (["apps/webby/x.yaml"], False),  # a prefix of the name is not the directory
        ([], False),
        (None, True),  # unknown (first render, or history rewritten)
    ],
)
def test_touches(tree: Path, changed: list[str] | None, expected: bool) -> None:
    assert touches(changed, app_inputs(tree, "apps/web")) is expected


def test_unreadable_kustomization_widens_to_the_whole_tree(tree: Path) -> None:
    (tree / "apps" / "web" / "kustomization.yaml").write_text("resources: [unclosed\n")
    assert app_inputs(tree, "apps/web") == WHOLE_TREE
    assert touches(["anything/at/all.yaml"], WHOLE_TREE)


def test_values_files_count(tree: Path) -> None:
    inputs = app_inputs(tree, "apps/api", ("../../values/prod.yaml",))
    assert touches(["values/prod.yaml"], inputs)
    assert not touches(["values/dev.yaml"], inputs)
