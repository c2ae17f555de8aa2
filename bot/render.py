"""Pure text for alerts and totals: the money, percent and headline rules of DESIGN.md."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bot.alerts import Alert
from feeds.model import MARKET, ms_to_dt
from feeds.store import Totals, window_name
from signals.kinds import find_kind

logger = logging.getLogger(__name__)

_UNITS = ((Decimal("1e12"), "T"), (Decimal("1e9"), "B"), (Decimal("1e6"), "M"),
          (Decimal("1e3"), "K"))


def _to_decimal(value: float | Decimal) -> Decimal:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot render a non-finite amount: {value!r}")
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


def _round_sig(d: Decimal, digits: int) -> Decimal:
    if d == 0:
        return d
    exp = d.adjusted() - digits + 1
    return d.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_UP)


def _scaled(d: Decimal) -> tuple[Decimal, str]:
    for size, unit in _UNITS:
        if d >= size:
            return d / size, unit
    return d, ""


def money(value: float | Decimal) -> str:
    """`$` + 3 significant digits with K/M/B, trailing zeros dropped: 458.07e6 -> `$458M`."""
    d = _to_decimal(value)
    sign = "-" if d < 0 else ""
    # Round first, then pick the unit: 999.6K rounds to 1.00M and must print `$1M`.
    scaled, unit = _scaled(_round_sig(abs(d), 3))
    text = f"{scaled:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{sign}${text}{unit}"


def money_exact(value: float | Decimal) -> str:
    """Two decimals in the value's unit, for the split line: 419.03e6 -> `$419.03M`."""
    d = _to_decimal(value)
    scaled, unit = _scaled(abs(d))
    sign = "-" if d < 0 else ""
    return f"{sign}${scaled.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}{unit}"


def pct(share: float) -> int:
    """The dominant side's share as a whole percent, rounded half up: 0.91477 -> 91."""
    d = _to_decimal(share) * 100
    return int(d.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def headline(long_usd: float, short_usd: float, window_ms: int) -> str:
    """`{MONEY} liquidated in {WINDOW}, {PCT}% {shorts|longs}` for the dominant side."""
    total = long_usd + short_usd
    shorts = short_usd >= long_usd
    share = (short_usd if shorts else long_usd) / total if total > 0 else 0.0
    side = "shorts" if shorts else "longs"
    return f"{money(total)} liquidated in {window_name(window_ms)}, {pct(share)}% {side}"


def signed_pct(fraction: float, digits: int = 1) -> str:
    return f"{fraction * 100:+.{digits}f}%"


def span(start_ms: int, end_ms: int) -> str:
    """`2026-01-13 21:00–22:00 UTC`; both dates once the window is a day or longer."""
    a, b = ms_to_dt(start_ms), ms_to_dt(end_ms)
    if end_ms - start_ms >= 86_400_000:  # "14:00–14:00" would hide that a whole day passed
        return f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M} UTC"
    return f"{a:%Y-%m-%d %H:%M}–{b:%H:%M} UTC"


DUST = 0.01  # a coin or venue under 1 % of the window's total is not worth a line's room


def without_dust(items: Sequence[tuple[str, float, float]],
                 total: float | None = None) -> list[tuple[str, float, float]]:
    """`items` less those under DUST of `total` (default: their own sum)."""
    whole = sum(lg + sh for _, lg, sh in items) if total is None else total
    return [i for i in items if whole <= 0 or i[1] + i[2] >= DUST * whole]


def top(items: Sequence[tuple[str, float, float]], limit: int = 3,
        total: float | None = None) -> str:
    """`BTC $84.2M · ETH $1.2M`: the biggest `limit` names and their totals, dust left out."""
    return " · ".join(f"{name} {money(lg + sh)}"
                      for name, lg, sh in without_dust(items, total)[:limit])


def price_text(price: float) -> str:
    """A traded price as traders read it: `67,210`, `3,512.4`, `0.1834`."""
    if price >= 10_000:
        return f"{price:,.0f}"
    if price >= 100:
        return f"{price:,.1f}"
    return f"{price:.4g}"


