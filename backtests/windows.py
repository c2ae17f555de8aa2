"""Window totals, baselines and context for every evaluation time at once, as arrays.

What `signals.stats.build_stats` asks the store at one time, answered for all times:
totals of bars lying fully inside [end - window, end), the trailing mean over the lookback
before the window, the price change over the window and the funding known at its start.
Sums run bar after bar from 0.0, in time order, as SQLite's sum() does over one
(exchange, coin), then over those groups in the store's GROUP BY order: the same floats.
Results depend on the window (and lookback) only, so a sweep computes them once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backtests.bars import Bars, Floats, Ints
from feeds.model import DAY_MS, HOUR_MS

Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class WindowArrays:
    """One window length at every tick: rows are Bars.scopes, columns are Bars.ticks."""

    window_ms: int
    long_usd: Floats
    short_usd: Floats
    coin_present: Bools  # [coin, tick]: the coin has a bar row inside the window
    price_change: Floats  # NaN where unknown (and always for the market)
    funding_8h: Floats


class WindowCache:
    """Window and baseline arrays of one Bars, computed on first use."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self._windows: dict[int, WindowArrays] = {}
        self._baselines: dict[tuple[int, int], tuple[Floats, Floats]] = {}
        self._hours: dict[str, Ints] = {}

    def window(self, window_ms: int) -> WindowArrays:
        if window_ms not in self._windows:
            self._windows[window_ms] = _window_arrays(self.bars, window_ms)
        return self._windows[window_ms]

    def baseline(self, window_ms: int, lookback_ms: int) -> Floats:
        """Trailing mean total per window over the held part of the lookback; NaN if none."""
        return self._baseline(window_ms, lookback_ms)[0]

    def coverage(self, window_ms: int, lookback_ms: int) -> Floats:
        """[scope, tick]: share of the lookback's whole hours holding data (0 if none)."""
        return self._baseline(window_ms, lookback_ms)[1]

    def _baseline(self, window_ms: int, lookback_ms: int) -> tuple[Floats, Floats]:
        key = (window_ms, lookback_ms)
        if key not in self._baselines:
            self._baselines[key] = _baseline(self, window_ms, lookback_ms)
        return self._baselines[key]

    def held_hours(self, scope: str) -> Ints:
        """Cumulative count of held clock hours (see `held_ms`), computed once per scope."""
        if scope not in self._hours:
            self._hours[scope] = _cumulative_hours(self.bars, scope)
        return self._hours[scope]


