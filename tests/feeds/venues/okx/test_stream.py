"""OKX v5 liquidation-orders: ctVal sizing, posSide/net sides, text ping, the 30 s idle rule."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from feeds.model import Liquidation, ParseError, Side
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming
from feeds.store import Store
from feeds.venues import okx
from feeds.venues.base import FeedOptions
from feeds.venues.decode import decoder_for
from feeds.venues.okx import ContractSpec, load_okx_instruments
from tests.helpers.fake_rest import FakeRest, okx_instruments
from tests.helpers.fake_ws import FakeExchange, Plan, okx_replies, running, wait_until
from tests.helpers.fake_ws_venues import discard
from tests.helpers.history_files import write_instruments
from tests.helpers.shared import FIXTURES

FIXTURE = FIXTURES / "okx_liquidation_orders.json"
SAMPLE: dict[str, Any] = json.loads(FIXTURE.read_text())
RECV_MS = 1692266435000
INFO = okx.INSTRUMENTS_PATH
SNAPSHOT = load_okx_instruments()
IOST = "IOST-USDT-SWAP"


def spec(inst_id: str, ct_val: str, ccy: str | None = None,
         ct_type: str = "linear") -> ContractSpec:
    return ContractSpec(inst_id, Decimal(ct_val), ccy or inst_id.split("-")[0], ct_type)


SPECS = {
    IOST: spec(IOST, "10"),
    "BTC-USDT-SWAP": spec("BTC-USDT-SWAP", "0.01"),
    "BTC-USD-SWAP": spec("BTC-USD-SWAP", "100", "USD", "inverse"),
}


def make_push(*details: dict[str, Any], inst_id: str = IOST) -> dict[str, Any]:
    """The recorded push for one instrument with these details (fields override the recorded)."""
    push = copy.deepcopy(SAMPLE)
    item = push["data"][0]
    item["instId"] = inst_id
    item["details"] = [{**SAMPLE["data"][0]["details"][0], **d} for d in details] or item["details"]
    return push


def parse(frame: Any, specs: dict[str, ContractSpec] = SPECS, **kw: Any) -> list[Liquidation]:
    text = frame if isinstance(frame, (str, bytes)) else json.dumps(frame)
    return okx.parse_message(text, RECV_MS, specs, **kw)


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.playback
def test_recorded_payload_uses_the_injected_ct_val() -> None:
    assert IOST not in SNAPSHOT  # so the value below can only come from the injected table
    [liq] = parse(FIXTURE.read_text())
    assert (liq.exchange, liq.symbol, liq.position_side) == ("okx", IOST, Side.SHORT)
    assert liq.qty_base == 13 * Decimal(10)  # 13 contracts x ctVal 10 IOST
    assert liq.notional_usd == Decimal("0.101803") * 10  # 13 x ctVal x bkPx 0.007831
    assert (liq.price, liq.ts_exchange_ms, liq.ts_recv_ms) == (Decimal("0.007831"),
                                                               1692266434010, RECV_MS)
    assert liq.sampled is True and liq.raw["instId"] == IOST
    assert liq.raw["details"] == SAMPLE["data"][0]["details"]


def test_an_injected_ct_val_beats_the_shipped_snapshot() -> None:
    assert SNAPSHOT["BTC-USDT-SWAP"].ct_val == Decimal("0.01")
    push = make_push({"sz": "4", "bkPx": "60000"}, inst_id="BTC-USDT-SWAP")
    [liq] = parse(push, {"BTC-USDT-SWAP": spec("BTC-USDT-SWAP", "0.5")})
    assert (liq.qty_base, liq.notional_usd) == (Decimal(2), Decimal(120000))


@pytest.mark.parametrize(("pos_side", "side", "expected"), [
    ("long", "sell", Side.LONG), ("short", "buy", Side.SHORT),
    ("long", "buy", Side.LONG),  # posSide names the position: the order side is ignored
    ("short", "sell", Side.SHORT),
    ("net", "sell", Side.LONG),  # net: the liquidation ORDER sold, so a long was closed
    ("net", "buy", Side.SHORT),
])
def test_side_rule(pos_side: str, side: str, expected: Side) -> None:
    [liq] = parse(make_push({"posSide": pos_side, "side": side}))
    assert liq.position_side is expected


@pytest.mark.parametrize(("detail", "reason"), [
    ({"posSide": "both"}, "unknown posSide 'both'"),
    ({"posSide": "net", "side": "hold"}, "net position with unknown side 'hold'"),
    # No posSide reads as net mode; with no order side either, the detail cannot be counted.
    ({"posSide": None, "side": ""}, "net position with unknown side ''"),
])
def test_unknown_sides_are_parse_errors(detail: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(make_push(detail))


def test_every_item_and_every_detail_becomes_an_event() -> None:
    push = make_push({"sz": "1", "posSide": "long"}, {"sz": "2", "posSide": "short"})
    btc = make_push({"sz": "3", "bkPx": "50000"}, {"sz": "4", "bkPx": "50000"},
                    inst_id="BTC-USDT-SWAP")
    push["data"].append(btc["data"][0])
    events = parse(push)
    assert [(e.symbol, e.position_side, e.qty_base) for e in events] == [
        (IOST, Side.LONG, Decimal(10)), (IOST, Side.SHORT, Decimal(20)),
        ("BTC-USDT-SWAP", Side.SHORT, Decimal("0.03")),
        ("BTC-USDT-SWAP", Side.SHORT, Decimal("0.04"))]


def test_inverse_contracts_are_usd_and_base_is_usd_over_price() -> None:
    push = make_push({"sz": "3", "bkPx": "50000"}, inst_id="BTC-USD-SWAP")
    [liq] = parse(push)
    assert (liq.notional_usd, liq.qty_base) == (Decimal(300), Decimal("0.006"))


@pytest.mark.parametrize("frame", [
    "pong", b"pong",
    {"event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
     "connId": "a4d3ae55"},
    {"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [{"last": "1"}]},
    make_push() | {"data": []},
])
def test_pongs_acks_and_other_channels_yield_nothing(frame: Any) -> None:
    assert parse(frame) == []


def test_error_events_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert parse({"event": "error", "code": "60018", "msg": "Wrong URL or channel"}) == []
    assert "okx: error 60018: Wrong URL or channel" in caplog.text


@pytest.mark.parametrize(("frame", "reason"), [
    ("ping", "not JSON"),
    ({"data": []}, "missing key 'arg'"),
    (make_push() | {"data": {}}, "'data' must be a list"),
    (make_push({"ts": "yesterday"}), "IOST-USDT-SWAP.ts: not a timestamp"),
    (make_push({"sz": "-1"}), "IOST-USDT-SWAP.sz: must be positive"),
    (make_push({"bkPx": "NaN"}), "IOST-USDT-SWAP.bkPx: not finite"),
])
def test_malformed_pushes_raise_parse_error(frame: Any, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(frame)


def test_an_unknown_instrument_is_a_parse_error_naming_it() -> None:
    with pytest.raises(okx.UnknownInstrument, match="NEW-USDT-SWAP: unknown instrument") as e:
        parse(make_push(inst_id="NEW-USDT-SWAP"))
    assert e.value.inst_id == "NEW-USDT-SWAP"


def test_with_on_unknown_the_known_instruments_still_count() -> None:
    push = make_push(inst_id="NEW-USDT-SWAP")
    push["data"] += make_push()["data"]
    unknown: list[str] = []
    events = parse(push, on_unknown=lambda exc: unknown.append(exc.inst_id))
    assert ([e.symbol for e in events], unknown) == ([IOST], ["NEW-USDT-SWAP"])


def test_resent_events_are_kept_by_the_parser_and_stored_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "o.db")
    first, again = parse(FIXTURE.read_text()), parse(FIXTURE.read_text())
    assert first == again and len(first) == 1
    assert store.insert_liquidations(first) == 1 and store.insert_liquidations(again) == 0


def test_decoder_reads_an_instruments_file_over_the_snapshot(tmp_path: Path) -> None:
    inst = write_instruments(tmp_path / "i.json", {IOST: "10"})
    [liq] = decoder_for("okx", str(inst))(FIXTURE.read_text())
    assert (liq.qty_base, liq.notional_usd) == (Decimal(130), Decimal("1.01803"))
    btc = json.dumps(make_push({"sz": "1", "bkPx": "50000"}, inst_id="BTC-USDT-SWAP"))
    assert decoder_for("okx")(btc)[0].notional_usd == Decimal(500)  # snapshot ctVal 0.01


def test_instrument_rows_skip_unusable_rows_and_reject_error_envelopes() -> None:
    good = {"instId": "A-USDT-SWAP", "ctVal": "1", "ctValCcy": "A", "ctType": "linear"}
    rows = okx.instrument_rows({"code": "0", "data": [good, {"instId": "B", "ctVal": ""},
                                                      "junk"]}, "t")
    assert list(rows) == ["A-USDT-SWAP"]
    assert okx.contract_specs(rows)["A-USDT-SWAP"].ct_val == 1
    with pytest.raises(ParseError, match="OKX error response, code '50011'"):
        okx.instrument_rows({"code": "50011", "msg": "Too Many Requests", "data": []}, "t")


def test_feed_subscribes_swap_and_futures_on_the_public_url() -> None:
    [feed] = okx.make_feeds(discard, FeedOptions())
    assert feed.url == "wss://ws.okx.com:8443/ws/v5/public"
    assert [json.loads(m) for m in feed.subscribe] == [{"op": "subscribe", "args": [
        {"channel": "liquidation-orders", "instType": "SWAP"},
        {"channel": "liquidation-orders", "instType": "FUTURES"}]}]
    with pytest.raises(ValueError, match="ping_after_s < 30"):
        okx.okx_feed(discard, FeedOptions(), ping_after_s=30)


# -- the live socket ---------------------------------------------------------------------------

IDLE_LIMIT_S = 0.5  # OKX's 30 s, compressed 60x
QUICK = dict(ping_after_s=0.15, pong_timeout_s=0.15)
# Protocol pings slow on purpose: only the text ping may keep the connection open.
SLOW_PROTOCOL_PINGS = FeedTiming(ping_interval_s=10, ping_timeout_s=10, open_timeout_s=1.0,
                                 close_timeout_s=0.2)
CATALOG = okx_instruments({"SWAP": {IOST: ("10", "IOST"), "BTC-USD-SWAP": ("100", "USD")},
                           "FUTURES": {"BTC-USD-250926": ("100", "USD")}})


def live_feed(fake: FakeExchange, rest: FakeRest, sink: Any, *, store_path: str | None = None,
              **kw: Any) -> Any:
    options = FeedOptions(url=fake.url, rest_url=rest.url, store_path=store_path,
                          backoff=Backoff(base_s=0.01, cap_s=0.04, rng=random.Random(3)),
                          timing=SLOW_PROTOCOL_PINGS)
    return okx.okx_feed(sink, options, **{**QUICK, **kw})


def okx_fake(frames: Any = (), **kw: Any) -> FakeExchange:
    return FakeExchange(frames, path="/ws/v5/public", responder=okx_replies,
                        idle_close_s=IDLE_LIMIT_S, **kw)


async def test_a_quiet_client_that_pings_outlives_the_idle_rule() -> None:
    async with asyncio.timeout(5), FakeRest({INFO: CATALOG}) as rest, okx_fake() as fake:
        feed = live_feed(fake, rest, discard)
        async with running(feed):
            [conn] = await fake.wait_connections(1)
            await asyncio.sleep(IDLE_LIMIT_S * 2)  # two idle windows with nothing pushed
            assert conn.open and not conn.idle_closed
    assert conn.received.count("ping") >= 4
    assert json.loads(conn.received[0]) == json.loads(feed.subscribe[0])
    assert (feed.stats.connects, feed.stats.parse_errors) == (1, 0)


async def test_the_fake_really_enforces_the_idle_rule() -> None:
    async with asyncio.timeout(5), FakeRest({INFO: CATALOG}) as rest, okx_fake() as fake:
        feed = live_feed(fake, rest, discard, ping_after_s=25.0)  # never pings in time
        async with running(feed):
            await wait_until(lambda: len(fake.connections) >= 2, within_s=2)
    assert fake.connections[0].idle_closed and "ping" not in fake.connections[0].received


async def test_when_pong_stops_the_client_reconnects_before_okx_would_cut_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with asyncio.timeout(5), FakeRest({INFO: CATALOG}) as rest, okx_fake() as fake:
        fake.plan(Plan(respond=False))
        feed = live_feed(fake, rest, discard)
        async with running(feed):
            await wait_until(lambda: feed.stats.reconnects == 1, within_s=2)
            first = fake.connections[0]
            await wait_until(lambda: first.closed_at is not None)
    assert not first.idle_closed and first.received.count("ping") == 1
    assert first.closed_at - first.opened_at < IDLE_LIMIT_S
    assert "keepalive failed (TimeoutError: no pong or data 0.15s after a ping)" in caplog.text


async def test_events_are_sized_from_rest_and_resends_are_stored_once(tmp_path: Path) -> None:
    db = str(tmp_path / "o.db")
    store = Store(db)
    pushes: list[int] = []

    async def sink(batch: list[Liquidation]) -> None:
        pushes.append(len(batch))
        store.insert_liquidations(batch)

    inverse = make_push({"sz": "3", "bkPx": "50000", "posSide": "net", "side": "sell"},
                        inst_id="BTC-USD-250926")
    async with asyncio.timeout(5), FakeRest({INFO: CATALOG}) as rest, okx_fake(
        [SAMPLE, inverse], resend=True
    ) as fake:
        # OKX replays old events on every connect.
        fake.plan(Plan(then="drop", wait_for=1), Plan(wait_for=1))
        feed = live_feed(fake, rest, sink, store_path=db)
        async with running(feed):
            await wait_until(lambda: sum(pushes) == 4)
    rows = store.database.conn.execute("SELECT symbol, side, qty, usd FROM events ORDER BY symbol")
    assert [tuple(r) for r in rows] == [("BTC-USD-250926", "long", "0.006", 300.0),
                                        (IOST, "short", "130", 1.01803)]
    assert {q["instType"] for q in rest.calls(INFO)} == {"SWAP", "FUTURES"}
    assert feed.table.source == "rest" and feed.stats.reconnects == 1


async def test_without_rest_the_snapshot_sizes_and_unknowns_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[Liquidation] = []

    async def sink(batch: list[Liquidation]) -> None:
        got.extend(batch)

    btc = make_push({"sz": "2", "bkPx": "50000"}, inst_id="BTC-USDT-SWAP")
    btc["data"] += make_push()["data"]  # IOST: not in the snapshot
    async with asyncio.timeout(5), FakeRest() as rest, okx_fake([btc]) as fake:
        rest.fail(INFO, 503)
        feed = live_feed(fake, rest, sink)
        async with running(feed):
            await wait_until(lambda: len(got) == 1)
    assert (got[0].symbol, got[0].notional_usd) == ("BTC-USDT-SWAP", Decimal(1000))
    assert feed.table.source == "fallback" and feed.stats.parse_errors == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("skipping events of IOST-USDT-SWAP: unknown instrument" in w for w in warnings)
