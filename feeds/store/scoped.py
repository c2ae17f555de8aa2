"""Market-wide reads for an evaluation tick, from which every coin's totals are derived.

Evaluating the signal windows asks, for each window, the market's totals, then each active
coin's, then the trailing baseline and coverage of each of those scopes. Asked one by one
that is a query per scope and window, again every tick. The rows of one market-wide read are
already grouped per exchange and coin, so a coin's totals are the market's rows for that
coin: `ScopedTotals` reads a window once and answers any scope from it, choosing between our
own events and imported aggregates per scope exactly as `Store.totals(source="auto")` does.
`ScopedCoverage` does the same for `feeds.store.coverage`.

Each tick the windows and their 168h baselines move forward a minute or so. `SpanCache`
keeps them across ticks and slides them: the minutes a span gained are read and added, the
ones it lost read and taken off (a few bucket rows per group instead of a whole read), and
held hours are tallied the same way, an hour at a time. Anything a write may have changed
— a write before a kept span's end (`Store.take_write_floor`) — is forgotten and read
whole again. Sliding sums add in another order than one read: equal to the last bits,
with zero counts and sub-cent dust set to exactly zero, and read whole again every day.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Any

from feeds.model import HOUR_MS, MARKET, coin_of
from feeds.store import buckets
from feeds.store.coverage import _gap_ms, held_hours, whole_hours
from feeds.store.totals import Totals, TotalsRow, aggregate_totals, event_totals

_Sums = dict[tuple[str, str], list[Any]]  # long_usd, short_usd, long_n, short_n
_Held = dict[str | None, tuple[frozenset[int], frozenset[str]]]


class ScopedTotals:
    """One market-wide read of [start, end); `of(coin)` gives any scope's Totals."""

    def __init__(self, conn: sqlite3.Connection, start: int, end: int,
                 sampled_venues: Collection[str], events: tuple[TotalsRow, ...]) -> None:
        self._conn, self.start, self.end = conn, start, end
        self._sampled = sampled_venues
        self._events = events
        self._events_by_coin: _ByCoin | None = None
        self._aggregates: _ByCoin | None = None

    def of(self, coin: str | None = None) -> Totals:
        """As `Store.totals(end, end - start, coin=coin)` with the default source."""
        wanted = coin_of(coin) if coin and coin != MARKET else None
        if self._events_by_coin is None:
            self._events_by_coin = _by_coin(self._events)
        rows = self._events_by_coin.get(wanted, ())
        if not rows:
            if self._aggregates is None:  # only read when a scope has no events of its own
                self._aggregates = _by_coin(aggregate_totals(
                    self._conn, self.start, self.end, "", [], "auto"))
            rows = self._aggregates.get(wanted, ())
        sampled = frozenset(r.exchange for r in rows if r.exchange in self._sampled)
        return Totals(self.start, self.end, rows, sampled)


_ByCoin = dict[str | None, tuple[TotalsRow, ...]]


def _by_coin(rows: tuple[TotalsRow, ...]) -> _ByCoin:
    """The rows per coin, in their order; None: all of them (the market)."""
    index: dict[str | None, list[TotalsRow]] = {}
    for r in rows:
        index.setdefault(r.coin, []).append(r)
    out: _ByCoin = {k: tuple(v) for k, v in index.items()}
    out[None] = rows
    return out


class ScopedCoverage:
    """The hours held in [start, end) for every scope at once; `of(coin)` as `coverage`.

    Our own events' hours come from `hours` (the whole hours' bucket rows, shared across
    ticks: `SpanCache`); imported bars and gaps are few and read each time.
    """

    def __init__(self, conn: sqlite3.Connection, start: int, end: int,
                 hours: SpanCache | None = None) -> None:
        self.first, self.last = whole_hours(start, end)
        self._own: _Held = {}
        self._bars: list[tuple[str, str, int, int]] = []
        self._gaps: list[tuple[str, int, int]] = []
        if self.first >= self.last:
            return
        first, last = self.first, self.last
        self._own = (hours or SpanCache(conn)).held(first, last)
        self._bars = conn.execute(
            "SELECT exchange, coin, start_ms, span_ms FROM agg_buckets "
            "WHERE start_ms < ? AND start_ms + span_ms > ? AND start_ms + span_ms <= ?",
            (last, first, end)).fetchall()
        self._gaps = conn.execute(
            "SELECT exchange, start_ms, coalesce(end_ms, ?) FROM gaps "
            "WHERE start_ms < ? AND coalesce(end_ms, ?) > ?", (last, last, last, first)).fetchall()

    def of(self, coin: str | None = None) -> tuple[int, int]:
        first, last = self.first, self.last
        if first >= last:
            return 0, 0
        wanted = coin_of(coin) if coin and coin != MARKET else None
        own_hours, own_venues = self._own.get(wanted, (frozenset(), frozenset()))
        bars = [r for r in self._bars if wanted is None or r[1] == wanted]
        if not bars and not self._gaps:  # the usual case: no set to build
            return len(own_hours) * HOUR_MS, last - first
        held = set(own_hours) | held_hours(((int(s), int(n)) for _, _, s, n in bars),
                                           first, last)
        venues = set(own_venues) | {str(r[0]) for r in bars}
        lost = 0
        if held and venues:
            gaps = ((int(a), int(b)) for e, a, b in self._gaps if e in venues)
            lost = _gap_ms(held, gaps, first, last)
        return len(held) * HOUR_MS - lost, last - first


