"""Turn the store's window totals into the WindowStats the pure classifiers read."""

from __future__ import annotations

from feeds.model import HOUR_MS, MARKET
from feeds.store import Store, Totals, parse_window
from feeds.venues.registry import SAMPLED_VENUES
from signals import Context, SignalParams, WindowStat


def _context(store: Store, scope: str, start_ms: int, end_ms: int) -> Context:
    if scope == MARKET:
        return Context()
    change = store.price_change(scope, start_ms, end_ms)
    funding = store.latest_funding(scope, start_ms)
    # Venues differ in interval; compare per 8h, averaged across venues.
    funding_8h = sum(f.rate_8h for f in funding) / len(funding) if funding else None
    return Context(price_change=change, funding_8h=funding_8h)


def _could_fire(total_usd: float, window_ms: int, p: SignalParams) -> bool:
    return total_usd >= min(p.floor_usd(window_ms), p.tier_usd(window_ms)[0])


def _stat(store: Store, scope: str, t: Totals, p: SignalParams) -> WindowStat:
    window = t.end_ms - t.start_ms
    lookback = p.baseline_hours * HOUR_MS
    base = store.totals(t.start_ms, lookback, coin=None if scope == MARKET else scope)
    baseline = base.total_usd * window / lookback if base.total_usd > 0 else None
    return WindowStat(
        scope=scope, start_ms=t.start_ms, end_ms=t.end_ms,
        long_usd=t.long_usd, short_usd=t.short_usd, baseline_usd=baseline,
        lower_bound=bool(t.sampled_exchanges),
        top_coins=tuple(t.by("coin")[:5]), top_exchanges=tuple(t.by("exchange")[:5]),
        context=_context(store, scope, t.start_ms, t.end_ms),
    )


def build_stats(
    store: Store, end_ms: int, p: SignalParams, *, bar_ms: int = 60_000
) -> list[WindowStat]:
    """Window stats at `end_ms` for the market and each active coin, per configured window.

    Windows shorter than the data's bar (a 5m window over hourly rows) are skipped:
    they would only ever see partial bars.
    """
    stats = []
    for name in p.windows:
        window = parse_window(name)
        if window < bar_ms or window % bar_ms:
            continue
        market = store.totals(end_ms, window, sampled_venues=SAMPLED_VENUES)
        if not _could_fire(market.total_usd, window, p):
            continue
        coins = [c for c, _, _ in market.by("coin") if c != MARKET]
        # With one coin the market-wide total is that coin's: one alert, not two.
        if len(coins) != 1:
            stats.append(_stat(store, MARKET, market, p))
        if p.per_coin:
            for coin in coins[: p.max_coins]:
                t = store.totals(end_ms, window, coin=coin, sampled_venues=SAMPLED_VENUES)
                if _could_fire(t.total_usd, window, p):
                    stats.append(_stat(store, coin, t, p))
    return stats
