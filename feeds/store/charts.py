"""The reads behind a chart and an alert's detail: price, per-side bars, the largest event.

A chart shows a day of a coin (or the market) around a window: the price line from the
finest candles the store holds for it, and long/short liquidations summed per bar. The
bars come from our own events' minute buckets when the span has any, else from imported
aggregates (one source per coin, the broadest, as `totals` counts them), never both: the
same liquidations would be drawn twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from feeds.model import MARKET
from feeds.store.totals import AGGREGATE_RANK


@dataclass(frozen=True, slots=True)
class LiqBar:
    start_ms: int
    long_usd: float
    short_usd: float


@dataclass(frozen=True, slots=True)
class PricePoint:
    end_ms: int  # the candle's close time: the price known then
    close: float


@dataclass(frozen=True, slots=True)
class LargestLiquidation:
    """The biggest single liquidation of a window, as the venue reported it."""

    exchange: str
    symbol: str
    coin: str
    side: str  # the position liquidated: long | short
    usd: float
    price: float
    ts_ms: int


def _coin_filter(coin: str | None) -> tuple[str, list[object]]:
    if coin is None or coin == MARKET:
        return "", []
    return " AND coin = ?", [coin.upper()]


def liq_bars(conn: sqlite3.Connection, coin: str | None, start_ms: int, end_ms: int,
             bar_ms: int) -> tuple[list[LiqBar], int]:
    """Long/short USD per bar of [start, end), and the bar size used.

    Events' minute buckets are summed into `bar_ms` bars. Without events in the span,
    imported aggregates are used at their own span when it is coarser than `bar_ms`.
    """
    where, args = _coin_filter(coin)
    rows = conn.execute(
        f"SELECT start_ms - (start_ms - ?) % ? AS bar, sum(long_usd), sum(short_usd) "
        f"FROM buckets_1m WHERE start_ms >= ? AND start_ms < ?{where} GROUP BY bar ORDER BY bar",
        [start_ms, bar_ms, start_ms, end_ms, *args]).fetchall()
    if rows:
        return [LiqBar(int(b), float(lg), float(sh)) for b, lg, sh in rows], bar_ms
    found = conn.execute(
        f"SELECT source, coin, max(span_ms) FROM agg_buckets WHERE start_ms >= ? "
        f"AND start_ms < ?{where} GROUP BY source, coin", [start_ms, end_ms, *args]).fetchall()
    if not found:
        return [], bar_ms
    best: dict[str, str] = {}
    for source, c, _ in sorted(found, key=lambda r: _rank(r[0])):
        best.setdefault(c, source)
    span = max(bar_ms, *(int(s) for src, c, s in found if best[c] == src))
    pairs = sorted(best.items())
    match = " OR ".join("(coin = ? AND source = ?)" for _ in pairs)
    rows = conn.execute(
        f"SELECT start_ms - (start_ms - ?) % ? AS bar, sum(long_usd), sum(short_usd) "
        f"FROM agg_buckets WHERE start_ms >= ? AND start_ms < ? AND ({match}) "
        f"GROUP BY bar ORDER BY bar",
        [start_ms, span, start_ms, end_ms, *(x for p in pairs for x in p)]).fetchall()
    return [LiqBar(int(b), float(lg), float(sh)) for b, lg, sh in rows], span


def _rank(source: str) -> int:
    return AGGREGATE_RANK.index(source) if source in AGGREGATE_RANK else len(AGGREGATE_RANK)


def price_line(conn: sqlite3.Connection, coin: str, start_ms: int,
               end_ms: int) -> list[PricePoint]:
    """Close prices of `coin` over [start, end): the finest span held, from the venue that
    holds most of it (venues' prices differ a little; mixing them would draw a saw)."""
    best = conn.execute(
        "SELECT span_ms, exchange, count(*) AS n FROM candles WHERE coin = ? AND start_ms >= ? "
        "AND start_ms < ? GROUP BY span_ms, exchange ORDER BY span_ms, n DESC LIMIT 1",
        (coin.upper(), start_ms, end_ms)).fetchone()
    if best is None:
        return []
    span, exchange = int(best[0]), str(best[1])
    rows = conn.execute(
        "SELECT start_ms, close FROM candles WHERE coin = ? AND span_ms = ? AND exchange = ? "
        "AND start_ms >= ? AND start_ms < ? ORDER BY start_ms",
        (coin.upper(), span, exchange, start_ms, end_ms))
    return [PricePoint(int(s) + span, float(c)) for s, c in rows]


def largest_liquidation(conn: sqlite3.Connection, coin: str | None, start_ms: int,
                        end_ms: int) -> LargestLiquidation | None:
    """The single biggest event (USD) of [start, end); None without events there."""
    where, args = _coin_filter(coin)
    row = conn.execute(
        "SELECT exchange, symbol, coin, side, usd, price, ts_ms FROM events "
        f"WHERE ts_ms >= ? AND ts_ms < ?{where} ORDER BY usd DESC LIMIT 1",
        [start_ms, end_ms, *args]).fetchone()
    if row is None:
        return None
    return LargestLiquidation(str(row[0]), str(row[1]), str(row[2]), str(row[3]),
                              float(row[4]), float(row[5]), int(row[6]))
