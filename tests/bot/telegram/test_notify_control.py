"""Per-chat notification control, through routing, the outbox and PTB to the fake Bot API:
each kind x severity on / silent / off, quiet hours in the chat's zone, and the digest."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.chat.delivery import deliver_due
from bot.commands import Ctx, dispatch
from bot.digest import period_end
from bot.policy import Policy
from bot.run.live import run_live
from bot.state.outbox import Outbox
from bot.state.subscriptions import Router, Subscription, Subscriptions
from bot.state.writer import Writer
from bot.telegram.delivery import TelegramLimits
from bot.telegram.service import TelegramService
from feeds.model import HOUR_MS, Candle, Side
from feeds.store import Store
from signals import SignalParams
from tests.helpers.charts import check_png
from tests.helpers.factories import make_alert, make_liq
from tests.helpers.fake_telegram import TOKEN, FakeBotApi, FakeLimits, telegram_settings

pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")


@dataclasses.dataclass
class Rig:
    fake: FakeBotApi
    writer: Writer
    service: TelegramService

    async def command(self, text: str, chat: str = "42") -> str:
        name, *args = text.lstrip("/").split()
        ctx = Ctx("telegram", chat, int(time.time() * 1000))
        reply = await self.writer.run(dispatch, self.writer.store, ctx, name, args)
        assert not reply.error, reply.text
        return reply.text

    async def route_and_deliver(self, *alerts: Any) -> None:
        def record() -> None:
            router = Router(self.writer.store, [], ["telegram"])
            Policy(self.writer.store, SignalParams()).record(
                list(alerts), router.destinations, int(time.time() * 1000))
        await self.writer.run(record)
        await deliver_due(Outbox(self.writer.store), {"telegram": self.service.notifier},
                          int(time.time() * 1000), self.writer.run)


@pytest.fixture
async def rig(tmp_path) -> AsyncIterator[Rig]:
    async with FakeBotApi(TOKEN, limits=FakeLimits(chat_per_s=0)) as fake:
        db = str(tmp_path / "n.db")
        writer = Writer(db)
        service = TelegramService(telegram_settings(fake, db),
                                  limits=TelegramLimits(timeout_s=1.0, chat_interval_s=0.01))
        try:
            async with asyncio.timeout(20):
                await service.start(writer, live=False)
                assert service.notifier.ready
                yield Rig(fake, writer, service)
        finally:
            await service.stop()
            writer.close()


def _alert(kind: str, severity: int, name: str, scope: str = "BTC") -> Any:
    return make_alert(key=f"{kind}|{scope}|3600000|0|{severity}", kind=kind, severity=severity,
                      severity_name=name, scope=scope)


async def test_each_kind_and_severity_is_on_silent_or_off(rig):
    await rig.command("/subscribe")
    assert "Silent: short squeeze notable." in await rig.command("/silent squeeze notable")
    assert "Off: long cascade large." in await rig.command("/mute cascade large")
    await rig.route_and_deliver(
        _alert("short_squeeze", 3, "extreme"), _alert("short_squeeze", 1, "notable"),
        _alert("long_cascade", 2, "large"), _alert("long_cascade", 1, "notable"))
    sent = {m["plain"].splitlines()[0]: m["disable_notification"] for m in rig.fake.sent}
    assert sent == {"🚨 SHORT SQUEEZE — BTC · extreme": False,
                    "🚨 SHORT SQUEEZE — BTC · notable": True,  # silent: no sound
                    "🩸 LONG CASCADE — BTC · notable": False}  # cascade large: off, not sent
    await rig.command("/unmute all")
    await rig.route_and_deliver(_alert("long_cascade", 2, "large", scope="ETH"))
    assert rig.fake.sent[-1]["plain"].startswith("🩸 LONG CASCADE — ETH · large")
    assert rig.fake.sent[-1]["disable_notification"] is False


async def test_quiet_hours_in_the_chats_zone_send_silently(rig):
    hour = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo")).hour
    await rig.command("/subscribe", "42")
    await rig.command("/subscribe", "43")
    inside = f"{(hour - 1) % 24:02d}-{(hour + 1) % 24:02d}"  # Tokyo's hour now is in it
    outside = f"{(hour + 2) % 24:02d}-{(hour + 3) % 24:02d}"
    said = await rig.command(f"/quiet {inside} Asia/Tokyo", "42")
    assert "Quiet hours" in said and "Asia/Tokyo" in said
    await rig.command(f"/quiet {outside} Asia/Tokyo", "43")
    await rig.route_and_deliver(_alert("short_squeeze", 3, "extreme"))
    silent = {str(m["chat_id"]): m["disable_notification"] for m in rig.fake.sent}
    assert silent == {"42": True, "43": False}


async def test_quiet_refuses_bad_hours_and_zones_in_one_line(rig):
    await rig.command("/subscribe")
    for text, says in [("/quiet 25-07", "'25-07' is not a span of hours"),
                       ("/quiet 23-07 Mars/Olympus", "'Mars/Olympus' is not a time zone")]:
        name, *args = text.lstrip("/").split()
        reply = await rig.writer.run(dispatch, rig.writer.store,
                                     Ctx("telegram", "42", 0), name, args)
        assert reply.error and reply.text.startswith(says) and "\n" not in reply.text


async def test_a_digest_is_delivered_with_totals_hours_alerts_and_price_after(fake_db):
    fake, db, end = fake_db
    stop = asyncio.Event()
    settings = telegram_settings(fake, db, venues=[], deliver_interval_s=0.2)
    task = asyncio.create_task(run_live(settings, stop=stop, notifiers={}, feeds=[],
                                        services=[TelegramService(settings, poll_timeout_s=0.5)]))
    try:
        async with asyncio.timeout(20):
            (digest,) = await fake.wait_sent(1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    check_png(digest["photo"])  # the digest carries its chart: the period shaded in a day or two
    lines = digest["plain"].splitlines()
    assert lines[0].startswith("🗞 4-hour digest · ") and lines[0].endswith(" UTC")
    assert lines[1] == "All coins: $13M liquidated in 4h, 92% shorts"
    hours = f"{datetime.fromtimestamp((end - 2 * HOUR_MS) / 1000, UTC):%H:%M}"
    assert lines[2] == "Shorts $12.00M · Longs $1.00M · 2 events"
    assert lines[3].startswith(f"Biggest hours: {hours} $12M")
    assert lines[4].startswith("Alerts sent here (1)")
    # Price from the alert's end (100) to the period's end (110): +10.0%; the candle after
    # the period's end (200) is the future and is not used.
    assert lines[5].endswith("🚨 Short squeeze BTC · extreme · $458M → BTC +10.0% since")
    store = Store(db)
    try:
        assert Subscriptions(store).get("telegram", "42").digest_ms == end
        rows = store.database.conn.execute("SELECT destination, status FROM outbox o "
                                           "JOIN alerts a ON a.key = o.alert_key "
                                           "WHERE a.kind = 'digest'").fetchall()
        assert rows == [("telegram:42", "sent")]  # through the outbox, once
    finally:
        store.close()


@pytest.fixture
async def fake_db(tmp_path) -> AsyncIterator[tuple[FakeBotApi, str, int]]:
    """A chat with a 4-hour digest due: the period that just ended holds liquidations, one
    alert sent to the chat, and candles before and after the period's end."""
    now = int(time.time() * 1000)
    db = str(tmp_path / "d.db")
    store = Store(db)
    sub = Subscription("telegram", "42", digest="4h")
    end = period_end(sub, now)
    start = end - 4 * HOUR_MS
    store.insert_liquidations([
        make_liq(ts_exchange_ms=start + 2 * HOUR_MS + 60_000, notional_usd=Decimal(12_000_000)),
        make_liq(ts_exchange_ms=start + 3 * HOUR_MS, position_side=Side.LONG,
                 notional_usd=Decimal(1_000_000)),
        # After the period's end: the next period's, never in this digest's sums.
        make_liq(ts_exchange_ms=end + 1_000, notional_usd=Decimal(50_000_000))])
    alert = make_alert(key="short_squeeze|BTC|3600000|0|3", scope="BTC",
                       start_ms=start, end_ms=start + HOUR_MS)
    store.insert_candles([
        Candle("binance", "BTC", start + HOUR_MS, 60_000, 100.0, 100.0, 100.0, 101.0),
        Candle("binance", "BTC", end - 60_000, 60_000, 109.0, 110.0, 109.0, 110.0),
        Candle("binance", "BTC", end, 60_000, 110.0, 200.0, 110.0, 200.0)])
    subs = Subscriptions(store)
    subs.put(dataclasses.replace(sub, digest_ms=start), 0)
    Policy(store, SignalParams()).record([alert], ["telegram:42"], start + HOUR_MS)
    store.database.conn.execute("UPDATE outbox SET status = 'sent'")
    store.close()
    async with FakeBotApi(TOKEN) as fake:
        yield fake, db, end


def test_daily_digests_end_at_midnight_in_the_chats_zone_and_4h_ones_on_utc_marks():
    now = int(datetime(2026, 12, 2, 10, 30, tzinfo=UTC).timestamp() * 1000)
    berlin = Subscription("telegram", "1", digest="daily", tz="Europe/Berlin")
    assert period_end(berlin, now) == int(datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
                                          .timestamp() * 1000)  # 00:00 in Berlin (UTC+1)
    four = Subscription("telegram", "1", digest="4h", tz="Europe/Berlin")
    assert period_end(four, now) == int(datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
                                        .timestamp() * 1000)
