"""Derived bucket levels of the events table: how they are kept and how a window is covered.

Every event is summed into 1-minute, 10-minute, 1-hour and 4-hour buckets per exchange and
coin when it is stored. A window's total then reads the coarsest buckets that fit inside it
and finer ones only at its edges, so `/liqs 24h` touches about a thousand bucket rows
instead of every event of the day, whatever the market did.
"""

from __future__ import annotations

import sqlite3

from feeds.model import HOUR_MS, MINUTE_MS, ceil_ms, floor_ms

# (table, span), coarsest first: the order `cover` tries them in.
LEVELS: tuple[tuple[str, int], ...] = (
    ("buckets_4h", 4 * HOUR_MS),
    ("buckets_1h", HOUR_MS),
    ("buckets_10m", 10 * MINUTE_MS),
    ("buckets_1m", MINUTE_MS),
)

# The minute sums of the events inserted after rowid ?, staged once per batch: the other
# levels are summed from these few rows rather than from the events again. Rowids grow with
# each insert and INSERT OR IGNORE skips duplicates, so exactly the new events count, once.
_STAGE = (
    "INSERT INTO temp.batch_1m "
    "SELECT ts_ms - ts_ms % 60000, exchange, coin, "
    "total(CASE WHEN side = 'long' THEN usd END), total(CASE WHEN side = 'short' THEN usd END), "
    "count(CASE WHEN side = 'long' THEN 1 END), count(CASE WHEN side = 'short' THEN 1 END) "
    "FROM events WHERE rowid > ? GROUP BY 1, 2, 3"
)
_ADD = (
    "INSERT INTO {table} "
    "SELECT start_ms - start_ms % {span}, exchange, coin, sum(long_usd), sum(short_usd), "
    "sum(long_n), sum(short_n) FROM temp.batch_1m GROUP BY 1, 2, 3 "
    "ON CONFLICT DO UPDATE SET "
    "long_usd = long_usd + excluded.long_usd, short_usd = short_usd + excluded.short_usd, "
    "long_n = long_n + excluded.long_n, short_n = short_n + excluded.short_n"
)
_ADDS = tuple(_ADD.format(table=t, span=s) for t, s in LEVELS)


_UPSERT = (
    "INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
    "long_usd = long_usd + excluded.long_usd, short_usd = short_usd + excluded.short_usd, "
    "long_n = long_n + excluded.long_n, short_n = short_n + excluded.short_n"
)
_UPSERTS = tuple((_UPSERT.format(table=t), s) for t, s in LEVELS)

# (minute start, exchange, coin) -> [long_usd, short_usd, long_n, short_n]
MinuteSums = dict[tuple[int, str, str], list[float]]


def add_sums(conn: sqlite3.Connection, minutes: MinuteSums) -> int | None:
    """Add a batch's minute sums, made by the caller in its one pass over the batch, to
    every level (inside the caller's write): one statement per level, whatever the batch.
    Return the start of the earliest minute that changed (None: none did)."""
    for sql, span in _UPSERTS:
        if span == MINUTE_MS:
            level = minutes
        else:
            level = {}
            for (start, exchange, coin), (lu, su, ln, sn) in minutes.items():
                key = (start - start % span, exchange, coin)
                acc = level.get(key)
                if acc is None:
                    level[key] = [lu, su, ln, sn]
                else:
                    acc[0] += lu
                    acc[1] += su
                    acc[2] += ln
                    acc[3] += sn
        conn.executemany(sql, [(*k, *v) for k, v in level.items()])
    return min((start for start, _, _ in minutes), default=None)


def add_new_events(conn: sqlite3.Connection, after_rowid: int) -> int | None:
    """Sum the events stored after `after_rowid` into every level (inside the caller's write);
    return the start of the earliest minute that changed (None: none did)."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS batch_1m (start_ms INTEGER, exchange TEXT, coin TEXT, "
        "long_usd REAL, short_usd REAL, long_n INTEGER, short_n INTEGER)")
    conn.execute(_STAGE, (after_rowid,))
    for sql in _ADDS:
        conn.execute(sql)
    earliest = conn.execute("SELECT min(start_ms) FROM temp.batch_1m").fetchone()[0]
    conn.execute("DELETE FROM temp.batch_1m")
    return None if earliest is None else int(earliest)


def cover(start_ms: int, end_ms: int, levels: int = 0) -> list[tuple[str, int, int]]:
    """Split [start, end) (whole minutes) into (table, lo, hi) ranges, coarsest buckets inside.

    Each level takes the whole buckets that fit, leaving at most two shorter edges for the
    finer levels: a 24h window reads at most 6 four-hour, 6 hourly, 10 ten-minute and 18
    minute buckets per exchange and coin.
    """
    if start_ms >= end_ms:
        return []
    table, span = LEVELS[levels]
    if levels == len(LEVELS) - 1:
        return [(table, start_ms, end_ms)]
    lo, hi = ceil_ms(start_ms, span), floor_ms(end_ms, span)
    if lo >= hi:
        return cover(start_ms, end_ms, levels + 1)
    return [(table, lo, hi), *cover(start_ms, lo, levels + 1), *cover(hi, end_ms, levels + 1)]
