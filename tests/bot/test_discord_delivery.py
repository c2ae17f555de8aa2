"""Discord delivery through the outbox against the fake: webhooks and bot channels, every error
answer mapped to one outcome (RELIABILITY.md items 14-17, 19, 22, 23)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Writer
from bot.config import ConfigError, Settings
from bot.discord import DiscordService, DiscordWebhookService, register_webhooks
from bot.discord_delivery import DiscordLimits, parse_webhook_url
from bot.notify import deliver_due
from bot.policy import Outbox, Policy, PolicyConfig
from bot.subscriptions import Router, Subscription, Subscriptions
from signals import SignalParams
from tests.helpers.factories import make_alert
from tests.helpers.fake_discord import (
    CHANNEL_ID,
    TOKEN,
    FakeDiscord,
    FakeLimits,
    payload_problems,
)

FAST = PolicyConfig(retry_base_ms=50, retry_cap_ms=400, max_attempts=4)
QUICK = DiscordLimits(inline_wait_s=1.0, backoff_s=0.05, timeout_s=2.0)
ALERT = make_alert(track_record="after 37 similar: BTC median +1.8 % at 4h")
OTHER = make_alert(key="second", scope="ETH")


class Ops:
    """Records operator notices; serves no destination."""

    name = "ops"

    def __init__(self) -> None:
        self.notices: list[str] = []

    async def send(self, alert: Any, destination: str) -> None:
        raise AssertionError("ops receives notices only")

    async def notice(self, text: str) -> None:
        self.notices.append(text)

    async def close(self) -> None:
        return None


@dataclasses.dataclass
class Rig:
    fake: FakeDiscord
    writer: Writer
    hooks: DiscordWebhookService
    bot: DiscordService
    ops: Ops
    ids: list[str]  # webhook ids, in configured order
    hooks_db: str = ""

    @property
    def store(self) -> Any:
        return self.writer.store

    def writer_files(self) -> list[Path]:
        db = Path(self.hooks_db)
        return [f for f in (db, Path(f"{db}-wal")) if f.exists()]

    def dest(self, i: int = 0) -> str:
        return f"discord-webhook:{self.ids[i]}"

    def key(self, i: int = 0) -> tuple[str, str]:
        return ("webhook", self.ids[i])

    def posts(self, i: int = 0) -> list[Any]:
        return [c for c in self.fake.calls if c.key == self.key(i)]

    async def record(self, alert: Any, *destinations: str) -> None:
        def go() -> None:
            Policy(self.store, SignalParams()).record([alert], list(destinations),
                                                      int(time.time() * 1000))
        await self.writer.run(go)

    async def deliver(self) -> int:
        notifiers = {"discord-webhook": self.hooks.notifier, "discord": self.bot.notifier,
                     "ops": self.ops}
        return await deliver_due(Outbox(self.store, FAST), notifiers, int(time.time() * 1000),
                                 self.writer.run)

    async def drain(self, within_s: float = 8.0) -> None:
        """Deliver until nothing is pending, sleeping until the next item is due."""
        async with asyncio.timeout(within_s):
            while True:
                await self.deliver()
                nxt = await self.writer.run(Outbox(self.store, FAST).next_due_ms,
                                            ["discord-webhook", "discord"])
                if nxt is None:
                    return
                await asyncio.sleep(max(0.01, nxt / 1000 - time.time()))

    async def rows(self) -> dict[tuple[str, str], tuple[Any, ...]]:
        def go() -> dict[tuple[str, str], tuple[Any, ...]]:
            cur = self.store.conn.execute("SELECT alert_key, destination, status, attempts, "
                                          "maybe_sent, next_ms FROM outbox")
            return {(r[0], r[1]): tuple(r[2:]) for r in cur}
        return await self.writer.run(go)

    async def sub(self, platform: str, chat: str) -> Subscription | None:
        return await self.writer.run(Subscriptions(self.store).get, platform, chat)


@pytest.fixture
async def rig(tmp_path, monkeypatch, request) -> AsyncIterator[Rig]:
    fake_limits, limits = getattr(request, "param", (FakeLimits(), QUICK))
    async with FakeDiscord(limits=fake_limits) as fake:
        fake.point_discord_py(monkeypatch)
        urls = (fake.add_webhook(), fake.add_webhook())
        db = str(tmp_path / "d.db")
        settings = Settings(db=db, discord_token=TOKEN, discord_webhook_urls=urls,
                            discord_channel_ids=(CHANNEL_ID,))
        writer = Writer(db)
        hooks = DiscordWebhookService(settings, limits=limits)
        bot = DiscordService(settings, limits=limits)
        try:
            async with asyncio.timeout(20):
                await hooks.start(writer, live=False)
                await bot.start(writer, live=False)
                assert bot.notifier.ready
                yield Rig(fake, writer, hooks, bot, Ops(), [parse_webhook_url(u).id for u in urls],
                          db)
        finally:
            await hooks.stop()
            await bot.stop()
            writer.close()


def with_limits(fake: FakeLimits, ours: DiscordLimits) -> Any:
    return pytest.mark.parametrize("rig", [(fake, ours)], indirect=True, ids=[""])


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
        row = await writer.run(lambda: writer.store.conn.execute(
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
    await rig.writer.run(rig.store.conn.execute, "PRAGMA wal_checkpoint(FULL)")
    stored = b"".join(p.read_bytes() for p in rig.writer_files())
    assert b"discord-webhook:" + rig.ids[1].encode() in stored  # the id names it...
    for token in rig.fake.webhooks.values():  # ...the token (the secret) never appears
        assert token not in caplog.text and token.encode() not in stored


def test_a_malformed_webhook_url_is_a_config_error_that_hides_it():
    secret = "https://discord.com/api/webhooks/notanid/" + "s" * 68
    with pytest.raises(ConfigError) as err:
        DiscordWebhookService(Settings(discord_webhook_urls=(secret,)))
    assert "entry 1" in str(err.value) and "s" * 68 not in str(err.value)


async def test_unlisted_webhook_stops_and_a_relisted_one_resumes(rig):
    await rig.writer.run(register_webhooks, rig.store, rig.ids[1:], 0)
    assert not (await rig.sub("discord-webhook", rig.ids[0])).active
    await rig.writer.run(register_webhooks, rig.store, rig.ids, 0)
    assert (await rig.sub("discord-webhook", rig.ids[0])).active


# -- bot channels ----------------------------------------------------------------------------

CHANNEL = f"discord:{CHANNEL_ID}"
CKEY = ("channel", CHANNEL_ID)


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
        settings = Settings(db=db, discord_token=wrong, discord_webhook_urls=(fake.add_webhook(),))
        writer = Writer(db)
        bot, hooks = DiscordService(settings), DiscordWebhookService(settings)
        try:
            await bot.start(writer, live=False)
            await hooks.start(writer, live=False)
            assert not bot.notifier.ready and await hooks.wait_ready(0)
            assert "rejected the bot token" in caplog.text and wrong not in caplog.text
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
