"""Distinct fills never collapse; the same frame twice is still one row (issue 12)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from feeds.history.jsonl import load_events_jsonl
from feeds.model import HOUR_MS
from feeds.store import Store
from feeds.store.schema import SCHEMA_VERSION
from feeds.venues import bitmex, deribit
from feeds.venues.decode import decoder_for
from tests.feeds.store.legacy_schema import build_legacy

TS = 1_767_225_600_000
# The repro: two orders in one insert, equal in everything but orderID.
BITMEX_TWO = {"table": "liquidation", "action": "insert", "data": [
    {"orderID": "a", "symbol": "XBTUSD", "side": "Sell", "price": 90000, "leavesQty": 1000},
    {"orderID": "b", "symbol": "XBTUSD", "side": "Sell", "price": 90000, "leavesQty": 1000}]}


def deribit_frame(*trade_ids: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {
        "channel": "trades.future.BTC.100ms", "data": [
            {"trade_id": t, "trade_seq": 1, "timestamp": TS, "instrument_name": "BTC-PERPETUAL",
             "price": 90000, "direction": "sell", "amount": 1000, "liquidation": "T"}
            for t in trade_ids]}})


def test_two_bitmex_orders_alike_in_price_and_size_are_two_rows(tmp_path: Path) -> None:
    events = bitmex.LiquidationTable().parse(json.dumps(BITMEX_TWO), TS)
    assert [e.venue_id for e in events] == ["a", "b"]
    store = Store(tmp_path / "b.db")
    try:
        assert store.insert_liquidations(events) == 2
        # A reconnect's resent frame goes through a fresh table: same ids, same keys.
        again = bitmex.LiquidationTable().parse(json.dumps(BITMEX_TWO), TS)
        assert store.insert_liquidations(again) == 0
        assert store.count_events() == 2
    finally:
        store.close()


def test_two_deribit_fills_alike_but_for_trade_id_are_two_rows_and_repeats_dedupe(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "d.db")
    try:
        events = deribit.parse_message(deribit_frame("1", "2"), TS)
        assert store.insert_liquidations(events) == 2
        assert store.insert_liquidations(deribit.parse_message(deribit_frame("1", "2"), TS)) == 0
        assert store.insert_liquidations(deribit.parse_message(deribit_frame("2"), TS)) == 0
        assert store.totals(TS + HOUR_MS, HOUR_MS).count == 2
    finally:
        store.close()


def test_decode_prints_the_id_and_a_replay_keeps_distinct_ids_distinct(tmp_path: Path) -> None:
    decode = decoder_for("deribit")
    rows = [e.as_short_dict() for e in decode(deribit_frame("7", "8"))]
    assert [r["id"] for r in rows] == ["7", "8"]
    binance = decoder_for("binance")(
        '{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","q":"1","p":"1","ap":"1",'
        '"z":"1","T":1568014460893}}')
    assert "id" not in binance[0].as_short_dict()  # the venue gives none: no key at all
    path = tmp_path / "decoded.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows * 2))  # and every line twice
    replayed = load_events_jsonl(path).liquidations
    assert [e.venue_id for e in replayed] == ["7", "8", "7", "8"]
    store = Store(tmp_path / "r.db")
    try:
        assert store.insert_liquidations(replayed) == 2
    finally:
        store.close()


def test_a_v5_database_keeps_its_rows_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    build_legacy(path, 5)
    [fill] = deribit.parse_message(deribit_frame("1"), TS)
    store = Store(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        # What a v5 liqbot stored: the same event keyed without the venue's id.
        before = dataclasses.replace(fill, venue_id=None)
        assert store.insert_liquidations([before]) == 1
        assert store.insert_liquidations([before]) == 0  # its key is unchanged: no re-keying
        plain = dataclasses.replace(before, exchange="binance")
        assert store.insert_liquidations([plain, plain]) == 1
        # The venue's id keeps a second fill alike in time, price and size apart from now on.
        [other] = deribit.parse_message(deribit_frame("2"), TS)
        assert store.insert_liquidations([other, other]) == 1
        assert store.count_events() == 3
    finally:
        store.close()
