"""`/healthz` from the real scheduler and real feeds; the listen address; the HEALTHCHECK."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config import ConfigError
from bot.ops.http import (
    HealthReport,
    live_check,
    parse_listen,
    replay_check,
    start_ops_server,
)
from bot.ops.metrics import Metrics
from feeds.net.backoff import Backoff
from feeds.venues.binance import binance_feed
from tests.bot.ops.exposition import parse_metrics
from tests.bot.ops.support import LISTEN, StubFeed, get
from tests.helpers.fake_ws import FakeExchange, running, wait_until


@pytest.fixture
async def scheduler():
    s = AsyncIOScheduler(timezone="UTC")
    s.start()
    yield s
    if s.running:
        s.shutdown(wait=False)


async def test_healthz_ok_then_not_ok_when_every_feed_is_down(scheduler):
    frames = [{"e": "forceOrder", "E": int(time.time() * 1000), "o": {
        "s": "BTCUSDT", "S": "BUY", "o": "LIMIT", "f": "IOC", "q": "1", "p": "1", "ap": "100000",
        "X": "FILLED", "l": "1", "z": "1", "T": int(time.time() * 1000) - 20}}]
    metrics = Metrics()

    async def sink(events):
        metrics.observe_events(events)

    async def on_gap(exchange, start_ms, end_ms, reason):
        metrics.observe_gap(exchange, start_ms, end_ms)

    async with asyncio.timeout(20), FakeExchange(frames) as fake:
        feed = binance_feed(sink, url=fake.url, on_gap=on_gap,
                            backoff=Backoff(base_s=0.05, cap_s=0.1))
        metrics.bind_feeds([feed])
        server = await start_ops_server(LISTEN, metrics, live_check(scheduler, [feed]))
        try:
            async with running(feed):
                await wait_until(
                    lambda: metrics.value("liqbot_events_total", venue="binance") == 1, 5)
                status, _, body = await get(server.url + "/healthz")
                assert status == 200 and '"binance": "live"' in body

                await fake.refuse()  # every feed down: no socket, reconnects refused
                fake.drop_all()
                await wait_until(lambda: feed.stats.connected_since_ms is None, 5)
                status, _, body = await get(server.url + "/healthz")
                assert status == 503 and '"binance": "down"' in body
                samples = parse_metrics((await get(server.url + "/metrics"))[2])
                assert samples["liqbot_healthy"][()] == 0
                assert samples["liqbot_feed_connected"][(("venue", "binance"),)] == 0
                assert samples["liqbot_feed_gaps_total"][(("venue", "binance"),)] == 1

                await fake.accept()  # back: ok again, and the gap's length is counted
                await wait_until(lambda: feed.stats.connected_since_ms is not None, 5)
                assert (await get(server.url + "/healthz"))[0] == 200
                await wait_until(lambda: (metrics.value(
                    "liqbot_feed_gap_seconds_total", venue="binance") or 0) > 0, 5)
        finally:
            await server.stop()


async def test_healthz_not_ok_when_the_scheduler_is_not_running(scheduler):
    check = live_check(scheduler, [StubFeed("binance", True)])
    server = await start_ops_server(LISTEN, Metrics(), check, probe=False)
    try:
        async with asyncio.timeout(10):
            assert (await get(server.url + "/healthz"))[0] == 200
            scheduler.shutdown(wait=False)
            status, _, body = await get(server.url + "/healthz")
    finally:
        await server.stop()
    assert status == 503 and '"scheduler": "stopped"' in body


async def test_one_live_venue_is_enough_and_none_is_not(scheduler):
    assert live_check(scheduler, [StubFeed("okx", False), StubFeed("bybit", True)])().ok
    assert not live_check(scheduler, [StubFeed("okx", False), StubFeed("bybit", False)])().ok
    assert not live_check(scheduler, [])().ok  # no venue configured is not healthy either


@pytest.mark.parametrize("check, status", [
    (lambda: True, 200), (lambda: False, 503), (lambda: HealthReport(False, {"why": "x"}), 503),
    (lambda: 1 / 0, 503),  # a broken check answers not-ok, never a 500
])
async def test_healthz_follows_the_given_check(check, status):
    server = await start_ops_server(LISTEN, Metrics(), check, probe=False)
    try:
        async with asyncio.timeout(10):
            assert (await get(server.url + "/healthz"))[0] == status
    finally:
        await server.stop()


async def test_replay_health_is_ok_only_while_replaying():
    state = {"on": True}
    check = replay_check(lambda: state["on"])
    assert check().ok
    state["on"] = False
    assert not check().ok and check().checks == {"replay": "finished"}


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:9108", ("127.0.0.1", 9108)), ("[::1]:9108", ("::1", 9108)),
    ("0.0.0.0:0", ("0.0.0.0", 0)), ("off", None), ("", None), (None, None),
])
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9108", "localhost:9108", "127.0.0.1:http", "1.2.3.4:70000"])
def test_parse_listen_rejects_with_the_key_named(text):
    with pytest.raises(ConfigError, match="ops.listen"):
        parse_listen(text)


async def test_busy_port_is_a_config_error_and_off_starts_nothing():
    first = await start_ops_server(LISTEN, Metrics(), lambda: True, probe=False)
    try:
        with pytest.raises(ConfigError, match="cannot listen"):
            host, port = first.address
            await start_ops_server(f"{host}:{port}", Metrics(), lambda: True)
    finally:
        await first.stop()
    assert await start_ops_server("off", Metrics(), lambda: True) is None


async def test_healthcheck_command_exit_status_follows_healthz():
    """The Dockerfile's HEALTHCHECK: `python -m bot.ops.http URL`."""
    state = {"ok": True}
    server = await start_ops_server(LISTEN, Metrics(), lambda: state["ok"], probe=False)
    url = server.url + "/healthz"

    async def probe() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.ops.http", url,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            return await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()

    try:
        assert await probe() == 0
        state["ok"] = False
        assert await probe() == 1
    finally:
        await server.stop()
    assert await probe() == 1  # nothing listening: unhealthy, not a hang


async def test_a_quiet_open_socket_is_healthy_and_stuck_jobs_are_not(scheduler):
    # README: 200 while a venue has an open socket; a quiet market is not a broken process.
    feeds = [StubFeed("binance", True)]
    report = live_check(scheduler, feeds, states=lambda: {"binance": "silent"})()
    assert report.ok and report.checks["venues"] == {"binance": "silent"}
    beat = [time.monotonic()]
    check = live_check(scheduler, feeds, heartbeat=lambda: beat[0], stale_after_s=30)
    assert check().ok
    beat[0] -= 31  # the health job has not finished for longer than allowed
    report = check()
    assert not report.ok and report.checks["scheduler"] == "stuck"


async def test_a_failing_write_is_not_healthy_and_says_why(scheduler):
    fault: dict[str, object] = {}
    check = live_check(scheduler, [StubFeed("binance", True)],
                       store=lambda: fault or "ok")
    assert check().ok and check().checks["store"] == "ok"
    fault.update(error="database or disk is full", held=650)
    report = check()
    assert not report.ok and report.checks["store"]["error"] == "database or disk is full"
