"""BitMEX liquidation table: recorded rows, side rule, contract sizes, table bookkeeping, feed."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from feeds.model import ParseError, Side
from feeds.net.ws import WsFeed
from feeds.venues.base import FeedOptions
from feeds.venues.bitmex import (
    DEFAULT_URL,
    LiquidationTable,
    TextPing,
    bitmex_feed,
    contract_of,
    load_instruments,
    make_feeds,
    parse_liquidation_row,
)
from feeds.venues.decode import decoder_for
from feeds.venues.reference import REFERENCE
from tests.helpers.fake_ws import Plan, wait_until
from tests.helpers.fake_ws_venues import (
    FAST,
    Recorder,
    TextPingFake,
    discard,
    fast_backoff,
    running_to_cancel,
)
from tests.helpers.shared import FIXTURES

INSERT: dict[str, Any] = json.loads((FIXTURES / "bitmex_liquidation_insert.json").read_text())
UPDATE: dict[str, Any] = json.loads((FIXTURES / "bitmex_liquidation_update.json").read_text())
ROW: dict[str, Any] = INSERT["data"][0]
RECV_MS = 1_600_000_000_123

# Abridged /api/v1/instrument/active rows: the fields the conversion reads.
INSTRUMENTS = [
    {"symbol": "XBTUSD", "quoteCurrency": "USD", "settlCurrency": "XBt", "isInverse": True,
     "isQuanto": False, "multiplier": -100000000, "underlyingToPositionMultiplier": None,
     "rootSymbol": "XBT"},
    {"symbol": "XBTZ26", "quoteCurrency": "USD", "settlCurrency": "XBt", "isInverse": True,
     "isQuanto": False, "multiplier": -100000000, "underlyingToPositionMultiplier": None},
    {"symbol": "XBTUSDT", "quoteCurrency": "USDT", "settlCurrency": "USDt", "isInverse": False,
     "isQuanto": False, "multiplier": 1, "underlyingToPositionMultiplier": 1000000},
    {"symbol": "ETHUSD", "quoteCurrency": "USD", "settlCurrency": "XBt", "isInverse": False,
     "isQuanto": True, "multiplier": 100, "underlyingToPositionMultiplier": None},
    {"symbol": "ETHXBT", "quoteCurrency": "XBT", "settlCurrency": "XBt", "isInverse": False,
     "isQuanto": False, "multiplier": 100000000, "underlyingToPositionMultiplier": 1},
]


def row(**fields: Any) -> dict[str, Any]:
    """The recorded insert row with some fields replaced (None deletes the field)."""
    out = copy.deepcopy(ROW)
    for key, value in fields.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def frame(action: str, *rows: dict[str, Any], table: str = "liquidation") -> str:
    return json.dumps({"table": table, "action": action, "data": list(rows)})


@pytest.fixture
def instruments_file(tmp_path: Path) -> Path:
    path = tmp_path / "bitmex_instruments.json"
    path.write_text(json.dumps(INSTRUMENTS))
    return path


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.playback
def test_recorded_insert_normalizes_to_documented_values() -> None:
    [liq] = LiquidationTable().parse(json.dumps(INSERT), RECV_MS)
    assert (liq.exchange, liq.symbol, liq.position_side) == ("bitmex", "XBTUSD", Side.SHORT)
    assert liq.notional_usd == Decimal("314930") and liq.price == Decimal("13854.5")
    assert math.isclose(liq.qty_base, Decimal("22.7312425566"), rel_tol=1e-9)
    assert liq.qty_base == Decimal(314930) / Decimal("13854.5")
    # BitMEX rows carry no time: the event is stamped when it arrived.
    assert (liq.ts_exchange_ms, liq.ts_recv_ms, liq.ts_ms) == (None, RECV_MS, RECV_MS)
    assert liq.sampled is False and liq.raw == ROW


@pytest.mark.playback
def test_recorded_update_alone_yields_no_event() -> None:
    assert LiquidationTable().parse(json.dumps(UPDATE), RECV_MS) == []


def test_sell_order_means_a_long_was_liquidated() -> None:
    assert parse_liquidation_row(row(side="Sell"), RECV_MS).position_side is Side.LONG
    assert parse_liquidation_row(row(side="Buy"), RECV_MS).position_side is Side.SHORT


def test_insert_then_update_then_delete_counts_once_and_tracks_leaves() -> None:
    table = LiquidationTable()
    assert len(table.parse(json.dumps(INSERT), RECV_MS)) == 1
    assert table.open == {ROW["orderID"]: Decimal(314930)}
    assert table.parse(json.dumps(UPDATE), RECV_MS + 1) == []
    assert table.open == {ROW["orderID"]: Decimal(305515)}
    assert table.parse(frame("delete", {"orderID": ROW["orderID"], "symbol": "XBTUSD"}),
                       RECV_MS + 2) == []
    assert table.open == {}


def test_partial_snapshot_is_the_open_book_not_new_events() -> None:
    table = LiquidationTable()
    partial = {"table": "liquidation", "action": "partial", "keys": ["orderID"],
               "types": {"orderID": "guid"}, "filter": {}, "data": [ROW, row(orderID="b")]}
    assert table.parse(json.dumps(partial), RECV_MS) == []
    assert set(table.open) == {ROW["orderID"], "b"}
    # An insert of an order the snapshot already listed (or a resent insert) adds nothing.
    assert table.parse(frame("insert", ROW), RECV_MS) == []
    [liq] = table.parse(frame("insert", ROW, row(orderID="c", side="Sell")), RECV_MS)
    assert liq.position_side is Side.LONG and liq.raw["orderID"] == "c"
    # A later partial (after a reconnect) replaces the book.
    table.parse(frame("partial", row(orderID="d")), RECV_MS)
    assert list(table.open) == ["d"]


def test_one_frame_with_several_inserts_yields_every_row() -> None:
    rows = [row(orderID=str(i), leavesQty=100 * (i + 1)) for i in range(3)]
    events = LiquidationTable().parse(frame("insert", *rows), RECV_MS)
    assert [e.notional_usd for e in events] == [100, 200, 300]


def test_linear_and_other_inverse_contracts_convert_from_the_instruments_file(
    instruments_file: Path,
) -> None:
    decode = decoder_for("bitmex", str(instruments_file))
    [linear] = decode(frame("insert", row(symbol="XBTUSDT", leavesQty=2500, price="60000")))
    # XBTUSDT: 1e6 contracts per XBT.
    assert (linear.qty_base, linear.notional_usd) == (Decimal("0.0025"), Decimal("150.0000"))
    [inverse] = decode(frame("insert", row(orderID="x", symbol="XBTZ26", leavesQty=1000,
                                          price=50000)))
    assert (inverse.notional_usd, inverse.qty_base) == (Decimal(1000), Decimal("0.02"))


@pytest.fixture(autouse=True)
def _no_reference() -> Any:
    REFERENCE.clear()  # a BTC price from another test would value quanto rows here
    yield
    REFERENCE.clear()


@pytest.mark.parametrize(("symbol", "why"), [
    ("ETHUSD", "ETHUSD: quanto, no recent BTC price"),
    ("NEWUSDT", "NEWUSDT: unknown instrument"),  # neither the file nor the snapshot
])
def test_unknown_conversions_raise_naming_the_instrument(
    instruments_file: Path, symbol: str, why: str
) -> None:
    decode = decoder_for("bitmex", str(instruments_file))
    with pytest.raises(ParseError, match=why):
        decode(frame("insert", row(symbol=symbol)))


def test_without_an_instruments_file_only_xbtusd_converts() -> None:
    with pytest.raises(ParseError, match="XBTUSDT: unknown instrument"):
        LiquidationTable().parse(frame("insert", row(symbol="XBTUSDT")), RECV_MS)


def test_an_unconvertible_row_does_not_cost_its_neighbours(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = LiquidationTable(load_instruments_from(INSTRUMENTS))
    events = table.parse(frame("insert", row(orderID="q", symbol="ETHUSD"), ROW), RECV_MS)
    assert [e.symbol for e in events] == ["XBTUSD"] and set(table.open) == {"q", ROW["orderID"]}
    [line] = [r.getMessage() for r in caplog.records if r.name == "feeds.venues.bitmex"]
    assert line.startswith("bitmex: liquidation skipped (ETHUSD: quanto, no recent BTC price")


def test_quanto_and_xbt_quoted_rows_are_valued_with_the_btc_price(instruments_file: Path) -> None:
    decode = decoder_for("bitmex", str(instruments_file))
    [eth] = decode(frame("insert", row(orderID="x1", symbol="ETHXBT", price=0.03,
                                       leavesQty=10)))
    assert (eth.quote, eth.notional_usd, eth.qty_base) == ("BTC", 0, 10)  # unpriced yet
    decode(frame("insert", row(orderID="x2", symbol="XBTUSD", price=90000, leavesQty=100)))
    [quanto] = decode(frame("insert", row(orderID="x3", symbol="ETHUSD", price=3000,
                                          leavesQty=10)))
    # 10 contracts × 100 satoshi × 3000 = 0.03 XBT, at 90,000 USD: 2,700 USD, 0.9 ETH
    assert quanto.quote is None
    assert float(quanto.notional_usd) == pytest.approx(2700)
    assert float(quanto.qty_base) == pytest.approx(0.9)
    [priced] = decode(frame("insert", row(orderID="x4", symbol="ETHXBT", price=0.03,
                                          leavesQty=10)))
    assert float(priced.notional_usd) == pytest.approx(10 * 0.03 * 90000)


def load_instruments_from(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {c.symbol: c for c in (contract_of(r) for r in rows)}


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot read instruments file"),
    ("{not json", "not JSON"),
    ('{"symbol": "XBTUSD"}', "expected the instrument list"),
    ('[{"quoteCurrency": "USD"}]', "missing key 'symbol'"),
    ('[{"symbol": "X", "quoteCurrency": "USDT", "isInverse": false, "isQuanto": false, '
     '"underlyingToPositionMultiplier": 0}]', "X.underlyingToPositionMultiplier: must be pos"),
])
def test_bad_instruments_files_raise_parse_error_naming_the_file(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "instruments.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ParseError, match=reason) as info:
        load_instruments(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("message", [
    "pong",
    {"info": "Welcome to the BitMEX Realtime API.", "version": "2.0", "limit": {"remaining": 39}},
    {"success": True, "subscribe": "liquidation", "request": {"op": "subscribe"}},
    {"table": "trade", "action": "insert", "data": [{"symbol": "XBTUSD"}]},
    {"table": "liquidation", "action": "update", "data": []},
])
def test_acks_pongs_and_other_tables_yield_nothing(message: Any) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    assert LiquidationTable().parse(text, RECV_MS) == []


@pytest.mark.parametrize(("message", "reason"), [
    ("not json", "not JSON"),
    ("[]", "expected an object, got list"),
    ('{"foo": 1}', "missing key 'table'"),
    ('{"status": 400, "error": "Unknown table: liquidations"}', "error reply: Unknown table"),
    ('{"table": "liquidation", "data": []}', "missing key 'action'"),
    ('{"table": "liquidation", "action": "insert"}', "missing key 'data'"),
    ('{"table": "liquidation", "action": "insert", "data": {}}', "data: expected a list"),
    ('{"table": "liquidation", "action": "upsert", "data": []}', "unknown action"),
    (frame("insert", row(orderID=None)), "missing key 'orderID'"),
    (frame("insert", row(symbol="")), "symbol: expected a non-empty string"),
    (frame("insert", row(side="Short")), "side: unknown side"),
    (frame("insert", row(side=["Buy"])), "side: unknown side"),
    (frame("insert", row(price=0)), "price: must be positive"),
    (frame("insert", row(price="abc")), "price: not a number"),
    (frame("insert", row(leavesQty=None)), "missing key 'leavesQty'"),
    (frame("insert", row(leavesQty="1e30")), "leavesQty: out of range"),
    (frame("update", {"orderID": "a", "leavesQty": "x"}), "leavesQty: not a number"),
    (frame("insert", row(leavesQty="1e18", price="1e-999999")), "out of range"),
])
def test_malformed_frames_raise_parse_error_naming_the_field(message: str, reason: str) -> None:
    table = LiquidationTable()
    with pytest.raises(ParseError, match=reason):
        table.parse(message, RECV_MS)
    assert table.open == {}  # a rejected frame leaves no trace in the book


def test_decoder_lines_share_one_table() -> None:
    decode = decoder_for("bitmex")
    assert [e.notional_usd for e in decode(json.dumps(INSERT))] == [314930]
    assert decode(json.dumps(UPDATE)) == []
    assert decode(json.dumps(INSERT)) == []  # the same order again: not a second liquidation
    assert decode("pong\n") == []  # stdin lines keep their newline


def test_make_feeds_builds_one_subscribed_socket(instruments_file: Path) -> None:
    [feed] = make_feeds(discard, FeedOptions(instruments_path=str(instruments_file)))
    assert (feed.exchange, feed.url, feed.subscribe) == ("bitmex", DEFAULT_URL, [])
    assert DEFAULT_URL == "wss://ws.bitmex.com/realtime?subscribe=liquidation"
    with pytest.raises(TypeError):
        bitmex_feed(discard, pingafter=1)  # type: ignore[call-arg]


def test_text_ping_rejects_nonsense_intervals() -> None:
    with pytest.raises(ValueError):
        TextPing(0, 1, idle_only=True)


# -- the feed against a fake BitMEX ----------------------------------------------------------

PATH = "/realtime?subscribe=liquidation"


def fast_feed(fake: TextPingFake, rec: Recorder, **kwargs: Any) -> WsFeed:
    kwargs.setdefault("ping_after_s", 0.1)
    kwargs.setdefault("pong_timeout_s", 0.1)
    return bitmex_feed(rec.sink, url=fake.url, timing=FAST, backoff=fast_backoff(), **kwargs)


def order(i: int, side: str = "Buy") -> dict[str, Any]:
    return row(orderID=f"order-{i}", side=side, leavesQty=1000 * (i + 1), price=50000 + i)


async def test_only_inserts_reach_the_sink() -> None:
    script = [
        {"info": "Welcome to the BitMEX Realtime API.", "version": "2.0"},
        {"success": True, "subscribe": "liquidation"},
        {"table": "liquidation", "action": "partial", "keys": ["orderID"],
         "data": [order(0), order(1)]},
        frame("insert", order(2, "Sell")),
        frame("update", {"orderID": "order-2", "leavesQty": 1500, "symbol": "XBTUSD"}),
        frame("insert", order(3), order(4, "Sell")),
        frame("update", {"orderID": "order-0", "leavesQty": 10, "symbol": "XBTUSD"}),
        frame("delete", {"orderID": "order-2", "symbol": "XBTUSD"}),
    ]
    rec = Recorder()
    async with asyncio.timeout(5), TextPingFake(script, path=PATH) as fake:
        feed = fast_feed(fake, rec, ping_after_s=5)
        async with running_to_cancel(feed):
            await wait_until(lambda: feed.stats.frames == len(script))
        assert fake.connections[0].path == PATH
    assert [(e.raw["orderID"], e.position_side.value, e.notional_usd) for e in rec.events] == [
        ("order-2", "long", 3000), ("order-3", "short", 4000), ("order-4", "long", 5000)]
    assert {e.ts_exchange_ms for e in rec.events} == {None}
    assert (feed.stats.events, feed.stats.parse_errors) == (3, 0)


async def test_quiet_socket_is_pinged_after_the_silence_and_pong_keeps_it() -> None:
    rec = Recorder()
    async with asyncio.timeout(5), TextPingFake([INSERT], path=PATH) as fake:
        feed = fast_feed(fake, rec)
        async with running_to_cancel(feed):
            await wait_until(lambda: len(rec.events) == 1)
            got_event = asyncio.get_running_loop().time()
            await wait_until(lambda: len(fake.pings[0]) >= 4, within_s=2)
        first_ping = fake.pings[0][0]
    # Not before 0.1 s of silence; every pong resets the silence, so pings keep a cadence.
    assert first_ping - got_event >= 0.05  # 0.1 s minus how late wait_until noticed the event
    gaps = [b - a for a, b in zip(fake.pings[0], fake.pings[0][1:], strict=False)]
    assert all(g >= 0.09 for g in gaps), gaps
    assert (feed.stats.connects, len(fake.connections)) == (1, 1)


async def test_a_busy_socket_is_not_pinged() -> None:
    rec = Recorder()
    script = [frame("insert", order(i)) for i in range(12)]
    async with asyncio.timeout(5), TextPingFake(script, path=PATH, interval_s=0.03) as fake:
        feed = fast_feed(fake, rec, ping_after_s=0.3)  # 10x the frame spacing
        async with running_to_cancel(feed):
            await wait_until(lambda: len(rec.events) == 12)
        assert fake.pings[0] == []


async def test_no_pong_reconnects(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    async with asyncio.timeout(5), TextPingFake([INSERT], path=PATH) as fake:
        fake.mute_pongs.add(0)
        fake.plan(Plan(after=0))
        feed = fast_feed(fake, rec)
        async with running_to_cancel(feed):
            await wait_until(lambda: len(rec.events) == 1)
        assert len(fake.pings[0]) == 1 and fake.connections[0].closed_at is not None
    assert feed.stats.reconnects == 1
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "feeds.net.ws" and r.levelno == logging.WARNING]
    assert any("keepalive failed (TimeoutError: no pong within 0.1s)" in w for w in warnings)
