"""No look-ahead: rewriting everything known after time t changes nothing decided by t."""

from __future__ import annotations

import dataclasses
import random

import pytest

from backtests.bars import build_bars
from backtests.engine import run_vectorized
from backtests.reference import run_reference
from backtests.synthetic import synthetic_history
from backtests.windows import WindowCache
from feeds.history.base import HistoryData
from feeds.history.replay import ReplayData, available_ms
from feeds.model import HOUR_MS, Bucket, Candle, Funding
from signals import SignalParams

PARAMS = SignalParams(windows=("1h", "4h"), min_share=0.6, tiers_usd_1h=(2e6, 6e6, 15e6),
                      tiers_ratio=(2.0, 4.0, 8.0))


def _rewrite(item: object, rng: random.Random) -> object | None:
    """A different future: bars resized and flipped, prices moved, funding flipped, some gone."""
    if rng.random() < 0.1:
        return None
    if isinstance(item, Bucket):
        k = rng.uniform(0, 30)
        return dataclasses.replace(item, long_usd=item.short_usd * k, short_usd=item.long_usd * k)
    if isinstance(item, Candle):
        k = rng.uniform(0.7, 1.3)
        return dataclasses.replace(item, open=item.open * k, high=item.high * k * 1.01,
                                   low=item.low * k * 0.99, close=item.close * k)
    if isinstance(item, Funding):
        return dataclasses.replace(item, rate=-item.rate * 3)
    return item


def perturb_after(data: ReplayData, t_ms: int, seed: int = 0) -> ReplayData:
    """The same history up to t; everything that becomes known after t rewritten."""
    rng = random.Random(seed)
    h = data.history

    def part(items: list) -> list:
        out = [x if available_ms(x) <= t_ms else _rewrite(x, rng) for x in items]
        return [x for x in out if x is not None]

    return ReplayData(HistoryData(part(h.liquidations), part(h.buckets), part(h.funding),
                                  part(h.candles), part(h.open_interest)), data.files)


@pytest.fixture(scope="module")
def data():
    return synthetic_history(("BTC", "ETH"), 24 * 30, seed=5, bursts_per_week=6,
                             funding_offset_ms=30_000)


@pytest.mark.parametrize("hours", [200, 333, 500, 701])
def test_future_data_changes_nothing_decided_at_or_before_t(data, hours):
    t = int(build_bars(data).ticks[0]) + hours * HOUR_MS
    before = run_vectorized(WindowCache(build_bars(data)), PARAMS)
    after = run_vectorized(WindowCache(build_bars(perturb_after(data, t))), PARAMS)
    assert [a for a in before if a.end_ms <= t] == [a for a in after if a.end_ms <= t]
    assert [a for a in before if a.end_ms <= t], "nothing decided before t: a vacuous test"
    assert [a for a in before if a.end_ms > t] != [a for a in after if a.end_ms > t], \
        "the rewrite should change what comes later"


def test_reference_path_has_no_look_ahead_either(data):
    t = int(build_bars(data).ticks[0]) + 400 * HOUR_MS
    before = run_reference(build_bars(data), PARAMS)
    after = run_reference(build_bars(perturb_after(data, t, seed=3)), PARAMS)
    assert [a for a in before if a.end_ms <= t] == [a for a in after if a.end_ms <= t]
