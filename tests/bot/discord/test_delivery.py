"""Discord webhook delivery through the outbox against the fake: every error answer mapped to
one outcome (RELIABILITY.md items 14-17, 19, 22, 23). Bot channels: test_discord_channels.py."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from bot.chat.delivery import deliver_due
from bot.config import ConfigError, Settings
from bot.discord.service import DiscordWebhookService, register_webhooks
from bot.discord.webhook import parse_webhook_url
from bot.policy import Policy
from bot.state.outbox import Outbox
from bot.state.subscriptions import Router, Subscription, Subscriptions
from bot.state.writer import Writer
from signals import SignalParams
from tests.helpers.discord_payloads import payload_problems
from tests.helpers.discord_rig import (
    ALERT,
    CHANNEL,
    CKEY,
    FAST,
    OTHER,
    QUICK,
    Ops,
    with_limits,
)
from tests.helpers.factories import make_alert
from tests.helpers.fake_discord import CHANNEL_ID, FakeDiscord, FakeLimits

# -- webhooks --------------------------------------------------------------------------------

async def test_webhook_alert_arrives_as_a_valid_embed_with_wait_and_no_mentions(rig):
    await rig.record(ALERT, rig.dest(0), rig.dest(1))
    assert await rig.deliver() == 2
    for i in (0, 1):
        (payload,) = rig.fake.sent_to(rig.key(i))
        assert not payload_problems(payload)
        (embed,) = payload["embeds"]
        assert embed["description"] == "**$458M liquidated in 1h, 91% shorts**"
        assert payload["allowed_mentions"] == {"parse": []} and payload["flags"] == 0
        assert rig.posts(i)[0].query == {"wait": "true"}
    rows = await rig.rows()
    assert {r[:2] for r in rows.values()} == {("sent", 1)}


async def test_static_webhooks_are_routed_like_subscriptions(rig):
    router = Router(rig.store, [], ["discord-webhook", "discord"])
    dests = await rig.writer.run(router.destinations, ALERT)
    assert dests == sorted([rig.dest(0), rig.dest(1), f"discord:{CHANNEL_ID}"])


async def test_short_429_is_waited_out_in_place_then_sent(rig):
    rig.fake.rate_limit_next(rig.key(), 0.3)
    await rig.record(ALERT, rig.dest())
    assert await rig.deliver() == 1
    first, second = rig.posts()
    assert first.status == 429 and second.status == 200 and second.t - first.t >= 0.3


async def test_long_429_goes_back_to_the_outbox_without_counting_an_attempt(rig):
    rig.fake.rate_limit_next(rig.key(), 30.0)
    await rig.record(ALERT, rig.dest(0), rig.dest(1))
    before = int(time.time() * 1000)
    assert await rig.deliver() == 1  # the other webhook is not held up
    status, attempts, maybe, next_ms = (await rig.rows())[(ALERT.key, rig.dest())]
    assert (status, attempts, maybe) == ("pending", 0, 0) and next_ms >= before + 29_000
    await rig.deliver()  # not due yet: nothing is sent
    assert len(rig.posts()) == 1 and rig.fake.invalid[429] == 1


async def test_global_429_holds_every_webhook(rig):
    rig.fake.rate_limit_next(rig.key(0), 30.0, is_global=True)
    await rig.record(ALERT, rig.dest(0))
    await rig.deliver()
    await rig.record(OTHER, rig.dest(1))
    await rig.deliver()
    assert rig.posts(1) == []  # the IP-wide wait applies to the other webhook too
    assert (await rig.rows())[(OTHER.key, rig.dest(1))][0] == "pending"


async def test_429_without_via_is_never_retried_in_place(rig):
    rig.fake.rate_limit_next(rig.key(), 0.3, via=False)  # Cloudflare's edge, not the API
    await rig.record(ALERT, rig.dest())
    assert await rig.deliver() == 0
    assert len(rig.posts()) == 1  # short as the wait is, one more request would count too
    assert (await rig.rows())[(ALERT.key, rig.dest())][:2] == ("pending", 0)
    await rig.drain()
    first, second = rig.posts()
    assert (first.status, second.status) == (429, 200) and second.t - first.t >= 0.3


async def test_429_without_via_holds_every_webhook(rig):
    rig.fake.rate_limit_next(rig.key(0), 20.0, via=False)  # an IP-wide ban
    await rig.record(ALERT, rig.dest(0))
    await rig.deliver()
    await rig.record(OTHER, rig.dest(1))
    await rig.deliver()
    assert rig.posts(1) == [] and rig.fake.invalid[429] == 1
    assert (await rig.rows())[(OTHER.key, rig.dest(1))][:2] == ("pending", 0)


async def test_5xx_with_retry_after_is_deferred_for_that_long(rig):
    rig.fake.fail_next(rig.key(), 503, message="Service Unavailable",
                       headers={"Retry-After": "30"})
    await rig.record(ALERT, rig.dest())
    before = int(time.time() * 1000)
    assert await rig.deliver() == 0
    status, attempts, maybe, next_ms = (await rig.rows())[(ALERT.key, rig.dest())]
    assert (status, attempts, maybe) == ("pending", 0, 0) and next_ms >= before + 29_000
    assert len(rig.posts()) == 1


@with_limits(FakeLimits(webhook=(3, 0.4)), QUICK)
async def test_a_burst_follows_the_ratelimit_headers_and_never_hits_429(rig):
    alerts = [make_alert(key=f"k{i}", scope=f"C{i}") for i in range(8)]
    for a in alerts:
        await rig.record(a, rig.dest())
    started = time.monotonic()
    await rig.drain()
    got = [p["embeds"][0]["title"] for p in rig.fake.sent_to(rig.key())]
    assert got == [f"🚨 SHORT SQUEEZE — C{i} · extreme" for i in range(8)]
    assert rig.fake.invalid[429] == 0  # Remaining: 0 was honoured before Discord had to say no
    assert time.monotonic() - started >= 0.7  # two full waits of ~0.4 s


async def test_brief_5xx_is_retried_in_place(rig):
    rig.fake.fail_next(rig.key(), 502, times=2, message="Bad Gateway")
    await rig.record(ALERT, rig.dest())
    assert await rig.deliver() == 1
    assert [c.status for c in rig.posts()] == [502, 502, 200]


async def test_persistent_5xx_goes_back_to_the_outbox_with_backoff(rig):
    rig.fake.fail_next(rig.key(), 500, times=3, message="Internal Server Error")
    await rig.record(ALERT, rig.dest())
    assert await rig.deliver() == 0
    assert (await rig.rows())[(ALERT.key, rig.dest())][:3] == ("pending", 1, 0)
    await rig.drain()
    assert [c.status for c in rig.posts()] == [500, 500, 500, 200]


async def test_deleted_webhook_costs_one_request_is_disabled_and_logged_once(rig, caplog):
    caplog.set_level(logging.INFO)
    rig.fake.gone.add(rig.ids[0])
    await rig.record(ALERT, rig.dest(0), rig.dest(1))
    await rig.record(OTHER, rig.dest(0), rig.dest(1))
    await rig.drain()
    assert len(rig.posts(0)) == 1 and rig.fake.invalid[404] == 1
    rows = await rig.rows()
    assert rows[(ALERT.key, rig.dest(0))][0] == rows[(OTHER.key, rig.dest(0))][0] == "dead"
    assert rows[(OTHER.key, rig.dest(1))][0] == "sent"
    sub = await rig.sub("discord-webhook", rig.ids[0])
    assert sub is not None and not sub.active
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"{rig.dest(0)} disabled: Discord answered HTTP 404, code 10015: Unknown "
                      "Webhook; nothing more is sent there (remove or replace its URL in "
                      "LIQBOT_DISCORD_WEBHOOK_URLS)"]
    assert len(rig.ops.notices) == 1 and f"{rig.dest(0)} disabled" in rig.ops.notices[0]
    # A restart keeps it off: the next alert is not even routed there.
    await rig.writer.run(register_webhooks, rig.store, rig.ids, 0)
    dests = await rig.writer.run(Router(rig.store, [], ["discord-webhook"]).destinations, ALERT)
    assert dests == [rig.dest(1)]
    assert "was disabled earlier" in caplog.text


@pytest.mark.parametrize("status, code, message", [
    (401, 50027, "Invalid Webhook Token"), (403, 50013, "Missing Permissions")])
async def test_refused_webhook_is_disabled_after_one_request(rig, status, code, message):
    rig.fake.fail_next(rig.key(), status, code=code, message=message, times=5)
    await rig.record(ALERT, rig.dest())
    await rig.record(OTHER, rig.dest())
    await rig.drain()
    assert len(rig.posts()) == 1
    assert not (await rig.sub("discord-webhook", rig.ids[0])).active


async def test_refused_embed_is_resent_once_as_plain_content(rig):
    rig.fake.fail_next(rig.key(), 400, code=50035, message="Invalid Form Body")
    await rig.record(ALERT, rig.dest())
    assert await rig.deliver() == 1
    (payload,) = rig.fake.sent_to(rig.key())
    assert "embeds" not in payload and payload["allowed_mentions"] == {"parse": []}
    assert payload["content"].splitlines()[1] == "$458M liquidated in 1h, 91% shorts"


async def test_content_refused_too_is_dead_after_two_requests(rig):
    rig.fake.fail_next(rig.key(), 400, code=50035, message="Invalid Form Body", times=2)
    await rig.record(ALERT, rig.dest())
    await rig.drain()
    assert len(rig.posts()) == 2
    assert (await rig.rows())[(ALERT.key, rig.dest())][0] == "dead"


@with_limits(FakeLimits(), dataclasses.replace(QUICK, timeout_s=0.3))
async def test_timeout_after_the_write_is_retried_as_maybe_delivered(rig):
    rig.fake.stall_s[rig.key()] = 1.0
    await rig.record(ALERT, rig.dest())
    assert await rig.deliver() == 0
    assert (await rig.rows())[(ALERT.key, rig.dest())][:3] == ("pending", 1, 1)
    del rig.fake.stall_s[rig.key()]
    await rig.drain()
    assert (await rig.rows())[(ALERT.key, rig.dest())][0] == "sent"
    assert len(rig.fake.sent_to(rig.key())) == 2  # at most twice: the stalled one and the retry


async def test_refused_connection_is_retried_and_never_counted_as_delivered(tmp_path):
    url = "http://127.0.0.1:9/api/webhooks/123456789012345678/" + "t" * 68  # nothing listens
    db = str(tmp_path / "r.db")
    writer = Writer(db)
    hooks = DiscordWebhookService(Settings(db=db, discord_webhook_urls=(url,)), limits=QUICK)
    try:
        await hooks.start(writer, live=False)
        await writer.run(Policy(writer.store, SignalParams()).record, [ALERT],
                         ["discord-webhook:123456789012345678"], int(time.time() * 1000))
        notifiers = {"discord-webhook": hooks.notifier}
        await deliver_due(Outbox(writer.store, FAST), notifiers, int(time.time() * 1000),
                          writer.run)
        row = await writer.run(lambda: writer.store.database.conn.execute(
            "SELECT status, attempts, maybe_sent FROM outbox").fetchone())
        assert tuple(row) == ("pending", 1, 0)
    finally:
        await hooks.stop()
        writer.close()


async def test_quiet_subscription_is_delivered_without_a_notification(rig):
    await rig.writer.run(Subscriptions(rig.store).put,
                         Subscription("discord-webhook", rig.ids[0], quiet=True, static=True), 0)
    await rig.record(ALERT, rig.dest())
    await rig.deliver()
    assert rig.fake.sent_to(rig.key())[0]["flags"] == 1 << 12


async def test_an_oversized_alert_still_arrives_as_one_embed_within_every_limit(rig):
    coins = [(f"COIN_{i}*" * 30, 1e6 * i, 2e6 * i) for i in range(40)]
    alert = make_alert(key="huge", scope="X_" * 1500, track_record="y*" * 3000,
                       top_coins=coins, top_exchanges=coins, funding_8h=-0.0001)
    await rig.record(alert, rig.dest(), CHANNEL)
    assert await rig.deliver() == 2
    assert rig.fake.rejected == []  # the fake refuses what Discord would (PLATFORMS.md §5)
    for key in (rig.key(), CKEY):
        (payload,) = rig.fake.sent_to(key)
        (embed,) = payload["embeds"]
        assert not payload_problems(payload) and embed["description"].startswith("**$458M")


async def test_mentions_in_symbols_never_ping(rig):
    alert = make_alert(key="ping", scope="@everyone", track_record="<@&123> @here")
    rig.fake.fail_next(rig.key(1), 400, code=50035, message="Invalid Form Body")  # content path
    await rig.record(alert, rig.dest(0), rig.dest(1), f"discord:{CHANNEL_ID}")
    await rig.drain()
    payloads = rig.fake.all_payloads()
    (plain,) = [p for p in payloads if p.get("content")]
    assert len(payloads) == 3 and "@everyone" in plain["content"]
    assert all(p["allowed_mentions"] == {"parse": []} for p in payloads)


async def test_webhook_tokens_never_reach_logs_or_the_database(rig, caplog):
    caplog.set_level(logging.DEBUG)
    rig.fake.rate_limit_next(rig.key(0), 0.1)
    rig.fake.fail_next(rig.key(0), 500, message="boom")
    rig.fake.gone.add(rig.ids[1])
    await rig.record(ALERT, rig.dest(0), rig.dest(1))
    await rig.drain()
    await rig.writer.run(rig.store.database.conn.execute, "PRAGMA wal_checkpoint(FULL)")
    stored = b"".join(p.read_bytes() for p in rig.writer_files())
    assert b"discord-webhook:" + rig.ids[1].encode() in stored  # the id names it...
    for token in rig.fake.webhooks.values():  # ...the token (the secret) never appears
        assert token not in caplog.text and token.encode() not in stored


def test_a_malformed_webhook_url_is_a_config_error_that_hides_it():
    secret = "https://discord.com/api/webhooks/notanid/" + "s" * 68
    with pytest.raises(ConfigError) as err:
        DiscordWebhookService(Settings(discord_webhook_urls=(secret,)))
    assert "entry 1" in str(err.value) and "s" * 68 not in str(err.value)


@pytest.mark.parametrize("configured, posted", [
    ("https://discord.com/api/webhooks/123456789012345678/tok-EN_1",
     "https://discord.com/api/v10/webhooks/123456789012345678/tok-EN_1"),
    ("https://discordapp.com/api/v9/webhooks/123/tok/",
     "https://discordapp.com/api/v9/webhooks/123/tok"),
    ("https://discord.com/api/webhooks/123/tok?thread_id=77&wait=false",
     "https://discord.com/api/v10/webhooks/123/tok?thread_id=77"),
])
def test_webhook_urls_are_posted_to_a_versioned_path(configured, posted):
    hook = parse_webhook_url(configured)
    assert (hook.url, hook.token) == (posted, posted.split("/")[-1].split("?")[0])
    assert hook.token not in repr(hook)


async def test_a_thread_id_in_the_url_reaches_discord_with_wait(rig):
    hooks = DiscordWebhookService(
        Settings(discord_webhook_urls=(rig.fake.add_webhook() + "?thread_id=77",)), limits=QUICK)
    try:
        (hook,) = hooks.webhooks.values()
        await hooks.notifier.send(ALERT, hook.destination)
    finally:
        await hooks.stop()
    (call,) = [c for c in rig.fake.calls if c.key == ("webhook", hook.id)]
    assert call.path.startswith("/api/v10/webhooks/") and call.query == {
        "thread_id": "77", "wait": "true"}


async def test_unlisted_webhook_stops_and_a_relisted_one_resumes(rig):
    await rig.writer.run(register_webhooks, rig.store, rig.ids[1:], 0)
    assert not (await rig.sub("discord-webhook", rig.ids[0])).active
    await rig.writer.run(register_webhooks, rig.store, rig.ids, 0)
    assert (await rig.sub("discord-webhook", rig.ids[0])).active


# -- many destinations -----------------------------------------------------------------------

async def many_hooks(fake: FakeDiscord, tmp_path: Path, n: int) -> tuple[Writer, Any, list[str]]:
    urls = tuple(fake.add_webhook() for _ in range(n))
    db = str(tmp_path / "m.db")
    writer = Writer(db)
    hooks = DiscordWebhookService(Settings(db=db, discord_webhook_urls=urls), limits=QUICK)
    await hooks.start(writer, live=False)
    ids = [parse_webhook_url(u).id for u in urls]
    return writer, hooks, ids


async def drain_hooks(writer: Writer, hooks: Any, alerts: list[Any], ids: list[str]) -> None:
    dests = [f"discord-webhook:{i}" for i in ids]
    await writer.run(Policy(writer.store, SignalParams()).record, alerts, dests,
                     int(time.time() * 1000))
    outbox = Outbox(writer.store, FAST)
    async with asyncio.timeout(15):
        while True:
            await deliver_due(outbox, {"discord-webhook": hooks.notifier, "ops": Ops()},
                              int(time.time() * 1000), writer.run)
            nxt = await writer.run(outbox.next_due_ms, ["discord-webhook"])
            if nxt is None:
                return
            await asyncio.sleep(max(0.01, nxt / 1000 - time.time()))


async def test_sixty_webhooks_at_once_stay_under_the_global_limit(tmp_path):
    async with FakeDiscord() as fake:  # 50 requests/s overall, as Discord
        writer, hooks, ids = await many_hooks(fake, tmp_path, 60)
        try:
            await drain_hooks(writer, hooks, [ALERT], ids)
        finally:
            await hooks.stop()
            writer.close()
    assert all(len(fake.sent_to(("webhook", i))) == 1 for i in ids)
    assert fake.invalid[429] == 0


async def test_sixty_dead_webhooks_cost_one_request_each(tmp_path):
    async with FakeDiscord() as fake:
        writer, hooks, ids = await many_hooks(fake, tmp_path, 60)
        fake.gone.update(ids)
        try:
            await drain_hooks(writer, hooks, [ALERT, OTHER], ids)
            await drain_hooks(writer, hooks, [make_alert(key="third", scope="SOL")], ids)
        finally:
            await hooks.stop()
            writer.close()
    assert fake.invalid[404] == 60 and len(fake.calls) == 60  # far under 10,000 per 10 min
