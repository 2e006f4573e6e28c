"""tether.source sits below tether.render: importing it must not pull the render stage in."""

from __future__ import annotations

import subprocess
import sys


def test_source_does_not_import_render() -> None:
    code = "import sys, tether.source; print(sorted(m for m in sys.modules if m.startswith('tether.render')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_source_revision_is_one_type_everywhere() -> None:
    from tether.model import SourceRevision
    from tether.render import SourceRevision as FromRender

    assert FromRender is SourceRevision
