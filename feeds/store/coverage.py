"""How much of a span the store actually holds: the hours with data, less feed gaps.

Signals divide a trailing total by the time it was collected over, and only trust a
relative size when most of the lookback is there (`signals.stats`). A span counts in
whole clock hours: an hour is held when the scope has any bucket row in it (our own
events' hourly level, or an imported bar lying inside the span), and time inside a
recorded gap of a venue that supplied the scope is taken off again, since the venue was
deaf then. Hours only partly inside the span do not count either way: they would need
minute rows, and the backtest (backtests/windows.py) counts the same whole hours.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from feeds.model import HOUR_MS, ceil_ms, floor_ms
from feeds.store.totals import filters


def whole_hours(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The clock hours lying fully inside [start, end) as [first, last) in ms (may be empty)."""
    first, last = ceil_ms(start_ms, HOUR_MS), floor_ms(end_ms, HOUR_MS)
    return first, max(first, last)


def held_hours(rows: Iterable[tuple[int, int]], first: int, last: int) -> set[int]:
    """Starts of the hours in [first, last) touched by rows given as (start_ms, span_ms)."""
    held: set[int] = set()
    for start, span in rows:
        h = max(floor_ms(start, HOUR_MS), first)
        while h < min(start + span, last):
            held.add(h)
            h += HOUR_MS
    return held


def _gap_ms(held: set[int], gaps: Iterable[tuple[int, int]], first: int, last: int) -> int:
    """Time in held hours that falls inside at least one gap (gaps merged first)."""
    merged: list[list[int]] = []
    for a, b in sorted((max(a, first), min(b, last)) for a, b in gaps):
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    lost = 0
    for a, b in merged:
        h = floor_ms(a, HOUR_MS)
        while h < b:
            if h in held:
                lost += min(b, h + HOUR_MS) - max(a, h)
            h += HOUR_MS
    return lost


def coverage(conn: sqlite3.Connection, start_ms: int, end_ms: int,
             coin: str | None) -> tuple[int, int]:
    """(held_ms, whole_ms) of [start, end) for a coin, or the market when `coin` is None."""
    first, last = whole_hours(start_ms, end_ms)
    if first >= last:
        return 0, 0
    where, wargs = filters(coin, None)
    sql = (
        f"SELECT exchange, start_ms, {HOUR_MS} FROM (SELECT * FROM buckets_1h "
        f"WHERE start_ms >= ? AND start_ms < ?) {where} "
        "UNION SELECT exchange, start_ms, span_ms FROM (SELECT * FROM agg_buckets "
        f"WHERE start_ms < ? AND start_ms + span_ms > ? AND start_ms + span_ms <= ?) {where}"
    )
    rows = conn.execute(sql, [first, last, *wargs, last, first, end_ms, *wargs]).fetchall()
    held = held_hours(((int(s), int(n)) for _, s, n in rows), first, last)
    venues = sorted({str(e) for e, _, _ in rows})
    lost = 0
    if held and venues:
        marks = ",".join("?" * len(venues))
        gaps = conn.execute(
            f"SELECT start_ms, coalesce(end_ms, ?) FROM gaps WHERE exchange IN ({marks}) "
            "AND start_ms < ? AND coalesce(end_ms, ?) > ?",
            [last, *venues, last, last, first]).fetchall()
        lost = _gap_ms(held, ((int(a), int(b)) for a, b in gaps), first, last)
    return len(held) * HOUR_MS - lost, last - first
