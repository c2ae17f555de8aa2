"""The market-data store: events, buckets, funding, OI, candles and the reads over them.

`Store` builds on one `Database` (feeds/store/db.py), which it opens and brings to the
market schema (feeds/store/schema.py). The chat side (bot/state) uses the same file
through `Store.database`, never through the Store's methods.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from feeds.model import (
    HOUR_MS,
    MINUTE_MS,
    Bucket,
    Candle,
    Funding,
    Liquidation,
    OpenInterest,
    ceil_ms,
)
from feeds.plausible import Gate
from feeds.store import buckets, charts, compact, coverage, ingest
from feeds.store.db import Database, StoreError, Transaction, split_sql
from feeds.store.rawlog import RawLog
from feeds.store.schema import MIGRATIONS, SCHEMA_KEY
from feeds.store.scoped import ScopedCoverage, ScopedTotals, SpanCache
from feeds.store.totals import (
    AGGREGATE_RANK,
    WINDOWS_MS,
    Totals,
    TotalsRow,
    aggregate_totals,
    event_totals,
    filters,
    parse_window,
    unpriced_events,
    window_name,
)

logger = logging.getLogger(__name__)

# Imports of these names from here, written before the split, keep working; new code
# imports them from feeds.store.
__all__ = ["AGGREGATE_RANK", "WINDOWS_MS", "Store", "StoreError", "Totals",
           "TotalsRow", "parse_window", "split_sql", "window_name"]

class Store:
    """Market data in one SQLite database file. Not thread-safe: one Store per thread."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL",
                 existing: bool = False) -> None:
        self.path = str(path)
        # The seam bot/state builds on (its own tables, migrations and SQL); market code
        # uses the methods below. `existing`: open a file that is there, never create one.
        self.database = Database(self.path, synchronous=synchronous, existing=existing)
        try:
            self.database.migrate(SCHEMA_KEY, MIGRATIONS, what="market")
        except BaseException:
            self.database.close()
            raise
        self._conn = self.database.conn
        self._raw = RawLog(self._conn)
        # Earliest bucket time written since `take_write_floor` last ran, and SQLite's count
        # of other connections' commits then: what the evaluation's caches must forget.
        self._write_floor: int | None = None
        self._data_version = self._read_data_version()
        self.gate = Gate()  # implausible events are counted here (gate.rejected), not stored

    def close(self) -> None:
        try:
            self._raw.flush()  # the payloads not yet in a block
        except sqlite3.Error as exc:  # a full disk, a read-only file: the events are stored
            logger.warning("store %s: the last %d venue payloads were not kept (%s)",
                           self.path, self._raw.pending, exc)
        finally:
            self.database.close()

    def raw_payload(self, uid: int, ts_ms: int) -> Any | None:
        """The venue payload stored with the event `uid` at `ts_ms` (None when none was)."""
        row = self._conn.execute(
            "SELECT raw, exchange, symbol, side, qty, price FROM events "
            "WHERE ts_ms = ? AND uid = ?", (ts_ms, uid)).fetchone()
        if row is not None and row[0] is not None:
            raw, exchange, symbol, side, qty, price = row
            if isinstance(raw, bytes):  # a Binance frame's remainder (feeds/store/compact.py)
                return compact.frame(raw, symbol, side, qty, price, ts_ms)
            return orjson.loads(raw)  # text: a row written before schema v7
        return self._raw.payload(uid, ts_ms)

    # -- schema --------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The market schema's version (the chat tables have their own: bot/state/schema)."""
        return self.database.version(SCHEMA_KEY)

    def get_meta(self, key: str) -> str | None:
        return self.database.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self.database.set_meta(key, value)

    # -- writes --------------------------------------------------------------------------

    def insert_liquidations(self, events: Iterable[Liquidation], *, keep_raw: bool = True) -> int:
        """Store events in one transaction; return how many were new (duplicates are ignored).

        One pass over the batch checks each event against the plausibility gate
        (feeds/plausible.py: `passes`, and `Gate.refuse` to name and count what fails), and
        makes the rows, the minute sums of the bucket levels and the venue payloads: a
        Binance frame's remainder in its row (feeds/store/compact.py), any other payload
        compressed in a block (feeds/store/rawlog.py); `keep_raw=False` keeps none.
        """
        rows, minutes, payloads = ingest.batch(events, self.gate, keep_raw)
        return self._insert(rows, minutes, payloads)

    def insert_event_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store prepared event rows (`_event_row` tuples: bulk loaders, benchmarks); new count.
        Their bucket sums are made by SQL from the stored rows; no payload is kept apart."""
        return self._insert(rows, None, [])

    def _insert(self, rows: Sequence[tuple[Any, ...]], minutes: buckets.MinuteSums | None,
                payloads: list[tuple[int, Any]]) -> int:
        if not rows:
            return 0
        with self.transaction():
            new, earliest = ingest.write(self._conn, rows, minutes, payloads, self._raw)
            self._wrote(earliest)
        return new

    def insert_buckets(self, buckets: Iterable[Bucket]) -> int:
        """Upsert imported aggregate buckets (a re-import replaces, never double counts)."""
        rows = [
            (b.source, b.span_ms, b.start_ms, b.exchange, b.coin, b.long_usd, b.short_usd,
             b.long_count, b.short_count)
            for b in buckets
        ]
        with self.transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO agg_buckets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        if rows:
            self._wrote(min(r[2] for r in rows))
        return len(rows)

    def insert_funding(self, items: Iterable[Funding]) -> int:
        rows = [
            (f.exchange, f.symbol, f.coin, f.ts_ms, str(f.rate), f.interval_h, f.rate_8h)
            for f in items
        ]
        with self.transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO funding VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def insert_open_interest(self, items: Iterable[OpenInterest]) -> int:
        rows = [
            (o.exchange, o.symbol, o.coin, o.ts_ms,
             None if o.oi_base is None else str(o.oi_base),
             None if o.oi_usd is None else float(o.oi_usd))
            for o in items
        ]
        with self.transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO open_interest VALUES (?, ?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def insert_candles(self, items: Iterable[Candle]) -> int:
        rows = [
            (c.exchange, c.coin, c.span_ms, c.start_ms, c.open, c.high, c.low, c.close)
            for c in items
        ]
        with self.transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO candles VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def record_gap(self, exchange: str, start_ms: int, end_ms: int | None, reason: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO gaps VALUES (?, ?, ?, ?)", (exchange, start_ms, end_ms, reason)
        )

    def prune_events(self, before_ms: int) -> int:
        """Delete raw events older than `before_ms`; minute and hour buckets stay."""
        with self.transaction():
            cur = self._conn.execute("DELETE FROM events WHERE ts_ms < ?", (before_ms,))
            self._raw.prune(before_ms)
        return cur.rowcount

    def transaction(self) -> Transaction:
        """`with store.transaction():` — BEGIN IMMEDIATE, so the write lock is taken first."""
        return self.database.transaction()

    def snapshot(self) -> Transaction:
        """`with store.snapshot():` — reads inside see one state of the file (a deferred
        BEGIN; joins an open transaction instead)."""
        return self.database.snapshot()

    def _wrote(self, earliest_ms: int | None) -> None:
        if earliest_ms is not None and (self._write_floor is None
                                        or earliest_ms < self._write_floor):
            self._write_floor = earliest_ms

    def _read_data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def take_write_floor(self) -> int | None:
        """The earliest time whose totals changed since the last call (None: nothing did).

        Another process writing the same file (an import) is not seen in detail: any commit
        of another connection answers 0, everything.
        """
        floor, self._write_floor = self._write_floor, None
        version = self._read_data_version()
        if version != self._data_version:
            self._data_version = version
            return 0
        return floor

    # -- reads ---------------------------------------------------------------------------

    def scoped_totals(self, end_ms: int, window_ms: int, *,
                      sampled_venues: Collection[str] = frozenset(),
                      cache: SpanCache | None = None) -> ScopedTotals:
        """One market-wide read of the window, from which `.of(coin)` gives what
        `totals(end_ms, window_ms, coin=coin, sampled_venues=...)` gives (without `unpriced`).
        `cache` serves the whole 4-hour buckets of a long span (feeds/store/scoped.py)."""
        end = ceil_ms(end_ms, MINUTE_MS)
        start = end - window_ms
        rows = (cache.event_totals(start, end) if cache is not None
                else event_totals(self._conn, start, end, "", []))
        return ScopedTotals(self._conn, start, end, sampled_venues, rows)

    def scoped_coverage(self, end_ms: int, span_ms: int, *,
                        cache: SpanCache | None = None) -> ScopedCoverage:
        """One market-wide read for `coverage(end_ms, span_ms, coin=...)` of every scope."""
        end = ceil_ms(end_ms, MINUTE_MS)
        return ScopedCoverage(self._conn, end - span_ms, end, cache)

    def span_cache(self) -> SpanCache:
        return SpanCache(self._conn)

    def count_events(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def totals(
        self,
        end_ms: int,
        window_ms: int,
        *,
        coin: str | None = None,
        exchange: str | None = None,
        source: str = "auto",
        sampled_venues: Collection[str] = frozenset(),
    ) -> Totals:
        """Sum liquidations over [end - window, end), `end` rounded up to a whole minute.

        Event-derived data uses hour buckets for whole hours and minute buckets at the
        edges; imported aggregate rows count when they lie fully inside the window.
        `source`: "events", "aggregates", one aggregate source's name, or "auto" —
        our own events when the window has any, else aggregates. Summing both would
        count the same liquidations twice (CoinGlass already includes Binance's).
        `sampled_venues`: the throttled feeds (feeds.venues.registry.SAMPLED_VENUES); totals
        that include one are lower bounds. The store does not know venues, so callers say.
        """
        end = ceil_ms(end_ms, MINUTE_MS)
        start = end - window_ms
        where, wargs = filters(coin, exchange)
        rows: tuple[TotalsRow, ...] = ()
        unpriced = 0
        if source in ("auto", "events"):
            rows = event_totals(self._conn, start, end, where, wargs)
            if rows:
                unpriced = unpriced_events(self._conn, start, end, where, wargs)
        if not rows and source != "events":
            rows = aggregate_totals(self._conn, start, end, where, wargs, source)
        # Throttled feeds (PROTOCOLS.md overview): totals that include them are lower bounds.
        sampled = frozenset(r.exchange for r in rows if r.exchange in sampled_venues)
        return Totals(start, end, rows, sampled, unpriced)

    def coverage(self, end_ms: int, span_ms: int, *, coin: str | None = None
                 ) -> tuple[int, int]:
        """(held_ms, whole_ms) of [end - span, end): the whole clock hours inside the span,
        and how much of them holds data for the coin (the market when None), less the time
        a venue that supplied it was in a recorded gap. `end` rounds up as in `totals`.
        """
        end = ceil_ms(end_ms, MINUTE_MS)
        return coverage.coverage(self._conn, end - span_ms, end, coin)

    def coins(self, start_ms: int, end_ms: int) -> list[str]:
        """Coins with any liquidation in [start, end)."""
        sql = (
            "SELECT DISTINCT coin FROM buckets_1h WHERE start_ms >= ? AND start_ms < ? UNION "
            "SELECT DISTINCT coin FROM agg_buckets WHERE start_ms >= ? AND start_ms < ?"
        )
        rows = self._conn.execute(sql, (start_ms - HOUR_MS, end_ms, start_ms, end_ms))
        return sorted(r[0] for r in rows)

    def latest_funding(self, coin: str, at_ms: int) -> list[Funding]:
        """Latest funding per exchange/symbol for `coin` known at `at_ms`."""
        sql = (
            "SELECT exchange, symbol, max(ts_ms), rate, interval_h FROM funding "
            "WHERE coin = ? AND ts_ms <= ? AND ts_ms > ? GROUP BY exchange, symbol"
        )
        rows = self._conn.execute(sql, (coin.upper(), at_ms, at_ms - 2 * 86_400_000))
        return [Funding(e, s, t, Decimal(r), i) for e, s, t, r, i in rows]

    def candles(self, coin: str, span_ms: int, start_ms: int, end_ms: int) -> list[Candle]:
        sql = (
            "SELECT exchange, coin, span_ms, start_ms, open, high, low, close FROM candles "
            "WHERE coin = ? AND span_ms = ? AND start_ms >= ? AND start_ms < ? ORDER BY start_ms"
        )
        rows = self._conn.execute(sql, (coin.upper(), span_ms, start_ms, end_ms))
        return [Candle(*r) for r in rows]

    def price_change(self, coin: str, start_ms: int, end_ms: int) -> float | None:
        """Fractional price change over [start, end) from the finest candles inside it."""
        rows = self._conn.execute(
            "SELECT open, close FROM candles WHERE coin = ? AND start_ms >= ? "
            "AND start_ms + span_ms <= ? AND span_ms = (SELECT min(span_ms) FROM candles "
            "WHERE coin = ? AND start_ms >= ? AND start_ms + span_ms <= ?) ORDER BY start_ms",
            (coin.upper(), start_ms, end_ms, coin.upper(), start_ms, end_ms),
        ).fetchall()
        if not rows or rows[0][0] <= 0:
            return None
        return float(rows[-1][1] / rows[0][0] - 1.0)

    def liq_bars(self, coin: str | None, start_ms: int, end_ms: int,
                 bar_ms: int) -> tuple[list[charts.LiqBar], int]:
        """Long/short USD per bar of [start, end) and the bar used (feeds/store/charts.py)."""
        return charts.liq_bars(self._conn, coin, start_ms, end_ms, bar_ms)

    def price_line(self, coin: str, start_ms: int, end_ms: int) -> list[charts.PricePoint]:
        """Close prices of `coin` over [start, end) from one venue's finest candles."""
        return charts.price_line(self._conn, coin, start_ms, end_ms)

    def largest_liquidation(self, coin: str | None, start_ms: int,
                            end_ms: int) -> charts.LargestLiquidation | None:
        """The single biggest liquidation event of [start, end) (the market when None)."""
        return charts.largest_liquidation(self._conn, coin, start_ms, end_ms)

    def latest_ms(self) -> int | None:
        """End of the newest data in the store (events or aggregate rows), or None."""
        row = self._conn.execute(
            "SELECT max(t) FROM (SELECT max(ts_ms) + 1 AS t FROM events "
            "UNION ALL SELECT max(start_ms + 60000) FROM buckets_1m "
            "UNION ALL SELECT max(start_ms + span_ms) FROM agg_buckets)"
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def minute_sums(self, start_ms: int, end_ms: int, coins: Collection[str] | None = None
                    ) -> list[tuple[int, str, float, float]]:
        """(minute start, coin, long_usd, short_usd) of our own events, summed across venues,
        for the minutes starting in [start, end); every coin, or those in `coins`.

        What the live run keeps in memory to see a window cross a tier between evaluations.
        """
        sql = ("SELECT start_ms, coin, sum(long_usd), sum(short_usd) FROM buckets_1m "
               "WHERE start_ms >= ? AND start_ms < ?")
        args: list[Any] = [start_ms, end_ms]
        if coins is not None:
            sql += f" AND coin IN ({','.join('?' * len(coins))})"
            args += list(coins)
        rows = self._conn.execute(sql + " GROUP BY start_ms, coin", args).fetchall()
        return [(int(m), str(c), float(lg), float(sh)) for m, c, lg, sh in rows]
