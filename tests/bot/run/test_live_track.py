"""A live alert quotes only the saved backtest's episodes that closed before it (issue 13).

The backtest covers 30 days before now and 10 after, so the saved record holds episodes on
both sides of the live alert; the quote must count exactly those that closed by its end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time

from backtests.cli import main as backtest
from backtests.results import read_results
from backtests.synthetic import synthetic_history
from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.run.live import run_live
from feeds.model import HOUR_MS
from tests.backtests.files import write_regime
from tests.backtests.test_track import _alert_end_ms
from tests.bot.run.test_live import squeeze_frames
from tests.helpers.fake_ws import FakeExchange, wait_until


async def test_a_live_alert_quotes_only_episodes_closed_before_it(tmp_path):
    now = int(time.time() * 1000)
    start = now - now % HOUR_MS - 30 * 24 * HOUR_MS
    history = synthetic_history(("BTC",), 24 * 40, seed=2, bursts_per_week=12, start_ms=start)
    csv = write_regime(tmp_path / "r.csv", history)
    db = str(tmp_path / "live.db")
    code = await asyncio.to_thread(backtest, [
        "--data", str(csv), "--symbol", "BTC", "--out", str(tmp_path / "o"),
        "--placebo-draws", "20", "--bootstrap-draws", "20", "--db", db])
    assert code == 0
    signals = read_results(tmp_path / "o" / "results.json")["signals"]
    squeezes = [s for s in signals if s["kind"] == "short_squeeze" and "first" in s["cohorts"]
                and s["returns"]["4h"] is not None]
    assert any(s["closes_ms"]["4h"] > now for s in squeezes)  # the record reaches past now
    assert any(s["closes_ms"]["4h"] <= now for s in squeezes)  # and has a past to quote

    out = io.StringIO()
    async with FakeExchange(squeeze_frames(now), path="/market/ws/!forceOrder@arr") as fake:
        settings = load_settings(None, environ={}, overrides={"db": db})
        settings = dataclasses.replace(settings, ws_urls={"binance": fake.url}, venues=("binance",),
                                       funding_venues=(), eval_interval_s=0.2,
                                       deliver_interval_s=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(settings, stop=stop,
                                            notifiers={"console": ConsoleNotifier(out)}))
        await wait_until(lambda: "liquidated in" in out.getvalue(), 15, 0.05)
        stop.set()
        await asyncio.wait_for(task, 10)
    lines = out.getvalue().split("\n\n")[0].splitlines()
    assert lines[0].startswith("🚨 SHORT SQUEEZE — BTC")
    severity = {"notable": 1, "large": 2, "extreme": 3}[lines[0].split("· ")[1].split()[0]]
    at = _alert_end_ms(lines[3])
    known = [s for s in squeezes if s["severity"] == severity and s["closes_ms"]["4h"] <= at]
    quote = next(line for line in lines if "similar" in line or "track record" in line)
    if not known:
        assert quote.startswith("no track record before this alert"), lines
    elif len(known) < 5:
        assert quote.startswith(f"only {len(known)} similar before this alert"), lines
    else:
        assert quote.startswith(f"after {len(known)} similar ("), lines
