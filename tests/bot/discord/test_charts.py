"""Charts and parity on Discord, through the fake: an extreme alert's embed shows its chart
(uploaded with the message, bot channel and webhook alike), `/chart` follows up with a PNG,
`/help` names the slash options, and webhook posts carry the configured name and avatar."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from bot.config import ConfigError, Settings, load_settings
from bot.discord.service import DiscordWebhookService
from bot.discord.webhook import parse_webhook_url
from bot.policy import Policy
from bot.state.writer import Writer
from signals import SignalParams
from tests.bot.discord import test_commands
from tests.helpers.charts import check_png, seed_day
from tests.helpers.discord_interactions import slash
from tests.helpers.discord_payloads import payload_problems
from tests.helpers.discord_rig import CHANNEL, CKEY, QUICK, Rig
from tests.helpers.factories import ALERT, make_alert
from tests.helpers.fake_discord import FakeDiscord, shown_text

live = test_commands.live  # the slash-command fixture: the bot on the fake gateway
EXTREME_BTC = make_alert(key="short_squeeze|BTC|3600000|0|3", scope="BTC", largest={
    "exchange": "binance", "symbol": "BTCUSDT", "coin": "BTC", "side": "short",
    "usd": 2e6, "price": 100_700.0, "ts_ms": ALERT.end_ms - 30 * 60_000})


def _chart_of(payload: dict) -> bytes:
    (embed,) = payload["embeds"]
    assert embed["image"] == {"url": "attachment://chart.png"}
    assert set(payload["_files"]) == {"chart.png"}
    check_png(payload["_files"]["chart.png"])
    return payload["_files"]["chart.png"]


async def test_extreme_alert_embeds_show_the_chart_on_channels_and_webhooks(rig: Rig):
    await rig.writer.run(seed_day, rig.store, ALERT.end_ms)
    await rig.record(EXTREME_BTC, CHANNEL, rig.dest(0))
    assert await rig.deliver() == 2
    (to_channel,) = rig.fake.sent_to(CKEY)
    (to_hook,) = rig.fake.sent_to(rig.key(0))
    assert _chart_of(to_channel) == _chart_of(to_hook)  # drawn once, for both
    assert rig.bot.notifier.charts is rig.hooks.notifier.charts
    assert rig.bot.notifier.charts.draws == 1
    for payload in (to_channel, to_hook):
        assert not payload_problems(payload)
        (embed,) = payload["embeds"]
        assert embed["footer"]["text"] == "liqbot · #BTC #squeeze"
        assert any(f["name"] == "Largest" and "binance BTCUSDT" in f["value"]
                   for f in embed["fields"])
    assert to_hook["username"] == "liqbot"  # the default name; no avatar unless configured
    assert "avatar_url" not in to_hook


async def test_alerts_below_extreme_have_no_picture(rig: Rig):
    await rig.writer.run(seed_day, rig.store, ALERT.end_ms)
    large = dataclasses.replace(EXTREME_BTC, key="large", severity=2, severity_name="large")
    await rig.record(large, CHANNEL, rig.dest(0))
    assert await rig.deliver() == 2
    for payload in rig.fake.sent_to(CKEY) + rig.fake.sent_to(rig.key(0)):
        assert "_files" not in payload and "image" not in payload["embeds"][0]


async def test_webhook_posts_carry_the_configured_name_and_avatar(tmp_path):
    async with FakeDiscord() as fake:
        url = fake.add_webhook()
        db = str(tmp_path / "w.db")
        settings = Settings(db=db, discord_webhook_urls=(url,),
                            discord_webhook_username="Liquidation Watch",
                            discord_webhook_avatar_url="https://example.org/liq.png")
        writer = Writer(db)
        hooks = DiscordWebhookService(settings, limits=QUICK)
        try:
            async with asyncio.timeout(20):
                await hooks.start(writer, live=False)
                dest = f"discord-webhook:{parse_webhook_url(url).id}"
                await writer.run(lambda: Policy(writer.store, SignalParams()).record(
                    [ALERT], [dest], int(time.time() * 1000)))
                await hooks.notifier.send(ALERT, dest)
        finally:
            await hooks.stop()
            writer.close()
    (payload,) = fake.sent_to(("webhook", parse_webhook_url(url).id))
    assert payload["username"] == "Liquidation Watch"
    assert payload["avatar_url"] == "https://example.org/liq.png"


@pytest.mark.parametrize("name, says", [
    ("Discord alerts", "Discord refuses names containing 'discord' or 'clyde'"),
    ("x" * 81, "expected 1-80 printable characters")])
def test_a_webhook_name_discord_would_refuse_is_refused_at_start(name, says):
    with pytest.raises(ConfigError, match=says):
        load_settings(None, environ={"LIQBOT_DISCORD_WEBHOOK_USERNAME": name})
    with pytest.raises(ConfigError, match="discord.webhook_avatar_url"):
        load_settings(None, environ={"LIQBOT_DISCORD_WEBHOOK_AVATAR_URL": "ftp://x/y.png"})


async def test_chart_command_follows_up_with_the_png_in_an_embed(live):
    await live.writer.run(seed_day, live.writer.store, test_commands.NOW)
    r = await live.ask(slash("chart", symbol="BTC", window="1h"))
    assert r.type == 5  # "thinking…" while it draws
    await live.fake.wait_for(lambda: live.fake.followups)
    (followup,) = live.fake.followups
    _chart_of(followup)
    assert shown_text(followup).startswith("BTC: ") and "Largest: " in shown_text(followup)
    assert not payload_problems(followup)


async def test_help_names_the_slash_options_not_telegram_syntax(live):
    r = await live.ask(slash("help"))
    text = r.text.replace("\\_", "_")  # as Discord shows it: markdown escapes rendered
    assert "/liqs [symbol] [window] — totals" in text
    assert "/subscribe [kinds] [min_usd] [symbols]" in text
    assert "/chart [symbol] [window]" in text and "/start — " in text  # the onboarding
    assert "e.g. /liqs symbol:BTC window:4h" in text
    assert "/liqs BTC 4h" not in text  # Telegram's way of typing it


async def test_liqs_answers_as_an_embed_with_its_breakdowns_as_fields(live):
    r = await live.ask(slash("liqs"))
    (embed,) = r.data["embeds"]
    assert embed["title"] == "All coins: $4.6M liquidated in 1h, 67% shorts"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Top"] == "BTC $4M · ETH $500K · SOL $100K"
    assert fields["Largest"].startswith("binance BTCUSDT short $3M @ 100,000")
    assert not payload_problems(r.data)
