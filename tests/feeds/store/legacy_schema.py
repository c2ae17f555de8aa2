"""The migrations as shipped before the chat tables moved to bot/state (issue 11), frozen.

Upgrade tests build databases the way older liqbot releases did from these; never edit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from feeds.model import Liquidation
from feeds.store.db import split_sql
from feeds.store.ingest import _INSERT_EVENT, _event_row

# Each entry moves the schema from version i to i + 1. Never edit a shipped entry:
# append a new one, so every existing database upgrades along the same path.
LEGACY_MIGRATIONS: list[str] = [
    # v1: events, derived minute/hour buckets, imported aggregates, context series.
    """
    CREATE TABLE events (
        uid INTEGER PRIMARY KEY,          -- Liquidation.event_key(): same frame twice, one row
        exchange TEXT NOT NULL,
        symbol TEXT NOT NULL,
        coin TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('long', 'short')),
        qty TEXT NOT NULL,                -- exact Decimal text
        price TEXT NOT NULL,              -- exact Decimal text
        usd REAL NOT NULL,                -- for sums; exact value is qty * price (or contracts)
        ts_ms INTEGER NOT NULL,           -- exchange time (receive time when the venue sends none)
        recv_ms INTEGER NOT NULL,
        sampled INTEGER NOT NULL,
        raw TEXT
    );
    CREATE INDEX events_ts ON events (ts_ms);

    CREATE TABLE buckets_1m (
        start_ms INTEGER NOT NULL, exchange TEXT NOT NULL, coin TEXT NOT NULL,
        long_usd REAL NOT NULL, short_usd REAL NOT NULL,
        long_n INTEGER NOT NULL, short_n INTEGER NOT NULL,
        PRIMARY KEY (start_ms, exchange, coin)
    ) WITHOUT ROWID;
    CREATE TABLE buckets_1h (
        start_ms INTEGER NOT NULL, exchange TEXT NOT NULL, coin TEXT NOT NULL,
        long_usd REAL NOT NULL, short_usd REAL NOT NULL,
        long_n INTEGER NOT NULL, short_n INTEGER NOT NULL,
        PRIMARY KEY (start_ms, exchange, coin)
    ) WITHOUT ROWID;

    -- Buckets follow inserts only: pruning raw events later keeps the totals.
    CREATE TRIGGER events_to_buckets AFTER INSERT ON events BEGIN
        INSERT INTO buckets_1m VALUES (
            NEW.ts_ms - NEW.ts_ms % 60000, NEW.exchange, NEW.coin,
            CASE WHEN NEW.side = 'long' THEN NEW.usd ELSE 0.0 END,
            CASE WHEN NEW.side = 'short' THEN NEW.usd ELSE 0.0 END,
            NEW.side = 'long', NEW.side = 'short')
        ON CONFLICT DO UPDATE SET
            long_usd = long_usd + excluded.long_usd, short_usd = short_usd + excluded.short_usd,
            long_n = long_n + excluded.long_n, short_n = short_n + excluded.short_n;
        INSERT INTO buckets_1h VALUES (
            NEW.ts_ms - NEW.ts_ms % 3600000, NEW.exchange, NEW.coin,
            CASE WHEN NEW.side = 'long' THEN NEW.usd ELSE 0.0 END,
            CASE WHEN NEW.side = 'short' THEN NEW.usd ELSE 0.0 END,
            NEW.side = 'long', NEW.side = 'short')
        ON CONFLICT DO UPDATE SET
            long_usd = long_usd + excluded.long_usd, short_usd = short_usd + excluded.short_usd,
            long_n = long_n + excluded.long_n, short_n = short_n + excluded.short_n;
    END;

    -- Aggregates imported whole (CoinGlass hourly rows, Coinalyze bars): first-class buckets.
    CREATE TABLE agg_buckets (
        source TEXT NOT NULL, span_ms INTEGER NOT NULL, start_ms INTEGER NOT NULL,
        exchange TEXT NOT NULL, coin TEXT NOT NULL,
        long_usd REAL NOT NULL, short_usd REAL NOT NULL,
        long_n INTEGER NOT NULL, short_n INTEGER NOT NULL,
        PRIMARY KEY (source, span_ms, start_ms, exchange, coin)
    ) WITHOUT ROWID;
    CREATE INDEX agg_buckets_start ON agg_buckets (start_ms);

    CREATE TABLE funding (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, coin TEXT NOT NULL, ts_ms INTEGER NOT NULL,
        rate TEXT NOT NULL, interval_h REAL NOT NULL, rate_8h REAL NOT NULL,
        PRIMARY KEY (exchange, symbol, ts_ms)
    ) WITHOUT ROWID;
    CREATE INDEX funding_coin_ts ON funding (coin, ts_ms);

    CREATE TABLE open_interest (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, coin TEXT NOT NULL, ts_ms INTEGER NOT NULL,
        oi_base TEXT, oi_usd REAL,
        PRIMARY KEY (exchange, symbol, ts_ms)
    ) WITHOUT ROWID;

    CREATE TABLE candles (
        exchange TEXT NOT NULL, coin TEXT NOT NULL, span_ms INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
        PRIMARY KEY (coin, span_ms, start_ms, exchange)
    ) WITHOUT ROWID;

    -- Periods a venue's feed was not connected: totals over them are lower bounds.
    CREATE TABLE gaps (
        exchange TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER,
        reason TEXT NOT NULL,
        PRIMARY KEY (exchange, start_ms)
    );

    -- Alerts are recorded before any send; the outbox row per destination is the
    -- durable delivery state (DESIGN.md "Alert policy").
    CREATE TABLE alerts (
        key TEXT PRIMARY KEY,             -- kind|scope|window|episode start|severity
        kind TEXT NOT NULL, scope TEXT NOT NULL, window TEXT NOT NULL,
        severity INTEGER NOT NULL,
        episode_ms INTEGER NOT NULL,      -- window start of the episode's first alert
        signal_ms INTEGER NOT NULL,       -- end (exclusive) of the signal's window
        created_ms INTEGER NOT NULL,
        payload TEXT NOT NULL             -- JSON: totals, context, rendered text
    );
    CREATE INDEX alerts_scope ON alerts (kind, scope, signal_ms);

    CREATE TABLE outbox (
        alert_key TEXT NOT NULL REFERENCES alerts (key),
        destination TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_ms INTEGER NOT NULL DEFAULT 0,
        sent_ms INTEGER,
        error TEXT,
        PRIMARY KEY (alert_key, destination)
    ) WITHOUT ROWID;
    CREATE INDEX outbox_pending ON outbox (status, next_ms);
    """,
    # v2: venue instrument tables (contract values, symbol lists), refreshed daily.
    """
    CREATE TABLE instruments (
        exchange TEXT NOT NULL,
        symbol TEXT NOT NULL,
        spec TEXT NOT NULL,               -- JSON: the venue's own fields we rely on
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (exchange, symbol)
    ) WITHOUT ROWID;
    """,
    # v3: chat subscriptions and per-platform state (update offsets, command hashes).
    """
    CREATE TABLE subscriptions (
        platform TEXT NOT NULL,           -- telegram | discord
        chat_id TEXT NOT NULL,            -- text: Telegram ids pass 2^31, Discord's 2^63
        kinds TEXT NOT NULL,              -- comma list of signal kinds
        min_usd REAL NOT NULL,
        symbols TEXT NOT NULL,            -- comma list of coins; empty = every coin
        quiet INTEGER NOT NULL DEFAULT 0, -- silent notifications
        active INTEGER NOT NULL DEFAULT 1,
        static INTEGER NOT NULL DEFAULT 0, -- from configuration, not a /subscribe
        updated_ms INTEGER NOT NULL,
        note TEXT,                        -- why a destination was disabled, for operators
        PRIMARY KEY (platform, chat_id)
    ) WITHOUT ROWID;
    """,
    # v4: delivery bookkeeping for at-most-twice and the delivery deadline.
    """
    -- Attempts whose outcome is unknown: counted before each send, taken back when the
    -- platform said no; a crash in flight or a timeout after the request was written keeps it.
    ALTER TABLE outbox ADD COLUMN maybe_sent INTEGER NOT NULL DEFAULT 0;
    -- Wall-clock time of the first attempt: the delivery deadline counts from here.
    ALTER TABLE outbox ADD COLUMN first_ms INTEGER;
    """,
    # v5: events append in time order to a rowid table whose one unique index (ts_ms, uid)
    # serves both dedup and time ranges; a random 64-bit primary key scattered every insert
    # across the table. Buckets are summed per batch by Store.insert_liquidations (grouped
    # statements instead of two upserts per row), so the trigger goes; 10-minute and 4-hour
    # levels join the minute and hour ones so a window reads fewer rows (feeds/store/buckets.py).
    """
    CREATE TABLE buckets_10m (
        start_ms INTEGER NOT NULL, exchange TEXT NOT NULL, coin TEXT NOT NULL,
        long_usd REAL NOT NULL, short_usd REAL NOT NULL,
        long_n INTEGER NOT NULL, short_n INTEGER NOT NULL,
        PRIMARY KEY (start_ms, exchange, coin)
    ) WITHOUT ROWID;
    CREATE TABLE buckets_4h (
        start_ms INTEGER NOT NULL, exchange TEXT NOT NULL, coin TEXT NOT NULL,
        long_usd REAL NOT NULL, short_usd REAL NOT NULL,
        long_n INTEGER NOT NULL, short_n INTEGER NOT NULL,
        PRIMARY KEY (start_ms, exchange, coin)
    ) WITHOUT ROWID;
    INSERT INTO buckets_10m SELECT start_ms - start_ms % 600000, exchange, coin, sum(long_usd),
        sum(short_usd), sum(long_n), sum(short_n) FROM buckets_1m GROUP BY 1, 2, 3;
    INSERT INTO buckets_4h SELECT start_ms - start_ms % 14400000, exchange, coin, sum(long_usd),
        sum(short_usd), sum(long_n), sum(short_n) FROM buckets_1h GROUP BY 1, 2, 3;

    CREATE TABLE events_v5 (
        uid INTEGER NOT NULL,             -- Liquidation.event_key(): same frame twice, one row
        exchange TEXT NOT NULL,
        symbol TEXT NOT NULL,
        coin TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('long', 'short')),
        qty TEXT NOT NULL,
        price TEXT NOT NULL,
        usd REAL NOT NULL,
        ts_ms INTEGER NOT NULL,
        recv_ms INTEGER NOT NULL,
        sampled INTEGER NOT NULL,
        raw TEXT
    );
    INSERT INTO events_v5 (uid, exchange, symbol, coin, side, qty, price, usd, ts_ms, recv_ms,
                           sampled, raw)
        SELECT uid, exchange, symbol, coin, side, qty, price, usd, ts_ms, recv_ms, sampled, raw
        FROM events ORDER BY ts_ms, uid;
    -- Dropping the table takes its trigger and its ts index with it.
    DROP TABLE events;
    ALTER TABLE events_v5 RENAME TO events;
    CREATE UNIQUE INDEX events_ts_uid ON events (ts_ms, uid);
    -- Outbox.due asks, per due item, whether an older one for its destination is backing
    -- off; without this that is a scan of every pending row for every row.
    CREATE INDEX outbox_destination ON outbox (destination, status, next_ms);
    """,
]


def build_legacy(path: Path, version: int, events: Iterable[Liquidation] = ()) -> None:
    """A database as liqbot made it at market `version` before the split, with `events`."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for script in LEGACY_MIGRATIONS[:version]:
            for statement in split_sql(script):
                conn.execute(statement)
        # Before v5 the events table's trigger filled the buckets; from v5 the Store does.
        rows = [_event_row(e, True) for e in events]
        if rows and version >= 5:
            raise ValueError("build_legacy adds events to pre-v5 files only")
        conn.executemany(_INSERT_EVENT, rows)
        conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
    finally:
        conn.close()


def shape(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    """Every table, index and trigger with its SQL, in a fixed order."""
    return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
