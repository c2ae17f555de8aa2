"""What price did after each entry: forward returns, excursions, random-time pools.

An alert is decided when its window closes, so a trade could only start at the NEXT
bar's open; every return here runs from that open to the open `h` later.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backtests.bars import BacktestError, Floats, Ints, PriceSeries
from signals.kinds import KINDS

_UNITS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
# Kind value -> +1 / -1, the way price goes if the move continues (the hypothesis tested).
DIRECTION = {k.value: info.direction for k, info in KINDS.items()}


@dataclass(frozen=True, slots=True)
class Horizon:
    name: str
    ms: int


def parse_horizons(text: str) -> list[Horizon]:
    """Parse `1h,4h,24h` (units m, h, d); ValueError names the bad item."""
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        m = re.fullmatch(r"(\d+)([mhd])", item.lower())
        if m is None or int(m[1]) == 0:
            raise ValueError(f"bad horizon {item!r}: use e.g. 1h, 4h, 24h, 30m, 2d")
        out.append(Horizon(item.lower(), int(m[1]) * _UNITS[m[2]]))
    if not out:
        raise ValueError("no horizons given")
    return sorted(out, key=lambda h: h.ms)


@dataclass(frozen=True, slots=True)
class Forward:
    """Per entry: entry price, and per horizon the return and excursions (NaN if unknown).

    Excursions are signed for a LONG position: `high` is max high / entry - 1 over the
    bars held, `low` is min low / entry - 1; direction turns them into favour / adverse.
    """

    entry_ms: Ints
    entry_price: Floats
    returns: dict[str, Floats]
    high: dict[str, Floats]
    low: dict[str, Floats]


def bars_for(h: Horizon, prices: PriceSeries) -> int:
    if h.ms % prices.span_ms:
        raise BacktestError(f"horizon {h.name} is not a whole number of {prices.source} bars")
    return h.ms // prices.span_ms


def _take(values: Floats, idx: Ints) -> Floats:
    ok = (idx >= 0) & (idx < values.size)
    out = np.full(idx.shape, np.nan)
    out[ok] = values[idx[ok]]
    return out


def _extreme(values: Floats, start: Ints, n: int, fn: str) -> Floats:
    """max or min of values[start : start + n] per entry, ignoring missing bars."""
    pad = np.concatenate([values, np.full(n, np.nan)])
    view = np.lib.stride_tricks.sliding_window_view(pad, n)
    ok = (start >= 0) & (start < values.size)
    out = np.full(start.shape, np.nan)
    rows = view[start[ok]]
    with warnings.catch_warnings():
        # An all-missing stretch is simply unknown (NaN), not worth a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        out[ok] = np.nanmax(rows, axis=1) if fn == "max" else np.nanmin(rows, axis=1)
    return out


def forward(prices: PriceSeries, decided_ms: Ints, horizons: Sequence[Horizon],
            with_extremes: bool = True) -> Forward:
    """Returns from the first bar opening at or after each decision time (and excursions)."""
    k = prices.index_at_or_after(np.asarray(decided_ms, dtype=np.int64))
    entry = _take(prices.open, k)
    entry = np.where(entry > 0, entry, np.nan)
    returns, high, low = {}, {}, {}
    for h in horizons:
        n = bars_for(h, prices)
        returns[h.name] = _take(prices.open, k + n) / entry - 1.0
        if with_extremes:
            high[h.name] = _extreme(prices.high, k, n, "max") / entry - 1.0
            low[h.name] = _extreme(prices.low, k, n, "min") / entry - 1.0
    entry_ms = prices.origin_ms + k * prices.span_ms
    return Forward(entry_ms, entry, returns, high, low)


def excursions(fwd: Forward, horizon: str, direction: Floats) -> tuple[Floats, Floats]:
    """(favourable, adverse) excursion in the trade's direction (+1 long, -1 short)."""
    hi, lo = fwd.high[horizon], fwd.low[horizon]
    favour = np.where(direction > 0, hi, -lo)
    adverse = np.where(direction > 0, lo, -hi)
    return favour, adverse


def price_paths(prices: PriceSeries, decided_ms: Ints, before: int, after: int) -> Floats:
    """[entry, bar offset]: open / entry open - 1 from `before` bars before to `after` after."""
    k = prices.index_at_or_after(np.asarray(decided_ms, dtype=np.int64))
    offsets = np.arange(-before, after + 1)
    opens = _take(prices.open, (k[:, None] + offsets[None, :]).ravel()).reshape(k.size, -1)
    entry = opens[:, before : before + 1]
    with np.errstate(all="ignore"):
        return opens / np.where(entry > 0, entry, np.nan) - 1.0


def random_pool(prices: PriceSeries, eligible_ms: Ints, horizon: Horizon) -> Floats:
    """Forward returns from every distinct entry the eligible times allow (the placebo pool)."""
    k = np.unique(prices.index_at_or_after(np.asarray(eligible_ms, dtype=np.int64)))
    entry = _take(prices.open, k)
    r = _take(prices.open, k + bars_for(horizon, prices)) / np.where(entry > 0, entry, np.nan) - 1
    return r[np.isfinite(r)]


def draw_placebo(
    pools: Sequence[Floats], counts: Sequence[int], draws: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """[draw, entry]: `counts[i]` random returns from `pools[i]` per draw (the scope mix kept)."""
    parts = []
    for pool, m in zip(pools, counts, strict=True):
        if m == 0:
            continue
        if pool.size == 0:
            return np.empty((draws, 0))
        parts.append(pool[rng.integers(0, pool.size, size=(draws, m))])
    return np.hstack(parts) if parts else np.empty((draws, 0))
