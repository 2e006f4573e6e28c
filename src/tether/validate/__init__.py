"""Validate stage: syntax, duplicates, schemas (built-in and CRD), unknown kinds, CEL policies.

    report = validate_manifests(manifests, kube_version="1.32", policies=load_policies("policy.yaml"))
    report.valid, report.findings
    validate_source(path, RenderOptions(), kube_version="1.32", policy_file=None) -> Report

``validate_source`` never raises for bad input: render and syntax errors become findings
(with file:line:column) so CI gets one report whatever went wrong; with plain YAML/JSON every
bad file is a finding of its own and the other files are still validated. Only a PATH that does
not exist raises (``tether.source.PathNotFound``, exit 2).
"""

from __future__ import annotations

from pathlib import Path

from tether.errors import RenderError, SourceError
from tether.model import Manifest, ObjectRef
from tether.render import Decryptor, RenderOptions
from tether.validate.crd import CRDLookup
from tether.validate.findings import RULES, WARNING, Finding, Report, finding_from_error
from tether.validate.names import check_names, require_valid_names
from tether.validate.policy import Policy, load_policies
from tether.validate.size import check_sizes


def _duplicates(manifests: list[Manifest]) -> list[Finding]:
    seen: dict[ObjectRef, Manifest] = {}
    found = []
    for manifest in manifests:
        ref = manifest.ref
        first = seen.setdefault(ref, manifest)
        if first is not manifest:
            found.append(Finding.at(manifest, "duplicate-object", f"duplicate of {first.where()}"))
    return found


def _scope(manifests: list[Manifest]) -> list[Finding]:
    from tether.render.scope import ScopeResolver

    resolver = ScopeResolver(m.obj for m in manifests)
    return [
        Finding.at(
            m,
            "cluster-scoped-namespace",
            f"{m.obj.get('kind')} is cluster-scoped; metadata.namespace {m.ref.namespace!r} has no effect",
            severity=WARNING,
            field=".metadata.namespace",
        )
        for m in manifests
        if m.ref.namespace and not resolver.namespaced(m.obj)
    ]


def _locate_fields(findings: list[Finding], manifests_by_object: dict[str, Manifest], root: Path) -> None:
    """Point field findings at the line of the field itself when the object came straight from a file."""
    from tether.render.files import locate_path

    texts: dict[str, str | None] = {}
    for finding in findings:
        manifest = manifests_by_object.get(finding.object)
        if not finding.field or manifest is None or manifest.source is None:
            continue
        file = manifest.source.file
        if file not in texts:
            path = root / file
            try:
                texts[file] = path.read_text(encoding="utf-8") if path.stat().st_size < 8 * 1024 * 1024 else None
            except (OSError, UnicodeDecodeError):
                texts[file] = None
        text = texts[file]
        if text is None:
            continue
        parts: list[str | int] = []
        for token in finding.field.replace("[", ".[").split("."):
            if token:
                parts.append(int(token[1:-1]) if token.startswith("[") else token)
        document = manifest.source.document if not file.endswith(".json") else 0
        where = locate_path(text, document, parts)
        if where:
            finding.line, finding.column = where


def validate_manifests(
    manifests: list[Manifest],
    *,
    kube_version: str = "1.32",
    policies: list[Policy] | None = None,
    crd_lookup: CRDLookup | None = None,
    root: Path | None = None,
) -> Report:
    """Validate rendered objects. ``root``: when the objects came from plain files under it, field errors
    get the line of the field."""
    from tether.validate.policy import evaluate
    from tether.validate.schema import SchemaValidator

    report = Report(objects=len(manifests), kube_version=kube_version)
    report.findings.extend(check_names(manifests))
    report.findings.extend(check_sizes(manifests))
    report.findings.extend(_duplicates(manifests))
    report.findings.extend(_scope(manifests))
    schema = SchemaValidator(kube_version, manifests, crd_lookup)
    for manifest in manifests:
        report.findings.extend(schema.validate(manifest))
        if policies:
            report.findings.extend(evaluate(policies, manifest))
    if root is not None:
        _locate_fields(report.findings, {str(m.ref): m for m in manifests}, root)
    return report


def validate_source(
    path_or_url: str | Path,
    options: RenderOptions | None = None,
    *,
    kube_version: str = "1.32",
    policy_file: str | Path | None = None,
    crd_lookup: CRDLookup | None = None,
    decryptor: Decryptor | None = None,
    ignore_missing_schemas: bool = False,
) -> Report:
    """Render then validate; rendering problems become findings instead of exceptions.

    ``ignore_missing_schemas`` (kubeconform's flag): a kind with no schema anywhere is a warning."""
    from tether.render import render_source
    from tether.source import PathNotFound

    policies = load_policies(policy_file) if policy_file else None
    render_errors: list[Finding] = []
    try:
        result = render_source(
            path_or_url,
            options or RenderOptions(),
            decryptor,
            on_error=lambda error: render_errors.append(finding_from_error(str(error))),
        )
    except PathNotFound:
        raise  # a PATH that does not exist is a usage error, not an invalid source
    except (RenderError, SourceError) as error:
        report = Report(kube_version=kube_version, source=str(path_or_url))
        report.findings.extend(render_errors)
        report.findings.append(finding_from_error(str(error)))
        return report
    root = result.source_root or result.root
    report = validate_manifests(
        result.manifests,
        kube_version=kube_version,
        policies=policies,
        crd_lookup=crd_lookup,
        root=root if result.renderer == "yaml" else None,
    )
    report.findings[:0] = render_errors
    if ignore_missing_schemas:
        for finding in report.findings:
            if finding.rule == "unknown-kind":
                finding.severity = WARNING
    report.findings.extend(
        Finding("no-objects" if warning.startswith("0 objects") else "render-warning", warning, severity=WARNING)
        for warning in result.warnings
    )
    report.source = result.revision.url if result.revision else str(path_or_url)
    report.revision = result.revision.commit if result.revision else ""
    return report


__all__ = [
    "RULES",
    "Finding",
    "Policy",
    "Report",
    "check_names",
    "check_sizes",
    "load_policies",
    "require_valid_names",
    "validate_manifests",
    "validate_source",
]
