"""Runs every benchmark in bench/ one after another (``make bench``); each prints its own figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = ("merge_bench", "sandbox_bench", "extras_bench", "render_bench", "engine_bench", "dashboard_bench")


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    failed = []
    for name in BENCHMARKS:
        print(f"== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=root).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