class SpanCache:
    """Spans kept across ticks and slid forward: event sums per (exchange, coin), the whole
    4-hour buckets' sums a span is first read from, and per scope the whole hours our own
    events hold (with their venues). What a write may have changed is forgotten
    (`forget_from`)."""

    def __init__(self, conn: sqlite3.Connection, keep: int = 32) -> None:
        self._conn = conn
        self._keep = keep
        self._middles: dict[tuple[int, int], _Sums] = {}
        self._hours: dict[tuple[int, int], _Held] = {}
        self._sliders: list[_Slider] = []
        self._tallies: list[_Tally] = []

    def forget_from(self, floor_ms: int | None) -> None:
        """Drop what a write at or after `floor_ms` may have changed (None: nothing was)."""
        if floor_ms is not None:
            self._sliders = [s for s in self._sliders if s.end <= floor_ms]
            self._tallies = [t for t in self._tallies if t.last <= floor_ms]
            self._middles = {k: v for k, v in self._middles.items() if k[1] <= floor_ms}
            self._hours = {k: v for k, v in self._hours.items() if k[1] <= floor_ms}

    def held(self, first: int, last: int) -> _Held:
        """Per scope (None: the market), the hour starts in [first, last) with a bucket_1h
        row and the venues of those rows.

        A span an hour or more later than a tallied one of the same length is that tally
        moved: the hours it gained are read and the ones it lost taken off, instead of
        reading all 168 hours again. Counts, not sets, so taking off is exact.
        """
        found = self._hours.get((first, last))
        if found is None:
            usable = [t for t in self._tallies if t.last - t.first == last - first
                      and t.first <= first < t.last <= last]
            if usable:
                tally = max(usable, key=lambda t: t.last).moved(self._conn, first, last)
            else:
                tally = _Tally(first, first)
                tally.add(self._conn, first, last, 1)
                tally.last = last
            self._tallies = [*self._tallies[-(_SLIDERS - 1):], tally]
            found = tally.held()
            _put(self._hours, (first, last), found, self._keep)
        return found

    def event_totals(self, start: int, end: int) -> tuple[TotalsRow, ...]:
        """As `totals.event_totals(start, end)` over the whole market, sliding when it can.

        A span of the same length that was read before and still overlaps is moved: the
        minutes it gained are added and the ones it lost taken off (two reads of a few
        bucket rows per group, instead of its ~30 per group). The float sums then differ
        from one read's in the last bits, so a side whose count falls to zero, or whose sum
        to under a cent, is exactly zero again (rounding dust must never pass for a
        baseline), and a slider is read whole again after `SLIDES` moves.
        """
        span = end - start
        usable = [s for s in self._sliders if s.end - s.start == span and s.start <= start
                  and s.end <= end and start < s.end and s.moves < SLIDES]
        if not usable:
            slider = _Slider(start, end, dict(self._exact(start, end)))
            live = [s for s in self._sliders if s.moves < SLIDES]  # spent ones go first
            self._sliders = [*live[-(_SLIDERS - 1):], slider]
        else:
            slider = max(usable, key=lambda s: s.end)
            if slider.end < end:
                slider.move(self._conn, start, end)
        return tuple(TotalsRow(e, c, *v) for (e, c), v in sorted(slider.sums.items())
                     if v[2] or v[3])

    def _exact(self, start: int, end: int) -> dict[tuple[str, str], list[Any]]:
        parts = buckets.cover(start, end)
        middle = [(lo, hi) for table, lo, hi in parts if table == "buckets_4h"]
        if not middle:
            return {(r[0], r[1]): list(r[2:])
                    for r in event_totals(self._conn, start, end, "", [])}
        lo, hi = middle[0]
        sums = {k: list(v) for k, v in self._middle(lo, hi).items()}
        edges = [p for p in parts if p[0] != "buckets_4h"]
        if edges:
            _add(sums, self._conn.execute(*_grouped(edges)))
        return sums

    def _middle(self, lo: int, hi: int) -> _Sums:
        found = self._middles.get((lo, hi))
        if found is None:
            found = {}
            _add(found, self._conn.execute(*_grouped([("buckets_4h", lo, hi)])))
            _put(self._middles, (lo, hi), found, self._keep)
        return found


