"""A chat's digest: the period's totals, its biggest hours, the alerts it sent and how price
moved after them, queued through the outbox when the period ends.

Daily digests end at midnight in the chat's time zone, 4-hourly ones on UTC's 4-hour
marks. Everything in a digest is known at the period's end: price "since" an alert runs
from the alert's window end to the period's end, from candles that closed by then; a
late digest (the bot was down) still stops there and never looks past it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.alerts import Alert
from bot.render import headline, money, money_exact, signed_pct, top
from bot.state.digests import DIGEST_KIND, queue_digest, sent_alerts
from bot.state.subscriptions import Subscription, Subscriptions, zone
from feeds.model import HOUR_MS, MARKET
from feeds.store import Store
from signals.kinds import find_kind

PERIOD_MS = {"daily": 24 * HOUR_MS, "4h": 4 * HOUR_MS}


def period_end(sub: Subscription, now_ms: int) -> int:
    """The end of the latest whole period at `now_ms` (UTC ms)."""
    if sub.digest == "daily":
        tz = zone(sub.tz) or UTC
        local = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(tz)
        midnight = datetime(local.year, local.month, local.day, tzinfo=tz)
        return int(midnight.timestamp() * 1000)
    span = PERIOD_MS["4h"]
    return now_ms // span * span


def _hour(ms: int, sub: Subscription) -> str:
    tz = zone(sub.tz) or UTC
    return f"{datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz):%H:%M}"


def _alert_line(store: Store, a: Alert, end_ms: int, sub: Subscription) -> str:
    info = find_kind(a.kind)
    coin = "BTC" if a.scope == MARKET else a.scope
    scope = "market-wide" if a.scope == MARKET else a.scope
    moved = store.price_change(coin, a.end_ms, end_ms)  # candles closed by the period's end
    after = f"{coin} {signed_pct(moved)} since" if moved is not None else "no price since"
    return (f"• {_hour(a.end_ms, sub)} {info.icon if info else '⚠️'} "
            f"{info.name if info else a.kind} {scope} · {a.severity_name} · "
            f"{money(a.total_usd)} → {after}")


def compose(store: Store, sub: Subscription, end_ms: int) -> Alert:
    """The digest of the period ending at `end_ms`, as an Alert carrying its text."""
    span = PERIOD_MS[sub.digest]
    start = end_ms - span
    coin = sub.symbols[0] if len(sub.symbols) == 1 else None
    totals = store.totals(end_ms, span, coin=coin)
    label = "Daily" if sub.digest == "daily" else "4-hour"
    tz = zone(sub.tz) or UTC
    a, b = (datetime.fromtimestamp(t / 1000, UTC).astimezone(tz) for t in (start, end_ms))
    lines = [f"🗞 {label} digest · {a:%Y-%m-%d %H:%M}–{b:%H:%M} {sub.tz}"]
    if totals.total_usd > 0:
        lines.append((coin or "All coins") + ": "
                     + headline(totals.long_usd, totals.short_usd, span))
        lines.append(f"Shorts {money_exact(totals.short_usd)} · Longs "
                     f"{money_exact(totals.long_usd)} · {totals.count} events")
        coins = [c for c in totals.by("coin") if c[0] != MARKET]
        if len(coins) > 1:
            lines.append("Top: " + top(coins, 5))
        # One grouped read of the period's hours (the chart's), not a totals query per hour;
        # a period held only as coarser imported buckets ranks those buckets instead.
        bars, _ = store.liq_bars(coin, start, end_ms, HOUR_MS)
        big = sorted(bars, key=lambda b: -(b.long_usd + b.short_usd))[:3]
        lines.append("Biggest hours: " + " · ".join(
            f"{_hour(b.start_ms, sub)} {money(b.long_usd + b.short_usd)}" for b in big
            if b.long_usd + b.short_usd > 0))
    else:
        lines.append(f"No liquidations recorded in these {span // HOUR_MS} hours.")
    sent = sent_alerts(store, sub.destination, start, end_ms)
    if sent:
        lines.append(f"Alerts sent here ({len(sent)}), price from the alert to the period's end:")
        lines += [_alert_line(store, x, end_ms, sub) for x in sent[:15]]
        if len(sent) > 15:
            lines.append(f"… and {len(sent) - 15} more")
    else:
        lines.append("No alerts were sent here in this period.")
    return Alert(key=f"{DIGEST_KIND}|{sub.destination}|{sub.digest}|{end_ms}|0",
                 kind=DIGEST_KIND, severity=0, severity_name=DIGEST_KIND, scope=MARKET,
                 window_ms=span, start_ms=start, end_ms=end_ms, long_usd=totals.long_usd,
                 short_usd=totals.short_usd, share=0.0, ratio=None, episode_ms=start,
                 text="\n".join(lines))


def queue_due(store: Store, now_ms: int, platforms: frozenset[str] | None = None) -> int:
    """Queue every chat's digest whose period has ended; how many were queued.

    A chat that just asked for one starts counting now: its first digest covers the
    first whole period after the request, not the one before it. After an outage only
    the latest period's digest goes out: nobody wants a day of 4-hour digests at once.
    """
    queued = 0
    for sub in Subscriptions(store).digest_due():
        if sub.digest not in PERIOD_MS or (platforms is not None
                                           and sub.platform not in platforms):
            continue
        end = period_end(sub, now_ms)
        if end <= sub.digest_ms:
            continue
        digest = compose(store, sub, end) if sub.digest_ms else None
        queue_digest(store, sub, digest, end, now_ms)
        queued += digest is not None
    return queued

