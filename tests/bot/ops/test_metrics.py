"""`/metrics`: strict Prometheus text, counters that move, loop lag, delivery timing."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time

import pytest

from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.ops.http import LoopLagProbe, start_ops_server
from bot.ops.metrics import CONTENT_TYPE, Metrics, metered
from bot.run.replay import run_replay
from feeds.history.replay import load_replay
from tests.bot.ops.exposition import parse_metrics
from tests.bot.ops.replay_data import write_events
from tests.bot.ops.support import LISTEN, StubFeed, get
from tests.helpers.factories import make_alert, make_liq
from tests.helpers.fake_ws import FakeExchange, wait_until


async def test_metrics_parse_and_counters_move():
    metrics = Metrics()
    metrics.bind_feeds([StubFeed("binance", True), StubFeed("binance", False),
                        StubFeed("okx", False)], started_s=1_767_225_600.0)
    server = await start_ops_server(LISTEN, metrics, lambda: True)
    try:
        async with asyncio.timeout(10):
            status, ctype, before = await get(server.url + "/metrics")
            assert status == 200 and ctype == CONTENT_TYPE
            b = parse_metrics(before)
            metrics.observe_events([make_liq(), make_liq(exchange="okx", ts_recv_ms=make_liq()
                                                         .ts_exchange_ms + 1500)])
            metrics.observe_gap("okx", 0, None)
            metrics.observe_gap("okx", 0, 2500)
            metrics.observe_alerts(2)
            metrics.observe_delivery("console", True, 0.02)
            metrics.observe_delivery("telegram", False, 1.5)
            metrics.set_outbox({"pending": 3})
            await asyncio.sleep(0.1)  # the loop probe gets a few samples
            a = parse_metrics((await get(server.url + "/metrics"))[2])
    finally:
        await server.stop()
    okx, binance = (("venue", "okx"),), (("venue", "binance"),)
    # Every configured venue is there from start: a rule can fire for one that never sent.
    for name in ("liqbot_events_total", "liqbot_events_usd_total", "liqbot_feed_gaps_total",
                 "liqbot_feed_gap_seconds_total", "liqbot_feed_lag_seconds_count"):
        assert b[name] == {binance: 0, okx: 0}, name
    assert b["liqbot_feed_last_event_timestamp_seconds"] == {binance: 1_767_225_600.0,
                                                             okx: 1_767_225_600.0}
    assert a["liqbot_events_total"] == {binance: 1, okx: 1}
    assert a["liqbot_events_usd_total"][okx] == 100_000
    assert a["liqbot_feed_lag_seconds_count"][okx] == 1
    assert a["liqbot_feed_lag_seconds_sum"][okx] == 1.5
    assert a["liqbot_feed_gaps_total"][okx] == 1 and a["liqbot_feed_gap_seconds_total"][okx] == 2.5
    assert b["liqbot_alerts_total"][()] == 0 and a["liqbot_alerts_total"][()] == 2
    assert a["liqbot_alerts_sent_total"][(("platform", "console"),)] == 1
    assert a["liqbot_alerts_failed_total"][(("platform", "telegram"),)] == 1
    assert a["liqbot_delivery_latency_seconds_count"][
        (("outcome", "failed"), ("platform", "telegram"))] == 1
    assert a["liqbot_outbox_items"] == {(("status", "dead"),): 0, (("status", "pending"),): 3}
    assert "liqbot_outbox_items" not in b  # no count before the first one was taken
    assert a["liqbot_feed_connected"] == {(("venue", "binance"),): 1, okx: 0}
    assert a["liqbot_feed_reconnects_total"][(("venue", "binance"),)] == 4
    assert a["liqbot_event_loop_lag_seconds_count"][()] > b.get(
        "liqbot_event_loop_lag_seconds_count", {}).get((), 0)
    assert a["liqbot_healthy"][()] == 1 and a["liqbot_asyncio_tasks"][()] >= 1
    assert a["process_resident_memory_bytes"][()] > 0 and a["process_open_fds"][()] > 0


def test_label_values_are_escaped_and_round_trip():
    metrics = Metrics()
    odd = 'bi"nan\\ce\nx'
    metrics.observe_gap(odd, 0, None)
    assert parse_metrics(metrics.render())["liqbot_feed_gaps_total"][(("venue", odd),)] == 1


async def test_loop_probe_sees_a_blocked_loop():
    probe = LoopLagProbe()
    task = asyncio.create_task(probe.run())
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # noqa: ASYNC251 (the point: block the loop)
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert probe.max_s() >= 0.15 and probe.p99_s() <= probe.max_s()


async def test_metered_notifier_counts_and_passes_attributes_through():
    class Flaky:
        name, ready, parallel = "telegram", True, 4

        def __init__(self):
            self.calls = 0

        async def send(self, alert, destination):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("boom")

    metrics = Metrics()
    inner = Flaky()
    wrapped = metered({"telegram": inner}, metrics)["telegram"]
    await wrapped.send(make_alert(), "telegram:1")
    with pytest.raises(RuntimeError):
        await wrapped.send(make_alert(), "telegram:1")
    assert (wrapped.ready, wrapped.parallel, inner.calls) == (True, 4, 2)
    assert metrics.value("liqbot_alerts_sent_total", platform="telegram") == 1
    assert metrics.value("liqbot_alerts_failed_total", platform="telegram") == 1
    assert metered({"c": Flaky()}, None)["c"].__class__.__name__ == "Flaky"


async def test_metrics_counters_move_during_a_replay(tmp_path):
    data = load_replay([str(write_events(tmp_path / "events.jsonl"))])
    settings = load_settings(None, environ={}, overrides={"db": str(tmp_path / "r.db")})
    metrics = Metrics()
    server = await start_ops_server(LISTEN, metrics, lambda: True)
    binance, console = (("venue", "binance"),), (("platform", "console"),)
    try:
        async with asyncio.timeout(120):
            before = parse_metrics((await get(server.url + "/metrics"))[2])
            replay = asyncio.create_task(run_replay(
                data, settings, notifiers={"console": ConsoleNotifier(io.StringIO())},
                services=[], metrics=metrics))
            while True:  # scraped while the replay runs: the counters are moving
                during = parse_metrics((await get(server.url + "/metrics"))[2])
                if during.get("liqbot_events_total", {}).get(binance, 0) > 0 or replay.done():
                    break
                await asyncio.sleep(0.01)
            assert not replay.done()
            summary = await replay
            after = parse_metrics((await get(server.url + "/metrics"))[2])
    finally:
        await server.stop()
    assert "liqbot_events_total" not in before
    assert 0 < during["liqbot_events_total"][binance] < after["liqbot_events_total"][binance]
    assert after["liqbot_events_total"][binance] == summary.items
    assert after["liqbot_alerts_total"][()] == summary.alerts > 0
    assert after["liqbot_alerts_sent_total"][console] == summary.delivered
    assert after["liqbot_delivery_latency_seconds_count"][
        (("outcome", "sent"), ("platform", "console"))] == summary.delivered
    assert after["liqbot_outbox_items"][(("status", "pending"),)] == 0  # every alert delivered


async def test_live_run_reports_feed_and_delivery_metrics(tmp_path):
    from bot.run.live import run_live
    from tests.bot.run.test_live import squeeze_frames

    now = int(time.time() * 1000)
    metrics = Metrics()
    async with FakeExchange(squeeze_frames(now)) as fake:
        settings = load_settings(None, environ={}, overrides={"db": str(tmp_path / "l.db")})
        settings = dataclasses.replace(settings, venues=("binance",), funding_venues=(),
                                       ws_urls={"binance": fake.url},
                                       eval_interval_s=0.2, deliver_interval_s=0.1,
                                       health_interval_s=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(settings, stop=stop, metrics=metrics, notifiers={
            "console": ConsoleNotifier(io.StringIO())}))
        try:
            async with asyncio.timeout(20):
                await wait_until(lambda: (metrics.value(
                    "liqbot_alerts_sent_total", platform="console") or 0) >= 1, 15)
                await wait_until(lambda: metrics.value(  # the health job counted
                    "liqbot_outbox_items", status="pending") is not None, 5)
                running = parse_metrics(metrics.render())
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    samples = parse_metrics(metrics.render())
    assert samples["liqbot_events_total"][(("venue", "binance"),)] == 40
    assert running["liqbot_feed_connected"][(("venue", "binance"),)] == 1
    assert samples["liqbot_feed_connected"][(("venue", "binance"),)] == 0  # stopped: closed
    assert samples["liqbot_feed_lag_seconds_count"][(("venue", "binance"),)] == 40
    assert samples["liqbot_db_bytes"][(("file", "db"),)] > 0
