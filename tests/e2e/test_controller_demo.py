"""``tether demo --tour`` is the CI demo check: it exits 0 only when every step of the tour held."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_tour_exits_0_and_every_step_holds() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from tether.cli.main import main; main()", "demo", "--tour"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(steps) >= 7 and all(line.startswith("[ok  ]") for line in steps), done.stdout
    assert "tour: every step held" in done.stdout