def largest_text(largest: Mapping[str, Any]) -> str:
    """`OKX BTC-USDT-SWAP long $2.1M @ 67,210 (08:12 UTC)`: the window's biggest single event."""
    return (f"{largest['exchange']} {largest['symbol']} {largest['side']} "
            f"{money(largest['usd'])} @ {price_text(largest['price'])} "
            f"({ms_to_dt(largest['ts_ms']):%H:%M} UTC)")


def hashtags(a: Alert) -> str:
    """`#BTC #squeeze`: the coin (for a market-wide alert its leading coins) and the kind."""
    if a.scope != MARKET:
        coins = [a.scope]
    else:
        coins = [c for c, _, _ in without_dust(a.top_coins, a.total_usd) if c != MARKET][:3]
    info = find_kind(a.kind)
    words = [*coins, info.words[0] if info else a.kind]
    return " ".join("#" + "".join(ch for ch in w if ch.isalnum() or ch == "_") for w in words)


def _kind_title(kind: str) -> str:
    """`SHORT SQUEEZE`; a kind this version does not know (an old stored alert) as it reads."""
    info = find_kind(kind)
    return info.title if info else kind.replace("_", " ").upper()


def thin_note(a: Alert) -> str:
    """` · thin history (baseline 5% covered)`: sized by absolute tiers only; else empty."""
    if not a.thin_history:
        return ""
    covered = "" if a.coverage is None else f" (baseline {a.coverage * 100:.0f}% covered)"
    return f" · thin history{covered}"


def alert_lines(a: Alert) -> list[str]:
    """The alert as plain lines; the headline is always the second line, alone."""
    if a.text is not None:  # a digest: composed with its own title and headline
        return a.text.splitlines()
    scope = "market-wide" if a.scope == MARKET else a.scope
    info = find_kind(a.kind)
    title = f"{info.icon if info else '⚠️'} {_kind_title(a.kind)} — {scope}"
    title += f" · {a.severity_name}" + (" (escalated)" if a.escalation else "")
    lines = [title, headline(a.long_usd, a.short_usd, a.window_ms)]
    lines.append(f"Shorts {money_exact(a.short_usd)} · Longs {money_exact(a.long_usd)}")
    when = span(a.start_ms, a.end_ms)
    if a.ratio is not None and math.isfinite(a.ratio):
        when += f" · {a.ratio:.1f}× the trailing average"
    lines.append(when + thin_note(a))
    if a.scope == MARKET and len(a.top_coins) > 1:
        lines.append("Top: " + top(a.top_coins, 3, a.total_usd))
    if a.top_exchanges and a.top_exchanges[0][0] != MARKET:
        lines.append("Venues: " + top(a.top_exchanges, 4, a.total_usd))
    if a.largest:
        lines.append("Largest: " + largest_text(a.largest))
    context = []
    if a.price_change is not None:
        context.append(f"Price {signed_pct(a.price_change)}")
    if a.funding_8h is not None:
        context.append(f"Funding {a.funding_8h * 100:+.4f}%/8h")
    if context:
        lines.append(" · ".join(context))
    if a.lower_bound:
        lines.append("Lower bound: sampled venue feeds (Binance/OKX) omit some liquidations.")
    if a.track_record:
        lines.append(a.track_record)
    lines.append(hashtags(a))
    return lines


# What the text rules raise on values no alert should carry (NaN, 1e400, a date past 9999):
# caught so that rendering never loses an alert.
UNRENDERABLE = (ValueError, ArithmeticError, OSError)


def fallback_lines(alert: Alert, exc: Exception) -> list[str]:
    """Title and one line naming the alert, for an alert whose values cannot be rendered."""
    logger.error("render: alert %s has unrenderable values (%s)", alert.key, exc)
    return [f"⚠️ {_kind_title(alert.kind)} — {alert.scope}",
            f"Alert {alert.key} (amounts could not be rendered)"]


def safe_alert_lines(alert: Alert) -> list[str]:
    """`alert_lines`, or `fallback_lines` when a value cannot be rendered."""
    try:
        return alert_lines(alert)
    except UNRENDERABLE as exc:
        return fallback_lines(alert, exc)


def utf16_len(text: str) -> int:
    """Length as Telegram and Discord count it: UTF-16 code units (an emoji may count 2)."""
    return len(text.encode("utf-16-le")) // 2


def render_text(a: Alert) -> str:
    """Plain text, as printed on the console and used as the chat fallback."""
    return "\n".join(alert_lines(a))


