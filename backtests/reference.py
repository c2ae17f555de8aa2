"""The reference path: one evaluation at a time, exactly as the live bot does it.

At each tick, WindowStats are built by `signals.stats.build_stats`, the function the live
bot uses, asking the bars in memory the questions the live bot asks its store; classified
by the real `signals.registry.evaluate`, and turned into alerts by `signals.episodes.decide`.
Slow and plain on purpose: the vectorized engine is tested against it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from backtests.bars import Bars
from backtests.engine import AlertRecord, live_windows
from backtests.windows import WindowCache, held_ms
from feeds.model import DAY_MS, MARKET
from feeds.store import Totals, TotalsRow
from signals import SignalParams, evaluate
from signals.episodes import DEFAULT_COOLDOWN_MS, Decision, Key, Last, decide
from signals.stats import build_stats


@dataclass(frozen=True, slots=True)
class _Rate:
    rate_8h: float


@dataclass(frozen=True, slots=True)
class _Sums:
    """Store.totals' answer with its sums taken once (build_stats reads them repeatedly)."""

    start_ms: int
    end_ms: int
    long_usd: float
    short_usd: float
    rows: tuple[TotalsRow, ...]
    sampled_exchanges: frozenset[str] = frozenset()

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    def by(self, dim: str) -> list[tuple[str, float, float]]:
        return Totals(self.start_ms, self.end_ms, self.rows).by(dim)


class MemoryStore:
    """The store's reads (totals, price change, funding) over Bars, one question at a time.

    A `signals.stats.StatsSource`, as `feeds.store.core.Store` is.
    """

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self._cache = WindowCache(bars)
        self._rows = [(r.starts.tolist(), r.long_usd.tolist(), r.short_usd.tolist())
                      for r in bars.rows]
        self._candles = {coin: [(c.span_ms, c.starts.tolist(), c.opens.tolist(),
                                 c.closes.tolist()) for c in spans]
                         for coin, spans in bars.candles.items()}
        self._funding = {coin: [(f.ts.tolist(), f.rate_8h.tolist()) for f in series]
                         for coin, series in bars.funding.items()}

    def _group_sums(self, g: int, start: int, end: int) -> tuple[float, float, bool]:
        """One (exchange, coin)'s bars lying fully inside [start, end), summed in time order."""
        starts, longs, shorts = self._rows[g]
        a, b = bisect_left(starts, start), bisect_right(starts, end - self.bars.cell_ms)
        long_usd = short_usd = 0.0
        for i in range(a, b):
            long_usd += longs[i]
            short_usd += shorts[i]
        return long_usd, short_usd, b > a

    def totals(self, end_ms: int, window_ms: int, *, coin: str | None = None) -> _Sums:
        """Store.totals: one row per (exchange, coin) with bars inside the window."""
        start = end_ms - window_ms
        rows = []
        long_usd = short_usd = 0.0
        for g in self.bars.coin_groups(MARKET if coin is None else coin):
            lo, sh, present = self._group_sums(g, start, end_ms)
            if present:
                rows.append(TotalsRow(*self.bars.groups[g], lo, sh, 0, 0))
                long_usd += lo
                short_usd += sh
        return _Sums(start, end_ms, long_usd, short_usd, tuple(rows))

    def coverage(self, end_ms: int, span_ms: int, *, coin: str | None = None
                 ) -> tuple[int, int]:
        """Store.coverage: whole clock hours of the span, and those the scope has data in."""
        ends = np.array([end_ms], dtype=np.int64)
        held, whole = held_ms(self._cache, MARKET if coin is None else coin, ends - span_ms,
                              ends)
        return int(held[0]), int(whole[0])

    def price_change(self, coin: str, start_ms: int, end_ms: int) -> float | None:
        """Store.price_change: last close / first open - 1 of the finest candles inside."""
        for span, starts, opens, closes in self._candles.get(coin, ()):
            i, j = bisect_left(starts, start_ms), bisect_right(starts, end_ms - span) - 1
            if i <= j:
                if opens[i] <= 0:
                    return None
                return float(closes[j] / opens[i] - 1.0)
        return None

    def latest_funding(self, coin: str, at_ms: int) -> list[_Rate]:
        """Store.latest_funding: per venue the latest per-8h rate at `at_ms`, under two days old."""
        rates = []
        for ts, rate_8h in self._funding.get(coin, ()):
            k = bisect_right(ts, at_ms) - 1
            if k >= 0 and ts[k] > at_ms - 2 * DAY_MS:
                rates.append(_Rate(rate_8h[k]))
        return rates


def _record(d: Decision) -> AlertRecord:
    s, st = d.signal, d.signal.stat
    return AlertRecord(
        s.kind.value, st.scope, st.window_ms, st.start_ms, st.end_ms, s.severity, st.long_usd,
        st.short_usd, s.share, s.ratio, st.baseline_usd, st.context.price_change,
        st.context.funding_8h, d.escalation, d.episode_ms, st.coverage)


def iter_decisions(
    bars: Bars, p: SignalParams, cooldown_ms: int = DEFAULT_COOLDOWN_MS
) -> Iterator[tuple[int, list[Decision]]]:
    """Yield (tick, alerts decided there) for every tick, as the replay runner evaluates."""
    db = MemoryStore(bars)
    windows = live_windows(p, bars.bar_ms)
    state: dict[Key, Last] = {}
    for end in bars.ticks.tolist():
        stats = build_stats(db, end, p, windows)
        decisions, state = decide(evaluate(stats, p), p, state, cooldown_ms)
        yield end, decisions


def run_reference(
    bars: Bars, p: SignalParams, cooldown_ms: int = DEFAULT_COOLDOWN_MS
) -> list[AlertRecord]:
    """Return the alerts of the per-tick path, in time order."""
    return [_record(d) for _, ds in iter_decisions(bars, p, cooldown_ms) for d in ds]
