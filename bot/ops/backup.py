"""Online backups and a health check of the database file, safe while liqbot runs.

Both open the database read-only and never take the instance lock: SQLite's WAL lets a
reader work next to the running writer. A backup counts only once it restores
(RELIABILITY.md item 10), so the copy is integrity-checked before it gets its final name.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feeds.store import StoreError
from feeds.store.maintenance import TableSize, copy_database, inspect_file, read_only_uri

logger = logging.getLogger(__name__)
__all__ = ["BackupError", "BackupResult", "CheckReport", "TableSize", "backup", "db_check",
           "read_only_uri", "render_check"]
PREFIX = "liqbot-"  # backups written into a directory: liqbot-20260417T140000Z.db


class BackupError(RuntimeError):
    """The backup or check could not be made; the message says why."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    seconds: float
    integrity: str  # "ok", or the first problem integrity_check found
    removed: tuple[Path, ...] = ()  # old backups dropped by `keep`
    cleaned: tuple[Path, ...] = ()  # leftovers of killed backups (.partial, -journal)


@dataclass(frozen=True)
class CheckReport:
    path: str
    ok: bool
    integrity: list[str]
    page_size: int
    pages: int
    free_pages: int
    file_bytes: int
    wal_bytes: int
    schema_version: int | None
    tables: list[TableSize] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["tables"] = [t.__dict__ for t in self.tables]
        return out


def _require_file(db_path: str | Path) -> None:
    if not Path(db_path).is_file():
        raise BackupError(f"{db_path}: no such database file")


def _target(dest: str | Path, now: datetime) -> Path:
    if str(dest).endswith(os.sep):  # "backups/": a directory, made on first use
        Path(dest).mkdir(mode=0o750, parents=True, exist_ok=True)
    dest = Path(dest)
    if dest.is_dir():
        return dest / f"{PREFIX}{now:%Y%m%dT%H%M%SZ}.db"
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent}: no such directory")
    return dest


def backup(db_path: str | Path, dest: str | Path, *, keep: int | None = None,
           verify: bool = True) -> BackupResult:
    """Copy the live database to `dest` (a file, or a directory for a timestamped name).

    The copy is one consistent snapshot and never blocks the writer
    (feeds.store.maintenance.copy_database); it gets its final name only once checked.
    """
    started = time.monotonic()
    if keep is not None and keep < 1:  # the new backup counts: 0 would delete it at once
        raise BackupError(f"--keep must be at least 1 (the new backup counts), got {keep}")
    target = _target(dest, datetime.now(UTC))
    if target.resolve() == Path(db_path).resolve():
        raise BackupError(f"{target}: refusing to back up a database onto itself")
    tmp = target.with_name(target.name + ".partial")
    _require_file(db_path)
    cleaned = _sweep_partials(target)
    with _claimed(tmp):
        try:
            integrity = copy_database(db_path, tmp, verify=verify)
        except StoreError as exc:
            _remove_partial(tmp)
            raise BackupError(f"backup of {db_path} failed: {exc}") from None
        if integrity not in ("ok", "not checked"):
            _remove_partial(tmp)
            raise BackupError(f"backup copy failed integrity_check: {integrity}")
        _fsync(tmp)
        os.replace(tmp, target)
    removed = _rotate(target.parent, keep) if keep else ()
    result = BackupResult(target, target.stat().st_size, time.monotonic() - started,
                          integrity, removed, cleaned)
    logger.info("backup: %s -> %s (%d bytes, %.1fs, integrity %s)", db_path, target,
                result.bytes, result.seconds, integrity)
    return result


@contextlib.contextmanager
def _claimed(tmp: Path) -> Iterator[None]:
    """Hold an flock on the partial file while the copy runs: a sweep leaves it alone.

    The kernel drops the lock when the process dies, even by kill -9, so what a killed
    backup leaves is recognisably stale. (SQLite's own locks are fcntl locks: no clash.)
    """
    _remove_partial(tmp)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove_partial(tmp: Path) -> None:
    for path in (tmp, Path(f"{tmp}-journal")):
        path.unlink(missing_ok=True)


def _sweep_partials(target: Path) -> tuple[Path, ...]:
    """Remove what killed backups left beside `target`: unlocked `.partial` files and
    their `-journal`s. A backup still running holds its lock and is left alone."""
    found = set(target.parent.glob(f"{PREFIX}*.db.partial"))
    found |= {Path(str(j)[: -len("-journal")])
              for j in target.parent.glob(f"{PREFIX}*.db.partial-journal")}
    found.add(target.with_name(target.name + ".partial"))
    cleaned: list[Path] = []
    for tmp in sorted(found):
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except FileNotFoundError:
            fd = None  # only a -journal is left
        except OSError:
            continue
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # another backup is writing it right now
        finally:
            if fd is not None:
                os.close(fd)
        leftovers = [p for p in (tmp, Path(f"{tmp}-journal")) if p.exists()]
        _remove_partial(tmp)
        cleaned += leftovers
    if cleaned:
        logger.info("backup: removed %d leftover(s) of killed backups: %s", len(cleaned),
                    ", ".join(p.name for p in cleaned))
    return tuple(cleaned)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rotate(folder: Path, keep: int) -> tuple[Path, ...]:
    """Keep the newest `keep` timestamped backups in `folder`; names sort by time."""
    mine = sorted(p for p in folder.glob(f"{PREFIX}*.db") if p.is_file())
    old = tuple(mine[:-keep])
    for p in old:
        p.unlink()
    return old


def db_check(db_path: str | Path, *, sizes: bool = True) -> CheckReport:
    """Run integrity_check and count rows and bytes per table, read-only."""
    _require_file(db_path)
    try:
        state = inspect_file(db_path, sizes=sizes)
    except StoreError as exc:
        raise BackupError(f"{db_path}: not a readable SQLite database ({exc})") from None
    wal = Path(f"{db_path}-wal")
    return CheckReport(str(db_path), state.integrity == ["ok"], state.integrity,
                       state.page_size, state.pages, state.free_pages,
                       Path(db_path).stat().st_size, wal.stat().st_size if wal.exists() else 0,
                       state.schema_version, state.tables)


def render_check(report: CheckReport) -> str:
    """A few lines for the terminal: verdict, file sizes, then one line per table."""
    mib = 1024 * 1024
    lines = [f"{report.path}: integrity {'ok' if report.ok else 'FAILED'}"]
    lines += [f"  {problem}" for problem in report.integrity if not report.ok]
    lines.append(f"schema v{report.schema_version}, {report.pages} pages of "
                 f"{report.page_size} B ({report.free_pages} free), file "
                 f"{report.file_bytes / mib:.1f} MiB, wal {report.wal_bytes / mib:.1f} MiB")
    width = max((len(t.name) for t in report.tables), default=5)
    lines.append(f"{'table':<{width}}  {'rows':>12}  {'MiB':>9}")
    for t in sorted(report.tables, key=lambda t: -(t.bytes or 0)):
        size = "?" if t.bytes is None else f"{t.bytes / mib:.2f}"
        lines.append(f"{t.name:<{width}}  {t.rows:>12,}  {size:>9}")
    return "\n".join(lines)
