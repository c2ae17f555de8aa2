"""Rolling window statistics: the only input classifiers see."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from feeds.model import MARKET, Bucket


@dataclass(frozen=True, slots=True)
class Context:
    """What else was true at the end of the window, when known."""

    price_change: float | None = None  # fraction over the window (0.021 = +2.1 %)
    funding_8h: float | None = None  # raw rate per 8h known at the window start
    price: float | None = None


@dataclass(frozen=True, slots=True)
class WindowStat:
    """Liquidation totals of one scope (a coin or the market) over [start_ms, end_ms)."""

    scope: str
    start_ms: int
    end_ms: int
    long_usd: float
    short_usd: float
    baseline_usd: float | None = None  # trailing mean total for a window of this length
    # Share of the baseline's lookback that holds data; None when not measured (taken as full).
    coverage: float | None = None
    lower_bound: bool = False
    top_coins: tuple[tuple[str, float, float], ...] = ()
    top_exchanges: tuple[tuple[str, float, float], ...] = ()
    context: Context = field(default_factory=Context)

    @property
    def window_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    def share(self, short: bool) -> float:
        """Return the short (or long) share of the total; 0 when nothing happened."""
        total = self.total_usd
        if total <= 0:
            return 0.0
        return (self.short_usd if short else self.long_usd) / total


def sum_buckets(
    buckets: Iterable[Bucket], start_ms: int, end_ms: int, scope: str = MARKET
) -> tuple[float, float]:
    """Return (long_usd, short_usd) of buckets lying fully inside [start, end)."""
    long_usd = short_usd = 0.0
    for b in buckets:
        if b.start_ms >= start_ms and b.end_ms <= end_ms and (scope == MARKET or b.coin == scope):
            long_usd += b.long_usd
            short_usd += b.short_usd
    return long_usd, short_usd


def trailing_mean(
    buckets: Sequence[Bucket], window_start_ms: int, window_ms: int, lookback_ms: int,
    scope: str = MARKET,
) -> float | None:
    """Mean total per `window_ms` over the `lookback_ms` before the window; None if empty."""
    lo, hi = sum_buckets(buckets, window_start_ms - lookback_ms, window_start_ms, scope)
    if lo + hi <= 0:
        return None
    return (lo + hi) * window_ms / lookback_ms


def window_stat(
    buckets: Sequence[Bucket], end_ms: int, window_ms: int, lookback_ms: int,
    scope: str = MARKET, context: Context | None = None,
) -> WindowStat:
    """Build one WindowStat from in-memory buckets (tests and small backtests)."""
    start = end_ms - window_ms
    lo, hi = sum_buckets(buckets, start, end_ms, scope)
    return WindowStat(
        scope=scope, start_ms=start, end_ms=end_ms, long_usd=lo, short_usd=hi,
        baseline_usd=trailing_mean(buckets, start, window_ms, lookback_ms, scope),
        context=context or Context(),
    )
