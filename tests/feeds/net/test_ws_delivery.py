"""WsFeed delivery against a fake Binance server: frames to events, bad frames, sinks, stores."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from feeds.model import Liquidation
from feeds.net.ws import WsFeed
from feeds.store import Store
from feeds.venues.binance import binance_feed
from tests.helpers.fake_ws import FakeExchange, Plan, wait_until
from tests.helpers.ws_feed_rig import (
    FAST,
    SAMPLE,
    Recorder,
    fast_backoff,
    make_feed,
    make_frames,
    parse_binance,
    running,
    warnings_from,
)

pytestmark = pytest.mark.usefixtures("loopback_only")

GARBAGE = ["not json", '{"e":"forceOrder"}', "[1, 2]", b"\xff\xfe binary junk",
           json.dumps({**SAMPLE, "o": {**SAMPLE["o"], "z": "abc"}})]
HARMLESS = ['{"result":null,"id":1}', '{"e":"markPriceUpdate","E":1568014460893}']


# -- delivery ------------------------------------------------------------------------------


async def test_frames_reach_the_sink_with_normalized_values() -> None:
    frames = make_frames(3)
    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(frames) as fake:
        feed = make_feed(fake, rec)
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 3)
            stats = feed.stats
            assert stats.connected_since_ms is not None and stats.last_event_ms is not None
        assert fake.connections[0].path == "/market/ws/!forceOrder@arr"
    assert rec.times() == [f["o"]["T"] for f in frames]
    assert [e.position_side.value for e in rec.events] == ["long", "short", "long"]
    assert {(e.exchange, e.symbol, e.sampled) for e in rec.events} == {("binance", "BTCUSDT", True)}
    assert (stats.events, stats.frames, stats.parse_errors, stats.reconnects) == (3, 3, 0, 0)
    assert rec.gaps == []

async def test_subscribe_messages_are_resent_on_every_connect() -> None:
    sub = {"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 1}
    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(make_frames(2)) as fake:
        fake.plan(Plan(after=1, then="drop", wait_for=1), Plan(wait_for=1))
        feed = WsFeed("binance", fake.url, parse_binance, rec.sink, subscribe=[sub],
                      timing=FAST, backoff=fast_backoff())
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 2)
            await wait_until(lambda: all(c.received for c in fake.connections))
    assert [json.loads(m) for c in fake.connections for m in c.received] == [sub, sub]

# -- bad input and stores ------------------------------------------------------------------


async def test_malformed_frames_are_counted_and_every_valid_event_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = make_frames(4)
    script: list[Any] = [GARBAGE[0], good[0], HARMLESS[0], GARBAGE[1], GARBAGE[2], good[1],
                         GARBAGE[3], good[2], HARMLESS[1], GARBAGE[4], good[3]]
    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(script) as fake:
        feed = make_feed(fake, rec)
        async with running(feed):
            await wait_until(lambda: feed.stats.frames == len(script))
    assert rec.times() == [f["o"]["T"] for f in good]
    assert (feed.stats.parse_errors, feed.stats.events, feed.stats.connects) == (5, 4, 1)
    # Rate-limited: one line names the first reason; the rest are only counted.
    [line] = warnings_from(caplog, "bad frame")
    assert line == ("binance: bad frame skipped (not JSON: invalid literal, expected 'null': "
                    "line 1 column 1 (char 0)); 0 more since last report: 'not json'")


async def test_a_failing_sink_is_logged_and_the_feed_keeps_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    async def flaky(batch: list[Liquidation]) -> None:
        seen.append(batch[0].ts_ms)
        if len(seen) == 1:
            raise RuntimeError("disk full")

    async with asyncio.timeout(5), FakeExchange(make_frames(3)) as fake:
        feed = binance_feed(flaky, url=fake.url, timing=FAST, backoff=fast_backoff())
        async with running(feed):
            await wait_until(lambda: len(seen) == 3)
    assert feed.stats.sink_errors == 1 and feed.stats.reconnects == 0
    assert any("sink failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_resent_frames_are_stored_once(tmp_path: Path) -> None:
    frames = make_frames(4)
    store = Store(tmp_path / "x.db")
    delivered: list[int] = []

    async def sink(batch: list[Liquidation]) -> None:
        delivered.append(len(batch))
        store.insert_liquidations(batch)

    async with asyncio.timeout(5), FakeExchange(frames, resend=True) as fake:
        fake.plan(*[Plan(then="drop")] * 3)
        feed = binance_feed(sink, url=fake.url, timing=FAST, backoff=fast_backoff())
        async with running(feed):
            await wait_until(lambda: sum(delivered) == 4 * len(frames))
    assert len(fake.connections) == 4
    assert store.count_events() == len(frames)
