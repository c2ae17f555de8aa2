"""Onboarding, Refresh and /status through the real PTB client against the fake Bot API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from bot.run.live import run_live
from bot.state.subscriptions import Subscriptions
from bot.telegram.service import TelegramService
from feeds.model import Side
from feeds.store import Store
from tests.helpers.factories import make_liq
from tests.helpers.fake_telegram import TOKEN, FakeBotApi, telegram_settings

pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")
ADMIN_CHAT = 4242


class Live:
    """`run_live` with no venues, talking to the fake; chat 4242 is an operators' chat."""

    def __init__(self, fake: FakeBotApi, db: str) -> None:
        self.fake = fake
        self.stop_event = asyncio.Event()
        settings = telegram_settings(fake, db, venues=[], deliver_interval_s=0.2,
                                     telegram_admin_chat_ids=str(ADMIN_CHAT))
        self.task = asyncio.create_task(run_live(
            settings, stop=self.stop_event, notifiers={}, feeds=[],
            services=[TelegramService(settings, poll_timeout_s=0.5)]))

    async def ask(self, text: str, chat: int | str = 42, n: int = 1) -> list[dict[str, Any]]:
        """Send a command; return the `n` messages it answered with."""
        before = len(self.fake.sent)
        self.fake.push_command(text, chat)
        return (await self.fake.wait_sent(before + n))[before:before + n]

    async def press(self, data: str, message_id: int, chat: int | str = 42) -> None:
        self.fake.push_button(data, chat, message_id)
        await self.fake.wait_until(lambda: any(
            c.method == "answerCallbackQuery" and c.params.get("callback_query_id", "")
            .startswith(f"cb{message_id}-") for c in self.fake.calls))

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(TOKEN) as f:
        yield f


@pytest.fixture
def db(tmp_path) -> str:
    now = int(time.time() * 1000)
    store = Store(tmp_path / "live.db")
    store.insert_liquidations([
        make_liq(ts_exchange_ms=now - 600_000 + i, symbol=sym, position_side=side,
                 notional_usd=Decimal(usd))
        for i, (sym, side, usd) in enumerate([
            ("BTCUSDT", Side.SHORT, 3_000_000), ("ETHUSDT", Side.LONG, 500_000)])])
    store.close()
    return str(tmp_path / "live.db")


@pytest.fixture
async def live(fake, db) -> AsyncIterator[Live]:
    bot = Live(fake, db)
    async with asyncio.timeout(30):
        yield bot
        await bot.stop()


