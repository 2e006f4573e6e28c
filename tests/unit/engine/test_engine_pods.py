"""What a workload's Pods say when it is not healthy."""

from __future__ import annotations

import pytest

from tether.engine.pods import pod_problem, selector_text


def pod(name: str, *, waiting: str = "", terminated: int | None = None, unschedulable: bool = False) -> dict:
    state: dict = {}
    if waiting:
        state["waiting"] = {"reason": waiting, "message": f"{waiting} details"}
    if terminated is not None:
        state["terminated"] = {"exitCode": terminated, "reason": "Error"}
    conditions = (
        [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]
        if unschedulable
        else []
    )
    return {
        "metadata": {"name": name},
        "status": {"containerStatuses": [{"name": "app", "state": state}] if state else [], "conditions": conditions},
    }


@pytest.mark.parametrize(
    ("pods", "reason", "text"),
    [
        (
            [pod("a", waiting="ImagePullBackOff")],
            "ImagePullBackOff",
            "pod a: container app waiting: ImagePullBackOff: ImagePullBackOff details",
        ),
        (
            [pod("a", waiting="ContainerCreating"), pod("b", waiting="CrashLoopBackOff")],
            "CrashLoopBackOff",
            "pod b: container app waiting: CrashLoopBackOff: CrashLoopBackOff details",
        ),
        ([pod("a", terminated=3)], "Error", "pod a: container app exited 3 (Error)"),
        ([pod("a", unschedulable=True)], "Unschedulable", "pod a: not scheduled: 0/1 nodes are available"),
    ],
)
def test_the_first_problem_is_named(pods: list[dict], reason: str, text: str) -> None:
    assert pod_problem(pods) == (reason, text)


def test_starting_or_running_pods_are_no_problem() -> None:
    assert pod_problem([pod("a", waiting="ContainerCreating"), pod("b"), pod("c", terminated=0)]) is None


def test_selector_text() -> None:
    assert selector_text({"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}}) == "a=1,b=2"
    assert selector_text({"spec": {}}) == ""
