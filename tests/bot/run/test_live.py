"""`liqbot run` live: Binance frames from a local fake server through to a console alert."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from bot.chat.console import ConsoleNotifier
from bot.config import ConfigError, load_settings
from bot.run.live import run_live
from feeds.store import Store
from tests.helpers.cli import REPO, clean_env, liqbot_cmd
from tests.helpers.fake_ws import FakeExchange, wait_until


def squeeze_frames(now_ms: int, n: int = 40) -> list[dict]:
    """n short liquidations of ~$1.5M each within the last minute, and a few longs."""
    frames = []
    for i in range(n):
        side = "BUY" if i % 10 else "SELL"  # BUY = a short was liquidated
        qty = f"{15 + i * 0.01:.2f}"
        frames.append({"e": "forceOrder", "E": now_ms - 30_000 + i,
                       "o": {"s": "BTCUSDT", "S": side, "o": "LIMIT", "f": "IOC", "q": qty,
                             "p": "99000", "ap": "100000", "X": "FILLED", "l": qty, "z": qty,
                             "T": now_ms - 30_000 + i}})
    return frames


def stored_events(db) -> int:
    """Events in a live run's database, read on a read-only connection of the test's own."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


async def test_live_stream_to_console_alert(tmp_path):
    now = int(time.time() * 1000)
    out = io.StringIO()
    async with FakeExchange(squeeze_frames(now), path="/market/ws/!forceOrder@arr") as fake:
        settings = load_settings(None, environ={}, overrides={"db": str(tmp_path / "live.db")})
        settings = dataclasses.replace(settings, ws_urls={"binance": fake.url}, venues=("binance",),
                                       funding_venues=(), eval_interval_s=0.2,
                                       deliver_interval_s=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(settings, stop=stop,
                                            notifiers={"console": ConsoleNotifier(out)}))
        await wait_until(lambda: "liquidated in" in out.getvalue(), 15, 0.05)
        # The alert may leave before the whole burst is stored: wait for the rest.
        await wait_until(lambda: stored_events(tmp_path / "live.db") == 40, 15, 0.05)
        stop.set()
        summary = await asyncio.wait_for(task, 10)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("🚨 SHORT SQUEEZE — BTC")
    # The alert goes out when the stored frames first cross the tier (event-driven), so
    # the share is that of the frames in by then: 80-90 % shorts, not the whole burst's.
    assert lines[1].endswith("% shorts") and " liquidated in 5m, " in lines[1]
    assert "Lower bound" in out.getvalue()  # Binance is a sampled feed
    assert summary.events_new == 40
    store = Store(tmp_path / "live.db")
    try:
        assert store.count_events() == 40
        # One alert, or that alert and its escalation once the rest of the burst is in.
        sent = store.database.conn.execute("SELECT status FROM outbox").fetchall()
        assert sent and set(sent) == {("sent",)}
    finally:
        store.close()


def test_no_network_retries_and_ctrl_c_stops_cleanly(tmp_path):
    cfg = tmp_path / "liqbot.toml"
    cfg.write_text('[feeds]\nvenues = ["binance"]\nbackoff_cap_s = 0.4\n[feeds.ws_urls]\n'
                   'binance = "ws://127.0.0.1:9/market/ws/!forceOrder@arr"\n')
    proc = subprocess.Popen(liqbot_cmd("run", "--config", str(cfg), "--db", str(tmp_path / "x.db"),
                                       "-v"),
                            cwd=REPO, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while sum("connect failed" in ln for ln in lines) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
        reader.join(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(lines)
    assert proc.returncode == 0, err
    retries = [ln for ln in err.splitlines() if "binance: connect failed" in ln]
    assert len(retries) >= 4
    # -v shows every attempt; without it only the first is shown (tests/bot/cli/test_console).
    assert [" WARNING " in ln for ln in retries] == [True] + [False] * (len(retries) - 1)
    # One line per attempt, numbered, with a delay that never passes the cap.
    delays = [float(ln.split("; retry ", 1)[1].split(" in ", 1)[1].split("s", 1)[0])
              for ln in retries]
    assert max(delays) <= 0.4
    assert [f"retry {i}" in ln for i, ln in enumerate(retries, 1)] == [True] * len(retries)
    assert "Traceback" not in err and "stopping" in err


async def test_silent_feed_raises_one_health_notice_and_status_shows_it(tmp_path):
    out = io.StringIO()
    async with FakeExchange([], path="/market/ws/!forceOrder@arr") as fake:  # acks, then nothing
        settings = load_settings(None, environ={}, overrides={"db": str(tmp_path / "live.db")})
        settings = dataclasses.replace(settings, ws_urls={"binance": fake.url}, venues=("binance",),
                                       funding_venues=(), health_interval_s=0.1,
                                       silent_after_s=0.5)
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(settings, stop=stop,
                                            notifiers={"console": ConsoleNotifier(out)}))
        await wait_until(lambda: "no liquidation data" in out.getvalue(), 10, 0.05)
        await asyncio.sleep(0.5)  # more checks: still one notice
        running = await asyncio.to_thread(run_liqbot_status, tmp_path / "live.db")
        stop.set()
        await asyncio.wait_for(task, 10)
    assert out.getvalue().count("binance: no liquidation data") == 1
    assert "binance: silent · connected" in running
    stopped = await asyncio.to_thread(run_liqbot_status, tmp_path / "live.db")
    assert stopped.startswith("liqbot is not running") and "binance: stopped" in stopped


def run_liqbot_status(db) -> str:
    from tests.helpers.cli import run_liqbot

    r = run_liqbot("status", "--db", str(db))
    assert r.returncode == 0, r.stderr
    return r.stdout


async def test_a_start_that_fails_lets_go_of_the_database_lock(tmp_path):
    settings = load_settings(None, environ={}, overrides={"db": str(tmp_path / "f.db")})
    # coinglass: a venue without REST (binance takes one since exchangeInfo gives its assets)
    settings = dataclasses.replace(settings, venues=("coinglass",), funding_venues=(),
                                   rest_urls={"coinglass": "http://127.0.0.1:1"})
    with pytest.raises(ConfigError, match="coinglass takes no REST URL"):
        await run_live(settings, stop=asyncio.Event(), notifiers={})
    again = dataclasses.replace(settings, venues=())  # the same database opens at once
    stop = asyncio.Event()
    task = asyncio.create_task(run_live(again, stop=stop, notifiers={}))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 10)
