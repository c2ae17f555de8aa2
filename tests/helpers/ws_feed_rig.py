"""Driving a WsFeed against FakeExchange: fast timers, sample frames, a recording sink, a runner.

    rec = Recorder()
    async with FakeExchange(make_frames(3)) as fake:
        feed = make_feed(fake, rec)                  # binance_feed with FAST timing, quick backoff
        async with running(feed):                    # cancelled and awaited on the way out
            await wait_until(lambda: len(rec.events) == 3)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from feeds.model import Liquidation
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming, WsFeed
from feeds.venues.binance import binance_feed
from tests.helpers.fake_ws import FakeExchange
from tests.helpers.shared import FIXTURES

FIXTURE = FIXTURES / "binance_usdm_forceorder.json"
SAMPLE: dict[str, Any] = json.loads(FIXTURE.read_text())
# Fast timers: a dead peer is noticed in ~0.15 s, backoff stays in the tens of ms.
FAST = FeedTiming(ping_interval_s=0.05, ping_timeout_s=0.1, open_timeout_s=1.0,
                  close_timeout_s=0.2, stable_after_s=5.0)


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


def parse_binance(frame: str | bytes, recv_ms: int) -> list[Liquidation]:
    from feeds.venues.binance import parse_message
    return parse_message(frame, recv_ms)
