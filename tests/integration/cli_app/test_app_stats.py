"""``tether app stats`` from status.history (no controller): an Application whose status the test writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cli_app_helpers import sha, tether, write_status


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_stats_from_the_history(installed, kc, sandbox_namespace) -> None:
    ns = sandbox_namespace
    created = tether("app", "create", "web", "-n", ns, "--url", "https://git.example.com/apps.git", *kc)
    assert created.returncode == 0, created.stderr
    empty = tether("app", "stats", "web", "-n", ns, *kc)
    assert empty.returncode == 0, empty.stderr
    assert "deployments          0 (0 applied)" in empty.stdout and "no deployments yet" in empty.stdout

    now = datetime.now(UTC).replace(microsecond=0)
    deployed = [now - timedelta(days=4), now - timedelta(days=2), now - timedelta(hours=1)]
    leads = [timedelta(minutes=1), timedelta(hours=1), timedelta(minutes=5)]  # oldest first
    history = [
        {"revision": sha(n + 1), "result": "Succeeded", "committedAt": stamp(at - lead), "deployedAt": stamp(at)}
        for n, (at, lead) in enumerate(zip(deployed, leads, strict=True))
    ]
    history.append({"revision": sha(9), "result": "Succeeded"})  # an entry without times counts, without a lead
    write_status(
        installed.kubeconfig,
        "web",
        ns,
        {
            "history": list(reversed(history[:3])) + history[3:],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "HealthDegraded",
                    "message": "0/2 ready",
                    "lastTransitionTime": stamp(now - timedelta(minutes=10)),
                }
            ],
        },
    )

    text = tether("app", "stats", "web", "-n", ns, *kc)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert out.startswith(f"{ns}/web (from status.history)\n")
    assert f"deployments          4 (4 applied), 1 a day since {stamp(deployed[0])}" in out
    assert "lead time            median 5m, p90 49m, max 1h (3 deployments)" in out
    assert "change failure rate  not recorded here (use --controller URL)" in out
    assert "time to restore      not recorded here (use --controller URL)" in out
    assert f"ready now            False (HealthDegraded), failing since {stamp(now - timedelta(minutes=10))}" in out

    as_json = tether("app", "stats", "web", "-n", ns, "-o", "json", *kc)
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["deployments"] == 4 and figures["failed"] is None and figures["time_to_restore"] is None
    assert figures["lead_time"] == {
        "count": 3,
        "mean": (60 + 3600 + 300) / 3,
        "median": 300.0,
        "p90": 300 + 0.8 * 3300,
        "max": 3600.0,
    }

    # a Failed entry (the history's schema has them) makes the failure rate computable
    write_status(installed.kubeconfig, "web", ns, {"history": [{"revision": sha(10), "result": "Failed"}, *history]})
    figures = json.loads(tether("app", "stats", "web", "-n", ns, "-o", "json", *kc).stdout)
    assert (figures["succeeded"], figures["failed"], figures["change_failure_rate"]) == (4, 1, 0.2)

    missing = tether("app", "stats", "nope", "-n", ns, *kc)
    assert missing.returncode == 2 and "nope" in missing.stderr
