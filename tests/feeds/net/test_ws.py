"""The reconnecting feed against a fake Binance server (RELIABILITY.md items 1, 2, 4, 5)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from feeds.model import Liquidation
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming, WsFeed
from feeds.store import Store
from feeds.venues.binance import binance_feed
from tests.helpers.fake_ws import FakeExchange, Plan, wait_until
from tests.helpers.netguard import NetworkBlocked, install
from tests.helpers.shared import FIXTURES

pytestmark = pytest.mark.usefixtures("loopback_only")

FIXTURE = FIXTURES / "binance_usdm_forceorder.json"
SAMPLE: dict[str, Any] = json.loads(FIXTURE.read_text())
# Fast timers: a dead peer is noticed in ~0.15 s, backoff stays in the tens of ms.
FAST = FeedTiming(ping_interval_s=0.05, ping_timeout_s=0.1, open_timeout_s=1.0,
                  close_timeout_s=0.2, stable_after_s=5.0)
GARBAGE = ["not json", '{"e":"forceOrder"}', "[1, 2]", b"\xff\xfe binary junk",
           json.dumps({**SAMPLE, "o": {**SAMPLE["o"], "z": "abc"}})]
HARMLESS = ['{"result":null,"id":1}', '{"e":"markPriceUpdate","E":1568014460893}']


def make_frames(n: int) -> list[dict[str, Any]]:
    """n distinct forceOrder events, one second apart, alternating sides."""
    out = []
    for i in range(n):
        order = {**SAMPLE["o"], "T": SAMPLE["o"]["T"] + 1000 * i, "S": ("SELL", "BUY")[i % 2]}
        out.append({**SAMPLE, "E": order["T"], "o": order})
    return out


def fast_backoff(seed: int = 1) -> Backoff:
    return Backoff(base_s=0.01, cap_s=0.04, rng=random.Random(seed))


class Recorder:
    """A sink and a gap callback that remember what they were given."""

    def __init__(self) -> None:
        self.events: list[Liquidation] = []
        self.gaps: list[tuple[str, int, int | None, str]] = []

    async def sink(self, batch: list[Liquidation]) -> None:
        self.events.extend(batch)

    async def on_gap(self, exchange: str, start_ms: int, end_ms: int | None, reason: str) -> None:
        self.gaps.append((exchange, start_ms, end_ms, reason))

    def times(self) -> list[int]:
        return [e.ts_ms for e in self.events]


class RecordingBackoff(Backoff):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delays: list[tuple[float, float]] = []  # (ceiling, delay)

    def next_delay(self) -> float:
        ceiling = self.ceiling()
        delay = super().next_delay()
        self.delays.append((ceiling, delay))
        return delay


def make_feed(fake: FakeExchange, rec: Recorder, **kwargs: Any) -> WsFeed:
    kwargs.setdefault("timing", FAST)
    kwargs.setdefault("backoff", fast_backoff())
    kwargs.setdefault("on_gap", rec.on_gap)
    return binance_feed(rec.sink, url=fake.url, **kwargs)


@contextlib.asynccontextmanager
async def running(feed: WsFeed) -> AsyncIterator[asyncio.Task[None]]:
    """Run the feed for the block, then cancel it and insist it stops promptly and quietly."""
    task = asyncio.create_task(feed.run())
    try:
        yield task
    finally:
        task.cancel()
        async with asyncio.timeout(1.0):
            with pytest.raises(asyncio.CancelledError):
                await task


def warnings_from(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [m for r in caplog.records
            if r.name == "feeds.net.ws" and r.levelno == logging.WARNING
            and text in (m := r.getMessage())]


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


async def test_drop_reconnects_resumes_and_records_the_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frames = make_frames(5)
    rec, store = Recorder(), Store(tmp_path / "x.db")

    async def on_gap(exchange: str, start_ms: int, end_ms: int | None, reason: str) -> None:
        await rec.on_gap(exchange, start_ms, end_ms, reason)
        store.record_gap(exchange, start_ms, end_ms, reason)

    async with asyncio.timeout(5), FakeExchange(frames) as fake:
        fake.plan(Plan(after=2, then="drop"))
        feed = make_feed(fake, rec, on_gap=on_gap)
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 5)
    assert rec.times() == [f["o"]["T"] for f in frames]
    assert feed.stats.reconnects == 1 and len(fake.connections) == 2
    (ex, start, none, reason), (_, start2, end, reason2) = rec.gaps
    assert (ex, none, start2, reason2) == ("binance", None, start, reason)
    assert reason.startswith("connection lost: ConnectionClosedError") and end >= start
    rows = store.database.conn.execute("SELECT exchange, start_ms, end_ms FROM gaps").fetchall()
    assert rows == [("binance", start, end)]
    [line] = warnings_from(caplog, "connection lost")
    assert line.startswith("binance: connection lost (ConnectionClosedError: ")
    assert "; retry 1 in" in line


async def test_subscribe_messages_are_resent_on_every_connect() -> None:
    sub = {"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 1}
    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(make_frames(2)) as fake:
        fake.plan(Plan(after=1, then="drop", wait_for=1), Plan(wait_for=1))
        feed = WsFeed("binance", fake.url, _parse_binance, rec.sink, subscribe=[sub],
                      timing=FAST, backoff=fast_backoff())
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 2)
            await wait_until(lambda: all(c.received for c in fake.connections))
    assert [json.loads(m) for c in fake.connections for m in c.received] == [sub, sub]


def _parse_binance(frame: str | bytes, recv_ms: int) -> list[Liquidation]:
    from feeds.venues.binance import parse_message
    return parse_message(frame, recv_ms)


# -- backoff -------------------------------------------------------------------------------


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    b = Backoff(base_s=1, cap_s=60, rng=random.Random(7))
    ceilings, delays = [], []
    for _ in range(10):
        ceilings.append(b.ceiling())
        delays.append(b.next_delay())
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert all(c / 2 <= d <= c for c, d in zip(ceilings, delays, strict=True))
    assert len(set(delays[6:])) == 4  # jitter: capped delays still differ
    b.reset()
    assert b.next_delay() <= 1


def test_two_backoffs_give_different_delays() -> None:
    first, second = Backoff(), Backoff()
    assert [first.next_delay() for _ in range(5)] != [second.next_delay() for _ in range(5)]


def test_backoff_survives_thousands_of_failures() -> None:
    b = Backoff(base_s=1, cap_s=60)
    assert max(b.next_delay() for _ in range(5000)) <= 60


@pytest.mark.parametrize("bad", [
    {"base_s": 0}, {"base_s": 2, "cap_s": 1}, {"factor": 0.5},
])
def test_backoff_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**bad)


async def test_refused_connects_back_off_to_the_cap_then_reset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    backoff = RecordingBackoff(base_s=0.01, cap_s=0.04, rng=random.Random(3))
    async with asyncio.timeout(5), FakeExchange(make_frames(2)) as fake:
        fake.plan(Plan(after=1, then="drop"))
        await fake.refuse()
        feed = make_feed(fake, rec, backoff=backoff)
        async with running(feed):
            await wait_until(lambda: feed.stats.failures >= 6)
            await fake.accept()
            await wait_until(lambda: len(rec.events) == 2)
            refused = feed.stats.failures
    ceilings = [c for c, _ in backoff.delays]
    assert ceilings[:6] == [0.01, 0.02, 0.04, 0.04, 0.04, 0.04]
    assert all(c / 2 <= d <= c for c, d in backoff.delays)
    # After the good session the drop starts over at the base delay.
    assert ceilings[refused] == 0.01
    lines = warnings_from(caplog, "connect failed")
    assert len(lines) == refused
    assert lines[2].startswith("binance: connect failed (ConnectionRefusedError: ")
    assert "; retry 3 in 0.0" in lines[2] and lines[2].endswith("s")
    assert rec.gaps[0][3].startswith("connect failed: ConnectionRefusedError")


async def test_rejected_handshakes_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(make_frames(1)) as fake:
        fake.plan(Plan(reject_status=503), Plan(reject_status=429))
        feed = make_feed(fake, rec)
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 1)
    lines = warnings_from(caplog, "connect failed")
    assert [("HTTP 503" in lines[0]), ("HTTP 429" in lines[1])] == [True, True]
    assert "InvalidStatus" in lines[0] and "retry 2 in" in lines[1]
    assert (feed.stats.failures, feed.stats.connects) == (2, 1)


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
        feed = WsFeed("binance", fake.url, _parse_binance, rec.sink, keepalive=keepalive,
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


# -- the test rig itself -------------------------------------------------------------------


def test_netguard_refuses_non_loopback_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = install(monkeypatch)
    with socket.socket() as s, pytest.raises(NetworkBlocked):
        s.connect(("192.0.2.1", 443))
    with socket.socket() as s, pytest.raises(NetworkBlocked):
        s.connect_ex(("192.0.2.1", 443))
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("fstream.binance.com", 443)
    assert guard.blocked == ["192.0.2.1:443", "192.0.2.1:443", "dns:fstream.binance.com"]
    guard.blocked.clear()  # or the loopback_only fixture fails this test on teardown


async def test_a_feed_aimed_at_the_internet_is_stopped_by_the_guard(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    guard = install(monkeypatch)
    rec = Recorder()
    feed = WsFeed("binance", "ws://192.0.2.1:9/market/ws/x", _parse_binance, rec.sink,
                  timing=FAST, backoff=fast_backoff())
    async with asyncio.timeout(5), running(feed):
        await wait_until(lambda: feed.stats.failures >= 2)
    assert "NetworkBlocked" in warnings_from(caplog, "connect failed")[0]
    assert set(guard.blocked) == {"192.0.2.1:9"}
    guard.blocked.clear()
