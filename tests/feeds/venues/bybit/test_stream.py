"""Bybit v5 allLiquidation: position-side rule, inverse sizing, symbol enumeration, the socket."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from feeds.model import ParseError, Side
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming
from feeds.store import Store
from feeds.venues import bybit
from feeds.venues.base import FeedOptions
from feeds.venues.binance import parse_force_order as binance_force_order
from feeds.venues.decode import decoder_for
from feeds.venues.instruments import save_instruments
from tests.helpers.fake_rest import BybitInstruments, FakeRest
from tests.helpers.fake_ws import FakeExchange, Plan, bybit_replies, running, wait_until
from tests.helpers.fake_ws_venues import Recorder, discard, fast_backoff
from tests.helpers.shared import FIXTURES

FIXTURE = FIXTURES / "bybit_all_liquidation.json"
SAMPLE: dict[str, Any] = json.loads(FIXTURE.read_text())
RECV_MS = 1739502303300
INFO = bybit.INSTRUMENTS_PATH
# Protocol pings slow on purpose: the app-level op:ping is what these tests exercise.
SLOW_PROTOCOL_PINGS = FeedTiming(ping_interval_s=10, ping_timeout_s=10, open_timeout_s=1.0,
                                 close_timeout_s=0.2)


def make_frame(*items: dict[str, Any]) -> dict[str, Any]:
    """The recorded push carrying these items (fields override the recorded item)."""
    frame = copy.deepcopy(SAMPLE)
    frame["data"] = [{**SAMPLE["data"][0], **item} for item in items] or frame["data"]
    return frame


def subscribed(messages: list[str]) -> list[list[str]]:
    """The args of every subscribe message, in order."""
    out = []
    for text in messages:
        msg = json.loads(text)
        if msg.get("op") == "subscribe":
            out.append(msg["args"])
    return out


def pings(messages: list[str]) -> int:
    return sum(json.loads(m).get("op") == "ping" for m in messages)


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.playback
def test_recorded_payload_normalizes_to_documented_values() -> None:
    [liq] = bybit.parse_message(FIXTURE.read_text(), RECV_MS)
    assert liq.as_short_dict() == {
        "exchange": "bybit", "symbol": "ROSEUSDT", "coin": "ROSE", "side": "short", "qty": 20000.0,
        "price": 0.04499, "usd": 899.8, "ts": 1739502302929, "sampled": False,
    }
    assert liq.notional_usd == Decimal("899.8") and liq.qty_base == Decimal(20000)
    assert (liq.ts_exchange_ms, liq.ts_recv_ms) == (1739502302929, RECV_MS)  # T, not frame ts
    assert liq.raw == SAMPLE["data"][0]


def test_side_is_the_position_side_unlike_binance() -> None:
    """Bybit `Buy` = a LONG was liquidated; Binance `BUY` = a SHORT was (the order side)."""
    [buy] = bybit.parse_message(make_frame({"S": "Buy"}), RECV_MS)
    [sell] = bybit.parse_message(make_frame({"S": "Sell"}), RECV_MS)
    assert (buy.position_side, sell.position_side) == (Side.LONG, Side.SHORT)
    binance = json.loads((FIXTURES / "binance_usdm_forceorder.json").read_text())
    binance["o"]["S"] = "BUY"
    assert binance_force_order(binance, RECV_MS).position_side is Side.SHORT


def test_every_item_of_a_frame_becomes_an_event() -> None:
    frame = make_frame({"s": "ROSEUSDT", "S": "Buy"}, {"s": "BTCUSDT", "v": "0.5", "p": "60000"})
    events = bybit.parse_message(json.dumps(frame), RECV_MS)
    assert [(e.symbol, e.position_side, e.notional_usd) for e in events] == [
        ("ROSEUSDT", Side.LONG, Decimal("899.8")), ("BTCUSDT", Side.SHORT, Decimal(30000))]


@pytest.mark.parametrize("symbol", ["BTCUSD", "ETHUSD", "BTCUSDH25", "BTCUSDZ26"])
def test_inverse_size_counts_usd_contracts(symbol: str) -> None:
    [liq] = bybit.parse_message(make_frame({"s": symbol, "v": "1000", "p": "50000"}), RECV_MS)
    assert (liq.notional_usd, liq.qty_base, liq.price) == (Decimal(1000), Decimal("0.02"),
                                                          Decimal(50000))


@pytest.mark.parametrize(("symbol", "inverse"), [
    ("BTCUSDT", False), ("BTCPERP", False), ("BTC-26DEC25", False), ("BTCUSDT-26DEC25", False),
    ("BTCUSDC", False), ("BTCUSD", True), ("BTCUSDM25", True),
])
def test_category_guess_from_the_symbol(symbol: str, inverse: bool) -> None:
    assert bybit.looks_inverse(symbol) is inverse


def test_the_socket_category_decides_inverse_not_the_symbol() -> None:
    [liq] = bybit.parse_message(make_frame({"s": "ODDUSD", "v": "2", "p": "4"}), RECV_MS,
                                is_inverse=lambda _: False)
    assert (liq.qty_base, liq.notional_usd) == (Decimal(2), Decimal(8))


@pytest.mark.parametrize("frame", [
    {"success": True, "ret_msg": "", "conn_id": "c", "req_id": "sub-1", "op": "subscribe"},
    {"success": True, "ret_msg": "pong", "conn_id": "c", "req_id": "ping-2", "op": "ping"},
    {"req_id": "x", "op": "pong", "args": ["1675418560633"], "conn_id": "c"},
    {"topic": "tickers.BTCUSDT", "type": "snapshot", "data": {"symbol": "BTCUSDT"}},
    make_frame() | {"data": []},
])
def test_acks_pongs_and_other_topics_yield_nothing(frame: dict[str, Any]) -> None:
    assert bybit.parse_message(json.dumps(frame), RECV_MS) == []


def test_a_failed_subscribe_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    ack = {"success": False, "ret_msg": "error:handler not found,topic:allLiquidation.NOPE",
           "conn_id": "c", "req_id": "sub-3", "op": "subscribe"}
    assert bybit.parse_message(json.dumps(ack), RECV_MS) == []
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert line == ("bybit: subscribe rejected: error:handler not found,"
                    "topic:allLiquidation.NOPE (req_id sub-3)")


@pytest.mark.parametrize(("frame", "reason"), [
    ({"type": "snapshot"}, "missing key 'topic'"),
    (make_frame() | {"data": {"s": "X"}}, "'data' must be a list"),
    (make_frame({"S": "Long"}), "unknown side"),
    (make_frame({"v": "0"}), "ROSEUSDT.v: must be positive"),
    (make_frame({"p": None}), "ROSEUSDT.p: expected a number"),
    (make_frame({"T": "soon"}), "not a timestamp"),
    ([SAMPLE], "expected an object, got list"),
])
def test_malformed_frames_raise_parse_error(frame: Any, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        bybit.parse_message(json.dumps(frame), RECV_MS)


def test_decoder_uses_the_instruments_file_to_tell_inverse_from_linear(tmp_path: Path) -> None:
    page = BybitInstruments({"inverse": ["ODDUSDT"]})({"category": "inverse"})
    (tmp_path / "i.json").write_text(json.dumps(page))
    frame = json.dumps(make_frame({"s": "ODDUSDT", "v": "100", "p": "2"}))
    assert decoder_for("bybit")(frame)[0].notional_usd == 200  # guessed linear
    assert decoder_for("bybit", str(tmp_path / "i.json"))(frame)[0].notional_usd == 100


# -- symbols -----------------------------------------------------------------------------------


async def test_symbols_are_enumerated_across_pages() -> None:
    names = [f"S{i}USDT" for i in range(7)]
    async with FakeRest({INFO: BybitInstruments({"linear": names}, page_size=3)}) as rest:
        specs = await bybit.fetch_symbols(rest.url, "linear")
    assert sorted(specs) == sorted(names)
    assert [q.get("cursor") for q in rest.calls(INFO)] == [None, "3", "6"]
    assert rest.calls(INFO)[0] == {"category": "linear", "status": "Trading", "limit": "1000"}


@pytest.mark.parametrize(("payload", "reason"), [
    ({"retCode": 10001, "retMsg": "params error"}, "Bybit error 10001: params error"),
    ({"retCode": 0, "result": {"list": None}}, "'list' must be a list"),
])
def test_bad_instrument_pages_are_parse_errors(payload: Any, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        bybit.parse_instruments_page(payload)


def test_non_trading_rows_are_left_out() -> None:
    payload = {"retCode": 0, "result": {"nextPageCursor": "", "list": [
        {"symbol": "A", "status": "Trading"}, {"symbol": "B", "status": "Settling"}, {"x": 1}]}}
    assert list(bybit.parse_instruments_page(payload)[0]) == ["A"]


def test_feed_urls_and_options() -> None:
    linear, inverse = bybit.make_feeds(discard, FeedOptions())
    assert (linear.url, inverse.url) == ("wss://stream.bybit.com/v5/public/linear",
                                         "wss://stream.bybit.com/v5/public/inverse")
    assert linear.exchange == inverse.exchange == "bybit"
    [one] = bybit.category_feeds(discard, FeedOptions(url="wss://x.test/v5/public/linear/"),
                                 categories=["inverse"])
    assert one.url == "wss://x.test/v5/public/inverse"
    with pytest.raises(ValueError, match="categories"):
        bybit.category_feeds(discard, FeedOptions(), categories=["spot"])
    with pytest.raises(ValueError, match="batch_size"):
        bybit.category_feeds(discard, FeedOptions(), batch_size=0)


def test_each_socket_gets_its_own_backoff() -> None:
    shared = Backoff(base_s=1, cap_s=30)
    linear, inverse = bybit.make_feeds(discard, FeedOptions(backoff=shared))
    assert linear.backoff is shared and inverse.backoff is not shared
    assert (inverse.backoff.base_s, inverse.backoff.cap_s) == (1, 30)


# -- the live sockets --------------------------------------------------------------------------


def live_feeds(fake: FakeExchange, rest: FakeRest, rec: Recorder, *,
               refresh_s: float | None = None, store_path: str | None = None,
               **kw: Any) -> list[Any]:
    kw.setdefault("categories", ["linear"])
    kw.setdefault("batch_size", 3)
    kw.setdefault("ping_interval_s", 0.05)
    kw.setdefault("pong_timeout_s", 0.1)
    options = FeedOptions(url=f"ws://127.0.0.1:{fake.port}/v5/public", rest_url=rest.url,
                          backoff=fast_backoff(), timing=SLOW_PROTOCOL_PINGS,
                          refresh_s=refresh_s, store_path=store_path)
    return bybit.category_feeds(rec.sink, options, **kw)


async def test_every_symbol_is_subscribed_in_batches_on_each_socket() -> None:
    catalog = BybitInstruments({"linear": [f"L{i}USDT" for i in range(7)],
                                "inverse": ["BTCUSD", "ETHUSD"]}, page_size=4)
    rec = Recorder()
    async with asyncio.timeout(5), FakeRest({INFO: catalog}) as rest, FakeExchange(
        responder=bybit_replies()
    ) as fake:
        feeds = live_feeds(fake, rest, rec, categories=["linear", "inverse"])
        async with running(feeds[0]), running(feeds[1]):
            await wait_until(lambda: sum(len(subscribed(c.received)) for c in
                                         fake.connections) == 4)
            by_path = {c.path: subscribed(c.received) for c in fake.connections}
    assert by_path == {
        "/v5/public/linear": [["allLiquidation.L0USDT", "allLiquidation.L1USDT",
                               "allLiquidation.L2USDT"],
                              ["allLiquidation.L3USDT", "allLiquidation.L4USDT",
                               "allLiquidation.L5USDT"],
                              ["allLiquidation.L6USDT"]],
        "/v5/public/inverse": [["allLiquidation.BTCUSD", "allLiquidation.ETHUSD"]],
    }


async def test_events_flow_and_subscriptions_are_resent_after_a_drop() -> None:
    rec = Recorder()
    frames = [make_frame({"T": SAMPLE["data"][0]["T"] + i}) for i in range(2)]
    async with asyncio.timeout(5), FakeRest(
        {INFO: BybitInstruments({"linear": ["ROSEUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"]})}
    ) as rest, FakeExchange(frames, responder=bybit_replies()) as fake:
        fake.plan(Plan(after=1, then="drop", wait_for=2), Plan(wait_for=2))
        [feed] = live_feeds(fake, rest, rec)
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 2)
    first, second = (sorted(sum(subscribed(c.received), [])) for c in fake.connections[:2])
    assert first == second == sorted(f"allLiquidation.{s}" for s in
                                     ["ROSEUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"])
    assert [e.position_side for e in rec.events] == [Side.SHORT, Side.SHORT]
    assert feed.stats.reconnects == 1


async def test_a_new_listing_is_subscribed_on_the_open_socket() -> None:
    catalog = BybitInstruments({"linear": ["BTCUSDT", "ETHUSDT"]})
    rec = Recorder()
    async with asyncio.timeout(5), FakeRest({INFO: catalog}) as rest, FakeExchange(
        responder=bybit_replies()
    ) as fake:
        [feed] = live_feeds(fake, rest, rec, refresh_s=0.05, ping_interval_s=1.0)
        async with running(feed):
            [conn] = await fake.wait_connections(1)
            await wait_until(lambda: len(subscribed(conn.received)) == 1)
            catalog.symbols["linear"].append("NEWUSDT")
            await wait_until(lambda: len(subscribed(conn.received)) == 2)
            await asyncio.sleep(0.15)  # more refreshes: nothing new, nothing resent
            assert subscribed(conn.received) == [
                ["allLiquidation.BTCUSDT", "allLiquidation.ETHUSDT"], ["allLiquidation.NEWUSDT"]]
    assert (len(fake.connections), feed.stats.connects) == (1, 1)
    assert feed.table.fetches >= 3


async def test_op_ping_keeps_an_answered_quiet_socket_open() -> None:
    rec = Recorder()
    async with asyncio.timeout(5), FakeRest(
        {INFO: BybitInstruments({"linear": ["BTCUSDT"]})}
    ) as rest, FakeExchange(responder=bybit_replies()) as fake:
        [feed] = live_feeds(fake, rest, rec)
        async with running(feed):
            [conn] = await fake.wait_connections(1)
            await wait_until(lambda: pings(conn.received) >= 5)
    ping = next(json.loads(m) for m in conn.received if '"ping"' in m)
    assert ping["op"] == "ping" and ping["req_id"].startswith("ping-")
    assert (feed.stats.connects, feed.stats.parse_errors, len(rec.events)) == (1, 0, 0)


async def test_a_server_that_stops_answering_is_dropped_and_redialled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    async with asyncio.timeout(5), FakeRest(
        {INFO: BybitInstruments({"linear": ["ROSEUSDT"]})}
    ) as rest, FakeExchange([SAMPLE], responder=bybit_replies()) as fake:
        # First socket: TCP and protocol pings fine, but no pong, no ack, no data.
        fake.plan(Plan(after=0, respond=False), Plan(wait_for=1))
        [feed] = live_feeds(fake, rest, rec)
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 1)
        assert pings(fake.connections[0].received) == 1
    assert feed.stats.reconnects == 1
    assert "keepalive failed (TimeoutError: linear: no pong or data 0.1s after a ping)" in \
        caplog.text


async def test_a_rejected_topic_is_logged_and_the_rest_still_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    async with asyncio.timeout(5), FakeRest(
        {INFO: BybitInstruments({"linear": ["GONEUSDT", "ROSEUSDT"]})}
    ) as rest, FakeExchange([SAMPLE], responder=bybit_replies(
        reject=["allLiquidation.GONEUSDT"])) as fake:
        fake.plan(Plan(wait_for=2))
        [feed] = live_feeds(fake, rest, rec, batch_size=1)
        async with running(feed):
            await wait_until(lambda: len(rec.events) == 1)
    assert "subscribe rejected: error:handler not found,topic:allLiquidation.GONEUSDT" in \
        caplog.text


async def test_when_rest_is_down_the_cached_symbols_are_subscribed(tmp_path: Path) -> None:
    db = str(tmp_path / "b.db")
    save_instruments(Store(db), "bybit:linear", {"CACHEDUSDT": {}}, now_ms=1)
    rec = Recorder()
    async with asyncio.timeout(5), FakeRest() as rest, FakeExchange(
        responder=bybit_replies()
    ) as fake:
        rest.fail(INFO, 502)
        [feed] = live_feeds(fake, rest, rec, store_path=db)
        async with running(feed):
            [conn] = await fake.wait_connections(1)
            await wait_until(lambda: subscribed(conn.received) == [["allLiquidation.CACHEDUSDT"]])
    assert feed.table.source == "cache"


async def test_with_no_rest_and_no_cache_the_majors_are_subscribed() -> None:
    rec = Recorder()
    async with asyncio.timeout(5), FakeRest() as rest, FakeExchange(
        responder=bybit_replies()
    ) as fake:
        rest.fail(INFO, 502)
        [feed] = live_feeds(fake, rest, rec, batch_size=10)
        async with running(feed):
            [conn] = await fake.wait_connections(1)
            await wait_until(lambda: len(subscribed(conn.received)) == 1)
    assert sorted(subscribed(conn.received)[0]) == sorted(
        f"allLiquidation.{s}" for s in bybit.FALLBACK_SYMBOLS["linear"])