# A slider is read whole again after this many moves (a day of minute ticks), so rounding
# cannot build up; and this many are kept (a window's and its baseline's per evaluated
# window length, with room).
SLIDES = 1440
_SLIDERS = 16
_DUST_USD = 0.01


class _Slider:
    """Event sums of [start, end) per (exchange, coin), moved forward a little at a time."""

    def __init__(self, start: int, end: int, sums: _Sums) -> None:
        self.start, self.end, self.sums, self.moves = start, end, sums, 0

    def move(self, conn: sqlite3.Connection, start: int, end: int) -> None:
        _add(self.sums, conn.execute(*_grouped(buckets.cover(self.end, end))))
        if self.start < start:
            _add(self.sums, conn.execute(*_grouped(buckets.cover(self.start, start))), sign=-1)
        for v in self.sums.values():  # rounding dust is not money: no event is worth a cent
            if not v[2] or v[0] < _DUST_USD:
                v[0] = 0.0
            if not v[3] or v[1] < _DUST_USD:
                v[1] = 0.0
        self.start, self.end = start, end
        self.moves += 1


class _Tally:
    """Per scope, how many buckets_1h rows each hour and each venue has in [first, last)."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.hours: dict[str | None, dict[int, int]] = {None: {}}
        self.venues: dict[str | None, dict[str, int]] = {None: {}}

    def add(self, conn: sqlite3.Connection, lo: int, hi: int, sign: int) -> None:
        for exchange, coin, start in conn.execute(
                "SELECT exchange, coin, start_ms FROM buckets_1h "
                "WHERE start_ms >= ? AND start_ms < ?", (lo, hi)):
            for scope in (None, coin):
                _count(self.hours.setdefault(scope, {}), start, sign)
                _count(self.venues.setdefault(scope, {}), exchange, sign)

    def moved(self, conn: sqlite3.Connection, first: int, last: int) -> _Tally:
        out = _Tally(first, last)
        out.hours = {k: dict(v) for k, v in self.hours.items()}
        out.venues = {k: dict(v) for k, v in self.venues.items()}
        out.add(conn, self.last, last, 1)
        out.add(conn, self.first, first, -1)
        return out

    def held(self) -> _Held:
        return {k: (frozenset(v), frozenset(self.venues[k])) for k, v in self.hours.items()
                if v or k is None}


def _count(counts: dict[Any, int], key: Any, sign: int) -> None:
    n = counts.get(key, 0) + sign
    if n:
        counts[key] = n
    else:
        del counts[key]


def _put(cache: dict[tuple[int, int], Any], key: tuple[int, int], value: Any, keep: int) -> None:
    if len(cache) >= keep:
        cache.pop(next(iter(cache)))  # the oldest: spans only move forward
    cache[key] = value


def _grouped(parts: list[tuple[str, int, int]]) -> tuple[str, list[Any]]:
    union = " UNION ALL ".join(
        f"SELECT * FROM {table} WHERE start_ms >= ? AND start_ms < ?" for table, _, _ in parts)
    sql = ("SELECT exchange, coin, sum(long_usd), sum(short_usd), sum(long_n), sum(short_n) "
           f"FROM ({union}) GROUP BY exchange, coin")
    return sql, [x for _, lo, hi in parts for x in (lo, hi)]


def _add(sums: _Sums, rows: Any, sign: int = 1) -> None:
    for e, c, lu, su, ln, sn in rows:
        slot = sums.get((e, c))
        if slot is None:
            sums[e, c] = [sign * lu, sign * su, sign * ln, sign * sn]
        else:
            slot[0] += sign * lu
            slot[1] += sign * su
            slot[2] += sign * ln
            slot[3] += sign * sn
