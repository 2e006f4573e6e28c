"""Which objects are delete hooks or Helm tests, and that a sync never runs them."""

from __future__ import annotations

import pytest

from tether.engine.hooks import HookPhase, classify
from tether.engine.lifecycle_hooks import lifecycle_phases
from tether.model import Manifest


def job(**annotations: str) -> Manifest:
    return Manifest(
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "annotations": annotations}, "spec": {}}
    )


@pytest.mark.parametrize(
    ("annotations", "phases"),
    [
        ({"helm.sh/hook": "pre-delete"}, {HookPhase.PRE_DELETE}),
        ({"helm.sh/hook": "post-delete"}, {HookPhase.POST_DELETE}),
        ({"helm.sh/hook": "pre-delete, post-delete"}, {HookPhase.PRE_DELETE, HookPhase.POST_DELETE}),
        ({"helm.sh/hook": "test"}, {HookPhase.TEST}),
        ({"helm.sh/hook": "test-success"}, {HookPhase.TEST}),
        ({"helm.sh/hook": "pre-install,post-delete"}, {HookPhase.POST_DELETE}),
        ({"argocd.argoproj.io/hook": "PostDelete"}, {HookPhase.POST_DELETE}),
        ({"argocd.argoproj.io/hook": "PreDelete"}, {HookPhase.PRE_DELETE}),
        # Argo CD's annotation wins over Helm's, as for sync hooks
        ({"argocd.argoproj.io/hook": "PostSync", "helm.sh/hook": "pre-delete"}, set()),
        ({"helm.sh/hook": "pre-install"}, set()),
        ({}, set()),
    ],
)
def test_lifecycle_phases(annotations: dict[str, str], phases: set[HookPhase]) -> None:
    assert set(lifecycle_phases(job(**annotations))[0]) == phases


@pytest.mark.parametrize(
    "annotations",
    [
        {"argocd.argoproj.io/hook": "PreDelete"},
        {"argocd.argoproj.io/hook": "PostDelete"},
        {"helm.sh/hook": "pre-delete"},
        {"helm.sh/hook": "post-delete"},
        {"helm.sh/hook": "test"},
    ],
)
def test_a_sync_never_runs_delete_hooks_or_tests(annotations: dict[str, str]) -> None:
    for install in (True, False):
        phase, origin, why_not = classify(job(**annotations).obj, install=install)
        assert phase is None and origin and why_not
