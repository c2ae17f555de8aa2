"""Synthetic hourly history (liquidation bars, candles, funding) for tests and benchmarks.

Quiet hours are noisy and two-sided; a few times a week a coin gets a one-sided burst of
liquidations lasting one to four hours, the shape squeezes and cascades have. Prices are a
random walk; `effect` makes them drift after each burst (continuation if positive), so a
test can check the study finds an effect that is there and none that is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from feeds.history.base import HistoryData
from feeds.history.replay import ReplayData
from feeds.model import HOUR_MS, Bucket, Candle, Funding

T0_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
COINS: dict[str, tuple[float, float]] = {  # typical liquidations per hour (USD), price
    "BTC": (4e6, 95_000.0), "ETH": (2.5e6, 3_500.0), "SOL": (1e6, 180.0),
    "DOGE": (4e5, 0.3), "HYPE": (3e5, 30.0),
}


def _bursts(rng: np.random.Generator, hours: int, per_week: float) -> list[tuple[int, int, int]]:
    """(start hour, length, side: +1 shorts liquidated / -1 longs) of each burst."""
    n = rng.poisson(per_week * hours / 168)
    starts = np.sort(rng.integers(0, max(hours - 4, 1), n))
    return [(int(s), int(rng.integers(1, 5)), 1 if rng.random() < 0.5 else -1) for s in starts]


def _coin(coin: str, hours: int, rng: np.random.Generator, per_week: float, effect: float,
          start_ms: int, gaps: int, funding_offset_ms: int) -> HistoryData:
    typical, price0 = COINS.get(coin, (1e6, 100.0))
    total = typical * rng.lognormal(0.0, 0.7, hours)
    short_share = np.clip(rng.normal(0.5, 0.15, hours), 0.02, 0.98)
    drift = np.zeros(hours)
    for s, length, side in _bursts(rng, hours, per_week):
        total[s:s + length] *= rng.uniform(4, 40)
        short_share[s:s + length] = 0.5 + side * rng.uniform(0.3, 0.49)
        drift[s + length:s + length + 4] += side * effect / 4  # after the burst, for 4h
    log_ret = rng.normal(0.0, 0.006, hours) + drift
    close = price0 * np.exp(np.cumsum(log_ret))
    open_ = np.concatenate([[price0], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.003, (2, hours)))
    high, low = np.maximum(open_, close) * (1 + wick[0]), np.minimum(open_, close) * (1 - wick[1])
    missing = set(rng.integers(0, hours, gaps).tolist())
    starts = start_ms + np.arange(hours, dtype=np.int64) * HOUR_MS
    buckets = [Bucket(int(t), HOUR_MS, "binance", coin, float(v * (1 - s)), float(v * s),
                      source="synthetic")
               for i, (t, v, s) in enumerate(zip(starts, total, short_share, strict=True))
               if i not in missing]
    candles = [Candle("binance", coin, int(t), HOUR_MS, float(o), float(h), float(lo), float(c))
               for t, o, h, lo, c in zip(starts, open_, high, low, close, strict=True)]
    rates = rng.normal(0.0001, 0.0002, hours // 8 + 1)
    funding = [Funding("binance", f"{coin}USDT", start_ms + 8 * i * HOUR_MS + funding_offset_ms,
                       Decimal(f"{r:.8f}"), 8.0) for i, r in enumerate(rates)]
    return HistoryData(buckets=buckets, candles=candles, funding=funding)


def synthetic_history(
    coins: Sequence[str] = tuple(COINS), hours: int = 24 * 60, *, seed: int = 1,
    bursts_per_week: float = 3.0, effect: float = 0.0, start_ms: int = T0_MS, gaps: int = 0,
    funding_offset_ms: int = 0,
) -> ReplayData:
    """Hourly bars for `coins` over `hours`, as a ReplayData the engine and replays both read.

    `gaps` drops that many random bars per coin; a `funding_offset_ms` off the hour makes the
    live runner evaluate at odd times too (windows then straddle bars).
    """
    rng = np.random.default_rng(seed)
    data = HistoryData()
    for coin in coins:
        data = data.merge(_coin(coin, hours, rng, bursts_per_week, effect, start_ms, gaps,
                                funding_offset_ms))
    return ReplayData(data, (("synthetic", "synthetic"),))
