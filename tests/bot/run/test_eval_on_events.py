"""Through the real live path (fake Binance socket, fake Telegram Bot API): a crossing frame
is alerted long before the scheduled evaluation would run, and a quiet run does not evaluate.

Functional, not timing: the scheduled interval is a minute, the bounds are seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from bot.run.assembly import RunSummary
from bot.run.live import run_live
from tests.helpers.fake_telegram import TOKEN, FakeBotApi, telegram_settings
from tests.helpers.fake_ws import DEFAULT_PATH, FakeExchange

EVAL_S = 60.0  # the scheduled evaluation would first run a minute after the start


def frame(coin: str, usd: float, short: bool = True, n: int = 0) -> dict[str, Any]:
    """A Binance forceOrder frame timed now; `n` makes frames of one millisecond distinct."""
    now = int(time.time() * 1000)
    qty = f"{usd / 100 + n * 0.001:.3f}"
    return {"e": "forceOrder", "E": now,
            "o": {"s": f"{coin}USDT", "S": "BUY" if short else "SELL", "o": "LIMIT", "f": "IOC",
                  "q": qty, "p": "100.5", "ap": "100.0", "X": "FILLED", "l": qty, "z": qty,
                  "T": now}}


async def live(tmp_path, on_events: bool, frames: list[dict[str, Any]], after_s: float,
               crossing: dict[str, Any] | None = None) -> tuple[RunSummary, list[float], Any]:
    """Run live, push `frames` (sub-threshold) then, `after_s` later, `crossing`; return the
    summary, the seconds from the crossing push to each accepted sendMessage, and the fake."""
    async with FakeExchange([], path=DEFAULT_PATH) as exchange, FakeBotApi(TOKEN) as fake:
        settings = telegram_settings(
            fake, str(tmp_path / "live.db"), chat_ids=("555",), venues=["binance"],
            funding_venues=[], ws_urls={"binance": exchange.url}, console=False,
            ops_listen="off", eval_interval_s=EVAL_S)
        settings = dataclasses.replace(settings, eval_on_events=on_events)
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(settings, stop=stop))
        delays: list[float] = []
        try:
            await exchange.wait_connections(1, within_s=10)
            for f in frames:
                await exchange.push(f)
                await asyncio.sleep(0.05)
            await asyncio.sleep(after_s)
            if crossing is not None:
                t0 = time.monotonic()
                await exchange.push(crossing)
                try:
                    await fake.wait_sent(1, within_s=5.0)
                except TimeoutError:
                    pass
                delays = [m["t"] - t0 for m in fake.sent]
        finally:
            stop.set()
            summary = await asyncio.wait_for(task, 30)
    return summary, delays, fake


async def test_a_crossing_frame_is_alerted_within_seconds_not_at_the_tick(tmp_path):
    small = [frame("ABC", 2e5, short=i % 3 != 0, n=i) for i in range(10)]
    summary, delays, fake = await live(tmp_path, True, small, 0.5, frame("ABC", 5e6))
    assert delays and delays[0] < 5.0, delays  # the tick is 60 s away
    assert "SHORT SQUEEZE" in fake.sent[0]["plain"] and "ABC" in fake.sent[0]["plain"]
    assert summary.events_new == 11
    # Only the crossing woke an evaluation; the ten small frames did not.
    assert summary.triggered == summary.evaluations == 1
    assert summary.delivered >= 1


async def test_with_events_off_the_same_frame_waits_for_the_tick(tmp_path):
    """The control: the scheduled-only path (eval_on_events = false) sends nothing in 5 s."""
    summary, delays, _ = await live(tmp_path, False, [], 0.5, frame("ABC", 5e6))
    assert delays == []
    assert summary.events_new == 1 and summary.evaluations == summary.triggered == 0


async def test_a_quiet_run_does_not_evaluate(tmp_path):
    """Small liquidations for a few seconds: stored, never evaluated (and no busy loop)."""
    small = [frame("ABC", 1e4, short=i % 2 == 0, n=i) for i in range(30)]
    t_cpu = time.process_time()
    summary, _, fake = await live(tmp_path, True, small, 2.0)
    assert summary.events_new == 30
    assert summary.evaluations == summary.triggered == 0
    assert fake.sent == []
    # Idle costs no CPU worth a loop: the whole run, start to stop, under a few seconds' worth.
    assert time.process_time() - t_cpu < 3.0
