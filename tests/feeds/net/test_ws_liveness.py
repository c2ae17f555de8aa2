"""WsFeed liveness (RELIABILITY.md items 4, 5): max lifetime, pings, silence, keep-alive, cancel."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest

from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming, WsFeed
from tests.helpers.fake_ws import FakeExchange, Plan, wait_until
from tests.helpers.ws_feed_rig import (
    FAST,
    Recorder,
    fast_backoff,
    make_feed,
    make_frames,
    parse_binance,
    running,
    warnings_from,
)

pytestmark = pytest.mark.usefixtures("loopback_only")


# -- connection lifetime and liveness ------------------------------------------------------


async def test_max_lifetime_costs_exactly_one_reconnect_each() -> None:
    lifetime = 0.2
    rec = Recorder()
    timing = FeedTiming(ping_interval_s=1, ping_timeout_s=1, open_timeout_s=1,
                        close_timeout_s=0.2, max_lifetime_s=lifetime)
    async with asyncio.timeout(5), FakeExchange(make_frames(1)) as fake:
        feed = make_feed(fake, rec, timing=timing)
        async with running(feed):
            await wait_until(lambda: feed.stats.recycles >= 3)
            stats = feed.stats.as_dict()
            conns = fake.connections[:4]
    opened = [c.opened_at for c in conns]
    spans = [b - a for a, b in zip(opened, opened[1:], strict=False)]
    # Never early; late only by scheduling noise (a loaded CI box), never by a whole lifetime.
    assert all(lifetime * 0.95 <= s < lifetime * 1.75 for s in spans), spans
    # Make before break: each successor was open before its predecessor closed.
    assert all(new.opened_at < old.closed_at for old, new in zip(conns, conns[1:], strict=False)
               if old.closed_at is not None)
    assert stats["recycles"] == stats["reconnects"] == len(fake.connections) - 1 == 3
    assert stats["failures"] == 0
    assert rec.gaps == [] and len(rec.events) == 1


async def test_unanswered_pings_close_and_reconnect(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(make_frames(2)) as fake:
        fake.plan(Plan(after=1, answer_pings=False))
        feed = make_feed(fake, rec)
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 2)
        assert fake.connections[0].pings_ignored >= 1
    assert feed.stats.reconnects == 1
    [line] = warnings_from(caplog, "connection lost")
    assert "keepalive ping timeout" in line


async def test_silence_with_answered_pings_is_not_a_fault() -> None:
    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(make_frames(1)) as fake:
        fake.plan(Plan(after=0))
        patient = dataclasses.replace(FAST, ping_timeout_s=0.5)  # a slow CI box is not a dead peer
        feed = make_feed(fake, rec, timing=patient)
        async with running(feed):
            await fake.wait_connections(1)
            await asyncio.sleep(0.4)  # eight ping intervals of nothing but pongs
            assert feed.stats.connected_since_ms is not None
    assert (feed.stats.connects, feed.stats.frames, len(fake.connections)) == (1, 0, 1)


async def test_a_failing_keepalive_hook_drops_the_connection() -> None:
    calls: list[int] = []

    async def keepalive(ws: Any) -> None:
        calls.append(1)
        await asyncio.sleep(0.02)
        if len(calls) == 1:
            raise TimeoutError("no pong")
        await asyncio.Event().wait()

    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(make_frames(1)) as fake:
        fake.plan(Plan(after=0))
        feed = WsFeed("binance", fake.url, parse_binance, rec.sink, keepalive=keepalive,
                      timing=FAST, backoff=fast_backoff())
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 1)
    assert feed.stats.reconnects == 1 and len(calls) == 2


# -- stopping ------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["connected", "backing_off", "handshaking"])
async def test_cancel_stops_cleanly(phase: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(make_frames(1)) as fake:
        if phase == "handshaking":
            fake.plan(Plan(handshake_delay_s=10))
        if phase == "backing_off":
            await fake.refuse()
        feed = make_feed(fake, rec, backoff=Backoff(base_s=30, cap_s=60))
        async with running(feed):
            if phase == "backing_off":
                await wait_until(lambda: feed.stats.failures == 1)
            else:
                await wait_until(lambda: len(fake.connections) == 1)
            if phase == "connected":
                await wait_until(lambda: len(rec.events) == 1)
        if phase == "connected":
            await wait_until(lambda: fake.connections[0].closed_at is not None)
    assert feed.stats.connected_since_ms is None
    noisy = [r for r in caplog.records
             if r.levelno >= logging.ERROR or "destroyed" in r.getMessage()]
    assert noisy == []
