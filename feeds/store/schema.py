"""The market-data schema as an ordered list of migrations; the store applies what is missing.

Versioned under `schema_version` in `meta`. The chat tables (alerts, outbox, subscriptions)
have their own list and key in bot/state/schema.py.
"""

from __future__ import annotations

from feeds.store.db import Migration
from feeds.store.rawlog import move_legacy_raw

SCHEMA_KEY = "schema_version"

# Each entry moves the schema from version i to i + 1. Never edit a shipped entry:
# append a new one, so every existing database upgrades along the same path.
#
# The one exception, made once (issue 11): until then these entries also created the chat
# tables (alerts and outbox in v1, subscriptions in v3, outbox columns in v4, an outbox
# index in v5). Those statements moved verbatim, in the same order, to bot/state/schema.py
# (its v1..v4), so the market tables of every file are what they were, and the chat
# tables are too once bot/state has migrated: a file made before the split already holds
# them, and bot/state reads which of them it holds to seed its own version.
MIGRATIONS: list[Migration] = [
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
    # v3 and v4 created and changed chat tables only (bot/state/schema.py): empty here.
    "",
    "",
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
    """,
    # v6: events without a USD value (a coin-quoted contract and no reference price at the
    # time: Liquidation.priced) are stored with usd = 0, never a coin amount; this index
    # lets a window's totals count them cheaply. Rows already stored are not touched.
    """
    CREATE INDEX events_unpriced ON events (ts_ms) WHERE usd = 0;
    """,
    # v7: venue payloads leave the events table for zlib blocks (raw_blocks, written by
    # feeds/store/rawlog.py): ~50 bytes an event instead of ~180 of JSON text. The
    # payloads stored so far move there, less those of normalized event lines, which only
    # repeated their row; events.raw stays, NULL, for the column order loaders rely on.
    move_legacy_raw,
]

SCHEMA_VERSION = len(MIGRATIONS)
