"""Deribit liquidation trades: recorded trade, M/T/MT side rule, units, heartbeat, resubscribe."""

from __future__ import annotations

import asyncio
import copy
import json
import math
from decimal import Decimal
from typing import Any

import pytest

from feeds.model import ParseError, Side
from feeds.net.backoff import Backoff
from feeds.net.http import decode_json
from feeds.net.ws import WsFeed
from feeds.venues import deribit
from feeds.venues.base import FeedOptions
from feeds.venues.decode import decoder_for
from feeds.venues.deribit import (
    DEFAULT_CHANNELS,
    DEFAULT_URL,
    deribit_feed,
    make_feeds,
    parse_message,
    parse_trade,
    subscribe_messages,
)
from tests.helpers.fake_http import fixture_text
from tests.helpers.fake_ws import Plan, wait_until
from tests.helpers.fake_ws_venues import (
    FAST,
    DeribitFake,
    Recorder,
    discard,
    fast_backoff,
    running_to_cancel,
)
from tests.helpers.shared import FIXTURES

FIXTURE = FIXTURES / "deribit_trade_liquidation.json"
SAMPLE: dict[str, Any] = json.loads(FIXTURE.read_text())
TRADE: dict[str, Any] = SAMPLE["params"]["data"][0]
RECV_MS = 1550736300000


def trade(**fields: Any) -> dict[str, Any]:
    """The recorded trade with some fields replaced (None deletes the field)."""
    out = copy.deepcopy(TRADE)
    for key, value in fields.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def push(*trades: dict[str, Any], channel: str = "trades.future.BTC.100ms") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "subscription",
            "params": {"channel": channel, "data": list(trades)}}


def sides(**fields: Any) -> list[str]:
    return [e.position_side.value for e in parse_trade(trade(**fields), RECV_MS)]


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.playback
def test_recorded_trade_normalizes_to_documented_values() -> None:
    [liq] = parse_message(FIXTURE.read_text(), RECV_MS)
    assert (liq.exchange, liq.symbol, liq.position_side) == ("deribit", "BTC-PERPETUAL", Side.LONG)
    assert (liq.notional_usd, liq.price) == (Decimal(10), Decimal("3948.69"))
    assert math.isclose(liq.qty_base, Decimal("0.0025324854572"), rel_tol=1e-9)
    assert liq.qty_base == Decimal(10) / Decimal("3948.69")
    assert (liq.ts_exchange_ms, liq.ts_recv_ms, liq.sampled) == (1550736299753, RECV_MS, False)
    assert liq.raw == TRADE


@pytest.mark.parametrize(("who", "direction", "expected"), [
    ("T", "sell", ["long"]),   # the taker sold: its long was closed out
    ("T", "buy", ["short"]),
    ("M", "sell", ["short"]),  # the maker bought from a selling taker: its short was closed
    ("M", "buy", ["long"]),
    ("MT", "sell", ["long", "short"]),
    ("MT", "buy", ["short", "long"]),
])
def test_side_combines_who_was_liquidated_with_the_taker_direction(
    who: str, direction: str, expected: list[str]
) -> None:
    assert sides(liquidation=who, direction=direction) == expected


def test_both_sides_liquidated_gives_two_events_of_the_full_amount() -> None:
    events = parse_trade(trade(liquidation="MT"), RECV_MS)
    assert [(e.position_side, e.notional_usd) for e in events] == [
        (Side.LONG, Decimal(10)), (Side.SHORT, Decimal(10))]
    assert events[0].event_key() != events[1].event_key()


def test_linear_usdc_amount_is_base_coin() -> None:
    [liq] = parse_trade(trade(instrument_name="BTC_USDC-PERPETUAL", amount="0.5",
                              price="60000.5"), RECV_MS)
    assert (liq.qty_base, liq.notional_usd) == (Decimal("0.5"), Decimal("30000.25"))


def test_inverse_futures_amount_is_usd() -> None:
    [liq] = parse_trade(trade(instrument_name="ETH-27DEC24", amount=300, price=3000), RECV_MS)
    assert (liq.notional_usd, liq.qty_base) == (Decimal(300), Decimal("0.1"))


def test_trades_without_liquidation_are_skipped() -> None:
    events = parse_message(json.dumps(push(trade(liquidation=None), trade(), trade(
        liquidation=None, amount="garbage"))), RECV_MS)
    assert len(events) == 1


@pytest.mark.parametrize("message", [
    {"jsonrpc": "2.0", "id": 2, "result": ["trades.future.BTC.100ms"], "usIn": 1},
    {"jsonrpc": "2.0", "id": 1, "result": "ok"},
    {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "heartbeat"}},
    {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}},
    {"jsonrpc": "2.0", "method": "subscription",
     "params": {"channel": "ticker.BTC-PERPETUAL.100ms", "data": {"mark_price": 1}}},
    {"jsonrpc": "2.0", "method": "subscription",
     "params": {"channel": "trades.future.BTC.100ms", "data": []}},
    {"jsonrpc": "2.0", "method": "announcements", "params": {"data": {}}},
])
def test_results_heartbeats_and_other_channels_yield_nothing(message: Any) -> None:
    assert parse_message(json.dumps(message), RECV_MS) == []


