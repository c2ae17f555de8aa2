"""Liquidations into the events table: one pass over a batch, then one write.

The one pass checks each event against the plausibility gate, makes its row, the minute
sums of the bucket levels and what is kept of its venue payload; the write inserts the
rows, adds the sums to every level and hands the payloads to the raw log. `Store` runs
both inside its transaction (feeds/store/core.py).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

import orjson

from feeds.model import MINUTE_MS, Liquidation, Side, guessed_coin
from feeds.plausible import Gate, known_name, passes
from feeds.store import buckets, compact
from feeds.store.rawlog import RawLog

_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events "
    "(uid, exchange, symbol, coin, side, qty, price, usd, ts_ms, recv_ms, sampled, raw) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# One C call reads every field the store needs from an event (attribute reads one by one
# cost as much as the rest of the row); the order is the unpacking in `batch`.
_FIELDS = attrgetter("exchange", "symbol", "position_side", "qty_base", "price",
                     "notional_usd", "ts_exchange_ms", "ts_recv_ms", "sampled", "base",
                     "quote", "raw")


Rows = list[tuple[Any, ...]]
Payloads = list[tuple[int, Any]]


def batch(events: Iterable[Liquidation], gate: Gate,
          keep_raw: bool) -> tuple[Rows, buckets.MinuteSums, Payloads]:
    """The rows, minute sums and payloads of the events that pass the gate (one pass)."""
    rows: Rows = []
    minutes: buckets.MinuteSums = {}
    payloads: Payloads = []
    add, long = rows.append, Side.LONG
    now_ms = int(time.time() * 1000)
    for e in events:
        (exchange, symbol, side, qty, price, usd_d, ts, recv, sampled, base, quote,
         raw) = _FIELDS(e)
        if ts is None:
            ts = recv
        try:
            usd = float(usd_d)
            ok = known_name(exchange, symbol) and passes(
                float(qty), float(price), usd, ts, quote is not None, now_ms)
        except ValueError:  # a signalling NaN: `fault` names it
            ok = False
        if not ok and gate.refuse(e, now_ms):
            continue
        uid = e.event_key()
        coin = base if base is not None else guessed_coin(exchange, symbol)
        qty_s, price_s, rest = str(qty), str(price), None
        if raw is not None and keep_raw:
            if exchange == compact.EXCHANGE:
                rest = compact.remainder(raw, symbol, side, qty_s, price_s, ts)
            if rest is None:
                payloads.append((uid, raw))
        # The side as its plain text: sqlite3 binds a str subclass (the StrEnum itself)
        # through its adapter lookup, 0.3 µs a row more.
        add((uid, exchange, symbol, coin, side._value_, qty_s, price_s, usd, ts, recv,
             1 if sampled else 0, rest))
        key = (ts - ts % MINUTE_MS, exchange, coin)
        acc = minutes.get(key)
        if acc is None:
            minutes[key] = acc = [0.0, 0.0, 0, 0]
        if side is long:
            acc[0] += usd
            acc[2] += 1
        else:
            acc[1] += usd
            acc[3] += 1
    return rows, minutes, payloads


def write(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]],
          minutes: buckets.MinuteSums | None, payloads: Payloads,
          raw_log: RawLog) -> tuple[int, int | None]:
    """Insert the rows and their sums (inside the caller's transaction); return how many
    were new and the start of the earliest minute whose totals changed."""
    earliest: int | None = None
    before = conn.total_changes
    conn.executemany(_INSERT_EVENT, rows)
    new = conn.total_changes - before
    if new == len(rows) and minutes is not None:
        # all new: the caller's sums are the batch's
        earliest = buckets.add_sums(conn, minutes)
    elif new:
        # Some were duplicates. INSERT OR IGNORE takes no rowid for a skipped row and
        # each new one gets max(rowid) + 1, so the new rows are the top `new` rowids.
        after = conn.execute("SELECT max(rowid) FROM events").fetchone()[0] - new
        earliest = buckets.add_new_events(conn, after)
        if payloads:
            fresh = {u for (u,) in conn.execute(
                "SELECT uid FROM events WHERE rowid > ?", (after,))}
            kept = {}  # one per new event, the first: a batch may repeat one
            for uid, raw in payloads:
                if uid in fresh and uid not in kept:
                    kept[uid] = raw
            payloads = list(kept.items())
    if new and payloads:
        times = [r[8] for r in rows]
        raw_log.add(payloads, min(times), max(times))
    return new, earliest


def _event_row(e: Liquidation, keep_raw: bool) -> tuple[Any, ...]:
    """The row as stored before schema v7, payload text in it (upgrade tests build such files)."""
    return (
        # The side binds as its text ('long'): Side is a StrEnum, and `.value` is a Python
        # descriptor that costs more per event than the rest of this tuple's fields.
        e.event_key(), e.exchange, e.symbol, e.coin, e.position_side, str(e.qty_base),
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
