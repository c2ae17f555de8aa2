"""Discord bot-channel delivery: discord.py's own HTTP client against the fake REST server,
each answer mapped to one outbox outcome (RELIABILITY.md items 15-17)."""

from __future__ import annotations

import dataclasses
import time

from bot.config import Settings
from bot.discord.service import DiscordService, DiscordWebhookService
from bot.discord.webhook import parse_webhook_url
from bot.state.writer import Writer
from tests.helpers.discord_payloads import payload_problems
from tests.helpers.discord_rig import (
    ALERT,
    CHANNEL,
    CKEY,
    OTHER,
    QUICK,
    with_limits,
)
from tests.helpers.fake_discord import CHANNEL_ID, FakeDiscord, FakeLimits

OTHER_CHANNEL = "discord:800000000000000002"
OTHER_KEY = ("channel", "800000000000000002")


async def test_bot_posts_the_alert_embed_to_a_channel(rig):
    await rig.record(ALERT, CHANNEL)
    assert await rig.deliver() == 1
    (payload,) = rig.fake.sent_to(CKEY)
    assert not payload_problems(payload) and payload["allowed_mentions"] == {"parse": []}
    assert payload["embeds"][0]["title"] == "🚨 SHORT SQUEEZE — market-wide · extreme"


async def test_bot_unknown_channel_is_disabled(rig):
    rig.fake.fail_next(CKEY, 404, code=10003, message="Unknown Channel", times=3)
    await rig.record(ALERT, CHANNEL)
    await rig.record(OTHER, CHANNEL)
    await rig.drain()
    assert len([c for c in rig.fake.calls if c.key == CKEY]) == 1
    assert not (await rig.sub("discord", CHANNEL_ID)).active


async def test_bot_429_without_via_is_deferred_by_its_headers(rig):
    rig.fake.rate_limit_next(CKEY, 20.0, via=False)  # Cloudflare-style: discord.py raises
    await rig.record(ALERT, CHANNEL)
    before = int(time.time() * 1000)
    assert await rig.deliver() == 0
    status, attempts, _, next_ms = (await rig.rows())[(ALERT.key, CHANNEL)]
    assert (status, attempts) == ("pending", 0) and next_ms >= before + 19_000


async def test_bot_429_without_via_holds_every_channel(rig):
    rig.fake.rate_limit_next(CKEY, 20.0, via=False)  # the edge bans the IP, not a route
    await rig.record(ALERT, CHANNEL)
    await rig.deliver()
    await rig.record(OTHER, OTHER_CHANNEL)
    assert await rig.deliver() == 0
    assert [c for c in rig.fake.calls if c.key == OTHER_KEY] == []
    assert (await rig.rows())[(OTHER.key, OTHER_CHANNEL)][:2] == ("pending", 0)


async def test_bot_brief_5xx_is_retried_in_place_by_discord_py(rig):
    rig.fake.fail_next(CKEY, 502, message="Bad Gateway")
    await rig.record(ALERT, CHANNEL)
    assert await rig.deliver() == 1  # discord.py slept 1 s and tried again
    assert [c.status for c in rig.fake.calls if c.key == CKEY] == [502, 200]


async def test_bot_5xx_discord_py_does_not_retry_goes_back_to_the_outbox(rig):
    rig.fake.fail_next(CKEY, 503, message="Service Unavailable")
    await rig.record(ALERT, CHANNEL)
    assert await rig.deliver() == 0
    assert (await rig.rows())[(ALERT.key, CHANNEL)][:3] == ("pending", 1, 0)
    await rig.drain()
    assert [c.status for c in rig.fake.calls if c.key == CKEY] == [503, 200]


