"""The shipped examples render and validate (with the baseline policies where they apply)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.render import RenderOptions
from tether.validate import validate_source

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize(
    ("path", "options", "objects"),
    [
        ("render/guestbook", RenderOptions(app="guestbook", namespace="guestbook"), 6),
        ("render/api-kustomize/overlays/prod", RenderOptions(namespace="api"), 4),
        ("render/api-kustomize/overlays/staging", RenderOptions(namespace="api"), 3),
        ("render/web-chart", RenderOptions(values_files=("values-prod.yaml",), app="web", namespace="web"), 4),
        ("render/web-chart", RenderOptions(values_files=("values-staging.yaml",), app="web"), 3),
        ("render/api-jsonnet", RenderOptions(tla_str=(("name", "api"),), ext_str=(("env", "prod"),)), 2),
    ],
)
def test_examples_are_valid(path: str, options: RenderOptions, objects: int) -> None:
    report = validate_source(EXAMPLES / path, options)
    assert report.valid, [str(f) for f in report.findings]
    assert report.objects == objects


def test_guestbook_passes_the_baseline_policies() -> None:
    report = validate_source(
        EXAMPLES / "render/guestbook", RenderOptions(), policy_file=EXAMPLES / "policies/baseline.yaml"
    )
    assert report.findings == []


def test_baseline_policies_catch_an_unpinned_image() -> None:
    report = validate_source(
        EXAMPLES / "render/api-jsonnet",
        RenderOptions(tla_str=(("name", "api"), ("image", "nginx:latest")), ext_str=(("env", "prod"),)),
        policy_file=EXAMPLES / "policies/baseline.yaml",
    )
    assert sorted(f.policy for f in report.findings) == ["no-latest-images", "resource-limits"]
