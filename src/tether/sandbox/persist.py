"""Write-through SQLite storage of the sandbox's objects and its resourceVersion counter."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL, res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (grp, res, ns, name)
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


class Persistence:
    """One SQLite file (WAL, synchronous=NORMAL: a crash may lose the last moments, never
    corrupt). Writes are grouped into one transaction per burst (the store flushes a few
    milliseconds after a write, and on close); each commit stores the global resourceVersion
    with the objects, so a restart resumes from the highest version handed out, deleted
    objects included."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._rv = 0

    def load(self) -> tuple[int, Iterator[tuple[str, str, dict[str, Any]]]]:
        row = self._db.execute("SELECT v FROM meta WHERE k = 'rv'").fetchone()
        rv = self._rv = int(row[0]) if row else 0
        rows = self._db.execute("SELECT grp, res, body FROM objects ORDER BY grp, res, ns, name").fetchall()
        return rv, ((grp, res, json.loads(body)) for grp, res, body in rows)

    def put(self, group: str, plural: str, namespace: str, name: str, body: str, rv: int) -> None:
        self._begin()
        self._db.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)", (group, plural, namespace, name, body)
        )
        self._rv = rv

    def delete(self, group: str, plural: str, namespace: str, name: str, rv: int) -> None:
        self._begin()
        self._db.execute(
            "DELETE FROM objects WHERE grp = ? AND res = ? AND ns = ? AND name = ?", (group, plural, namespace, name)
        )
        self._rv = rv

    def _begin(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")

    def flush(self) -> None:
        """Commit the writes since the last flush, with the resourceVersion they reached."""
        if self._db.in_transaction:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(self._rv),))
            self._db.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self._db.close()