def _buttons(message: dict[str, Any]) -> list[list[str]]:
    markup = message["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    return [[b["callback_data"] for b in row] for row in markup["inline_keyboard"]]


async def test_start_explains_in_three_lines_and_offers_buttons_and_a_keyboard(live, fake, db):
    intro, note = await live.ask("/start", n=2)
    assert len(intro["plain"].splitlines()) == 3
    assert "short squeezes" in intro["plain"].lower() and "cascades" in intro["plain"].lower()
    assert _buttons(intro) == [["sub:short_squeeze", "sub:long_cascade", "sub:all"],
                               ["new:liqs", "new:settings"]]
    keyboard = note["reply_markup"]
    assert keyboard["is_persistent"] is True and keyboard["resize_keyboard"] is True
    assert [b["text"] for b in keyboard["keyboard"][0]] == ["/liqs", "/top", "/status"]
    # A keyboard button sends its label as text: it runs like the typed command.
    before = len(fake.sent)
    fake.push_text("/top", 42)
    (top,) = (await fake.wait_sent(before + 1))[before:]
    assert top["plain"].startswith("Top liquidated coins, last 1h:")

    # "Subscribe to squeezes" subscribes this chat; the answer is a new message.
    sent = len(fake.sent)
    await live.press("sub:short_squeeze", 5000)
    await fake.wait_sent(sent + 1)
    assert fake.sent[-1]["plain"].startswith("Subscribed. Alerts: short squeeze · all coins")
    store = Store(db)
    try:
        sub = Subscriptions(store).get("telegram", "42")
        assert sub is not None and sub.kinds == ("short_squeeze",)
    finally:
        store.close()
    # "Show last hour" and "Settings" answer with new messages, not edits.
    await live.press("new:liqs", 5000)
    await fake.wait_sent(sent + 2)
    assert fake.sent[-1]["plain"].startswith("All coins: $3.5M liquidated in 1h")
    await live.press("new:settings", 5000)
    await fake.wait_sent(sent + 3)
    settings = fake.sent[-1]
    assert settings["plain"].startswith("Alerts: short squeeze")
    assert ["quiet", "dg"] in _buttons(settings) and not fake.edits


async def test_start_in_a_group_has_no_reply_keyboard(live, fake):
    (intro,) = await live.ask("/start", chat=-1001500000000)
    await asyncio.sleep(0.3)
    assert len(fake.sent) == 1 and intro["reply_markup"]["inline_keyboard"]


async def test_refresh_edits_liqs_and_top_in_place(live, fake, db):
    (liqs,) = await live.ask("/liqs BTC 4h")
    assert _buttons(liqs) == [["run:liqs:4h:BTC"]]
    (top,) = await live.ask("/top")
    assert _buttons(top) == [["run:top:1h"]]
    store = Store(db)  # more liquidations arrive; a Refresh shows them
    store.insert_liquidations([make_liq(ts_exchange_ms=int(time.time() * 1000) - 60_000,
                                        symbol="BTCUSDT", notional_usd=Decimal(7_000_000))])
    store.close()
    await live.press("run:liqs:4h:BTC", 7001)
    await live.press("run:top:1h", 7002)
    await fake.wait_until(lambda: len(fake.edits) == 2)
    by_id = {e["message_id"]: e for e in fake.edits}
    assert by_id[7001]["plain"].startswith("BTC: $10M liquidated in 4h")
    assert by_id[7002]["plain"].splitlines()[1] == "1. BTC $10M · 100% shorts"
    assert _buttons(by_id[7001]) == [["run:liqs:4h:BTC"]]  # Refresh stays under it
    assert len(fake.sent) == 2  # edited, nothing new sent


async def test_subscribe_5x_is_refused_with_one_line_of_help(live, fake, db):
    (first,) = await live.ask("/subscribe BTC ETH")
    (refused,) = await live.ask("/subscribe 5x")
    assert refused["plain"] == ("'5x' is not a coin, kind, window or size (leverage is not "
                                "something liqbot filters on). Usage: /subscribe "
                                "[squeeze|cascade] [min USD] [SYMBOLS]")
    (big,) = await live.ask("/subscribe squeeze 2T")
    assert big["plain"].startswith("'2T': amounts above $1T make no sense here. Usage:")
    (foo,) = await live.ask("/backtest foo")
    assert foo["plain"].count("sage") == 1
    store = Store(db)
    try:
        assert Subscriptions(store).get("telegram", "42").symbols == ("BTC", "ETH")
    finally:
        store.close()


def _status(db: str, pollers: list[dict[str, Any]], venues: list[dict[str, Any]]) -> None:
    store = Store(db)
    try:
        now = int(time.time() * 1000)
        store.set_meta("status", json.dumps({"at_ms": now, "venues": venues}))
        store.set_meta("pollers", json.dumps({"pollers": pollers}))
    finally:
        store.close()


async def test_status_is_plain_for_users_and_detailed_in_admin_chats(live, fake, db):
    now = int(time.time() * 1000)
    dns = ("Cannot connect to host fapi.binance.com:443 ssl:default [Temporary failure in "
           "name resolution] https://fapi.binance.com/fapi/v1/premiumIndex")
    base = {"sockets": 1, "events": 0, "parse_errors": 0, "reconnects": 0, "last_error": None,
            "last_event_ms": None}
    _status(db, [{"name": "binance", "consecutive_failures": 3, "last_error": dns,
                  "last_ok_ms": None, "polls": 3, "failures": 3}],
            [{**base, "exchange": "bybit", "state": "up", "connected": 0,
              "connected_since_ms": None},
             {**base, "exchange": "okx", "state": "up", "connected": 1,
              "connected_since_ms": now - 120_000, "last_event_ms": now - 30_000},
             {**base, "exchange": "bitmex", "state": "down", "connected": 0,
              "connected_since_ms": None, "last_error": "ConnectionResetError: " + dns}])
    (user,) = await live.ask("/status")
    lines = user["plain"].splitlines()
    assert lines[1:4] == ["bybit: connecting",
                          "okx: live · last liquidation 30s ago · sampled feed",
                          "bitmex: down: its liquidations are missing for now"]
    assert "http" not in user["plain"] and "resolution" not in user["plain"]
    assert "disconnected" not in user["plain"]
    (admin,) = await live.ask("/status", chat=ADMIN_CHAT)
    assert dns in admin["plain"]  # the operators see the error itself
    assert "bybit: up · connecting" in admin["plain"]  # not "up · disconnected"
