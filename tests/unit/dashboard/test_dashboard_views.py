"""List-page rows, filters, pages and the overview order, over plain Application objects."""

from __future__ import annotations

from typing import Any

from tether.dashboard.views import Query, overview_of, page_of, row_of


def _app(name: str, namespace: str = "shop", health: str = "Healthy", sync: str = "Synced", **status: Any) -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": {"tier": "web" if "w" in name else "db"}},
        "spec": {"source": {"url": "https://user:secret@git.example/apps.git", "path": "apps/" + name}},
        "status": {"health": {"status": health}, "sync": {"status": sync}, **status},
    }


def test_a_row_masks_credentials_in_the_source_and_reads_the_latest_deploy() -> None:
    row = row_of(
        _app(
            "web",
            history=[
                {"revision": "a" * 40, "author": "Dana", "deployedAt": "2025-06-02T00:00:00Z"},
                {"revision": "b" * 40, "author": "Bo"},
            ],
            drift=[{"object": "x"}],
        )
    )
    assert "secret" not in row.source
    assert (row.author, row.deployed_at, row.drift, row.ref) == ("Dana", "2025-06-02T00:00:00Z", 1, "default branch")


def test_filters_and_pages() -> None:
    rows = [row_of(_app(f"w{i:02d}", "a" if i % 2 else "b", "Degraded" if i == 7 else "Healthy")) for i in range(60)]
    assert [r.name for r in page_of(rows, Query(health="Degraded")).rows] == ["w07"]
    assert page_of(rows, Query(namespace="a")).total == 30
    assert page_of(rows, Query(label="tier=db")).total == 0 and page_of(rows, Query(label="tier")).total == 60
    second = page_of(rows, Query(per_page=25, page=2))  # sorted by namespace, then name
    assert (second.page, second.pages, len(second.rows), second.rows[0].name) == (2, 3, 25, "w51")
    assert page_of(rows, Query(per_page=25, page=99)).page == 3


def test_query_parameters_round_trip_and_refuse_unknown_values() -> None:
    query = Query.from_params({"q": " w1 ", "health": "Exploded", "sync": "OutOfSync", "per_page": "7", "page": "x"})
    assert (query.search, query.health, query.sync, query.per_page, query.page) == ("w1", "", "OutOfSync", 50, 1)
    assert query.params(page=2) == {"q": "w1", "sync": "OutOfSync", "page": "2"}


def test_the_overview_lists_failing_apps_worst_first() -> None:
    rows = [
        row_of(_app("ok")),
        row_of(_app("gone", health="Missing")),
        row_of(_app("bad", "z", health="Degraded")),
        row_of(_app("slow", health="Progressing")),
    ]
    overview = overview_of(rows)
    assert [r.name for r in overview.failing] == ["bad", "gone"]
    assert overview.by_health[0] == ("Degraded", 1) and overview.by_namespace[0] == ("shop", 3, 1)
