"""Objects the API server could not store are refused with their file and size."""

from __future__ import annotations

import base64
from pathlib import Path

from tether.model import Manifest, SourceLocation
from tether.render import RenderOptions
from tether.validate import validate_manifests, validate_source
from tether.validate.size import MAX_OBJECT_BYTES, object_size


def config_map(data: dict[str, str], kind: str = "ConfigMap", field: str = "data") -> Manifest:
    return Manifest(
        {"apiVersion": "v1", "kind": kind, "metadata": {"name": "big"}, field: data}, SourceLocation("big.yaml", 1)
    )


def too_large(manifests: list[Manifest]) -> list[str]:
    report = validate_manifests(manifests)
    return [f"{f.file}: {f.message}" for f in report.findings if f.rule == "object-too-large"]


def test_object_over_one_and_a_half_mebibytes_is_refused() -> None:
    # a CRD-like object with no data limit of its own: only the storage limit applies
    widget = Manifest(
        {
            "apiVersion": "example.com/v1",
            "kind": "Blob",
            "metadata": {"name": "b"},
            "spec": {"payload": "x" * MAX_OBJECT_BYTES},
        },
        SourceLocation("blob.yaml", 1),
    )
    found = too_large([widget])
    assert len(found) == 1
    assert found[0].startswith(f"blob.yaml: the object is {object_size(widget.obj)} bytes of JSON, over the 1572864")


def test_object_just_under_the_limit_passes_the_size_check() -> None:
    widget = Manifest(
        {
            "apiVersion": "example.com/v1",
            "kind": "Blob",
            "metadata": {"name": "b"},
            "spec": {"payload": "x" * (MAX_OBJECT_BYTES - 200)},
        },
        SourceLocation("blob.yaml", 1),
    )
    assert too_large([widget]) == []


def test_config_map_data_over_one_mebibyte() -> None:
    assert too_large([config_map({"a": "x" * (1024 * 1024)})]) == [
        "big.yaml: ConfigMap data is 1048577 bytes, over the 1048576 bytes (1 MiB) the API server allows"
    ]
    assert too_large([config_map({"a": "x" * (1024 * 1024 - 1)})]) == []


def test_secret_data_is_counted_decoded() -> None:
    encoded = base64.b64encode(b"x" * (700 * 1024)).decode()  # ~933 KiB encoded, 700 KiB decoded
    assert too_large([config_map({"a": encoded}, kind="Secret")]) == []
    assert len(too_large([config_map({"a": encoded, "b": encoded}, kind="Secret")])) == 1


def test_validate_source_reports_the_file(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: {'y' * (1600 * 1024)}\n"
    )
    report = validate_source(tmp_path, RenderOptions(source_root=str(tmp_path)))
    finding = next(f for f in report.findings if f.rule == "object-too-large")
    assert finding.file == "big.yaml" and "bytes of JSON" in finding.message
    assert not report.valid
