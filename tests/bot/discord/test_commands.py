"""Slash commands end to end: the fake gateway delivers INTERACTION_CREATE, discord.py's tree
runs our callbacks (transformers, checks, autocomplete), and the answer reaches the fake REST."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.chat.base import DeliveryError
from bot.commands import COMMANDS, Ctx, dispatch
from bot.config import Settings
from bot.discord import commands as discord_commands
from bot.discord import service as discord_bot
from bot.discord.commands import MANAGER_ONLY, command_payload
from bot.discord.render import reply_chunks, reply_embed
from bot.discord.service import EMBEDDED, DiscordService
from bot.state.subscriptions import Subscriptions
from bot.state.writer import Writer
from feeds.clock import SimClock
from feeds.model import Side
from tests.helpers.discord_interactions import autocomplete, button_press, slash
from tests.helpers.factories import T0, make_alert, make_liq
from tests.helpers.fake_discord import (
    CHANNEL_ID,
    MANAGE_GUILD,
    TOKEN,
    VIEW_AND_SEND,
    FakeDiscord,
    shown_text,
)

NOW = T0 + 30 * 60_000
MANAGER = VIEW_AND_SEND | MANAGE_GUILD
DISCORD_COMMANDS = list(COMMANDS)  # /start is the same onboarding on Discord
SNAPSHOT = Path(__file__).parent / "snapshots" / "discord_commands.json"


def seed(store: Any) -> None:
    store.insert_liquidations([
        make_liq(ts_exchange_ms=T0 + i * 1000, symbol=sym, position_side=side,
                 notional_usd=Decimal(usd))
        for i, (sym, side, usd) in enumerate([
            ("BTCUSDT", Side.SHORT, 3_000_000), ("BTCUSDT", Side.LONG, 1_000_000),
            ("ETHUSDT", Side.LONG, 500_000), ("SOLUSDT", Side.SHORT, 100_000)])])


class Live:
    def __init__(self, fake: FakeDiscord, writer: Writer, service: DiscordService) -> None:
        self.fake, self.writer, self.service = fake, writer, service

    async def ask(self, payload: dict[str, Any]) -> Any:
        return await self.fake.answer_to(payload)

    async def expected(self, name: str, *args: str, **ctx: Any) -> str:
        """What `dispatch` answers, as the Discord reply (escaped) would carry it."""
        c = Ctx("discord", CHANNEL_ID, NOW, is_group=True, **ctx)
        reply = await self.writer.run(dispatch, self.writer.store, c, name, list(args))
        embed = reply_embed(reply.text) if name in EMBEDDED else None
        return shown_text({"embeds": [embed]}) if embed else reply_chunks(reply.text)[0]

    async def sub(self) -> Any:
        return await self.writer.run(Subscriptions(self.writer.store).get, "discord", CHANNEL_ID)


async def start_bot(fake: FakeDiscord, writer: Writer, db: str) -> DiscordService:
    """Log in (syncing if needed), then wait until the gateway session is READY."""
    fake.identified.clear()
    service = DiscordService(Settings(db=db, discord_token=TOKEN), clock=SimClock(NOW))
    await service.start(writer, live=True)
    assert await service.wait_ready(5)
    await asyncio.wait_for(fake.identified.wait(), 5)
    return service


@pytest.fixture
async def live(tmp_path, monkeypatch) -> AsyncIterator[Live]:
    async with FakeDiscord() as fake:
        fake.point_discord_py(monkeypatch)
        db = str(tmp_path / "c.db")
        writer = Writer(db)
        await writer.run(seed, writer.store)
        service = await start_bot(fake, writer, db)
        try:
            async with asyncio.timeout(20):
                yield Live(fake, writer, service)
        finally:
            await service.stop()
            writer.close()
        # Whatever a test made the bot say, no answer could ping anyone.
        assert all(p["allowed_mentions"] == {"parse": []} for p in fake.all_payloads())


async def test_liqs_answers_with_the_right_totals(live):
    r = await live.ask(slash("liqs"))
    assert r.type == 4 and not r.ephemeral
    assert r.text.splitlines()[0] == "All coins: $4.6M liquidated in 1h, 67% shorts"
    assert r.data["embeds"][0]["title"] == "All coins: $4.6M liquidated in 1h, 67% shorts"
    r = await live.ask(slash("liqs", symbol="btc", window="4h"))
    assert r.text.splitlines()[0] == "BTC: $4M liquidated in 4h, 75% shorts"
    assert r.text == await live.expected("liqs", "btc", "4h")  # same logic as Telegram
    assert r.data["allowed_mentions"] == {"parse": []}


async def test_every_command_in_the_table_answers(live):
    for name in DISCORD_COMMANDS:
        if name == "chart":  # it draws first: "thinking…", then a follow-up (its own test)
            continue
        r = await live.ask(slash(name, permissions=MANAGER))
        assert r.type == 4 and r.text and not r.ephemeral, name
        if not COMMANDS[name].admin and name != "help":  # admin ones change state
            assert r.text == await live.expected(name), name
        assert bool(r.data.get("embeds")) == (name in EMBEDDED), name


async def test_top_ranks_coins_by_total(live):
    r = await live.ask(slash("top", window="1h"))
    assert r.text.splitlines()[1:] == ["1. BTC $4M · 75% shorts", "2. ETH $500K · 100% longs",
                                          "3. SOL $100K · 100% shorts"]


async def test_bad_arguments_get_one_private_line_of_help(live):
    r = await live.ask(slash("liqs", window="7d"))
    assert r.ephemeral and len(r.content.splitlines()) == 1 and "unknown window" in r.content
    r = await live.ask(slash("liqs", symbol="'; DROP TABLE events; --"))
    assert r.ephemeral and "is not a coin" in r.content
    r = await live.ask(slash("backtest", kind="squeezes"))
    assert r.ephemeral and r.content.startswith("unknown choice 'squeezes'")


# Discord enforces option lengths in its client only; a crafted interaction skips them.
@pytest.mark.parametrize("options, says", [
    ({"min_usd": "$2000B"}, "amounts above $1T"),
    ({"symbols": "A" * 300}, "Too many or too long arguments"),
    ({"symbols": " ".join(["BTC"] * 20)}, "Too many or too long arguments"),
    ({"symbols": "BTC'); DELETE FROM subscriptions; --"}, "is not a coin"),
    ({"kinds": "everything"}, "'everything' is not a kind (squeeze, cascade)"),  # as Telegram says
])
async def test_bad_subscribe_options_are_refused_in_one_private_line(live, options, says):
    r = await live.ask(slash("subscribe", permissions=MANAGER, **options))
    assert r.ephemeral and len(r.content.splitlines()) == 1 and says in r.content
    assert await live.sub() is None


async def test_a_manager_subscribes_the_channel_and_gets_settings_buttons(live):
    r = await live.ask(slash("subscribe", permissions=MANAGER, kinds="squeeze", min_usd="10M",
                             symbols="BTC eth"))
    assert r.content == "Subscribed. Alerts: short squeeze · BTC, ETH · minimum $10M."
    ids = [b["custom_id"] for row in r.data["components"] for b in row["components"]]
    assert "liqbot:set:kind:short_squeeze" in ids and "liqbot:set:quiet" in ids
    sub = await live.sub()
    assert (sub.kinds, sub.min_usd, sub.symbols, sub.active) == (
        ("short_squeeze",), 10e6, ("BTC", "ETH"), True)


@pytest.mark.parametrize("name, options", [
    ("subscribe", {"kinds": "all"}), ("unsubscribe", {})])
async def test_non_managers_cannot_change_settings(live, name, options):
    r = await live.ask(slash(name, permissions=VIEW_AND_SEND, **options))
    assert r.ephemeral and r.content == MANAGER_ONLY
    assert await live.sub() is None


async def test_administrators_count_as_managers(live):
    r = await live.ask(slash("subscribe", permissions=VIEW_AND_SEND | (1 << 3)))
    assert r.content.startswith("Subscribed.")


async def test_in_a_dm_the_user_owns_their_settings(live):
    r = await live.ask(slash("subscribe", guild=False, channel_id="810000000000000009"))
    assert r.content.startswith("Subscribed.")
    sub = await live.writer.run(Subscriptions(live.writer.store).get, "discord",
                                "810000000000000009")
    assert sub is not None and sub.active


async def test_the_check_runs_through_cmd_checks_and_the_code_checks_again(live):
    client = live.service.client
    cmd = client.tree.get_command("subscribe")
    assert isinstance(cmd, app_commands.Command) and cmd.checks
    outsider = discord.Interaction(data=slash("subscribe", permissions=VIEW_AND_SEND),
                                   state=client._connection)
    manager = discord.Interaction(data=slash("subscribe", permissions=MANAGER),
                                  state=client._connection)
    with pytest.raises(app_commands.MissingPermissions):
        for check in cmd.checks:
            await discord.utils.maybe_coroutine(check, outsider)
    assert all([await discord.utils.maybe_coroutine(c, manager) for c in cmd.checks])
    # Past the check (as if a hint were all there was), dispatch itself still refuses.
    await cmd.callback(outsider, "all", None, None)
    (r,) = [x for x in live.fake.responses if x.interaction_id == str(outsider.id)]
    assert r.ephemeral and "Only group admins" in r.content and await live.sub() is None


async def test_settings_buttons_change_filters_for_managers_only(live):
    r = await live.ask(slash("subscribe", permissions=MANAGER))
    components = r.data["components"]
    refused = await live.ask(button_press("liqbot:set:quiet", components))
    assert refused.ephemeral and refused.content == MANAGER_ONLY
    assert not (await live.sub()).quiet
    pressed = await live.ask(button_press("liqbot:set:quiet", components, permissions=MANAGER))
    assert pressed.type == 7 and "silent notifications" in pressed.content
    assert pressed.data["components"] and (await live.sub()).quiet
    old = [{"type": 1, "components": [{"type": 2, "style": 2, "label": "▫️ $123",
                                       "custom_id": "liqbot:set:min:123"}]}]  # an older preset
    stale = await live.ask(button_press("liqbot:set:min:123", old, permissions=MANAGER))
    assert stale.ephemeral and "out of date" in stale.content
    assert all(p["allowed_mentions"] == {"parse": []} for p in live.fake.all_payloads())


async def test_autocomplete_suggests_recent_symbols_and_windows(live):
    r = await live.ask(autocomplete("liqs", "symbol", symbol="e"))
    assert r.type == 8 and r.data["choices"] == [{"name": "ETH", "value": "ETH"}]
    r = await live.ask(autocomplete("liqs", "window", window="1"))
    assert [c["value"] for c in r.data["choices"]] == ["15m", "1h"]
    r = await live.ask(autocomplete("subscribe", "symbols", symbols="BTC S"))
    assert r.data["choices"] == [{"name": "BTC SOL", "value": "BTC SOL"}]
    r = await live.ask(autocomplete("subscribe", "min_usd", min_usd="1"))
    assert [c["value"] for c in r.data["choices"]] == ["1M", "10M", "100M"]


async def test_a_busy_store_defers_then_follows_up(live, monkeypatch):
    monkeypatch.setattr(discord_bot, "ACK_WITHIN_S", 0.0)
    r = await live.ask(slash("liqs", symbol="ETH"))
    assert r.type == 5  # "thinking…" within Discord's 3 s
    await live.fake.wait_for(lambda: live.fake.followups)
    assert shown_text(live.fake.followups[0]) == await live.expected("liqs", "ETH")
    assert live.fake.followups[0]["allowed_mentions"] == {"parse": []}


async def test_commands_sync_only_when_their_definition_changes(live, tmp_path, monkeypatch):
    assert live.fake.syncs == 1 and live.service.synced is True
    assert live.fake.commands and {c["name"] for c in live.fake.commands} == set(DISCORD_COMMANDS)
    uploaded = [{k: v for k, v in c.items() if k not in ("id", "application_id", "version")}
                for c in sorted(live.fake.commands, key=lambda c: c["name"])]
    assert uploaded == json.loads(SNAPSHOT.read_text())  # the snapshot is what Discord gets
    await live.service.stop()
    again = await start_bot(live.fake, live.writer, "")
    try:
        assert live.fake.syncs == 1 and again.synced is False  # a restart uploads nothing
    finally:
        await again.stop()
    monkeypatch.setattr(discord_commands, "SYMBOL", "a coin ticker such as BTC")
    changed = await start_bot(live.fake, live.writer, "")
    try:
        assert live.fake.syncs == 2 and changed.synced is True
    finally:
        await changed.stop()
    live.service = changed  # the fixture stops it again: harmless


def test_command_schema_matches_the_snapshot():
    """The uploaded schema, pinned: an accidental change to names, options or permissions shows
    up in review. After an intended change: UPDATE_SNAPSHOTS=1 pytest this test."""

    async def payload() -> list[dict[str, Any]]:
        client = discord.Client(intents=discord.Intents(guilds=True))
        tree = discord_commands.build_tree(client, _NoAnswer(), _ignore)
        return command_payload(tree)

    current = asyncio.run(payload())
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())
    by_name = {c["name"]: c for c in current}
    assert sorted(n for n, c in by_name.items() if c["default_member_permissions"]) == [
        "digest", "mute", "quiet", "silent", "subscribe", "unmute", "unsubscribe"]
    assert int(by_name["subscribe"]["default_member_permissions"]) == MANAGE_GUILD


class _NoAnswer:
    async def command(self, *args: Any) -> None: ...

    async def press(self, *args: Any) -> None: ...

    async def symbols(self, interaction: Any, current: str) -> list[Any]:
        return []


async def _ignore(interaction: Any, error: Any) -> None: ...


async def test_the_bot_token_never_reaches_the_logs(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    async with FakeDiscord() as fake:
        fake.point_discord_py(monkeypatch)
        db = str(tmp_path / "l.db")
        writer = Writer(db)
        service = await start_bot(fake, writer, db)
        try:
            await fake.answer_to(slash("subscribe", permissions=MANAGER))
            for status in (503, 401):  # a server error, then the token refused mid-run
                fake.fail_next(("channel", CHANNEL_ID), status, message="nope")
                with pytest.raises(DeliveryError):
                    await service.notifier.send(make_alert(), f"discord:{CHANNEL_ID}")
        finally:
            await service.stop()
            writer.close()
    assert "logged in as" in caplog.text and "rejected the bot token (HTTP 401)" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN.encode() not in await asyncio.to_thread(Path(db).read_bytes)


@pytest.mark.parametrize("command, options, says", [
    ("subscribe", {"min_usd": "ten"}, "'ten' is not a size (e.g. 10M)"),
    ("subscribe", {"min_usd": "squeeze"}, "'squeeze' is a kind (squeeze, cascade), not a size"),
    ("subscribe", {"min_usd": "10M 20M"}, "one value only"),
    ("subscribe", {"symbols": "BTC 10M"}, "'10M' is a size (e.g. 10M), not a coin"),
    ("subscribe", {"symbols": "cascade"}, "'cascade' is a kind (squeeze, cascade), not a coin"),
    ("liqs", {"symbol": "4h"}, "'4h' is a window, not a coin"),
    ("funding", {"symbol": "all"}, "'all' is a kind (squeeze, cascade), not a coin"),
])
async def test_an_option_takes_only_its_own_kind_of_word(live, command, options, says):
    """`dispatch` reads words by their shape: a word in the wrong option must not slip in."""
    r = await live.ask(slash(command, permissions=MANAGER, **options))
    assert r.ephemeral and says in r.content, r.content
    assert await live.sub() is None