def test_only_test_requests_are_reported() -> None:
    seen: list[int] = []
    for kind in ("heartbeat", "test_request", "test_request"):
        parse_message(json.dumps({"jsonrpc": "2.0", "method": "heartbeat",
                                  "params": {"type": kind}}), RECV_MS, lambda: seen.append(1))
    assert len(seen) == 2


@pytest.mark.parametrize(("message", "reason"), [
    ("not json", "not JSON"),
    ("[1]", "expected an object, got list"),
    ('{"jsonrpc": "2.0"}', "missing key 'method'"),
    ('{"id": 2, "error": {"code": 11050, "message": "bad_request"}}', "error reply: .*11050"),
    ('{"method": "subscription"}', "missing key 'params'"),
    ('{"method": "subscription", "params": {"data": []}}', "missing key 'channel'"),
    ('{"method": "heartbeat", "params": {}}', "missing key 'type'"),
    (push(), None),
    (json.dumps({"method": "subscription", "params": {"channel": "trades.x", "data": {}}}),
     "params.data: expected a list"),
    (push(42), "expected an object, got int"),  # type: ignore[arg-type]
    (push(trade(liquidation="X")), "liquidation: unknown value"),
    (push(trade(direction="up")), "direction: unknown direction"),
    (push(trade(direction=["sell"])), "direction: unknown direction"),
    (push(trade(instrument_name=None)), "missing key 'instrument_name'"),
    (push(trade(price=-1)), "price: must be positive"),
    (push(trade(amount="NaN")), "amount: not finite"),
    (push(trade(timestamp=1550736299)), "timestamp: timestamp out of range"),
    (push(trade(instrument_name="BTC-27DEC24-60000-C")), "options are not supported"),
    (push(trade(amount="1e18", price="1e-999999")), "out of range"),
])
def test_malformed_frames_raise_parse_error_naming_the_field(
    message: Any, reason: str | None
) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    if reason is None:
        assert parse_message(text, RECV_MS) == []
        return
    with pytest.raises(ParseError, match=reason):
        parse_message(text, RECV_MS)


def test_decoder_needs_no_instruments() -> None:
    [liq] = decoder_for("deribit", None)(FIXTURE.read_text())
    assert liq.ts_ms == 1550736299753


def test_make_feeds_sends_heartbeat_then_subscribe() -> None:
    [feed] = make_feeds(discard, FeedOptions())
    assert (feed.exchange, feed.url) == ("deribit", DEFAULT_URL)
    heartbeat, subscribe = (json.loads(m) for m in feed.subscribe)
    assert heartbeat == {"jsonrpc": "2.0", "id": 1, "method": "public/set_heartbeat",
                         "params": {"interval": 30}}
    assert subscribe["method"] == "public/subscribe"
    assert subscribe["params"]["channels"] == list(DEFAULT_CHANNELS) == [
        "trades.future.BTC.100ms", "trades.future.ETH.100ms"]
    with pytest.raises(ValueError, match="at least one"):
        subscribe_messages([], 30)


# -- the feed against a fake Deribit ---------------------------------------------------------

CHANNELS = ["trades.BTC-PERPETUAL.100ms"]


def fast_feed(fake: DeribitFake, rec: Recorder, **kwargs: Any) -> WsFeed:
    kwargs.setdefault("stale_after_s", 0.5)
    return deribit_feed(rec.sink, url=fake.url, channels=CHANNELS, heartbeat_s=10, timing=FAST,
                        backoff=fast_backoff(), **kwargs)


def requests(conn: Any) -> list[tuple[str, Any]]:
    return [(m["method"], m.get("params")) for m in map(json.loads, conn.received)]


async def test_answered_test_requests_keep_the_connection() -> None:
    rec = Recorder()
    async with asyncio.timeout(5), DeribitFake([push(trade())], test_every_s=0.03,
                                               answer_within_s=0.1) as fake:
        fake.plan(Plan(wait_for=2))
        feed = fast_feed(fake, rec)
        async with running_to_cancel(feed):
            await wait_until(lambda: fake.tests_answered[0] >= 10, within_s=2)
            [conn] = fake.open_connections()
    assert requests(conn)[:2] == [("public/set_heartbeat", {"interval": 10}),
                                  ("public/subscribe", {"channels": CHANNELS})]
    assert {m for m, _ in requests(conn)[2:]} == {"public/test"}
    assert fake.enforced == [] and feed.stats.connects == 1 and len(rec.events) == 1
    assert feed.stats.parse_errors == 0  # the RPC results were all understood


