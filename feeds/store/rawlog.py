"""The venue payloads behind stored events, kept compressed in blocks beside the events table.

An event row holds every normalized field; the venue's own payload adds what the row does
not say (Binance's limit price and order status, BitMEX's leaves quantity...), which is
worth keeping for audits but not worth 180 bytes of JSON text per row. Payloads of newly
stored events are collected in memory and written as one zlib block per `BLOCK_EVENTS`
events or `BLOCK_S` seconds, whichever comes first, and when the Store closes: about 50
bytes per Binance event, its key included, instead of 180, for under 2 µs per event. A
crash loses at most the payloads of the block not yet written, never an event. A Binance
forceOrder frame of the usual shape does not come here: only what its row lacks is kept, in
the row (feeds/store/compact.py), for half the cost of compressing it. Events whose
fields are the whole record (normalized JSONL, CSV and parquet loads) carry no payload and
store none.

A block is zlib of the JSON array [[uid, payload], ...], with the span of its events'
times so one event's payload is found again (`payload`) without reading the others.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from collections.abc import Iterable
from typing import Any

import orjson

BLOCK_EVENTS = 4096
BLOCK_S = 10.0
# zlib's fastest: 50 bytes per Binance event where its default (6) makes 41, for a third of
# the time (about 1 µs an event here against 3 to 4).
LEVEL = 1

# The schema entry (feeds/store/schema.py v7); the rows already stored are moved by
# `move_legacy_raw` in the same migration.
CREATE = """
CREATE TABLE raw_blocks (
    first_ms INTEGER NOT NULL,        -- the earliest ts_ms of the events inside
    last_ms INTEGER NOT NULL,         -- the latest
    n INTEGER NOT NULL,               -- payloads inside
    body BLOB NOT NULL                -- zlib of JSON [[uid, payload], ...]
);
CREATE INDEX raw_blocks_last ON raw_blocks (last_ms);
"""

# Keys every normalized event line has (feeds/history/jsonl.py EVENT_KEYS): such a payload
# repeats the row's own fields, so the migration drops it instead of moving it.
_NORMALIZED_KEYS = frozenset({"exchange", "symbol", "side", "qty", "price", "usd", "ts"})


def encode(pairs: list[tuple[int, Any]]) -> bytes:
    """One block's body. orjson first; a loader's payload with Decimals or dates falls back."""
    try:
        text = orjson.dumps(pairs)
    except TypeError:
        text = json.dumps(pairs, separators=(",", ":"), default=str).encode()
    return zlib.compress(text, LEVEL)


def decode(body: bytes) -> list[list[Any]]:
    pairs: list[list[Any]] = orjson.loads(zlib.decompress(body))
    return pairs


class RawLog:
    """The payloads of new events not yet written, and the block writes. One per Store."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending: list[tuple[int, Any]] = []
        self._lo = self._hi = 0
        self._since = 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, pairs: list[tuple[int, Any]], lo_ms: int, hi_ms: int) -> None:
        """Queue (uid, payload) of events just stored, inside the caller's write; write a
        block when the queue is full or old enough (the caller's transaction commits it)."""
        if not pairs:
            return
        if not self._pending:
            self._since = time.monotonic()
            self._lo, self._hi = lo_ms, hi_ms
        else:
            self._lo, self._hi = min(self._lo, lo_ms), max(self._hi, hi_ms)
        self._pending += pairs
        if len(self._pending) >= BLOCK_EVENTS or time.monotonic() - self._since >= BLOCK_S:
            self.flush()

    def flush(self) -> None:
        """Write what is queued as one block (a transaction of its own when none is open)."""
        if not self._pending:
            return
        self._conn.execute("INSERT INTO raw_blocks VALUES (?, ?, ?, ?)",
                           (self._lo, self._hi, len(self._pending), encode(self._pending)))
        self._pending = []  # only once written: a failed write keeps them for the next try

    def payload(self, uid: int, ts_ms: int) -> Any | None:
        """The stored payload of the event `uid` at `ts_ms`, or None when it has none."""
        for u, raw in self._pending:
            if u == uid:
                return raw
        rows = self._conn.execute(
            "SELECT body FROM raw_blocks WHERE last_ms >= ? AND first_ms <= ?", (ts_ms, ts_ms))
        for (body,) in rows:
            for u, raw in decode(body):
                if u == uid:
                    return raw
        return None

    def prune(self, before_ms: int) -> None:
        """Drop the blocks whose events are all older than `before_ms` (in the caller's write)."""
        self._conn.execute("DELETE FROM raw_blocks WHERE last_ms < ?", (before_ms,))


def move_legacy_raw(conn: sqlite3.Connection) -> None:
    """Schema v7: move the payload text of every stored event into blocks, dropping the ones
    that only repeat the row (normalized event lines), then clear the column."""
    for statement in CREATE.strip().split(";"):
        if statement.strip():
            conn.execute(statement)
    rows = conn.execute("SELECT uid, ts_ms, raw FROM events WHERE raw IS NOT NULL ORDER BY rowid")
    block: list[tuple[int, Any]] = []
    span: list[int] = []
    for uid, ts, text in _payloads(rows):
        block.append((uid, text))
        span.append(ts)
        if len(block) >= BLOCK_EVENTS:
            _write(conn, block, span)
            block, span = [], []
    _write(conn, block, span)
    conn.execute("UPDATE events SET raw = NULL WHERE raw IS NOT NULL")


def _payloads(rows: Iterable[tuple[int, int, str]]) -> Iterable[tuple[int, int, Any]]:
    for uid, ts, text in rows:
        try:
            raw = json.loads(text)
        except (TypeError, ValueError):
            raw = text  # kept as it was stored: the block says what the column said
        if isinstance(raw, dict) and _NORMALIZED_KEYS <= raw.keys():
            continue
        yield uid, ts, raw


def _write(conn: sqlite3.Connection, block: list[tuple[int, Any]], span: list[int]) -> None:
    if block:
        conn.execute("INSERT INTO raw_blocks VALUES (?, ?, ?, ?)",
                     (min(span), max(span), len(block), encode(block)))
