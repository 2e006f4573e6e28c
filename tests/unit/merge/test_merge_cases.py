"""The data-driven tables in cases/*.yaml, run on the merge library directly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tether.sandbox.merge import ApplyConflictError, apply_patch, builtin_type, record_update

CASE_FILES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))
CASES = [case for path in CASE_FILES for case in yaml.safe_load(path.read_text())]


def _run(live: dict | None, operation: dict, info, now: str) -> dict:
    api_version = operation["object"]["apiVersion"]
    if operation["op"] == "update":
        new = copy.deepcopy(operation["object"])
        if live is not None and "managedFields" in live["metadata"]:
            new["metadata"]["managedFields"] = live["metadata"]["managedFields"]
        return record_update(live, new, manager=operation["manager"], api_version=api_version, type_info=info, now=now)
    return apply_patch(
        live,
        operation["object"],
        manager=operation["manager"],
        api_version=api_version,
        force=operation["op"] == "force-apply",
        type_info=info,
        now=now,
    )


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_merge_case(case: dict) -> None:
    version, kind = case["kind"]
    group, _, version = version.rpartition("/")
    info = builtin_type(group, version, kind)
    assert info is not None, f"no type info for {case['kind']}"
    live = None
    for index, operation in enumerate(case["operations"]):
        expected = operation.get("conflicts")
        if expected is None:
            live = _run(live, operation, info, f"T{index}")
            continue
        with pytest.raises(ApplyConflictError) as error:
            _run(live, operation, info, f"T{index}")
        assert [conflict.field for conflict in error.value.conflicts] == expected
    if "object" in case:
        body = copy.deepcopy(live)
        body["metadata"].pop("managedFields", None)
        assert body == case["object"]
    if "managed" in case:
        managed = {entry["manager"]: entry["fieldsV1"] for entry in live["metadata"].get("managedFields", [])}
        assert managed == case["managed"]
