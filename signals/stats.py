"""Build the WindowStats the classifiers read, from any source of window totals.

The one copy of the rules: which windows are evaluated, which scopes (the market, the
biggest coins), the pre-filter that skips windows too small to fire, the trailing
baseline and the context. The live bot asks the store (`feeds.store.core.Store`
satisfies `StatsSource` as it is); the backtest's reference path asks its bars in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from feeds.model import HOUR_MS, MARKET
from signals.params import SignalParams
from signals.windows import Context, WindowStat


class WindowTotals(Protocol):
    """Liquidations over [start_ms, end_ms), summed per (exchange, coin)."""

    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def long_usd(self) -> float: ...
    @property
    def short_usd(self) -> float: ...
    @property
    def total_usd(self) -> float: ...
    @property
    def sampled_exchanges(self) -> frozenset[str]: ...

    def by(self, dim: str) -> list[tuple[str, float, float]]:
        """(name, long_usd, short_usd) per `coin` or `exchange`, biggest first."""
        ...


class Rate(Protocol):
    @property
    def rate_8h(self) -> float: ...


class StatsSource(Protocol):
    """The read-only questions building stats asks."""

    def totals(self, end_ms: int, window_ms: int, *, coin: str | None = None) -> WindowTotals:
        """Totals of the window ending at `end_ms`; the market when `coin` is None."""
        ...

    def price_change(self, coin: str, start_ms: int, end_ms: int) -> float | None: ...

    def latest_funding(self, coin: str, at_ms: int) -> Sequence[Rate]:
        """The latest funding rate per venue known at `at_ms`."""
        ...

    def coverage(self, end_ms: int, span_ms: int, *, coin: str | None = None
                 ) -> tuple[int, int]:
        """(held_ms, whole_ms): the whole clock hours inside [end - span, end) and how much
        of them holds data for the scope, feed gaps taken off (`feeds.store.coverage`)."""
        ...


def baseline_of(total_usd: float, window_ms: int, lookback_ms: int, held_ms: int,
                whole_ms: int) -> tuple[float | None, float]:
    """(trailing mean per window, covered share) from a lookback total and its coverage.

    The mean is taken over the time that holds data, not the whole lookback: 8 hours of a
    fresh store are 8 hours, not 8/168 of a week. Fully covered, it is exactly
    total * window / lookback. `backtests.windows` computes the same over arrays.
    """
    share = held_ms / whole_ms if whole_ms > 0 else 0.0
    if total_usd <= 0 or held_ms <= 0:
        return None, share
    # lookback * share, not lookback * held / whole: numpy would round that product.
    return total_usd * window_ms / (lookback_ms * share), share


def evaluated_windows(windows_ms: Iterable[int], bar_ms: int) -> list[int]:
    """The configured windows the data can answer: whole multiples of its bar.

    A 5m window over hourly rows would only ever see partial bars, so it is skipped.
    """
    return [w for w in windows_ms if w >= bar_ms and w % bar_ms == 0]


def could_fire(total_usd: float, window_ms: int, p: SignalParams) -> bool:
    """Cheap pre-filter: below both the relative floor and the first tier nothing fires."""
    return total_usd >= fire_floor(window_ms, p)


def fire_floor(window_ms: int, p: SignalParams) -> float:
    """The least total a window of this length can fire at (what `could_fire` compares;
    callers that check it per stored batch compute it once)."""
    return min(p.floor_usd(window_ms), p.tier_usd(window_ms)[0])


def _context(source: StatsSource, scope: str, start_ms: int, end_ms: int) -> Context:
    if scope == MARKET:
        return Context()
    funding = source.latest_funding(scope, start_ms)
    # Venues differ in interval; compare per 8h, averaged across venues.
    funding_8h = sum(f.rate_8h for f in funding) / len(funding) if funding else None
    return Context(price_change=source.price_change(scope, start_ms, end_ms),
                   funding_8h=funding_8h)


def _stat(source: StatsSource, scope: str, t: WindowTotals, p: SignalParams) -> WindowStat:
    window = t.end_ms - t.start_ms
    lookback = p.baseline_hours * HOUR_MS
    coin = None if scope == MARKET else scope
    base = source.totals(t.start_ms, lookback, coin=coin)
    held, whole = source.coverage(t.start_ms, lookback, coin=coin)
    baseline, covered = baseline_of(base.total_usd, window, lookback, held, whole)
    return WindowStat(
        scope=scope, start_ms=t.start_ms, end_ms=t.end_ms,
        long_usd=t.long_usd, short_usd=t.short_usd, baseline_usd=baseline, coverage=covered,
        lower_bound=bool(t.sampled_exchanges),
        top_coins=tuple(t.by("coin")[:5]), top_exchanges=tuple(t.by("exchange")[:5]),
        context=_context(source, scope, t.start_ms, t.end_ms),
    )


def build_stats(
    source: StatsSource, end_ms: int, p: SignalParams, windows_ms: Iterable[int]
) -> list[WindowStat]:
    """Window stats at `end_ms` for the market and each active coin, per window length.

    `windows_ms`: the lengths to evaluate, as `evaluated_windows` gives them.
    """
    stats = []
    for window in windows_ms:
        least = fire_floor(window, p)  # once per window: every coin is held to it
        market = source.totals(end_ms, window)
        if market.total_usd < least:
            continue
        coins = [c for c, _, _ in market.by("coin") if c != MARKET]
        # With one coin the market-wide total is that coin's: one alert, not two.
        if len(coins) != 1:
            stats.append(_stat(source, MARKET, market, p))
        if p.per_coin:
            for coin in coins[: p.max_coins]:
                t = source.totals(end_ms, window, coin=coin)
                if t.total_usd >= least:
                    stats.append(_stat(source, coin, t, p))
    return stats
