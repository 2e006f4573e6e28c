"""Report formats: text (people), JSON (scripts), JUnit XML (CI test tabs), SARIF 2.1.0 (code scanning)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict

from tether import __version__
from tether.errors import UsageError
from tether.validate.findings import ERROR, RULES, Report

FORMATS = ("text", "json", "junit", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_text(report: Report) -> str:
    lines = [str(f) for f in report.findings]
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "valid" if report.valid else "invalid"
    lines.append(f"{report.objects} objects, {errors} error(s), {warnings} warning(s): {verdict}")
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> str:
    return (
        json.dumps(
            {
                "valid": report.valid,
                "objects": report.objects,
                "kubeVersion": report.kube_version,
                "source": report.source,
                "revision": report.revision,
                "errors": len(report.errors),
                "warnings": len(report.warnings),
                "findings": [f.as_dict() for f in report.findings],
            },
            indent=2,
        )
        + "\n"
    )


def to_junit(report: Report) -> str:
    """One test case per file (or per object without a file); a failure per error, warnings as system-out."""
    by_case: dict[str, list] = defaultdict(list)
    for finding in report.findings:
        by_case[finding.file or finding.object or "source"].append(finding)
    suites = ET.Element("testsuites", name="tether validate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"tether validate {report.source}".strip(),
        tests=str(max(len(by_case), 1)),
        failures=str(sum(1 for fs in by_case.values() if any(f.severity == ERROR for f in fs))),
        errors="0",
    )
    if not by_case:
        ET.SubElement(suite, "testcase", name="all objects", classname="tether.validate")
    for name, findings in sorted(by_case.items()):
        case = ET.SubElement(suite, "testcase", name=name, classname="tether.validate")
        errors = [f for f in findings if f.severity == ERROR]
        if errors:
            failure = ET.SubElement(case, "failure", message=errors[0].message, type=errors[0].rule)
            failure.text = "\n".join(str(f) for f in errors)
        warnings = [f for f in findings if f.severity != ERROR]
        if warnings:
            ET.SubElement(case, "system-out").text = "\n".join(str(f) for f in warnings)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def to_sarif(report: Report) -> str:
    used = sorted({f.rule for f in report.findings} | {"schema"})
    results = []
    for finding in report.findings:
        result: dict = {
            "ruleId": finding.rule,
            "ruleIndex": used.index(finding.rule),
            "level": "error" if finding.severity == ERROR else "warning",
            "message": {"text": str(finding.message) + (f" (at {finding.field})" if finding.field else "")},
        }
        if finding.file:
            region = {"startLine": finding.line or 1}
            if finding.column:
                region["startColumn"] = finding.column
            result["locations"] = [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": finding.file, "uriBaseId": "SRCROOT"},
                        "region": region,
                    }
                }
            ]
        if finding.object:
            result.setdefault("properties", {})["object"] = finding.object
        results.append(result)
    run = {
        "tool": {
            "driver": {
                "name": "tether",
                "version": __version__,
                "informationUri": "https://github.com/tether-gitops/tether",
                "rules": [{"id": rule, "shortDescription": {"text": RULES.get(rule, rule)}} for rule in used],
            }
        },
        "results": results,
        "originalUriBaseIds": {"SRCROOT": {"description": {"text": "root of the validated source"}}},
    }
    if report.revision:
        run["versionControlProvenance"] = [{"repositoryUri": report.source, "revisionId": report.revision}]
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"


def render_report(report: Report, fmt: str) -> str:
    formatters = {"text": to_text, "json": to_json, "junit": to_junit, "sarif": to_sarif}
    if fmt not in formatters:
        raise UsageError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return formatters[fmt](report)
