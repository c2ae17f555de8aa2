"""[retention] days: a live run prunes raw events past it as soon as it starts, keeps totals."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time

from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.run.live import run_live
from feeds.model import DAY_MS
from feeds.store import Store
from tests.helpers.factories import make_liq


def rows(db, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


async def test_live_run_prunes_events_past_retention_at_start_and_keeps_buckets(tmp_path):
    db, cfg = tmp_path / "r.db", tmp_path / "liqbot.toml"
    cfg.write_text("[retention]\ndays = 2\n")
    now = int(time.time() * 1000)
    store = Store(db)
    store.insert_liquidations([make_liq(ts_exchange_ms=now - 3 * DAY_MS + i, ts_recv_ms=now)
                               for i in range(30)])  # past retention
    store.insert_liquidations([make_liq(ts_exchange_ms=now - DAY_MS + i, ts_recv_ms=now)
                               for i in range(20)])  # inside it
    store.close()
    minutes = rows(db, "SELECT count(*) FROM buckets_1m")
    settings = load_settings(cfg, environ={}, overrides={"db": str(db)})
    stop = asyncio.Event()
    run = asyncio.create_task(run_live(settings, stop=stop, feeds=[], services=[],
                                       notifiers={"console": ConsoleNotifier(io.StringIO())}))
    try:
        async with asyncio.timeout(20):
            # Polling the file: the prune job signals nothing a test could await.
            while rows(db, "SELECT count(*) FROM events") != 20:  # noqa: ASYNC110
                assert not run.done(), run.exception()
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(run, 15)
    assert rows(db, "SELECT min(ts_ms) FROM events") >= now - DAY_MS
    assert rows(db, "SELECT count(*) FROM buckets_1m") == minutes  # totals are kept for good
