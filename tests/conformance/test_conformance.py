"""The data-driven conformance suite: every case in cases/*.yaml against the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conformance_runner import ApiClient, Case, load_cases, run_case

CASE_FILES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))
CASES = load_cases(CASE_FILES)


def _namespace_for(case: Case, index: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", case.name.lower()).strip("-")[:40].strip("-")
    return f"c{index}-{slug}"


def test_suite_is_large_enough_and_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) >= 100
    assert len(set(names)) == len(names), "case names must be unique"


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c.source}::{c.name}" for c in CASES])
def test_conformance_case(index: int, conformance_client: ApiClient) -> None:
    case = CASES[index]
    run_case(conformance_client, case, _namespace_for(case, index))