def render_totals(t: Totals, window_ms: int, label: str,
                  largest: Mapping[str, Any] | None = None) -> str:
    """The answer to `/liqs` and `liqbot totals`: headline, split, breakdowns (dust left out)
    and, when the store has events for it, the window's largest single liquidation."""
    if t.total_usd <= 0:
        return f"No liquidations recorded for {label} in the last {window_name(window_ms)}."
    lines = [
        f"{label}: " + headline(t.long_usd, t.short_usd, window_ms),
        f"Shorts {money_exact(t.short_usd)} · Longs {money_exact(t.long_usd)} · {t.count} events",
        f"Window {span(t.start_ms, t.end_ms)}",
    ]
    coins = t.by("coin")
    if len(coins) > 1:
        lines.append("Top: " + top(coins, 5, t.total_usd))
    venues = t.by("exchange")
    if venues and venues[0][0] != MARKET:
        lines.append("Venues: " + top(venues, 5, t.total_usd))
    if largest:
        lines.append("Largest: " + largest_text(largest))
    if t.sampled_exchanges:
        names = ", ".join(sorted(t.sampled_exchanges))
        lines.append(f"Lower bound: {names} feed(s) are sampled.")
    if t.unpriced:
        lines.append(f"Not in the sums: {t.unpriced} coin-quoted events with no USD price known.")
    return "\n".join(lines)


def duration(ms: int) -> str:
    """Human span: 45s, 42m, 1h 5m, 2d 3h."""
    s = max(0, int(ms // 1000))
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def _ago(ts_ms: int | None, now_ms: int) -> str:
    return "never" if ts_ms is None else f"{duration(now_ms - ts_ms)} ago"


def render_status(report: dict, now_ms: int, detail: bool = False) -> str:
    """`liqbot status` and `/status` in operators' chats: one line per venue (`detail`: and
    its last error)."""
    if report["snapshot_at_ms"] is None:
        return "No live run has recorded its status in this database yet."
    lines = [f"Feeds as of {_ago(report['snapshot_at_ms'], now_ms)}:"]
    if report.get("running") is False:
        lines = ["liqbot is not running on this database (nothing holds its lock); feeds as "
                 f"it last saw them, {_ago(report['snapshot_at_ms'], now_ms)}:"]
    for v in report["venues"]:
        since = v["connected_since_ms"]
        conn = f"connected {duration(now_ms - since)}" if since is not None else (
            "connecting" if v["state"] == "up" else "disconnected")  # up, never connected: starting
        lines.append(
            f"{v['exchange']}: {v['state']} · {conn} · "
            f"last event {_ago(v['last_event_ms'], now_ms)}"
            f" · {v['events_per_min']:.1f}/min · gaps 24h {v['gaps_24h']}"
            + (" (open)" if v["gap_open"] else "") + f" · totals {v['totals']}"
        )
        if detail and v.get("last_error"):
            lines.append(f"  last error: {v['last_error']}")
    lines += _poller_lines(report.get("pollers") or [], now_ms)
    lines += _check_lines(report.get("coinglass_check"), now_ms)
    return "\n".join(lines)


_POLLER_LABELS = {"coinglass": "coinglass bars", "coinglass-check": "coinglass cross-check"}


def _poller_lines(pollers: list[dict], now_ms: int) -> list[str]:
    out = []
    for p in pollers:
        label = _POLLER_LABELS.get(p["name"], f"{p['name']} funding/OI")
        state = "failing" if p["consecutive_failures"] else "ok"
        if p["consecutive_failures"] and p.get("last_error"):
            state += f" ({p['last_error']})"
        out.append(f"{label}: {state} · last ok {_ago(p['last_ok_ms'], now_ms)} · "
                   f"{p['polls']} polls · {p['failures']} failures")
    return out


def _check_lines(check: dict | None, now_ms: int) -> list[str]:
    if not check:
        return []
    parts = [f"{'all' if r['exchange'] == '*' else r['exchange']} "
             + ("n/a" if r["ratio"] is None else f"{r['ratio'] * 100:.0f}%")
             for r in check["rows"]]
    return [f"CoinGlass cross-check ({check['window']}): {' · '.join(parts)} of CoinGlass's "
            f"totals, as of {_ago(check['at_ms'], now_ms)}"]
