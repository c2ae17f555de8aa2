"""One argument grammar, two platforms: the same table of inputs through Telegram (the fake
Bot API and PTB) and Discord (the fake gateway and discord.py's options) gets the same line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.discord.render import reply_chunks
from bot.run.live import run_live
from bot.state.writer import Writer
from bot.telegram.service import TelegramService
from feeds.store import Store
from tests.bot.discord.test_commands import MANAGER, seed, start_bot
from tests.helpers.discord_interactions import slash
from tests.helpers.fake_discord import FakeDiscord
from tests.helpers.fake_telegram import TOKEN, FakeBotApi, telegram_settings

SUBSCRIBE = "Usage: /subscribe [squeeze|cascade] [min USD] [SYMBOLS]"

# (command, what a Telegram user types, the Discord options, the one line both answer)
TABLE: list[tuple[str, str, dict[str, str], str]] = [
    ("subscribe", "5x", {"symbols": "5x"},
     "'5x' is not a coin, kind, window or size (leverage is not something liqbot filters "
     f"on). {SUBSCRIBE}"),
    ("subscribe", "squeeze 2T", {"kinds": "squeeze", "min_usd": "2T"},
     f"'2T': amounts above $1T make no sense here. {SUBSCRIBE}"),
    ("subscribe", "DOGEFATHER", {"symbols": "DOGEFATHER"},
     "'DOGEFATHER' is not a coin liqbot has seen on any venue (nor a kind, window or size). "
     + SUBSCRIBE),
    ("liqs", "BTC 7d", {"symbol": "BTC", "window": "7d"},
     "unknown window '7d': use one of 5m, 15m, 30m, 1h, 4h, 24h. Usage: /liqs [SYMBOL] [WINDOW]"),
    ("liqs", "BTC-USD!", {"symbol": "BTC-USD!"},
     "'BTC-USD!' is not a coin (letters and digits, e.g. BTC). Usage: /liqs [SYMBOL] [WINDOW]"),
    ("backtest", "foo", {"kind": "foo"},
     "'foo' is not a kind (squeeze, cascade). Usage: /backtest [squeeze|cascade]"),
    ("funding", "1e400", {"symbol": "1e400"},
     "'1e400': amounts above $1T make no sense here. Usage: /funding [SYMBOL]"),
    ("subscribe", "squeeze 10M BTC eth", {"kinds": "squeeze", "min_usd": "10M",
                                          "symbols": "BTC eth"},
     "Subscribed. Alerts: short squeeze · BTC, ETH · minimum $10M."),
]


@pytest.fixture
async def answers(tmp_path, monkeypatch) -> AsyncIterator[tuple[list[str], list[str]]]:
    """Every row of TABLE asked on both platforms, each against its own seeded store."""
    telegram, discord = [], []
    tg_db = str(tmp_path / "tg.db")
    store = Store(tg_db)
    seed(store)
    store.close()
    async with FakeBotApi(TOKEN) as fake, asyncio.timeout(60):
        stop = asyncio.Event()
        settings = telegram_settings(fake, tg_db, venues=[], deliver_interval_s=0.2)
        task = asyncio.create_task(run_live(
            settings, stop=stop, notifiers={}, feeds=[],
            services=[TelegramService(settings, poll_timeout_s=0.5)]))
        for i, (name, words, _, _) in enumerate(TABLE):
            fake.push_command(f"/{name} {words}", 42)
            telegram.append((await fake.wait_sent(i + 1))[i]["plain"])
        stop.set()
        await asyncio.wait_for(task, 10)
    async with FakeDiscord() as dfake:
        dfake.point_discord_py(monkeypatch)
        db = str(tmp_path / "dc.db")
        writer = Writer(db)
        await writer.run(seed, writer.store)
        service = await start_bot(dfake, writer, db)
        try:
            async with asyncio.timeout(30):
                for name, _, options, _ in TABLE:
                    r: Any = await dfake.answer_to(slash(name, permissions=MANAGER, **options))
                    discord.append(r.content)
        finally:
            await service.stop()
            writer.close()
    yield telegram, discord


async def test_the_same_words_get_the_same_answer_on_both_platforms(answers):
    telegram, discord = answers
    for (name, words, _, line), tg, dc in zip(TABLE, telegram, discord, strict=True):
        assert tg == line, (name, words)
        assert dc == reply_chunks(line)[0], (name, words)  # the same line, Discord-escaped
