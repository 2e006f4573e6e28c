from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tether.errors import UsageError
from tether.render import RenderOptions
from tether.validate import validate_source
from tether.validate.findings import Report
from tether.validate.report import render_report

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module")
def invalid_report() -> Report:
    return validate_source(
        FIXTURES / "validate/invalid", RenderOptions(), policy_file=FIXTURES / "validate/policy.yaml"
    )


def test_sarif_structure(invalid_report: Report) -> None:
    sarif = json.loads(render_report(invalid_report, "sarif"))
    assert sarif["version"] == "2.1.0" and "sarif" in sarif["$schema"]
    [run] = sarif["runs"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert run["tool"]["driver"]["name"] == "tether"
    assert len(run["results"]) == len(invalid_report.findings)
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning")
        assert result["message"]["text"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"].startswith("tests/fixtures/validate/invalid/")
        assert location["region"]["startLine"] >= 1
    replicas = next(r for r in run["results"] if "replicas" in r["message"]["text"])
    assert replicas["locations"][0]["physicalLocation"]["region"] == {"startLine": 6, "startColumn": 13}


def test_junit_parses(invalid_report: Report) -> None:
    root = ET.fromstring(render_report(invalid_report, "junit"))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert {c.get("name").rsplit("/", 1)[-1] for c in cases} == {"deploy.yaml", "more.yaml"}
    assert int(suite.get("failures")) == 2 == sum(1 for c in cases if c.find("failure") is not None)
    deploy = next(c for c in cases if c.get("name").endswith("deploy.yaml"))
    assert "spec.replicas" in deploy.find("failure").text
    assert "protocoll" in deploy.find("system-out").text  # warnings


def test_junit_for_a_valid_set() -> None:
    report = validate_source(
        FIXTURES / "render/jsonnet", RenderOptions(tla_str=(("name", "x"),), ext_str=(("env", "e"),))
    )
    root = ET.fromstring(render_report(report, "junit"))
    suite = root.find("testsuite")
    assert suite.get("failures") == "0" and len(suite.findall("testcase")) == 1


def test_json_and_text(invalid_report: Report) -> None:
    data = json.loads(render_report(invalid_report, "json"))
    assert data["valid"] is False and data["objects"] == 5 and data["kubeVersion"] == "1.32"
    assert data["errors"] == len(invalid_report.errors)
    assert {f["rule"] for f in data["findings"]} >= {
        "schema",
        "unknown-field",
        "duplicate-object",
        "unknown-kind",
        "policy",
    }
    text = render_report(invalid_report, "text")
    assert "tests/fixtures/validate/invalid/deploy.yaml:6:13 Deployment.apps web: error: " in text
    assert text.rstrip().endswith("invalid")


def test_unknown_format(invalid_report: Report) -> None:
    with pytest.raises(UsageError, match="unknown report format"):
        render_report(invalid_report, "html")
