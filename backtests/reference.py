"""The reference path: one evaluation at a time, exactly as the live bot does it.

At each tick, WindowStats are built the way `bot.evaluate.build_stats` builds them from the
store (same windows, same skip and pre-filter rules, same sums), classified by the real
`signals.registry.evaluate`, and turned into alerts by `signals.episodes.decide`. Slow and
plain on purpose: the vectorized engine is tested against it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from backtests.bars import Bars
from backtests.engine import AlertRecord
from feeds.model import DAY_MS, HOUR_MS, MARKET
from feeds.store import parse_window
from signals import Context, SignalParams, WindowStat, evaluate
from signals.episodes import DEFAULT_COOLDOWN_MS, Decision, Key, Last, decide


def _could_fire(total_usd: float, window_ms: int, p: SignalParams) -> bool:
    return total_usd >= min(p.floor_usd(window_ms), p.tier_usd(window_ms)[0])


class MemoryStore:
    """The store's reads (totals, price change, funding) over Bars, one question at a time."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
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

    def totals(self, end: int, window: int, scope: str) -> tuple[float, float, list[str]]:
        """Return (long, short, coins with rows, biggest first): Store.totals + by("coin")."""
        long_usd = short_usd = 0.0
        by_coin: dict[str, list[float]] = {}
        for g in self.bars.coin_groups(scope):
            lo, sh, present = self._group_sums(g, end - window, end)
            if not present:
                continue
            long_usd += lo
            short_usd += sh
            slot = by_coin.setdefault(self.bars.groups[g][1], [0.0, 0.0])
            slot[0] += lo
            slot[1] += sh
        coins = sorted(by_coin, key=lambda c: -(by_coin[c][0] + by_coin[c][1]))
        return long_usd, short_usd, [c for c in coins if c != MARKET]

    def price_change(self, coin: str, start: int, end: int) -> float | None:
        """Store.price_change: last close / first open - 1 of the finest candles inside."""
        for span, starts, opens, closes in self._candles.get(coin, ()):
            i, j = bisect_left(starts, start), bisect_right(starts, end - span) - 1
            if i <= j:
                if opens[i] <= 0:
                    return None
                return float(closes[j] / opens[i] - 1.0)
        return None

    def funding_8h(self, coin: str, at: int) -> float | None:
        """Mean per-8h rate over venues: the latest known at `at`, under two days old."""
        rates = []
        for ts, rate_8h in self._funding.get(coin, ()):
            k = bisect_right(ts, at) - 1
            if k >= 0 and ts[k] > at - 2 * DAY_MS:
                rates.append(rate_8h[k])
        if not rates:
            return None
        acc = 0.0
        for r in rates:
            acc += r
        return acc / len(rates)


def _stat(db: MemoryStore, scope: str, end: int, window: int, p: SignalParams) -> WindowStat:
    long_usd, short_usd, _ = db.totals(end, window, scope)
    start, lookback = end - window, p.baseline_hours * HOUR_MS
    b_long, b_short, _ = db.totals(start, lookback, scope)
    base = b_long + b_short
    context = Context()
    if scope != MARKET:
        context = Context(price_change=db.price_change(scope, start, end),
                          funding_8h=db.funding_8h(scope, start))
    return WindowStat(scope=scope, start_ms=start, end_ms=end, long_usd=long_usd,
                      short_usd=short_usd, baseline_usd=base * window / lookback if base > 0
                      else None, context=context)


def build_stats(db: MemoryStore, end: int, p: SignalParams) -> list[WindowStat]:
    """WindowStats at `end`, in bot.evaluate.build_stats' order and with its rules."""
    bars = db.bars
    stats = []
    for name in p.windows:
        window = parse_window(name)
        if window < bars.bar_ms or window % bars.bar_ms:
            continue
        long_usd, short_usd, coins = db.totals(end, window, MARKET)
        if not _could_fire(long_usd + short_usd, window, p):
            continue
        # With one coin the market-wide total is that coin's: one alert, not two.
        if len(coins) != 1:
            stats.append(_stat(db, MARKET, end, window, p))
        if p.per_coin:
            for coin in coins[: p.max_coins]:
                lo, sh, _ = db.totals(end, window, coin)
                if _could_fire(lo + sh, window, p):
                    stats.append(_stat(db, coin, end, window, p))
    return stats


def _record(d: Decision) -> AlertRecord:
    s, st = d.signal, d.signal.stat
    return AlertRecord(
        s.kind.value, st.scope, st.window_ms, st.start_ms, st.end_ms, s.severity, st.long_usd,
        st.short_usd, s.share, s.ratio, st.baseline_usd, st.context.price_change,
        st.context.funding_8h, d.escalation, d.episode_ms)


def iter_decisions(
    bars: Bars, p: SignalParams, cooldown_ms: int = DEFAULT_COOLDOWN_MS
) -> Iterator[tuple[int, list[Decision]]]:
    """Yield (tick, alerts decided there) for every tick, as the replay runner evaluates."""
    db = MemoryStore(bars)
    state: dict[Key, Last] = {}
    for end in bars.ticks.tolist():
        decisions, state = decide(evaluate(build_stats(db, end, p), p), p, state, cooldown_ms)
        yield end, decisions


def run_reference(
    bars: Bars, p: SignalParams, cooldown_ms: int = DEFAULT_COOLDOWN_MS
) -> list[AlertRecord]:
    """Return the alerts of the per-tick path, in time order."""
    return [_record(d) for _, ds in iter_decisions(bars, p, cooldown_ms) for d in ds]