def cell_range(bars: Bars, start_ms: Ints, end_ms: Ints, *, clip: bool = True
               ) -> tuple[Ints, Ints]:
    """Cells lying fully inside [start, end): [lo, hi), clipped to the data unless asked."""
    o, s, n = bars.origin_ms, bars.cell_ms, bars.n_cells
    lo = -(-(start_ms - o) // s)
    hi = np.maximum((end_ms - o) // s, lo)
    if clip:
        lo, hi = np.clip(lo, 0, n), np.clip(hi, 0, n)
    return lo, hi


def sequential_sums(x: Floats, lo: Ints, hi: Ints) -> Floats:
    """Sum x[:, lo:hi] per column pair, adding one cell at a time from 0.0 (exact order).

    Ranges may reach outside the data: zeros pad both sides, and adding 0.0 changes no
    float, so every range keeps its full length and one pass serves all of them.
    """
    out = np.zeros((x.shape[0], lo.size))
    n = hi - lo
    if n.size == 0 or n.max() == 0:
        return out
    pad = int(n.max())
    xp = np.concatenate([np.zeros((x.shape[0], pad)), x, np.zeros((x.shape[0], pad))], axis=1)
    # A range wholly outside the data sums to zero wherever it starts, so clamp its start.
    start = np.clip(lo, -pad, x.shape[1]) + pad
    for m in np.unique(n):
        if m == 0:
            continue
        idx = np.flatnonzero(n == m)
        acc = np.zeros((x.shape[0], idx.size))
        first = start[idx]
        for j in range(int(m)):
            acc += xp[:, first + j]
        out[:, idx] = acc
    return out


def _scope_sums(bars: Bars, group_sums: Floats) -> Floats:
    """Fold group sums into scopes in GROUP BY order, as the store's Totals does."""
    out = np.zeros((len(bars.scopes), group_sums.shape[1]))
    for i, scope in enumerate(bars.scopes):
        acc = np.zeros(group_sums.shape[1])
        for g in bars.coin_groups(scope):
            acc = acc + group_sums[g]
        out[i] = acc
    return out


def _window_arrays(bars: Bars, window_ms: int) -> WindowArrays:
    start, end = bars.ticks - window_ms, bars.ticks
    raw_lo, raw_hi = cell_range(bars, start, end, clip=False)
    long_usd = _scope_sums(bars, sequential_sums(bars.long_usd, raw_lo, raw_hi))
    short_usd = _scope_sums(bars, sequential_sums(bars.short_usd, raw_lo, raw_hi))
    lo, hi = cell_range(bars, start, end)
    counts = np.zeros((bars.present.shape[0], bars.n_cells + 1), dtype=np.int64)
    counts[:, 1:] = np.cumsum(bars.present, axis=1)
    group_present = (counts[:, hi] - counts[:, lo]) > 0
    coin_present = np.array([group_present[bars.coin_groups(c)].any(axis=0) for c in bars.coins],
                            dtype=bool).reshape(len(bars.coins), bars.ticks.size)
    price = np.full(long_usd.shape, np.nan)
    funding = np.full(long_usd.shape, np.nan)
    for i, coin in enumerate(bars.coins, start=1):
        price[i] = _price_change(bars, coin, start, end)
        funding[i] = _funding_at(bars, coin, start)
    return WindowArrays(window_ms, long_usd, short_usd, coin_present, price, funding)


def _first_hour(bars: Bars) -> int:
    return (bars.origin_ms // HOUR_MS) * HOUR_MS


def _cumulative_hours(bars: Bars, scope: str) -> Ints:
    """[k]: held clock hours before the k-th hour from the data's first; hour k is held when
    a bar row of the scope touches it (as `feeds.store.coverage.held_hours` counts rows)."""
    first = _first_hour(bars)
    n = -(-(bars.end_ms - first) // HOUR_MS)
    held = np.zeros(n, dtype=bool)
    cells = np.flatnonzero(bars.present[bars.coin_groups(scope)].any(axis=0))
    starts = bars.origin_ms + cells.astype(np.int64) * bars.cell_ms
    for j in range(-(-bars.cell_ms // HOUR_MS) + 1):
        h = (starts // HOUR_MS + j) * HOUR_MS
        touched = h < starts + bars.cell_ms
        held[(h[touched] - first) // HOUR_MS] = True
    out: Ints = np.concatenate([[0], np.cumsum(held)]).astype(np.int64)
    return out


def held_ms(data: Bars | WindowCache, scope: str, start_ms: Ints, end_ms: Ints
            ) -> tuple[Ints, Ints]:
    """(held_ms, whole_ms) per range, as `Store.coverage` answers: whole clock hours inside
    [start, end), and those of them the scope has data in. History files have no gap log."""
    cache = data if isinstance(data, WindowCache) else WindowCache(data)
    cum = cache.held_hours(scope)
    first = -(-start_ms // HOUR_MS)
    last = np.maximum(end_ms // HOUR_MS, first)
    base = _first_hour(cache.bars) // HOUR_MS
    a = np.clip(first - base, 0, cum.size - 1)
    b = np.clip(last - base, 0, cum.size - 1)
    held: Ints = (cum[b] - cum[a]) * HOUR_MS
    whole: Ints = (last - first) * HOUR_MS
    return held, whole


def coverage(data: Bars | WindowCache, scope: str, start_ms: Ints, end_ms: Ints) -> Floats:
    """Share of the whole clock hours in [start, end) the scope holds data in (0 if none):
    what `signals.stats` compares with `SignalParams.min_coverage`."""
    held, whole = held_ms(data, scope, start_ms, end_ms)
    share = np.zeros(held.shape)
    np.divide(held, whole, out=share, where=whole > 0)
    return share


def _baseline(cache: WindowCache, window_ms: int, lookback_ms: int) -> tuple[Floats, Floats]:
    bars = cache.bars
    start = bars.ticks - window_ms
    lo, hi = cell_range(bars, start - lookback_ms, start, clip=False)
    long_usd = _scope_sums(bars, sequential_sums(bars.long_usd, lo, hi))
    short_usd = _scope_sums(bars, sequential_sums(bars.short_usd, lo, hi))
    total = long_usd + short_usd
    base = np.full(total.shape, np.nan)
    share = np.zeros(total.shape)
    for i, scope in enumerate(bars.scopes):
        held, whole = held_ms(cache, scope, start - lookback_ms, start)
        np.divide(held, whole, out=share[i], where=whole > 0)
        ok = (total[i] > 0) & (held > 0)
        # signals.stats.baseline_of, in its order, so live and backtest get the same floats.
        covered = np.where(ok, float(lookback_ms) * share[i], 1.0)
        base[i] = np.where(ok, total[i] * float(window_ms) / covered, np.nan)
    return base, share


def _price_change(bars: Bars, coin: str, start: Ints, end: Ints) -> Floats:
    """Last close / first open - 1 of the finest candles fully inside each window."""
    out = np.full(start.size, np.nan)
    decided = np.zeros(start.size, dtype=bool)
    for c in bars.candles.get(coin, ()):  # ascending span: the finest inside wins
        i = np.searchsorted(c.starts, start, side="left")
        j = np.searchsorted(c.starts, end - c.span_ms, side="right") - 1
        has = (i <= j) & ~decided
        ii, jj = i[has], j[has]
        first = c.opens[ii]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[has] = np.where(first > 0, c.closes[jj] / first - 1.0, np.nan)
        decided |= i <= j
    return out


def _funding_at(bars: Bars, coin: str, at: Ints) -> Floats:
    """Mean per-8h funding over venues, latest known at `at` and under two days old."""
    acc = np.zeros(at.size)
    count = np.zeros(at.size)
    for f in bars.funding.get(coin, ()):
        k = np.searchsorted(f.ts, at, side="right") - 1
        ok = k >= 0
        ok[ok] = f.ts[k[ok]] > at[ok] - 2 * DAY_MS
        acc = acc + np.where(ok, f.rate_8h[np.maximum(k, 0)], 0.0)
        count += ok
    out = np.full(at.size, np.nan)
    np.divide(acc, count, out=out, where=count > 0)
    return out


def market_included(arrays: WindowArrays) -> Bools:
    """The live rule: with exactly one coin, the market total is that coin's, so skip it."""
    included: Bools = arrays.coin_present.sum(axis=0) != 1
    return included


def coins_in_top(arrays: WindowArrays, max_coins: int) -> Bools:
    """[coin, tick]: present and among the `max_coins` largest totals (ties: coin order)."""
    present = arrays.coin_present
    if present.shape[0] <= max_coins:
        return present
    total = (arrays.long_usd + arrays.short_usd)[1:]
    order = np.argsort(np.where(present, -total, np.inf), axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(present.shape[0])[:, None], axis=0)
    top: Bools = present & (rank < max_coins)
    return top


__all__ = ["WindowArrays", "WindowCache", "cell_range", "coins_in_top", "coverage",
           "held_ms", "market_included", "sequential_sums"]
