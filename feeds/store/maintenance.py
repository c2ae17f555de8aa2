"""Read-only work on a database file a running liqbot may hold open: copies and checks.

Everything here opens its own read-only connection and never takes the instance lock:
SQLite's WAL lets a reader work next to the running writer. bot/ops/backup.py keeps the
file handling around it (names, rotation, fsync, reports).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from feeds.store.db import StoreError
from feeds.store.schema import SCHEMA_KEY


@dataclass(frozen=True)
class TableSize:
    name: str
    rows: int
    bytes: int | None  # None when SQLite lacks the dbstat table


@dataclass(frozen=True)
class FileState:
    """What a check found in one file."""

    integrity: list[str]
    page_size: int
    pages: int
    free_pages: int
    schema_version: int | None
    tables: list[TableSize] = field(default_factory=list)


def read_only_uri(db_path: str | Path) -> str:
    """A URI that opens the database without ever writing to it.

    `mode=ro` sees the live bot's newest commits, but SQLite must be able to create the
    `-shm` file when none exists. With no `-wal` beside the file no writer has it open,
    so on a read-only directory (a `:ro` container mount) `immutable=1` is exact.
    """
    path = Path(db_path).resolve()
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    if not wal.exists() and not shm.exists() and not os.access(path.parent, os.W_OK):
        return f"file:{path}?immutable=1"
    return f"file:{path}?mode=ro"


def _open_ro(db_path: str | Path) -> sqlite3.Connection:
    # Read-only: neither a bug here nor a stray PRAGMA can ever write to the live database.
    conn = sqlite3.connect(read_only_uri(db_path), uri=True, timeout=30.0)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def copy_database(db_path: str | Path, target: Path, *, verify: bool) -> str:
    """Copy the database into the new file `target`; its integrity_check verdict.

    One backup step copies everything inside a single read transaction: a consistent
    snapshot of the moment it began, and the writer is never blocked. (Stepping in small
    chunks would restart from scratch whenever the bot commits, forever on a busy feed.)
    Returns "ok", the first problem found, or "not checked". StoreError when it fails.
    """
    try:
        src = _open_ro(db_path)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst, pages=-1)
                # The copy is a single file: no -wal beside it to lose when it is moved.
                dst.execute("PRAGMA journal_mode = DELETE")
                return _integrity(dst)[0] if verify else "not checked"
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise StoreError(str(exc)) from None


def inspect_file(db_path: str | Path, *, sizes: bool = True) -> FileState:
    """Run integrity_check and count rows (and bytes) per table, read-only.

    StoreError when the file is not a readable SQLite database at all.
    """
    try:
        conn = _open_ro(db_path)
        try:
            integrity = _integrity(conn)
            page_size, pages, free = (int(conn.execute(f"PRAGMA {p}").fetchone()[0])
                                      for p in ("page_size", "page_count", "freelist_count"))
            version = _schema_version(conn)
            if isinstance(version, str):  # damage integrity_check cannot see: say it
                integrity = [p for p in integrity if p != "ok"] + [
                    f"meta {SCHEMA_KEY} is {version[:20]!r}, not a schema version"]
                version = None
            try:
                tables = _tables(conn, sizes)
            except sqlite3.DatabaseError as exc:  # a damaged table: integrity says where
                integrity = [*integrity, f"cannot count rows: {exc}"]
                tables = []
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(str(exc)) from None
    return FileState(integrity, page_size, pages, free, version, tables)


def _integrity(conn: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]


def _schema_version(conn: sqlite3.Connection) -> int | str | None:
    """The market schema version; the stored text when it is not a number."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (SCHEMA_KEY,)).fetchone()
    except sqlite3.OperationalError:
        return None  # not a liqbot database, but still worth checking
    if row is None:
        return None
    try:
        return int(row[0])
    except (TypeError, ValueError):
        return str(row[0])


def _tables(conn: sqlite3.Connection, sizes: bool) -> list[TableSize]:
    # sqlite-utils reads the schema for us; imported here so only `db check` pays for it.
    import sqlite_utils

    tables = sqlite_utils.Database(conn).tables
    per_table: dict[str, int] | None = None
    if sizes:
        try:
            # dbstat names indexes separately; charge each index to its table.
            per_table = {}
            for tbl, size in conn.execute(
                    "SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat s "
                    "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1"):
                per_table[tbl] = int(size)
        except sqlite3.OperationalError:
            per_table = None  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
    return [TableSize(t.name, t.count, None if per_table is None else per_table.get(t.name, 0))
            for t in sorted(tables, key=lambda t: t.name) if not t.name.startswith("sqlite_")]
