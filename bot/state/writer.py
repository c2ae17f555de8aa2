"""The writer thread: the one thread every SQLite call of a running bot goes through."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot.state.schema import migrate_store
from feeds.store import Store, StoreError

T = TypeVar("T")


class Writer:
    """Owns the Store on one dedicated thread: every SQLite call runs there.

    SQLite connections are bound to their thread, and a write must never stall the
    event loop that also carries the websockets (RELIABILITY.md item 7).
    """

    def __init__(self, db_path: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liqbot-writer")
        self.store: Store = self._pool.submit(_open, db_path).result()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on the writer thread; a failing write is a StoreError.

        The transaction it ran in is rolled back, so nothing stored before is lost; the
        caller decides (a replay stops with one line: "database or disk is full").
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn, args, kwargs)

    def _call(self, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.store.path}: {exc}") from exc

    def close(self) -> None:
        self._pool.submit(self.store.close).result()
        self._pool.shutdown(wait=True)


def _open(db_path: str) -> Store:
    """The bot's database: market tables (Store) and chat tables (bot/state), both migrated."""
    store = Store(db_path)
    try:
        # Done here, on the writer thread: bot/state classes built elsewhere (on the event
        # loop, to be run here) then find it done and never touch the connection there.
        migrate_store(store)
    except BaseException:
        store.close()
        raise
    return store
