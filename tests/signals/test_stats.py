"""signals.stats.build_stats: which windows and scopes become WindowStats, from any source."""

from __future__ import annotations

from dataclasses import dataclass, field

from feeds.model import HOUR_MS, MARKET
from signals import SignalParams
from signals.stats import build_stats, evaluated_windows
from tests.helpers.factories import T0

END = T0 + 200 * HOUR_MS


@dataclass
class Sums:
    start_ms: int
    end_ms: int
    rows: list[tuple[str, str, float, float]]
    sampled_exchanges: frozenset[str] = frozenset()

    @property
    def long_usd(self) -> float:
        return sum(r[2] for r in self.rows)

    @property
    def short_usd(self) -> float:
        return sum(r[3] for r in self.rows)

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    def by(self, dim: str) -> list[tuple[str, float, float]]:
        i = 0 if dim == "exchange" else 1
        acc: dict[str, list[float]] = {}
        for r in self.rows:
            slot = acc.setdefault(r[i], [0.0, 0.0])
            slot[0] += r[2]
            slot[1] += r[3]
        return sorted(((k, v[0], v[1]) for k, v in acc.items()), key=lambda t: -(t[1] + t[2]))


@dataclass(frozen=True)
class Rate:
    rate_8h: float


@dataclass
class Source:
    """Rows inside the window ending at END; the trailing week holds `base` per coin."""

    window: list[tuple[str, str, float, float]]
    base: float = 0.0
    asked: list[tuple[int, int, str | None]] = field(default_factory=list)
    held_hours: int = 168  # of the 168 whole hours in the lookback

    def totals(self, end_ms: int, window_ms: int, *, coin: str | None = None) -> Sums:
        self.asked.append((end_ms, window_ms, coin))
        rows = self.window if end_ms == END else [
            ("binance", c, self.base, 0.0) for _, c, _, _ in self.window]
        return Sums(end_ms - window_ms, end_ms, [r for r in rows if coin in (None, r[1])])

    def price_change(self, coin: str, start_ms: int, end_ms: int) -> float | None:
        return 0.02

    def latest_funding(self, coin: str, at_ms: int) -> list[Rate]:
        return [Rate(0.25), Rate(0.75)]  # two venues: averaged

    def coverage(self, end_ms: int, span_ms: int, *, coin: str | None = None
                 ) -> tuple[int, int]:
        return self.held_hours * HOUR_MS, span_ms


def test_market_and_each_coin_with_context_and_baseline():
    src = Source([("binance", "BTC", 1e6, 30e6), ("bybit", "ETH", 0.5e6, 12e6)], base=1e6)
    stats = build_stats(src, END, SignalParams(), [HOUR_MS])
    assert [s.scope for s in stats] == [MARKET, "BTC", "ETH"]
    market, btc, _ = stats
    assert market.context.price_change is None and market.top_coins[0][0] == "BTC"
    assert btc.context.price_change == 0.02 and btc.context.funding_8h == 0.5
    assert btc.baseline_usd == 1e6 * HOUR_MS / (168 * HOUR_MS)
    assert (btc.start_ms, btc.end_ms, btc.short_usd) == (END - HOUR_MS, END, 30e6)


def test_one_coin_is_not_repeated_as_the_market():
    stats = build_stats(Source([("binance", "BTC", 1e6, 30e6)]), END, SignalParams(), [HOUR_MS])
    assert [s.scope for s in stats] == ["BTC"] and stats[0].baseline_usd is None


def test_windows_too_small_to_fire_are_not_built():
    src = Source([("binance", "BTC", 1e5, 1e5), ("okx", "ETH", 1e5, 1e5)])
    assert build_stats(src, END, SignalParams(), [HOUR_MS]) == []
    assert src.asked == [(END, HOUR_MS, None)]  # no coin is asked once the market is too small


def test_only_whole_multiples_of_the_bar_are_evaluated():
    assert evaluated_windows([5 * 60_000, HOUR_MS, 90 * 60_000, 4 * HOUR_MS], HOUR_MS) == [
        HOUR_MS, 4 * HOUR_MS]


def test_the_baseline_is_the_mean_over_the_hours_that_hold_data():
    src = Source([("binance", "BTC", 1e6, 30e6), ("bybit", "ETH", 0.5e6, 12e6)], base=1e6,
                 held_hours=8)
    btc = build_stats(src, END, SignalParams(), [HOUR_MS])[1]
    assert btc.coverage == 8 / 168
    assert btc.baseline_usd == 1e6 * HOUR_MS / (168 * HOUR_MS * (8 / 168))  # 1e6 over 8h


def test_thin_history_fires_on_absolute_size_only_and_says_so():
    from signals import evaluate

    p = SignalParams()
    # $3.9M of longs in 1h over a baseline of 8 hours at $30K an hour: 130x, yet only
    # 8/168 of the week holds data, so the ratio may not make it extreme.
    rows = [("binance", "BTC", 3.9e6, 0.06e6)]
    thin = build_stats(Source(rows, base=8 * 30e3, held_hours=8), END, p, [HOUR_MS])
    assert thin[0].baseline_usd == 30e3 and thin[0].coverage < p.min_coverage
    assert evaluate(thin, p) == []  # under the $10M absolute tier: nothing fires
    big = [("binance", "BTC", 12e6, 0.1e6)]
    signal, = evaluate(build_stats(Source(big, base=8 * 30e3, held_hours=8), END, p,
                                   [HOUR_MS]), p)
    assert (signal.severity, signal.thin_history) == (1, True)  # notable by size, not 400x
    assert signal.ratio is not None and signal.ratio > 20
    full, = evaluate(build_stats(Source(big, base=168 * 30e3), END, p, [HOUR_MS]), p)
    assert (full.severity, full.thin_history) == (3, False)
    edge = build_stats(Source(big, base=168 * 30e3, held_hours=152), END, p, [HOUR_MS])
    assert edge[0].coverage >= 0.9 and evaluate(edge, p)[0].severity == 3  # 152/168 = 90.5 %
