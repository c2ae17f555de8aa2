"""Venue payloads kept compressed beside the events (schema v7, issue 16), and the upgrade."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from feeds.history.jsonl import load_events_jsonl
from feeds.model import HOUR_MS, MINUTE_MS
from feeds.store import Store
from feeds.store import buckets as bucket_levels
from feeds.store.db import Database
from feeds.store.ingest import _INSERT_EVENT, _event_row
from feeds.store.schema import MIGRATIONS, SCHEMA_KEY, SCHEMA_VERSION
from feeds.venues.binance import parse_message
from tests.helpers.factories import T0, make_liq


def frame(t: int, qty: str = "0.5") -> str:
    return json.dumps({"e": "forceOrder", "E": t + 1, "o": {
        "s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": qty, "p": "89000.0",
        "ap": "90000.0", "X": "FILLED", "l": qty, "z": qty, "T": t}})


def blocks(store: Store) -> list[tuple[int, int, int]]:
    return store.database.conn.execute(
        "SELECT first_ms, last_ms, n FROM raw_blocks ORDER BY rowid").fetchall()


def test_new_events_keep_their_payload_and_duplicates_add_none(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    events = [e for i in range(3) for e in parse_message(frame(T0 + i * 1000), T0 + i * 1000)]
    assert store.insert_liquidations(events) == 3
    again = [*parse_message(frame(T0), T0), *parse_message(frame(T0 + 5000), T0 + 5000)]
    assert store.insert_liquidations(again) == 1  # one seen, one new
    first = events[0]
    # Before a block is written the payload is still found, from memory.
    assert store.raw_payload(first.event_key(), first.ts_ms)["o"]["T"] == T0
    store.close()

    store = Store(path)
    try:
        # A Binance frame keeps what its row does not say in the row (feeds/store/compact.py).
        assert blocks(store) == []
        for e in [*events, again[1]]:
            assert store.raw_payload(e.event_key(), e.ts_ms) == json.loads(
                frame(e.ts_ms, "0.5"))
        rest = store.database.conn.execute("SELECT raw FROM events").fetchall()
        assert rest == [(b'{"p":"89000.0","E":' + str(e.ts_ms + 1).encode() + b"}",)
                        for e in [*events, again[1]]]
        assert store.totals(T0 + HOUR_MS, HOUR_MS).long_usd == 4 * 45_000
    finally:
        store.close()


def test_normalized_lines_and_keep_raw_false_store_no_payload(tmp_path: Path) -> None:
    lines = tmp_path / "events.jsonl"
    lines.write_text(json.dumps({
        "exchange": "bybit", "symbol": "ETHUSDT", "coin": "ETH", "side": "long", "qty": 2.0,
        "price": 3000.0, "usd": 6000.0, "ts": T0, "sampled": False}) + "\n")
    store = Store(tmp_path / "n.db")
    try:
        loaded = load_events_jsonl(lines).liquidations
        assert store.insert_liquidations(loaded) == 1
        assert store.insert_liquidations([make_liq()], keep_raw=False) == 1
        store._raw.flush()  # noqa: SLF001 - what close would write
        assert blocks(store) == []
        assert store.raw_payload(loaded[0].event_key(), T0) is None
    finally:
        store.close()


def test_a_mixed_batch_keeps_the_payloads_of_its_new_events_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    try:
        seen = [make_liq(ts_exchange_ms=T0 + i, raw={"seen": i}) for i in range(2)]
        store.insert_liquidations(seen)
        fresh = [make_liq(ts_exchange_ms=T0 + 10 + i, raw={"fresh": i}) for i in range(2)]
        assert store.insert_liquidations([*seen, fresh[0], fresh[1], fresh[0]]) == 2
        store._raw.flush()  # noqa: SLF001
        assert blocks(store) == [(T0, T0 + 11, 4)]
        for e in [*seen, *fresh]:
            assert store.raw_payload(e.event_key(), e.ts_ms) == e.raw
        minute = store.database.conn.execute("SELECT short_n FROM buckets_1m").fetchall()
        assert minute == [(4,)]
    finally:
        store.close()


def test_prune_drops_blocks_whose_events_are_all_gone(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.db")
    try:
        store.insert_liquidations([make_liq(ts_exchange_ms=T0, raw={"old": 1})])
        store._raw.flush()  # noqa: SLF001
        store.insert_liquidations([make_liq(ts_exchange_ms=T0 + HOUR_MS, raw={"new": 1})])
        store._raw.flush()  # noqa: SLF001
        store.prune_events(T0 + MINUTE_MS)
        assert blocks(store) == [(T0 + HOUR_MS, T0 + HOUR_MS, 1)]
    finally:
        store.close()


def build_v6(path: Path) -> list[object]:
    """A file as liqbot left it at market schema v6: payload text in each event row."""
    venue = parse_message(frame(T0), T0 + 40)[0]
    normalized = make_liq(ts_exchange_ms=T0 + 1000, raw={
        "exchange": "binance", "symbol": "BTCUSDT", "coin": "BTC", "side": "short",
        "qty": 1.0, "price": 100000.0, "usd": 100000.0, "ts": T0 + 1000, "sampled": True})
    loader = make_liq(ts_exchange_ms=T0 + 2000, notional_usd=Decimal(50_000),
                      raw={"row": 7, "note": "a loader's own payload"})
    db = Database(path)
    try:
        db.migrate(SCHEMA_KEY, MIGRATIONS[:6], what="market")
        with db.transaction():
            db.conn.executemany(_INSERT_EVENT, [_event_row(e, True)
                                                for e in (venue, normalized, loader)])
            bucket_levels.add_new_events(db.conn, 0)
    finally:
        db.close()
    return [venue, normalized, loader]


def test_a_v6_file_moves_its_payloads_into_blocks_and_keeps_events_and_dedup(
        tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    venue, normalized, loader = build_v6(path)
    store = Store(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 7
        assert store.count_events() == 3
        conn = store.database.conn
        assert conn.execute("SELECT count(*) FROM events WHERE raw IS NOT NULL").fetchone()[0] == 0
        # The venue frame and the loader's payload move; the normalized line only repeated
        # its row, so it goes.
        assert blocks(store) == [(T0, T0 + 2000, 2)]
        assert store.raw_payload(venue.event_key(), venue.ts_ms) == venue.raw
        assert store.raw_payload(loader.event_key(), loader.ts_ms) == loader.raw
        assert store.raw_payload(normalized.event_key(), normalized.ts_ms) is None
        totals = store.totals(T0 + HOUR_MS, HOUR_MS)
        assert (totals.long_usd, totals.short_usd, totals.count) == (45_000, 150_000, 3)
        # The old keys still deduplicate; a new event lands beside them.
        assert store.insert_liquidations([venue, normalized, loader]) == 0
        later = parse_message(frame(T0 + 3000), T0 + 3000)
        assert store.insert_liquidations(later) == 1
        assert store.totals(T0 + HOUR_MS, HOUR_MS).count == 4
    finally:
        store.close()


def test_a_block_that_cannot_be_written_at_close_is_a_warning_not_a_crash(
        tmp_path: Path, caplog) -> None:
    store = Store(tmp_path / "ro.db")
    assert store.insert_liquidations([make_liq(raw={"kept": False})]) == 1
    store.database.conn.execute("PRAGMA query_only = ON")  # as a disk gone read-only would
    store.close()
    assert "the last 1 venue payloads were not kept" in caplog.text
    again = Store(tmp_path / "ro.db")
    try:
        assert again.count_events() == 1  # the event itself was committed
        assert blocks(again) == []
    finally:
        again.close()
