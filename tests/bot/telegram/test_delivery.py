"""Telegram delivery through the outbox against the fake Bot API: every error answer maps to
one outcome (RELIABILITY.md items 14-18): defer, disable, migrate, plain-text resend, retry."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)

from bot.chat.delivery import deliver_due
from bot.policy import Policy, PolicyConfig
from bot.render import render_text
from bot.state.outbox import Outbox
from bot.state.subscriptions import Subscription, Subscriptions
from bot.state.writer import Writer
from bot.telegram.app import use_timedelta_periods
from bot.telegram.delivery import TelegramLimits, classify
from bot.telegram.service import TelegramService
from signals import SignalParams
from tests.helpers.factories import Ops, make_alert
from tests.helpers.fake_telegram import (
    TOKEN,
    FakeBotApi,
    FakeLimits,
    fail,
    parse_html,
    telegram_settings,
)

pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")
FAST = PolicyConfig(retry_base_ms=50, retry_cap_ms=400, max_attempts=4)



@dataclasses.dataclass
class Rig:
    fake: FakeBotApi
    writer: Writer
    service: TelegramService
    ops: Ops
    config: PolicyConfig = FAST

    @property
    def store(self) -> Any:
        return self.writer.store

    def outbox(self) -> Outbox:
        return Outbox(self.store, self.config)

    async def record(self, alert: Any, *chats: int | str) -> None:
        def go() -> None:
            subs = Subscriptions(self.store)
            for c in chats:
                if subs.get("telegram", str(c)) is None:
                    subs.put(Subscription("telegram", str(c)), 0)
            Policy(self.store, SignalParams()).record([alert], [f"telegram:{c}" for c in chats],
                                                      int(time.time() * 1000))
        await self.writer.run(go)

    async def deliver(self) -> int:
        notifiers = {"telegram": self.service.notifier, "ops": self.ops}
        return await deliver_due(self.outbox(), notifiers, int(time.time() * 1000),
                                 self.writer.run)

    async def drain(self, within_s: float = 8.0) -> None:
        """Deliver until nothing is pending, sleeping until the next item is due."""
        async with asyncio.timeout(within_s):
            while True:
                await self.deliver()
                nxt = await self.writer.run(self.outbox().next_due_ms, ["telegram"])
                if nxt is None:
                    return
                await asyncio.sleep(max(0.01, nxt / 1000 - time.time()))

    async def rows(self) -> dict[str, tuple[Any, ...]]:
        def go() -> dict[str, tuple[Any, ...]]:
            cur = self.store.database.conn.execute(
                "SELECT destination, status, attempts, maybe_sent, error FROM outbox")
            return {r[0]: tuple(r[1:]) for r in cur}
        return await self.writer.run(go)

    async def sub(self, chat: int | str) -> Subscription | None:
        return await self.writer.run(Subscriptions(self.store).get, "telegram", str(chat))


@pytest.fixture
async def rig(tmp_path, request) -> AsyncIterator[Rig]:
    fake_limits, limits = getattr(request, "param", RELAXED)
    async with FakeBotApi(TOKEN, limits=fake_limits) as fake:
        writer = Writer(str(tmp_path / "d.db"))
        service = TelegramService(telegram_settings(fake, str(tmp_path / "d.db")), limits=limits)
        try:
            async with asyncio.timeout(20):
                await service.start(writer, live=False)
                assert service.notifier.ready
                yield Rig(fake, writer, service, Ops())
        finally:
            await service.stop()
            writer.close()


# Per-chat pacing has tests of its own; elsewhere it would only make the suite slow.
RELAXED = (FakeLimits(chat_per_s=0), TelegramLimits(timeout_s=1.0, chat_interval_s=0.01))


def with_limits(fake: FakeLimits, ours: TelegramLimits) -> Any:
    return pytest.mark.parametrize("rig", [(fake, ours)], indirect=True, ids=[""])


ALERT = make_alert(track_record="after 37 similar: BTC <median> +1.8 % & up 62 % of the time")


async def test_alert_goes_out_as_html_with_every_dynamic_string_escaped(rig):
    await rig.record(ALERT, 42)
    assert await rig.deliver() == 1
    (msg,) = rig.fake.sent
    assert msg["parse_mode"] == "HTML" and "&lt;median&gt;" in msg["text"]
    assert msg["text"].startswith("<b>🚨 SHORT SQUEEZE — market-wide")
    assert parse_html(msg["text"]) == render_text(ALERT)  # the fake's strict parser agrees
    assert (await rig.rows())["telegram:42"][:2] == ("sent", 1)


async def test_quiet_subscription_sends_silently(rig):
    quiet = Subscription("telegram", "42", quiet=True)
    await rig.writer.run(Subscriptions(rig.store).put, quiet, 0)
    await rig.record(ALERT, 42)
    await rig.deliver()
    assert rig.fake.sent[0]["disable_notification"] is True


async def test_retry_after_defers_only_that_chat_and_is_honoured(rig):
    rig.fake.next_reply["2"] = [fail(429, "Too Many Requests: retry after 1", retry_after=1)]
    await rig.record(ALERT, 1, 2, 3)
    t0 = time.monotonic()
    assert await rig.deliver() == 2  # chats 1 and 3 went on
    rows = await rig.rows()
    assert rows["telegram:2"][:3] == ("pending", 0, 0)  # no attempt counted, nothing maybe sent
    await rig.drain()
    assert rig.fake.sent_to(2) and not rig.fake.early
    late = [m["t"] for m in rig.fake.sent if m["chat_id"] == 2][0]
    others = max(m["t"] for m in rig.fake.sent if m["chat_id"] != 2)
    assert late - rig.fake.rate_limited[0].t >= 1.0 and others < t0 + 1  # the others never waited


@pytest.mark.parametrize("answer", [
    fail(403, "Forbidden: bot was blocked by the user"),
    fail(403, "Forbidden: bot was kicked from the group chat"),
    fail(400, "Bad Request: chat not found"),
])
async def test_dead_chat_costs_one_request_disables_it_and_tells_the_operator(rig, answer):
    rig.fake.always["7"] = answer
    await rig.record(ALERT, 7, 8)
    await rig.record(make_alert(key="second", scope="ETH"), 7, 8)
    await rig.drain()
    assert [c.chat for c in rig.fake.calls if c.method == "sendMessage"].count("7") == 1
    sub = await rig.sub(7)
    assert sub is not None and not sub.active
    rows = await rig.rows()
    assert rows["telegram:7"][0] == "dead" and rows["telegram:8"][0] == "sent"
    assert len(rig.ops.notices) == 1 and "telegram:7 disabled" in rig.ops.notices[0]
    assert TOKEN not in rig.ops.notices[0]


async def test_migrated_group_moves_subscription_and_gets_the_message_once(rig):
    new_id = -1001234567890123  # beyond 2^31, as real supergroup ids are
    rig.fake.next_reply["-4242"] = [
        fail(400, "Bad Request: group chat was upgraded to a supergroup chat",
             migrate_to_chat_id=new_id)]
    await rig.writer.run(Subscriptions(rig.store).put,
                         Subscription("telegram", "-4242", min_usd=5e6), 0)
    await rig.record(ALERT, -4242)
    await rig.drain()
    assert len(rig.fake.sent_to(new_id)) == 1 and rig.fake.sent_to(-4242) == []
    assert await rig.sub(-4242) is None
    moved = await rig.sub(new_id)
    assert moved is not None and moved.active and moved.min_usd == 5e6  # filters survive
    assert (await rig.rows())[f"telegram:{new_id}"][0] == "sent"


async def test_rejected_markup_gets_exactly_one_plain_text_resend(rig):
    rig.fake.next_reply["42"] = [fail(400, "Bad Request: can't parse entities: unsupported "
                                           "start tag \"median\" at byte offset 80")]
    await rig.record(ALERT, 42)
    assert await rig.deliver() == 1
    sends = [c for c in rig.fake.calls if c.method == "sendMessage"]
    assert [c.params.get("parse_mode") for c in sends] == ["HTML", None]
    assert rig.fake.sent_to(42) == [render_text(ALERT)]


@with_limits(RELAXED[0], TelegramLimits(timeout_s=0.3, chat_interval_s=0.01))
async def test_timeout_after_the_write_is_retried_until_acknowledged_and_counted(rig):
    rig.fake.delays["42"] = [0.5]  # the server takes the message, answers too late
    rig.fake.delays["43"] = [0.5, 0.5]  # twice: the third copy is acknowledged
    await rig.record(ALERT, 42, 43)
    await rig.deliver()
    rows = await rig.rows()
    assert rows["telegram:42"][:3] == ("pending", 1, 1)  # maybe sent once
    await rig.drain()
    rows = await rig.rows()
    assert len(rig.fake.sent_to(42)) == 2 and rows["telegram:42"][:3] == ("sent", 2, 2)
    assert len(rig.fake.sent_to(43)) == 3 and rows["telegram:43"][:3] == ("sent", 3, 3)
    assert [c.chat for c in rig.fake.calls].count("43") == 3  # every copy counted


async def test_server_errors_back_off_then_give_up_with_one_notice(rig):
    await rig.record(ALERT, 42)
    rig.fake.down = True  # every call answers 502
    await rig.drain()
    calls = [c.t for c in rig.fake.calls if c.chat == "42"]
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert len(calls) == FAST.max_attempts and gaps == sorted(gaps)  # backing off
    row = (await rig.rows())["telegram:42"]
    assert row[:3] == ("dead", 4, 0)  # a 502 is an answer: nothing maybe delivered
    assert len(rig.ops.notices) == 1 and "gave up" in rig.ops.notices[0]


async def test_delivery_deadline_turns_retries_dead(rig):
    rig.config = dataclasses.replace(FAST, deadline_ms=150, max_attempts=100)
    await rig.record(ALERT, 42)
    rig.fake.down = True
    await rig.drain()
    assert (await rig.rows())["telegram:42"][0] == "dead"
    assert len([c for c in rig.fake.calls if c.chat == "42"]) < 6


async def test_refused_connection_is_retried_and_never_counts_as_maybe_sent(rig):
    await rig.record(ALERT, 42)
    await rig.fake.__aexit__()  # the server is gone: connects are refused
    await rig.deliver()
    status, attempts, maybe, error = (await rig.rows())["telegram:42"]
    assert (status, attempts, maybe) == ("pending", 1, 0)
    assert "ClientConnectorError" in error and TOKEN not in error


@with_limits(FakeLimits(overall_per_s=20, chat_per_s=1, group_per_min=20),
                    TelegramLimits(messages_per_s=20))
async def test_burst_to_many_chats_stays_under_the_overall_limit(rig):
    chats = list(range(1, 31)) + [-(10**12 + i) for i in range(10)]  # privates and groups
    await rig.record(ALERT, *chats)
    t0 = time.monotonic()
    await rig.drain(within_s=10)
    assert sorted(int(m["chat_id"]) for m in rig.fake.sent) == sorted(chats)
    assert rig.fake.rate_limited == [] and rig.fake.early == []
    assert time.monotonic() - t0 >= (len(chats) - 1) / 20  # paced, not burst


@with_limits(FakeLimits(), TelegramLimits(timeout_s=2.0))
async def test_one_chat_gets_one_message_per_second(rig):
    for i in range(3):
        await rig.record(make_alert(key=f"k{i}", scope=f"C{i}"), 42)
    await rig.drain()
    times = [m["t"] for m in rig.fake.sent]
    assert len(times) == 3 and rig.fake.rate_limited == []
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1.0


async def test_a_chat_gets_its_alerts_in_order_even_behind_a_retry(rig):
    first, second = make_alert(key="first", scope="AAA"), make_alert(
        key="second", scope="BBB", end_ms=ALERT.end_ms + 60_000)
    rig.fake.next_reply["42"] = [fail(500, "Internal Server Error")]
    await rig.record(first, 42)
    assert await rig.deliver() == 0  # failed: backing off
    await rig.record(second, 42)
    assert await rig.deliver() == 0  # due, but waits behind the first
    await rig.drain()
    titles = [m.splitlines()[0] for m in rig.fake.sent_to(42)]
    assert [t.split(" — ")[1].split(" · ")[0] for t in titles] == ["AAA", "BBB"]


async def test_an_item_maybe_sent_is_retried_until_acknowledged_then_counts_its_copies(rig):
    await rig.record(ALERT, 42)
    await rig.writer.run(rig.store.database.conn.execute,  # two crashes while it was in flight
                         "UPDATE outbox SET maybe_sent = 2")
    await rig.deliver()
    status, _, maybe, _ = (await rig.rows())["telegram:42"]
    assert (status, maybe) == ("sent", 3)  # at least once; 3 requests left in all
    assert len(rig.fake.sent) == 1


async def test_an_item_sent_five_times_unacknowledged_is_given_up_not_sent_again(rig):
    await rig.record(ALERT, 42)
    await rig.writer.run(rig.store.database.conn.execute,  # five crashes while in flight
                         "UPDATE outbox SET maybe_sent = 5")
    await rig.deliver()
    status, _, maybe, error = (await rig.rows())["telegram:42"]
    assert (status, maybe) == ("dead", 5) and "without an acknowledgement" in error
    assert rig.fake.sent == []


@with_limits(FakeLimits(overall_per_s=100, chat_per_s=0, group_per_min=600),
             TelegramLimits(messages_per_s=100, group_per_min=600, chat_interval_s=0.01))
async def test_group_messages_are_paced_by_the_group_limit(rig):
    # 20/min per group, scaled up 30x so the test takes a second, not a minute.
    for i in range(8):
        await rig.record(make_alert(key=f"g{i}", scope=f"C{i}"), -1001777)
    await rig.drain()
    times = [m["t"] for m in rig.fake.sent]
    assert len(times) == 8 and rig.fake.rate_limited == []
    assert min(b - a for a, b in itertools.pairwise(times)) >= 60 / 600


# -- the mapping itself, without a server ---------------------------------------------------


def _with_cause(exc: Exception, cause: Exception) -> Exception:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize("exc, expected", [
    # Built in the test, once the service's opt-in to timedelta periods is in place.
    (lambda: RetryAfter(3), {"retry_after_s": 3.0}),
    (ChatMigrated(-1009999999999), {"moved_to": "telegram:-1009999999999"}),
    (Forbidden("Forbidden: bot was blocked by the user"), {"gone": True}),
    (BadRequest("Chat not found"), {"gone": True}),
    (BadRequest("Message is too long"), {"permanent": True}),
    (BadRequest("Can't parse entities: x"), {"permanent": True}),
    (_with_cause(TimedOut(), aiohttp.SocketTimeoutError("read")), {"maybe_sent": True}),
    (_with_cause(TimedOut(), aiohttp.ConnectionTimeoutError("connect")), {}),
    (_with_cause(NetworkError("x"), aiohttp.ServerDisconnectedError()), {"maybe_sent": True}),
    (_with_cause(NetworkError("x"), aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, False, None, None, None),
        OSError(111, "refused"))), {}),
    (NetworkError("Bad Gateway"), {}),
    (InvalidToken("Not Found"), {}),
])
def test_every_bot_api_error_maps_to_one_outcome(exc, expected):
    use_timedelta_periods()
    out = classify(exc() if callable(exc) else exc, str)
    flags = {"permanent": False, "gone": False, "retry_after_s": None, "moved_to": None,
             "maybe_sent": False}
    assert {k: getattr(out, k) for k in flags} == {**flags, **expected}


async def test_operator_notices_reach_the_admin_chats_and_a_dead_one_is_only_logged(
        tmp_path, caplog):
    async with FakeBotApi(TOKEN, limits=RELAXED[0]) as fake:
        fake.always["-100777"] = fail(403, "Forbidden: bot was kicked from the group chat")
        settings = telegram_settings(fake, str(tmp_path / "n.db"),
                                     telegram_admin_chat_ids="900,-100777")
        writer = Writer(settings.db)
        service = TelegramService(settings, limits=RELAXED[1])
        try:
            async with asyncio.timeout(20):
                await service.start(writer, live=False)
                await service.notifier.notice("⚠️ binance: down for 2m (no connection)")
        finally:
            await service.stop()
            writer.close()
    assert [(m["chat_id"], m["text"]) for m in fake.sent] == [
        (900, "⚠️ binance: down for 2m (no connection)")]
    assert "notice to admin chat -100777 failed: Forbidden" in caplog.text
    assert TOKEN not in caplog.text
