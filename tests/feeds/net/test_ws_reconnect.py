"""WsFeed reconnects (RELIABILITY.md items 1, 2): drops and their gaps, backoff, refusals."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Any

import pytest

from feeds.net.backoff import Backoff
from feeds.store import Store
from tests.helpers.fake_ws import FakeExchange, Plan, wait_until
from tests.helpers.ws_feed_rig import Recorder, make_feed, make_frames, running, warnings_from

pytestmark = pytest.mark.usefixtures("loopback_only")


class RecordingBackoff(Backoff):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delays: list[tuple[float, float]] = []  # (ceiling, delay)

    def next_delay(self) -> float:
        ceiling = self.ceiling()
        delay = super().next_delay()
        self.delays.append((ceiling, delay))
        return delay


# -- drops and gaps -----------------------------------------------------------------------


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

def attempts_from(caplog: pytest.LogCaptureFixture, text: str) -> list[tuple[int, str]]:
    return [(r.levelno, m) for r in caplog.records
            if r.name == "feeds.net.ws" and text in (m := r.getMessage())]


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
    caplog.set_level(logging.DEBUG, logger="feeds.net.ws")
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
    # Every attempt is logged, numbered; only the first of the outage reaches the console
    # (WARNING), the rest are DEBUG (issue 14: an offline start printed each attempt).
    lines = attempts_from(caplog, "connect failed")
    assert len(lines) == refused
    assert [level for level, _ in lines] == [logging.WARNING] + [logging.DEBUG] * (refused - 1)
    assert lines[0][1].endswith("; further attempts are logged at DEBUG (-v)")
    assert lines[2][1].startswith("binance: connect failed (ConnectionRefusedError: ")
    assert "; retry 3 in 0.0" in lines[2][1] and lines[2][1].endswith("s")
    assert rec.gaps[0][3].startswith("connect failed: ConnectionRefusedError")


async def test_rejected_handshakes_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    async with asyncio.timeout(5), FakeExchange(make_frames(1)) as fake:
        fake.plan(Plan(reject_status=503), Plan(reject_status=429))
        feed = make_feed(fake, rec)
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 1)
    # A new reason is news: both are WARNINGs although the outage is the same.
    lines = warnings_from(caplog, "connect failed")
    assert [("HTTP 503" in lines[0]), ("HTTP 429" in lines[1])] == [True, True]
    assert "InvalidStatus" in lines[0] and "retry 2 in" in lines[1]
    assert (feed.stats.failures, feed.stats.connects) == (2, 1)
