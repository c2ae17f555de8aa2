"""One liqbot per database: an exclusive lock file beside it, held for the life of the run."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from feeds.store import StoreError


class AlreadyRunning(RuntimeError):
    """Another liqbot process holds the database lock."""


def acquire_lock(db_path: str) -> int | None:
    """Lock `<db>.lock`; the file descriptor to release, or None for an in-memory database.

    The kernel drops the lock when the process dies, even by kill -9.
    """
    if db_path == ":memory:":
        return None
    lock_path = Path(db_path).with_name(Path(db_path).name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # no such directory, read-only, full: before any data is touched
        raise StoreError(f"{db_path}: cannot create the lock file {lock_path} "
                         f"({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(
            f"another liqbot is already using {db_path} ({lock_path} is locked)") from None
    return fd


def release_lock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
