"""Telegram end to end: the real PTB client, inside our runner, against the fake Bot API."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from bot.chat.console import ConsoleNotifier
from bot.commands import COMMANDS
from bot.run.live import run_live
from bot.run.replay import run_replay
from bot.state.subscriptions import Subscriptions
from bot.state.writer import Writer
from bot.telegram.app import file_url
from bot.telegram.delivery import TelegramLimits
from bot.telegram.service import OFFSET_KEY, REPLY_KEY, TelegramService
from feeds.history.replay import load_replay
from feeds.model import Side
from feeds.store import Store
from tests.helpers.cli import write_coinglass_csv
from tests.helpers.factories import make_liq
from tests.helpers.fake_telegram import TOKEN, FakeBotApi, FakeLimits, telegram_settings
from tests.helpers.telegram_html import parse_html

pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")
GROUP = -1001500000000


class Live:
    """`run_live` with no venues, talking to the fake; stop() ends it gracefully."""

    def __init__(self, fake: FakeBotApi, db: str, limits: TelegramLimits | None = None) -> None:
        self.fake, self.db = fake, db
        self.stop_event = asyncio.Event()
        settings = telegram_settings(fake, db, venues=[], deliver_interval_s=0.2)
        self.task = asyncio.create_task(run_live(
            settings, stop=self.stop_event, notifiers={}, feeds=[],
            services=[TelegramService(settings, poll_timeout_s=0.5, limits=limits)]))

    async def ask(self, text: str, chat: int | str = 42, **kw: Any) -> str:
        """Send a command and return the text of the answer."""
        before = len(self.fake.sent)
        self.fake.push_command(text, chat, **kw)
        return (await self.fake.wait_sent(before + 1))[before]["plain"]

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(TOKEN) as f:
        yield f


@pytest.fixture
async def live(fake, tmp_path) -> AsyncIterator[Live]:
    bot = Live(fake, str(tmp_path / "live.db"))
    async with asyncio.timeout(30):
        yield bot
        await bot.stop()


def _meta(db: str, key: str) -> str | None:
    store = Store(db)
    try:
        return store.get_meta(key)
    finally:
        store.close()


async def test_start_answers_and_the_menu_is_the_command_table(live, fake):
    answer = await live.ask("/start")
    assert answer.startswith("liqbot watches liquidations on the big crypto venues")
    (menu,) = fake.commands
    assert [c["command"] for c in menu["commands"]] == list(COMMANDS)
    assert [c["description"] for c in menu["commands"]] == [c.help for c in COMMANDS.values()]


async def test_liqs_1h_answers_with_the_right_totals(live, fake, tmp_path):
    now = int(time.time() * 1000)
    store = Store(tmp_path / "live.db")
    store.insert_liquidations([
        make_liq(ts_exchange_ms=now - 600_000 + i, symbol=sym, position_side=side,
                 notional_usd=Decimal(usd))
        for i, (sym, side, usd) in enumerate([
            ("BTCUSDT", Side.SHORT, 3_000_000), ("BTCUSDT", Side.LONG, 1_000_000),
            ("ETHUSDT", Side.LONG, 500_000)])] + [
        make_liq(ts_exchange_ms=now - 2 * 3_600_000, notional_usd=Decimal(90_000_000))])
    store.close()
    lines = (await live.ask("/liqs 1h")).splitlines()
    assert lines[0] == "All coins: $4.5M liquidated in 1h, 67% shorts"
    assert lines[1] == "Shorts $3.00M · Longs $1.50M · 3 events"
    assert (await live.ask("/liqs BTC 4h")).splitlines()[0] == (
        "BTC: $94M liquidated in 4h, 99% shorts")


async def test_bad_arguments_get_one_line_of_help(live):
    answer = await live.ask("/liqs BTC ETH")
    assert answer == "'ETH': /liqs takes one coin. Usage: /liqs [SYMBOL] [WINDOW]"
    assert (await live.ask("/frobnicate")).startswith("Unknown command /frobnicate")


async def test_subscribe_then_a_replayed_squeeze_sends_the_alert(fake, tmp_path):
    db = str(tmp_path / "e2e.db")
    bot = Live(fake, db)
    async with asyncio.timeout(30):
        answer = await bot.ask("/subscribe squeeze 10M", 42)
        await bot.ask("/subscribe cascade", 43)
        await bot.stop()
    assert answer == "Subscribed. Alerts: short squeeze · all coins · minimum $10M."
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, {50: (1e6, 60e6), 120: (40e6, 0.5e6)})
    out = io.StringIO()
    summary = await run_replay(load_replay([csv], symbol="BTC"), telegram_settings(fake, db),
                               notifiers={"console": ConsoleNotifier(out)}, drain_timeout_s=10)
    assert summary.alerts == 2
    squeeze, cascade = fake.sent[-2:]
    assert (squeeze["chat_id"], cascade["chat_id"]) == (42, 43)
    assert squeeze["parse_mode"] == "HTML"
    # The extreme squeeze is a photo of its chart, the alert its caption; the large cascade text.
    assert "photo" in squeeze and "photo" not in cascade
    assert squeeze["caption"].splitlines()[:2] == ["<b>🚨 SHORT SQUEEZE — BTC · extreme</b>",
                                                   "<b>$61M liquidated in 1h, 98% shorts</b>"]
    printed = out.getvalue().split("\n\n")
    assert parse_html(squeeze["caption"]) == printed[0]  # the chat gets what the console printed
    assert parse_html(cascade["text"]) == printed[1]


async def test_group_settings_need_an_admin(fake, tmp_path):
    # Group and chat pacing are tested with the delivery; here they would only cost time.
    fake.limits = FakeLimits(chat_per_s=0, group_per_min=0)
    live = Live(fake, str(tmp_path / "g.db"),
                TelegramLimits(group_per_min=6000, chat_interval_s=0.05))
    fake.admins[str(GROUP)] = [501]
    assert await live.ask("/subscribe", GROUP, user_id=777) == (
        "Only group admins can use /subscribe.")
    assert (await live.ask("/subscribe", GROUP, user_id=501)).startswith("Subscribed.")
    assert (await live.ask("/unsubscribe", GROUP, anonymous=True)).startswith("Unsubscribed")
    assert (await live.ask("/liqs", GROUP, user_id=777)).startswith("No liquidations")
    lists = [c for c in fake.calls if c.method == "getChatAdministrators"]
    assert len(lists) == 1  # cached: one call per group, not per command
    await live.stop()


async def test_settings_buttons_change_filters_in_place(live, fake, tmp_path):
    fake.admins[str(GROUP)] = [501]
    await live.ask("/subscribe", 42)
    assert (await live.ask("/subscribe", GROUP, user_id=501)).startswith("Subscribed.")
    await live.ask("/settings", 42)
    keyboard = fake.sent[-1]["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for b in keyboard[2]] == ["quiet", "dg"]
    fake.push_button("quiet", 42, message_id=5000)
    fake.push_button("min:10000000", GROUP, message_id=5001, user_id=777)  # not an admin
    await fake.wait_until(lambda: bool(fake.edits) and len(
        [c for c in fake.calls if c.method == "answerCallbackQuery"]) >= 2)
    (edit,) = fake.edits
    assert edit["message_id"] == 5000 and edit["plain"].endswith("· silent notifications.")
    store = Store(tmp_path / "live.db")
    try:
        sub = Subscriptions(store).get("telegram", "42")
        assert sub is not None and sub.quiet
        group = Subscriptions(store).get("telegram", str(GROUP))
        assert group is not None and group.min_usd == 0  # the non-admin's press changed nothing
    finally:
        store.close()
    answers = [c.params.get("text") for c in fake.calls if c.method == "answerCallbackQuery"]
    assert "Only group admins can change alert settings." in answers


async def test_restart_neither_repeats_nor_drops_commands(fake, tmp_path):
    db = str(tmp_path / "r.db")
    first = Live(fake, db)
    async with asyncio.timeout(30):
        await first.ask("/subscribe squeeze", 42)
        await first.ask("/unsubscribe", 43)
        await first.stop()
        # The server never saw our confirmations (a kill -9) and offers both again...
        fake.redeliver(1)
        fake.push_command("/subscribe cascade", 44)  # ...plus one sent during the restart
        second = Live(fake, db)
        await fake.wait_sent(3)
        await asyncio.sleep(1.0)  # time enough to (wrongly) answer the old ones again
        await second.stop()
    assert [m["chat_id"] for m in fake.sent] == [42, 43, 44]
    assert _meta(db, OFFSET_KEY) == "3"


async def test_reply_lost_to_a_crash_is_sent_once_after_restart(fake, tmp_path):
    db = str(tmp_path / "c.db")
    store = Store(db)  # as a crash after the commit, before the answer went out, left it
    store.set_meta(REPLY_KEY, json.dumps({"chat": "42", "text": "Subscribed. Alerts: all.",
                                          "error": False, "buttons": [], "edit": None}))
    store.set_meta(OFFSET_KEY, "7")
    store.close()
    bot = Live(fake, db)
    async with asyncio.timeout(20):
        await fake.wait_sent(1)
        # The stored offset is passed on: 7 and below stay confirmed.
        await fake.wait_until(lambda: fake.confirmed >= 8)
        await bot.stop()
    assert fake.sent_to(42) == ["Subscribed. Alerts: all."]
    assert _meta(db, REPLY_KEY) == ""


async def test_static_chats_need_no_command(tmp_path, fake):
    settings = telegram_settings(fake, str(tmp_path / "s.db"), chat_ids=("@liqalerts", "-1009"))
    writer = Writer(settings.db)
    service = TelegramService(settings)
    try:
        await service.start(writer, live=False)
        subs = await writer.run(Subscriptions(writer.store).active, "telegram")
    finally:
        await service.stop()
        writer.close()
    assert sorted(s.chat_id for s in subs) == ["-1009", "@liqalerts"]
    assert all(s.static for s in subs)


def test_file_url_follows_the_bot_api_url():
    assert file_url("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"
    assert file_url("https://botapi.example/bot{token}") == "https://botapi.example/file/bot{token}"
    assert file_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
