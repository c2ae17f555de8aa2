"""Window totals: window names, the Totals value, and the sums over buckets it is built from.

A window's events are read from the coarsest bucket levels that fit inside it
(feeds/store/buckets.py); imported aggregates count when they lie fully inside it, one
source per coin. `Store.totals` chooses between the two.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from feeds.model import HOUR_MS, MARKET, MINUTE_MS, coin_of
from feeds.store import buckets

WINDOWS_MS: dict[str, int] = {
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "4h": 4 * HOUR_MS,
    "24h": 24 * HOUR_MS,
}


def parse_window(text: str) -> int:
    """Return the length in ms of a window name such as `1h`; ValueError names the choices."""
    try:
        return WINDOWS_MS[text.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown window {text!r}: use one of {', '.join(WINDOWS_MS)}"
        ) from None


def window_name(ms: int) -> str:
    """Return the display name of a window length (`3600000` -> `1h`)."""
    for name, length in WINDOWS_MS.items():
        if length == ms:
            return name
    if ms % HOUR_MS == 0:
        return f"{ms // HOUR_MS}h"
    return f"{ms // MINUTE_MS}m"


class TotalsRow(NamedTuple):
    """One (exchange, coin) group of a window: a tuple, as a read builds hundreds a tick."""

    exchange: str
    coin: str
    long_usd: float
    short_usd: float
    long_n: int
    short_n: int


@dataclass(frozen=True, slots=True)
class Totals:
    """Liquidation totals over [start_ms, end_ms), with the rows they sum."""

    start_ms: int
    end_ms: int
    rows: tuple[TotalsRow, ...] = field(default=())
    sampled_exchanges: frozenset[str] = frozenset()
    # Events in the window that have no USD value (coin-quoted, no reference price): they
    # are in `count` but not in the sums.
    unpriced: int = 0

    @property
    def long_usd(self) -> float:
        return sum(r.long_usd for r in self.rows)

    @property
    def short_usd(self) -> float:
        return sum(r.short_usd for r in self.rows)

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    @property
    def count(self) -> int:
        return sum(r.long_n + r.short_n for r in self.rows)

    def by(self, dim: str) -> list[tuple[str, float, float]]:
        """Return (name, long_usd, short_usd) per `coin` or `exchange`, biggest first."""
        acc: dict[str, list[float]] = {}
        for r in self.rows:
            slot = acc.setdefault(getattr(r, dim), [0.0, 0.0])
            slot[0] += r.long_usd
            slot[1] += r.short_usd
        return sorted(((k, v[0], v[1]) for k, v in acc.items()), key=lambda t: -(t[1] + t[2]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "long_usd": self.long_usd,
            "short_usd": self.short_usd,
            "total_usd": self.total_usd,
            "count": self.count,
            "lower_bound": bool(self.sampled_exchanges),
            "unpriced": self.unpriced,
            "by_coin": [{"coin": c, "long_usd": lg, "short_usd": sh}
                        for c, lg, sh in self.by("coin")],
            "by_exchange": [
                {"exchange": e, "long_usd": lg, "short_usd": sh}
                for e, lg, sh in self.by("exchange")
            ],
        }


def event_totals(conn: sqlite3.Connection, start: int, end: int, where: str,
                 wargs: list[Any]) -> tuple[TotalsRow, ...]:
    """Per exchange and coin, the sums of our own events over [start, end) from buckets."""
    parts = buckets.cover(start, end)
    if not parts:
        return ()
    union = " UNION ALL ".join(
        f"SELECT * FROM {table} WHERE start_ms >= ? AND start_ms < ?" for table, _, _ in parts)
    args: list[Any] = [x for _, lo, hi in parts for x in (lo, hi)]
    sql = (
        "SELECT exchange, coin, sum(long_usd), sum(short_usd), sum(long_n), sum(short_n) "
        f"FROM ({union}) {where} GROUP BY exchange, coin"
    )
    return tuple(map(TotalsRow._make, conn.execute(sql, args + wargs)))


def unpriced_events(conn: sqlite3.Connection, start: int, end: int, where: str,
                    wargs: list[Any]) -> int:
    """How many events in [start, end) carry no USD value (the partial index of v6)."""
    cond = f"{where} AND" if where else "WHERE"
    # Named: any index starting (ts_ms, ...) also serves this query, by reading every event
    # of the window (an operator's own index did: 20 ms for /liqs 24h on 10M events).
    sql = (f"SELECT count(*) FROM events INDEXED BY events_unpriced {cond} usd = 0 "
           "AND ts_ms >= ? AND ts_ms < ?")
    return int(conn.execute(sql, [*wargs, start, end]).fetchone()[0])


def aggregate_totals(conn: sqlite3.Connection, start: int, end: int, where: str,
                     wargs: list[Any], source: str) -> tuple[TotalsRow, ...]:
    """Per exchange and coin, the imported aggregates lying fully inside [start, end)."""
    sql = (
        "SELECT source, exchange, coin, sum(long_usd), sum(short_usd), sum(long_n), "
        "sum(short_n) FROM (SELECT * FROM agg_buckets WHERE start_ms >= ? "
        f"AND start_ms + span_ms <= ?) {where} GROUP BY source, exchange, coin"
    )
    found = conn.execute(sql, [start, end, *wargs]).fetchall()
    if source not in ("auto", "aggregates"):
        return tuple(TotalsRow(*r[1:]) for r in found if r[0] == source)
    # Sources overlap (a CoinGlass aggregate includes Binance, which Coinalyze also
    # covers): per coin, only the best-ranked source present in the window counts.
    best: dict[str, int] = {}
    for r in found:
        best[r[2]] = min(best.get(r[2], 99), _rank(r[0]))
    return tuple(TotalsRow(*r[1:]) for r in found if _rank(r[0]) == best[r[2]])


# Aggregate sources, broadest first: per coin, a broader one wins over a narrower one.
AGGREGATE_RANK = ("coinglass", "coinalyze", "hyperliquid-daily")


def _rank(source: str) -> int:
    return AGGREGATE_RANK.index(source) if source in AGGREGATE_RANK else len(AGGREGATE_RANK)


def filters(coin: str | None, exchange: str | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if coin and coin != MARKET:
        clauses.append("coin = ?")
        args.append(coin_of(coin))
    if exchange and exchange != MARKET:
        clauses.append("exchange = ?")
        args.append(exchange.lower())
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args
