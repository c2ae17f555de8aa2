"""Charts on Telegram, through the fake Bot API: an extreme alert arrives as one sendPhoto with
the alert as its caption, a caption past 1024 characters falls back to text, a failed photo
is drawn and sent again from the outbox, and `/chart` answers with a PNG."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from bot.charts import ChartSpec
from bot.render import render_text
from feeds.model import HOUR_MS
from feeds.store import Store
from tests.bot.telegram import test_delivery
from tests.bot.telegram.test_delivery import Rig
from tests.bot.telegram.test_service import Live
from tests.helpers.charts import check_png, seed_day
from tests.helpers.factories import ALERT, T0, make_alert
from tests.helpers.fake_telegram import TOKEN, FakeBotApi, fail, parse_html

pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")

rig = test_delivery.rig  # the delivery tests' fixture: a service on the fake, an outbox
BTC_EXTREME = make_alert(key="short_squeeze|BTC|3600000|0|3", scope="BTC")


async def _seeded(rig: Rig) -> None:
    await rig.writer.run(seed_day, rig.store, ALERT.end_ms)


async def test_extreme_alert_arrives_as_a_photo_with_the_alert_as_caption(rig):
    await _seeded(rig)
    await rig.record(BTC_EXTREME, 42)
    assert await rig.deliver() == 1
    (msg,) = rig.fake.sent
    assert [c.method for c in rig.fake.calls if c.chat == "42"] == ["sendPhoto"]
    assert msg["parse_mode"] == "HTML" and msg["caption"].startswith("<b>🚨 SHORT SQUEEZE — BTC")
    assert parse_html(msg["caption"]) == render_text(BTC_EXTREME)
    assert "#BTC #squeeze" in msg["plain"]
    check_png(msg["photo"])
    assert (await rig.rows())["telegram:42"][:2] == ("sent", 1)


async def test_one_alert_to_many_chats_is_drawn_once(rig):
    await _seeded(rig)
    await rig.record(BTC_EXTREME, 1, 2, 3)
    assert await rig.deliver() == 3
    photos = {m["photo"] for m in rig.fake.sent}
    assert len(photos) == 1 and rig.service.notifier.charts.draws == 1


async def test_a_caption_past_1024_characters_goes_as_text(rig):
    await _seeded(rig)
    long = dataclasses.replace(BTC_EXTREME, key="long-caption",
                               track_record="after 37 similar: " + "x" * 1100)
    await rig.record(long, 42)
    assert await rig.deliver() == 1
    assert [c.method for c in rig.fake.calls if c.chat == "42"] == ["sendMessage"]
    assert rig.fake.sent[0]["plain"] == render_text(long)


async def test_alerts_below_extreme_and_alerts_with_nothing_to_draw_go_as_text(rig):
    await _seeded(rig)
    large = dataclasses.replace(BTC_EXTREME, key="k2", severity=2, severity_name="large")
    nothing = dataclasses.replace(BTC_EXTREME, key="k3", scope="DOGE")  # no DOGE data
    await rig.record(large, 42)
    await rig.record(nothing, 43)
    assert await rig.deliver() == 2
    assert {c.method for c in rig.fake.calls if c.chat in ("42", "43")} == {"sendMessage"}


async def test_a_photo_that_failed_is_drawn_again_and_sent_on_the_retry(rig):
    await _seeded(rig)
    rig.fake.next_reply["42"] = [fail(500, "Internal Server Error")]
    await rig.record(BTC_EXTREME, 42)
    rig.service.notifier.charts._cache.clear()  # as after a restart: nothing drawn yet
    await rig.drain()
    sends = [c for c in rig.fake.calls if c.chat == "42"]
    assert [c.method for c in sends] == ["sendPhoto", "sendPhoto"]
    assert [c.status for c in sends] == [500, 200]
    check_png(rig.fake.sent[0]["photo"])


async def test_markup_refused_in_a_caption_is_resent_plain_with_the_photo(rig):
    await _seeded(rig)
    rig.fake.next_reply["42"] = [fail(400, "Bad Request: can't parse entities: oops")]
    await rig.record(BTC_EXTREME, 42)
    assert await rig.deliver() == 1
    (msg,) = rig.fake.sent
    assert "parse_mode" not in msg and msg["caption"] == render_text(BTC_EXTREME)
    check_png(msg["photo"])


def test_chart_spec_round_trips_and_names_the_alert_window():
    spec = ChartSpec.of(BTC_EXTREME)
    assert ChartSpec.parse(spec.key) == spec
    assert (spec.start_ms, spec.end_ms) == (T0, T0 + HOUR_MS)
    assert spec.span_ms == 24 * HOUR_MS
    assert ChartSpec("BTC", 24 * HOUR_MS, 0).span_ms == 48 * HOUR_MS


async def test_chart_command_answers_with_a_png(tmp_path):
    db = str(tmp_path / "c.db")
    async with FakeBotApi(TOKEN) as fake:
        bot = Live(fake, db)
        async with asyncio.timeout(30):
            await bot.ask("/help", 7)  # connected and polling
            store = Store(db)
            seed_day(store, int(time.time() * 1000))
            store.close()
            caption = await bot.ask("/chart BTC 4h", 42)
            nothing = await bot.ask("/chart DOGE", 42)
            bad = await bot.ask("/chart BTC 7d", 42)
            await bot.stop()
    photo = next(m for m in fake.sent if "photo" in m)
    check_png(photo["photo"])
    assert caption.startswith("BTC: ") and "liquidated in 4h" in caption
    assert "Largest: " in caption  # /liqs and /chart name the window's biggest event
    assert nothing.startswith("'DOGE' is not a coin liqbot has seen")  # the shared grammar
    assert bad.startswith("unknown window '7d'")


async def test_matplotlib_is_imported_ahead_once_and_only_after_the_start(tmp_path):
    from bot.charts import ChartMaker
    from bot.state.writer import Writer

    writer = Writer(str(tmp_path / "w.db"))
    try:
        maker = ChartMaker(writer.run, writer.store)
        maker.warm_up(after_s=0.2)
        maker.warm_up(after_s=0.2)  # Telegram and Discord both ask: one import
        assert maker._warm is None  # not at once: the run's first seconds are busy
        await asyncio.sleep(0.4)
        assert maker._warm is not None
        await maker._warm
        maker.close()
    finally:
        writer.close()


async def test_a_chart_answer_past_the_caption_limit_is_the_photo_then_the_text(rig):
    await _seeded(rig)
    spec = ChartSpec.of(BTC_EXTREME)
    await rig.service.notifier.send_chart_reply("42", spec, "x" * 1100, None)
    await rig.service.notifier.send_chart_reply("42", spec, "short caption", None)
    calls = [(c.method, c.params.get("caption")) for c in rig.fake.calls if c.chat == "42"]
    assert calls == [("sendPhoto", None), ("sendMessage", None), ("sendPhoto", "short caption")]
    assert rig.fake.sent[1]["plain"] == "x" * 1100
    assert rig.service.notifier.charts.draws == 1  # the same window: drawn once


async def test_a_quiet_chat_gets_its_photo_silently(rig):
    await _seeded(rig)
    from bot.state.subscriptions import Subscription, Subscriptions

    await rig.writer.run(Subscriptions(rig.store).put, Subscription("telegram", "42",
                                                                    quiet=True), 0)
    await rig.record(BTC_EXTREME, 42)
    assert await rig.deliver() == 1
    assert "photo" in rig.fake.sent[0] and rig.fake.sent[0]["disable_notification"] is True
