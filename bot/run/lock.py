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
    lock_path = lock_file(db_path)
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


def lock_file(db_path: str | Path) -> Path:
    return Path(db_path).with_name(Path(db_path).name + ".lock")


def held(db_path: str | Path) -> bool:
    """Does a live process hold the database lock (is a liqbot running on it)?

    Read from /proc/locks, so asking never takes the lock (a bot starting at that moment
    would be refused); where that file is missing, a shared lock is tried and let go.
    """
    path = lock_file(db_path)
    try:
        st = os.stat(path)
    except OSError:
        return False  # never started here (or the folder is gone)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            return any(f.split()[1:2] == ["FLOCK"] and dev in f.split() for f in locks)
    except OSError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing lets go of the shared lock, if it was taken
    return False