@with_limits(FakeLimits(), dataclasses.replace(QUICK, channel_timeout_s=0.3))
async def test_bot_timeout_after_the_write_is_retried_as_maybe_delivered(rig):
    rig.fake.stall_s[CKEY] = 1.0  # saved, then answered too late
    await rig.record(ALERT, CHANNEL)
    assert await rig.deliver() == 0
    assert (await rig.rows())[(ALERT.key, CHANNEL)][:3] == ("pending", 1, 1)
    del rig.fake.stall_s[CKEY]
    await rig.drain()
    assert (await rig.rows())[(ALERT.key, CHANNEL)][0] == "sent"
    assert len(rig.fake.sent_to(CKEY)) == 2  # at most twice: the stalled one and the retry


async def test_bot_short_429_with_via_is_waited_out_by_discord_py(rig):
    rig.fake.rate_limit_next(CKEY, 0.2)
    await rig.record(ALERT, CHANNEL)
    assert await rig.deliver() == 1
    assert [c.status for c in rig.fake.calls if c.key == CKEY] == [429, 200]


async def test_bot_refused_embed_falls_back_to_content(rig):
    rig.fake.fail_next(CKEY, 400, code=50035, message="Invalid Form Body")
    await rig.record(ALERT, CHANNEL)
    assert await rig.deliver() == 1
    (payload,) = rig.fake.sent_to(CKEY)
    assert payload["content"].startswith("🚨 SHORT SQUEEZE") and not payload.get("embeds")


async def test_bot_with_a_rejected_token_is_not_ready_and_webhooks_still_work(tmp_path, monkeypatch,
                                                                              caplog):
    async with FakeDiscord() as fake:
        fake.point_discord_py(monkeypatch)
        db = str(tmp_path / "t.db")
        wrong = "MTAx.wrong-token-the-fake-refuses-000000000000"
        url = fake.add_webhook()
        settings = Settings(db=db, discord_token=wrong, discord_webhook_urls=(url,))
        writer = Writer(db)
        bot, hooks = DiscordService(settings), DiscordWebhookService(settings)
        try:
            await bot.start(writer, live=False)
            await hooks.start(writer, live=False)
            assert not bot.notifier.ready
            assert "rejected the bot token" in caplog.text and wrong not in caplog.text
            hook_id = parse_webhook_url(url).id
            await hooks.notifier.send(ALERT, f"discord-webhook:{hook_id}")  # still delivers
            assert len(fake.sent_to(("webhook", hook_id))) == 1
        finally:
            await bot.stop()
            await hooks.stop()
            writer.close()


async def test_bot_429_longer_than_discord_py_will_sleep_is_deferred(rig):
    rig.fake.rate_limit_next(CKEY, 45.0)  # with Via, but past max_ratelimit_timeout: RateLimited
    await rig.record(ALERT, CHANNEL)
    before = int(time.time() * 1000)
    assert await rig.deliver() == 0
    status, attempts, _, next_ms = (await rig.rows())[(ALERT.key, CHANNEL)]
    assert (status, attempts) == ("pending", 0) and next_ms >= before + 44_000


async def test_a_route_still_limited_after_discord_py_retries_holds_only_that_channel(rig):
    rig.fake.rate_limit_next(CKEY, 0.02, times=10)  # with Via: discord.py retries, then raises
    await rig.record(ALERT, CHANNEL)
    assert await rig.deliver() == 0
    await rig.record(OTHER, OTHER_CHANNEL)
    assert await rig.deliver() == 1  # another channel is not held back
    assert (await rig.rows())[(ALERT.key, CHANNEL)][0] == "pending"


async def test_a_token_revoked_mid_run_stops_sending_instead_of_retrying_every_channel(rig):
    rig.fake.fail_next(CKEY, 401, message="401: Unauthorized")
    await rig.record(ALERT, CHANNEL)
    assert await rig.deliver() == 0
    assert not rig.bot.notifier.ready
    await rig.record(OTHER, OTHER_CHANNEL)
    assert await rig.deliver() == 0
    assert [c for c in rig.fake.calls if c.key == OTHER_KEY] == []  # no further 401s earned
    assert (await rig.rows())[(OTHER.key, OTHER_CHANNEL)][:2] == ("pending", 0)
