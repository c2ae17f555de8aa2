"""Where random entries come from: the eligible evaluation times of a study, the random-time
pools and the per-entry arrays (drift benchmark, volatility) the matched placebo draws on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from backtests.bars import Bars, Floats, Ints
from backtests.null import MatchedPool, Series, ShiftColumn, matched_pool, series
from backtests.outcomes import Horizon, random_pool
from backtests.windows import coverage
from feeds.model import HOUR_MS

if TYPE_CHECKING:
    from backtests.study import StudyConfig


class Pools:
    """Random-entry returns per (scope, horizon), drawn from the times a signal could occur.

    Entries are evaluation times inside the period with a full baseline behind them. With
    `strict`, the horizon must end inside the period too (walk-forward periods never mix).
    """

    def __init__(self, bars: Bars, config: StudyConfig, period: tuple[int, int],
                 strict: bool) -> None:
        self.bars, self.config, self.period, self.strict = bars, config, period, strict
        self._cache: dict[tuple[str, str], Floats] = {}
        self._series: dict[tuple[str, str], Series] = {}
        self._matched: dict[tuple[str, str], MatchedPool] = {}

    def series(self, scope: str, h: Horizon) -> Series:
        """Per price bar of the scope: return, drift benchmark, abnormal return, volatility."""
        key = (scope, h.name)
        if key not in self._series:
            c = self.config
            self._series[key] = series(self.bars.prices[scope], h, int(c.drift_days * 24 *
                                       HOUR_MS), int(c.vol_hours * HOUR_MS))
        return self._series[key]

    def matched(self, scope: str, h: Horizon) -> MatchedPool:
        """The eligible entries with a known benchmark and volatility, by stratum."""
        key = (scope, h.name)
        if key not in self._matched:
            prices = self.bars.prices[scope]
            k = prices.index_at_or_after(self.eligible(scope, h.ms))
            self._matched[key] = matched_pool(self.series(scope, h), k, self.config.vol_bins,
                                              self.config.hour_bins)
        return self._matched[key]

    def shift_column(self, scope: str, h: Horizon, entry_ms: int) -> ShiftColumn:
        """An alert entering at `entry_ms`, as the circular-shift placebo moves it."""
        prices = self.bars.prices[scope]
        s, pool = self.series(scope, h), self.matched(scope, h)
        ok = np.zeros(s.ret.size, dtype=bool)
        ok[(pool.entry_ms - prices.origin_ms) // prices.span_ms] = True
        lo, hi = (int(x) for x in np.clip(prices.index_at_or_after(
            np.array(self.period, dtype=np.int64)), 0, s.ret.size))
        k = int((entry_ms - prices.origin_ms) // prices.span_ms)
        return ShiftColumn(s.abnormal, s.ret, ok, k, lo, hi, 24 * HOUR_MS // prices.span_ms)

    def get(self, scope: str, h: Horizon) -> Floats:
        key = (scope, h.name)
        if key not in self._cache:
            self._cache[key] = self._build(scope, h)
        return self._cache[key]

    def eligible(self, scope: str, horizon_ms: int) -> Ints:
        """Evaluation times a random entry may take."""
        bars = self.bars
        until = self.period[1] - (horizon_ms if self.strict else 0)
        t = bars.ticks[(bars.ticks >= self.period[0]) & (bars.ticks <= until)]
        start = t - bars.cell_ms
        ok = coverage(bars, scope, start - self.config.lookback_ms, start) >= \
            self.config.min_coverage
        return t[ok]

    def _build(self, scope: str, h: Horizon) -> Floats:
        prices = self.bars.prices.get(scope)
        if prices is None:
            return np.empty(0)
        return random_pool(prices, self.eligible(scope, h.ms), h)
