"""One SQLite file and its one connection: opening, meta keys, transactions, migrations.

`Database` is the seam the two SQL packages share. The market `Store` (feeds/store) and the
chat state (bot/state) each keep their own tables and their own ordered migration list,
versioned under their own key in `meta`, and both run their statements on the same
`Database.conn`. Nothing outside feeds/store and bot/state may touch `conn`
(tests/test_architecture.py fails when something does).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# A schema step: SQL statements, or a function for what SQL alone cannot do (recompressing
# stored payloads, feeds/store/rawlog.py); either runs inside the step's transaction.
Migration = str | Callable[[sqlite3.Connection], None]

logger = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The database cannot be used as it is; the message says why and what to do."""


class Database:
    """One SQLite database file. Not thread-safe: every call comes from one thread."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL",
                 existing: bool = False) -> None:
        """`existing`: the file must be there already (read-only commands never create one)."""
        self.path = str(path)
        self._migrated: set[str] = set()
        if existing and self.path != ":memory:" and not Path(self.path).is_file():
            raise StoreError(f"{self.path}: no such database file")
        try:
            self.conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout = 5000")
            if self.path != ":memory:":
                self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute(f"PRAGMA synchronous = {synchronous}")
            self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable liqbot database ({exc})") from None

    def close(self) -> None:
        self.conn.close()

    def transaction(self) -> Transaction:
        """`with db.transaction():` — BEGIN IMMEDIATE, so the write lock is taken first."""
        return Transaction(self.conn)

    def snapshot(self) -> Transaction:
        """`with db.snapshot():` — a deferred BEGIN: the reads inside see one state."""
        return Transaction(self.conn, "BEGIN")

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def version(self, key: str) -> int:
        """The schema version stored under `key`; 0 for a part never migrated."""
        return _version(self.path, key, self.get_meta(key))

    def migrate(self, key: str, migrations: Sequence[Migration], *, what: str,
                legacy: Callable[[], int] | None = None) -> None:
        """Apply the entries of `migrations` this file lacks, each in its own transaction.

        Entry i moves the part versioned under `key` from version i to i + 1. `legacy`
        tells which version a file already holds when `key` is absent (tables created
        before the part had a key of its own); it is asked once and its answer stored.
        Repeat calls on an open Database cost nothing.
        """
        if key in self._migrated:
            return
        try:
            self._migrate(key, migrations, what, legacy)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable liqbot database ({exc})") from None
        self._migrated.add(key)

    def _migrate(self, key: str, migrations: Sequence[Migration], what: str,
                 legacy: Callable[[], int] | None) -> None:
        latest = len(migrations)
        current = self.get_meta(key)
        if current is None and legacy is not None:
            seeded = legacy()
            if seeded:
                logger.info("store %s: %s tables found at v%d", self.path, what, seeded)
                self.set_meta(key, str(seeded))
            current = str(seeded)
        version = _version(self.path, key, current)
        if version > latest:
            raise StoreError(
                f"{self.path}: {what} schema v{version} is newer than this liqbot (v{latest}); "
                "upgrade liqbot or point --db at another file"
            )
        if version < latest:  # one line, not one per step (a new file takes them all)
            logger.info("store %s: %s", self.path, f"creating the {what} schema (v{latest})"
                        if version == 0 else f"migrating the {what} schema v{version} → v{latest}")
        for target in range(version + 1, latest + 1):
            logger.debug("store %s: %s schema step v%d", self.path, what, target)
            # Nested in a caller's transaction when there is one: all of it commits or none.
            step = migrations[target - 1]
            with self.transaction():
                if callable(step):
                    step(self.conn)
                else:
                    for statement in split_sql(step):
                        self.conn.execute(statement)
                self.set_meta(key, str(target))


class Transaction:
    """BEGIN IMMEDIATE on entry unless one is open already; the outermost one commits."""

    def __init__(self, conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> None:
        self.conn = conn
        self.begin = begin
        self.outer = False

    def __enter__(self) -> None:
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute(self.begin)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if not self.outer:
            return
        if exc_type and not self.conn.in_transaction:
            return  # SQLite rolled back already (a full disk does): keep the real error
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _version(path: str, key: str, value: str | None) -> int:
    """A stored schema version; anything else is damage to report, not to migrate over."""
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        raise StoreError(f"{path}: meta {key} is {value[:20]!r}, not a schema version; "
                         "the file is damaged: restore a backup") from None


def split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    out, buf = [], []
    for line in script.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        buf.append(line)
        joined = "\n".join(buf)
        if sqlite3.complete_statement(joined):
            out.append(joined.strip())
            buf = []
    if "".join(buf).strip():
        raise StoreError("migration has an incomplete statement")
    return out
