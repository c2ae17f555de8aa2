"""A live run whose database stops taking writes (issue 15 item 7): a full disk, a read-only
database. Events keep arriving from a fake Binance socket; they are held in memory, /healthz
turns 503 with SQLite's reason, the operator gets one notice, and once writes work again
every event is stored and a second notice says so. Nothing is dropped, no traceback.

The faults are made inside SQLite on the bot's own connection (max_page_count: "database or
disk is full"; query_only: "attempt to write a readonly database"), so no root or mount is
needed and the fault can be lifted again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import socket
import sqlite3
import time

import aiohttp
import pytest

import bot.run.assembly as assembly
from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.run.live import run_live
from bot.state.writer import Writer
from tests.bot.run.crash_rig import figures
from tests.helpers.fake_ws import FakeExchange, wait_until

PATH = "/market/ws/!forceOrder@arr"
FAULTS = {
    "full": ("database or disk is full", "PRAGMA max_page_count = {pages}",
             "PRAGMA max_page_count = 1073741823"),
    "readonly": ("readonly database", "PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
}


def frame(i: int, now_ms: int) -> dict:
    """One small Binance liquidation, unique by its time and quantity."""
    qty = f"{0.001 + i * 0.00001:.5f}"
    t = now_ms - 60_000 + i
    return {"e": "forceOrder", "E": t, "o": {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT",
            "f": "IOC", "q": qty, "p": "99000", "ap": "100000", "X": "FILLED", "l": qty,
            "z": qty, "T": t}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def healthz(port: int) -> tuple[int, dict]:
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status, json.loads(await resp.text())
    except aiohttp.ClientError:
        return 0, {}


def stored(db: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_failing_write_is_held_retried_said_and_nothing_is_lost(
        fault, tmp_path, monkeypatch, caplog):
    says, on, off = FAULTS[fault]
    writers: list[Writer] = []

    class Captured(Writer):
        def __init__(self, db_path: str) -> None:
            super().__init__(db_path)
            writers.append(self)

    monkeypatch.setattr(assembly, "Writer", Captured)
    caplog.set_level(logging.INFO)
    db, port, out = str(tmp_path / "live.db"), free_port(), io.StringIO()
    now = int(time.time() * 1000)
    async with FakeExchange([], path=PATH) as fake:
        settings = load_settings(None, environ={}, overrides={"db": db})
        settings = dataclasses.replace(settings, ws_urls={"binance": fake.url},
                                       venues=("binance",), funding_venues=(),
                                       health_interval_s=0.2, eval_interval_s=0.5)
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(settings, stop=stop, ops_listen=f"127.0.0.1:{port}",
                                            notifiers={"console": ConsoleNotifier(out)}))
        try:
            await fake.wait_connections(1, within_s=15)
            await wait_until(lambda: _status(port, 200), 15, 0.05)
            for i in range(10):
                await fake.push(frame(i, now))
            await wait_until(lambda: stored(db) == 10, 10, 0.05)
            writer = writers[0]
            pages = await writer.run(lambda: writer.store.database.conn.execute(
                "PRAGMA page_count").fetchone()[0])
            await writer.run(writer.store.database.conn.execute, on.format(pages=pages))
            for i in range(10, 660):  # the 650 events, during the fault
                await fake.push(frame(i, now))
            status, body = await _wait_status(port, 503)
            assert says in body["store"]["error"], body
            await wait_until(lambda: "cannot write its database" in out.getvalue(), 10, 0.05)
            held_at_worst = body["store"]["held"]
            await writer.run(writer.store.database.conn.execute, off)
            await _wait_status(port, 200, within_s=20)
            await wait_until(lambda: "writes its database again" in out.getvalue(), 10, 0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
    lost = 660 - stored(db)
    tracebacks = sum(1 for r in caplog.records if r.exc_info)
    figures(f"{fault} database during a live run", lost=lost, held_at_worst=held_at_worst,
            notices=out.getvalue().count("liqbot"), tracebacks=tracebacks)
    assert lost == 0
    assert out.getvalue().count("cannot write its database") == 1
    assert out.getvalue().count("writes its database again") == 1
    assert tracebacks == 0, [r.getMessage() for r in caplog.records if r.exc_info]


async def _status(port: int, want: int) -> bool:
    return (await healthz(port))[0] == want


async def _wait_status(port: int, want: int, within_s: float = 15) -> tuple[int, dict]:
    async with asyncio.timeout(within_s):
        while True:
            status, body = await healthz(port)
            if status == want:
                return status, body
            await asyncio.sleep(0.05)
