"""The operator's console (issue 14): one line per state change, a summary every few minutes,
where alerts go and what history is missing said once at start, no line twice."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from collections import Counter

from bot.config import load_settings
from bot.ops.console import destinations_line, history_line, start_lines, summary_line
from bot.run.assembly import RunSummary
from bot.state.subscriptions import Subscription, Subscriptions
from feeds.model import HOUR_MS
from feeds.net.ws import FeedStats
from feeds.pollers import PollStats
from feeds.store import Store
from tests.helpers.cli import REPO, clean_env, liqbot_cmd
from tests.helpers.factories import make_liq

NOW = 1_768_341_600_000  # 2026-01-13T22:00Z


def settings(**env: str):
    return load_settings(None, environ=env)


def test_console_only_says_how_to_add_chats():
    line = destinations_line(settings(), {})
    assert line.startswith("alerts go to: the console (LIQBOT_TELEGRAM_TOKEN")


def test_chats_are_counted_once_with_their_origin():
    s = settings(LIQBOT_TELEGRAM_TOKEN="1:" + "a" * 30, LIQBOT_TELEGRAM_CHAT_IDS="-100,-200",
                 LIQBOT_TELEGRAM_ADMIN_CHAT_IDS="7",
                 LIQBOT_DISCORD_WEBHOOK_URLS="https://discord.com/api/webhooks/1/" + "b" * 40)
    # -100 is fixed and also stored; 55 subscribed by /subscribe.
    line = destinations_line(s, {"telegram": {"-100", "55"}})
    assert line == ("alerts go to: the console; 3 Telegram chats (2 from the settings, "
                    "1 subscribed, operator notices to 1 admin chat); 1 Discord webhook")
    assert "b" * 40 not in line


def test_nowhere_is_said_plainly(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("console = false\n")
    line = destinations_line(load_settings(cfg, environ={}), {})
    assert line.startswith("alerts go nowhere: the console is off")


def _hours(store: Store, hours: int) -> None:
    store.insert_liquidations([make_liq(ts_exchange_ms=NOW - i * HOUR_MS - 60_000)
                               for i in range(hours)])


def test_history_line_counts_the_hours_the_store_holds(tmp_path):
    s = settings(LIQBOT_TELEGRAM_TOKEN="1:" + "a" * 35)
    store = Store(tmp_path / "h.db")
    try:
        assert start_lines(s, store, NOW)[0] == (
            "alerts go to: the console; 0 Telegram chats (until a chat sends /subscribe)")
        Subscriptions(store).put(Subscription("telegram", "42"), NOW)
        # The subscribed chat is read from the store: the destinations line counts it.
        assert start_lines(s, store, NOW)[0] == (
            "alerts go to: the console; 1 Telegram chat (1 subscribed)")
        assert start_lines(s, store, NOW)[1] == (
            "history: relative tiers (5×/10×/20× the trailing 168 h average) need 90% of those "
            "hours; the database holds 0 h (0%): until about 6d 8h more are stored, alerts "
            "fire on absolute size only ($10M/$25M/$50M per hour)")
        _hours(store, 24)
        held, whole = store.coverage(NOW, 168 * HOUR_MS)
        assert held == 24 * HOUR_MS
        assert "holds 24 h (14%): until about 5d 8h more" in history_line(held, whole, s)
        _hours(store, 168)
        line = start_lines(s, store, NOW)[1]
        assert line.endswith("the database holds 168 h (100%): relative tiers are on")
    finally:
        store.close()


class _Poller:
    def __init__(self, stats: PollStats) -> None:
        self.stats = stats


def test_summary_line_names_each_venue_once():
    live = FeedStats("bybit", connected_since_ms=NOW - 5 * 60_000, events=1234)
    second = FeedStats("bybit", connected_since_ms=None, last_error="x")
    down = FeedStats("okx", last_error="gaierror: [Errno -2] Name or service not known")
    fresh = FeedStats("binance", last_error="ConnectionRefusedError: [Errno 111] refused")
    polls = [_Poller(PollStats("binance", polls=3)),
             _Poller(PollStats("okx", consecutive_failures=2, failures=2))]
    line = summary_line([live, second, down, fresh], {"okx": "down", "binance": "up"}, polls,
                        RunSummary(events_new=40_000, alerts=1, delivered=1), NOW,
                        NOW - 3_600_000)
    assert line == (
        "summary after 1h; binance connecting (ConnectionRefusedError: [Errno 111] refused) · "
        "bybit live 5m, 1,234 events · okx down (gaierror: [Errno -2] Name or service not "
        "known); REST pollers 1 of 2 ok; 40,000 new events stored, 1 alert, 1 delivered")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _shape(line: str) -> str:
    """A log line without its time and the numbers that change from attempt to attempt."""
    return re.sub(r"\d+(\.\d+)?", "N", line.split(" ", 1)[-1])


def test_an_offline_first_run_says_each_thing_once(tmp_path):
    dead = f"127.0.0.1:{_closed_port()}"
    venues = ("binance", "bybit", "okx")
    cfg = tmp_path / "liqbot.toml"
    cfg.write_text("\n".join([
        "[ops]", "summary_s = 1.5",
        "[feeds]", 'venues = ["binance", "bybit", "okx"]', "backoff_cap_s = 0.3",
        "[feeds.ws_urls]", *(f'{v} = "ws://{dead}/ws"' for v in venues),
        "[feeds.rest_urls]", *(f'{v} = "http://{dead}"' for v in venues),
        "[funding]", "interval_s = 0.5", "[funding.urls]",
        *(f'{v} = "http://{dead}"' for v in ("binance", "bybit", "okx", "deribit", "hyperliquid")),
    ]) + "\n")
    proc = subprocess.Popen(liqbot_cmd("run", "--config", str(cfg), "--db", str(tmp_path / "x.db")),
                            cwd=REPO, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # many retries at a 0.3 s cap, at least three summaries
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert "Traceback" not in err
    one = [ln for ln in lines if "summary after" not in ln]
    repeated = {k: n for k, n in Counter(map(_shape, one)).items() if n > 1}
    assert not repeated, repeated
    for v in venues:  # once each although each failed many times (Bybit has two sockets)
        assert sum(f"{v}: connect failed" in ln for ln in lines) == 1, err
        assert sum(f" {v}: poll failed" in ln for ln in lines) == 1, err
    assert sum("schema" in ln for ln in lines) == 2  # market and chat state, one line each
    assert sum("alerts go to: the console" in ln for ln in lines) == 1
    assert sum("history: relative tiers" in ln and "holds 0 h" in ln for ln in lines) == 1
    summaries = [ln for ln in lines if "summary after" in ln]
    assert len(summaries) >= 3
    assert "binance connecting (ConnectionRefusedError" in summaries[0]
    assert "REST pollers 0 of 5 ok" in summaries[-1]
    assert len(lines) <= 20 + len(summaries), err