async def test_the_fake_does_close_a_client_that_ignores_test_requests() -> None:
    # The rig's rule, shown on a client without the heartbeat answerer.
    rec = Recorder()
    async with asyncio.timeout(5), DeribitFake(test_every_s=0.03, answer_within_s=0.05) as fake:
        feed = WsFeed("deribit", fake.url, parse_message, rec.sink,
                      subscribe=subscribe_messages(CHANNELS, 10), timing=FAST,
                      backoff=Backoff(base_s=0.01, cap_s=0.04))
        async with running_to_cancel(feed):
            await wait_until(lambda: len(fake.enforced) >= 2)
    assert fake.enforced[:2] == [(0, "no public/test answer"), (1, "no public/test answer")]
    assert feed.stats.reconnects >= 1


async def test_every_connection_resubscribes_after_a_drop() -> None:
    rec = Recorder()
    frames = [push(trade(trade_id="1")), push(trade(trade_id="2", timestamp=1550736299999))]
    async with asyncio.timeout(5), DeribitFake(frames, test_every_s=0.05) as fake:
        fake.plan(Plan(after=1, then="drop", wait_for=2), Plan(wait_for=2))
        feed = fast_feed(fake, rec)
        async with running_to_cancel(feed):
            await wait_until(lambda: len(rec.events) == 2)
    assert [e.raw["trade_id"] for e in rec.events] == ["1", "2"]
    first, second = (requests(c)[:2] for c in fake.connections[:2])
    assert first == second == [("public/set_heartbeat", {"interval": 10}),
                               ("public/subscribe", {"channels": CHANNELS})]
    assert feed.stats.reconnects == 1


async def test_a_silent_server_is_abandoned_after_stale_after_s(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    # test_every_s far beyond the test: the server never sends a heartbeat.
    async with asyncio.timeout(5), DeribitFake([push(trade())], test_every_s=60) as fake:
        fake.plan(Plan(after=0))
        feed = fast_feed(fake, rec, stale_after_s=0.15)
        async with running_to_cancel(feed):
            await wait_until(lambda: len(rec.events) == 1)
    assert feed.stats.reconnects == 1 and fake.enforced == []
    assert any("keepalive failed (TimeoutError: no frame for 0.15s" in r.getMessage()
               for r in caplog.records)


# -- funding and open interest (REST) -----------------------------------------------

D = Decimal

def load(name: str) -> Any:
    """A fixture decoded the way JsonClient decodes bodies (JSON numbers as Decimal)."""
    return decode_json(fixture_text(name))


def test_deribit_history_is_hourly_interest_1h() -> None:
    rows = deribit.parse_funding_history(load("deribit_funding_history.json"))
    assert [(r.ts_ms, r.rate, r.interval_h) for r in rows] == [
        (1569891600000, D("-4.739622041017375E-7"), 1.0),
        (1569895200000, D("-2.8583510923267753E-7"), 1.0)]
    assert rows[0].rate_8h == pytest.approx(8 * -4.739622041017375e-7)
    assert rows[1].ts_ms - rows[0].ts_ms == 3_600_000


def test_deribit_use_8h_reproduces_interest_8h_exactly() -> None:
    rows = deribit.parse_funding_history(load("deribit_funding_history.json"), use_8h=True)
    assert [r.rate_8h for r in rows] == [-0.00009234260068476106, -0.00006720918180255509]


def test_deribit_float_and_decimal_decoding_agree() -> None:
    as_float = json.loads(fixture_text("deribit_funding_history.json"))
    assert deribit.parse_funding_history(as_float) == deribit.parse_funding_history(
        load("deribit_funding_history.json"))


def test_deribit_rpc_error_is_a_parse_error() -> None:
    error = {"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params"}}
    with pytest.raises(ParseError, match="Invalid params"):
        deribit.parse_funding_history(error)


DERIBIT_TICKER = {"jsonrpc": "2.0", "result": {  # synthetic, per PROTOCOLS.md §6 field names
    "instrument_name": "BTC-PERPETUAL", "timestamp": 1739502303204,
    "open_interest": 960000000, "mark_price": 96000, "funding_8h": 0.00001}}


def test_deribit_ticker_inverse_oi_is_usd_linear_is_coin() -> None:
    oi = deribit.parse_ticker(DERIBIT_TICKER)
    assert (oi.oi_usd, oi.oi_base) == (D(960000000), D(10000))
    linear = {"result": {**DERIBIT_TICKER["result"], "instrument_name": "BTC_USDC-PERPETUAL",
                         "open_interest": 2}}
    oi = deribit.parse_ticker(linear)
    assert (oi.oi_base, oi.oi_usd) == (D(2), D(192000))
