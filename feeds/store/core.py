"""SQLite storage via sqlite-utils: events, buckets, funding, OI, candles and window totals."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from feeds.model import (
    HOUR_MS,
    MARKET,
    MINUTE_MS,
    Bucket,
    Candle,
    Funding,
    Liquidation,
    OpenInterest,
    ceil_ms,
    coin_of,
)
from feeds.store import buckets
from feeds.store.schema import MIGRATIONS, SCHEMA_VERSION

logger = logging.getLogger(__name__)

WINDOWS_MS: dict[str, int] = {
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "4h": 4 * HOUR_MS,
    "24h": 24 * HOUR_MS,
}

_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events "
    "(uid, exchange, symbol, coin, side, qty, price, usd, ts_ms, recv_ms, sampled, raw) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class StoreError(RuntimeError):
    """The database cannot be used as it is; the message says why and what to do."""


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


@dataclass(frozen=True, slots=True)
class TotalsRow:
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
            "by_coin": [{"coin": c, "long_usd": lg, "short_usd": sh}
                        for c, lg, sh in self.by("coin")],
            "by_exchange": [
                {"exchange": e, "long_usd": lg, "short_usd": sh}
                for e, lg, sh in self.by("exchange")
            ],
        }


class Store:
    """One SQLite database file. Not thread-safe: give each thread its own Store."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        try:
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 5000")
            if self.path != ":memory:":
                self.db.enable_wal()
            self.db.execute(f"PRAGMA synchronous = {synchronous}")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable liqbot database ({exc})") from None

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.conn.close()

    # -- schema --------------------------------------------------------------------------

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema v{version} is newer than this liqbot (v{SCHEMA_VERSION}); "
                "upgrade liqbot or point --db at another file"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            logger.info("store %s: migrating schema to v%d", self.path, target)
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(MIGRATIONS[target - 1]):
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(target),)
                )
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- writes --------------------------------------------------------------------------

    def insert_liquidations(self, events: Iterable[Liquidation], *, keep_raw: bool = True) -> int:
        """Store events in one transaction; return how many were new (duplicates are ignored)."""
        return self.insert_event_rows([_event_row(e, keep_raw) for e in events])

    def insert_event_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store prepared event rows (`_event_row` tuples: bulk loaders, benchmarks); new count."""
        if not rows:
            return 0
        with self.transaction():
            last = self.conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0]
            before = self.conn.total_changes
            self.conn.executemany(_INSERT_EVENT, rows)
            new = self.conn.total_changes - before
            if new:
                buckets.add_new_events(self.conn, last)
            return new

    def insert_buckets(self, buckets: Iterable[Bucket]) -> int:
        """Upsert imported aggregate buckets (a re-import replaces, never double counts)."""
        rows = [
            (b.source, b.span_ms, b.start_ms, b.exchange, b.coin, b.long_usd, b.short_usd,
             b.long_count, b.short_count)
            for b in buckets
        ]
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO agg_buckets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def insert_funding(self, items: Iterable[Funding]) -> int:
        rows = [
            (f.exchange, f.symbol, f.coin, f.ts_ms, str(f.rate), f.interval_h, f.rate_8h)
            for f in items
        ]
        with self.transaction():
            self.conn.executemany(
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
            self.conn.executemany(
                "INSERT OR REPLACE INTO open_interest VALUES (?, ?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def insert_candles(self, items: Iterable[Candle]) -> int:
        rows = [
            (c.exchange, c.coin, c.span_ms, c.start_ms, c.open, c.high, c.low, c.close)
            for c in items
        ]
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO candles VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def record_gap(self, exchange: str, start_ms: int, end_ms: int | None, reason: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO gaps VALUES (?, ?, ?, ?)", (exchange, start_ms, end_ms, reason)
        )

    def prune_events(self, before_ms: int) -> int:
        """Delete raw events older than `before_ms`; minute and hour buckets stay."""
        with self.transaction():
            cur = self.conn.execute("DELETE FROM events WHERE ts_ms < ?", (before_ms,))
        return cur.rowcount

    def transaction(self) -> _Transaction:
        """`with store.transaction():` — BEGIN IMMEDIATE, so the write lock is taken first."""
        return _Transaction(self.conn)

    # -- reads ---------------------------------------------------------------------------

    def count_events(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])

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
        where, wargs = _filters(coin, exchange)
        rows: tuple[TotalsRow, ...] = ()
        if source in ("auto", "events"):
            rows = self._event_totals(start, end, where, wargs)
        if not rows and source != "events":
            rows = self._aggregate_totals(start, end, where, wargs, source)
        # Throttled feeds (PROTOCOLS.md overview): totals that include them are lower bounds.
        sampled = frozenset(r.exchange for r in rows if r.exchange in sampled_venues)
        return Totals(start, end, rows, sampled)

    def _event_totals(self, start: int, end: int, where: str, wargs: list[Any],
                      ) -> tuple[TotalsRow, ...]:
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
        return tuple(TotalsRow(*r) for r in self.conn.execute(sql, args + wargs))

    def _aggregate_totals(self, start: int, end: int, where: str, wargs: list[Any],
                          source: str) -> tuple[TotalsRow, ...]:
        sql = (
            "SELECT source, exchange, coin, sum(long_usd), sum(short_usd), sum(long_n), "
            "sum(short_n) FROM (SELECT * FROM agg_buckets WHERE start_ms >= ? "
            f"AND start_ms + span_ms <= ?) {where} GROUP BY source, exchange, coin"
        )
        found = self.conn.execute(sql, [start, end, *wargs]).fetchall()
        if source not in ("auto", "aggregates"):
            return tuple(TotalsRow(*r[1:]) for r in found if r[0] == source)
        # Sources overlap (a CoinGlass aggregate includes Binance, which Coinalyze also
        # covers): per coin, only the best-ranked source present in the window counts.
        best: dict[str, int] = {}
        for r in found:
            best[r[2]] = min(best.get(r[2], 99), _rank(r[0]))
        return tuple(TotalsRow(*r[1:]) for r in found if _rank(r[0]) == best[r[2]])

    def hourly_series(self, start_ms: int, end_ms: int, *, coin: str | None = None,
                      ) -> list[tuple[int, float, float]]:
        """Return (hour open, long_usd, short_usd) per hour with data in [start, end)."""
        where, wargs = _filters(coin, None)
        sql = (
            "SELECT start_ms - start_ms % 3600000 AS h, sum(long_usd), sum(short_usd) FROM ("
            "SELECT start_ms, exchange, coin, long_usd, short_usd FROM buckets_1h "
            "WHERE start_ms >= ? AND start_ms < ? UNION ALL "
            "SELECT start_ms, exchange, coin, long_usd, short_usd FROM agg_buckets "
            f"WHERE start_ms >= ? AND start_ms < ?) {where} GROUP BY h ORDER BY h"
        )
        args = [start_ms, end_ms, start_ms, end_ms, *wargs]
        return [tuple(r) for r in self.conn.execute(sql, args)]

    def coins(self, start_ms: int, end_ms: int) -> list[str]:
        """Coins with any liquidation in [start, end)."""
        sql = (
            "SELECT DISTINCT coin FROM buckets_1h WHERE start_ms >= ? AND start_ms < ? UNION "
            "SELECT DISTINCT coin FROM agg_buckets WHERE start_ms >= ? AND start_ms < ?"
        )
        rows = self.conn.execute(sql, (start_ms - HOUR_MS, end_ms, start_ms, end_ms))
        return sorted(r[0] for r in rows)

    def latest_funding(self, coin: str, at_ms: int) -> list[Funding]:
        """Latest funding per exchange/symbol for `coin` known at `at_ms`."""
        sql = (
            "SELECT exchange, symbol, max(ts_ms), rate, interval_h FROM funding "
            "WHERE coin = ? AND ts_ms <= ? AND ts_ms > ? GROUP BY exchange, symbol"
        )
        rows = self.conn.execute(sql, (coin.upper(), at_ms, at_ms - 2 * 86_400_000))
        return [Funding(e, s, t, Decimal(r), i) for e, s, t, r, i in rows]

    def candles(self, coin: str, span_ms: int, start_ms: int, end_ms: int) -> list[Candle]:
        sql = (
            "SELECT exchange, coin, span_ms, start_ms, open, high, low, close FROM candles "
            "WHERE coin = ? AND span_ms = ? AND start_ms >= ? AND start_ms < ? ORDER BY start_ms"
        )
        rows = self.conn.execute(sql, (coin.upper(), span_ms, start_ms, end_ms))
        return [Candle(*r) for r in rows]

    def price_change(self, coin: str, start_ms: int, end_ms: int) -> float | None:
        """Fractional price change over [start, end) from the finest candles inside it."""
        rows = self.conn.execute(
            "SELECT open, close FROM candles WHERE coin = ? AND start_ms >= ? "
            "AND start_ms + span_ms <= ? AND span_ms = (SELECT min(span_ms) FROM candles "
            "WHERE coin = ? AND start_ms >= ? AND start_ms + span_ms <= ?) ORDER BY start_ms",
            (coin.upper(), start_ms, end_ms, coin.upper(), start_ms, end_ms),
        ).fetchall()
        if not rows or rows[0][0] <= 0:
            return None
        return float(rows[-1][1] / rows[0][0] - 1.0)

    def latest_ms(self) -> int | None:
        """End of the newest data in the store (events or aggregate rows), or None."""
        row = self.conn.execute(
            "SELECT max(t) FROM (SELECT max(ts_ms) + 1 AS t FROM events "
            "UNION ALL SELECT max(start_ms + 60000) FROM buckets_1m "
            "UNION ALL SELECT max(start_ms + span_ms) FROM agg_buckets)"
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def iter_events(self, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
        sql = "SELECT * FROM events WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms"
        cur = self.conn.execute(sql, (start_ms, end_ms))
        names = [d[0] for d in cur.description]
        for row in cur:
            yield dict(zip(names, row, strict=True))


# Aggregate sources, broadest first: per coin, a broader one wins over a narrower one.
AGGREGATE_RANK = ("coinglass", "coinalyze", "hyperliquid-daily")


def _rank(source: str) -> int:
    return AGGREGATE_RANK.index(source) if source in AGGREGATE_RANK else len(AGGREGATE_RANK)


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outer = False

    def __enter__(self) -> None:
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if not self.outer:
            return
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _filters(coin: str | None, exchange: str | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if coin and coin != MARKET:
        clauses.append("coin = ?")
        args.append(coin_of(coin))
    if exchange and exchange != MARKET:
        clauses.append("exchange = ?")
        args.append(exchange.lower())
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args


def _event_row(e: Liquidation, keep_raw: bool) -> tuple[Any, ...]:
    return (
        e.event_key(), e.exchange, e.symbol, e.coin, e.position_side.value, str(e.qty_base),
        str(e.price), float(e.notional_usd), e.ts_ms, e.ts_recv_ms, int(e.sampled),
        _raw_text(e.raw) if keep_raw else None,
    )


def _raw_text(raw: Any) -> str | None:
    """The venue's payload as compact JSON text (orjson: this runs once per stored event)."""
    if raw is None:
        return None
    try:
        return orjson.dumps(raw).decode()
    except TypeError:  # a loader's payload with Decimals or dates in it
        return json.dumps(raw, separators=(",", ":"), default=str)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    out, buf = [], []
    for line in script.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        buf.append(line)
        joined = "\n".join(buf)
        if sqlite3.complete_statement(joined):
            out.append(joined.strip())
            buf = []
    if "".join(buf).strip():
        raise StoreError("migration has an incomplete statement")
    return out
