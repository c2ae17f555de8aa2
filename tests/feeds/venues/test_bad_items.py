"""One bad item never costs its neighbours; each is counted and logged once per kind (issue 12)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from feeds.model import ParseError
from feeds.venues import binance, bybit, deribit, okx
from feeds.venues.decode import decoder_for
from feeds.venues.parsing import ITEM_FAULTS
from tests.helpers.cli import run_liqbot

TS = 1_767_225_600_000


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    ITEM_FAULTS.clear()


def okx_push(*items: dict[str, Any]) -> str:
    return json.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                       "data": list(items)})


def okx_item(inst: str, *details: dict[str, Any]) -> dict[str, Any]:
    base = {"bkLoss": "0", "bkPx": "90000", "ccy": "", "sz": "1", "ts": str(TS)}
    return {"instId": inst, "instType": "SWAP", "uly": inst.rsplit("-", 1)[0],
            "details": [{**base, **d} for d in details]}


def deribit_trades(*names: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {
        "channel": "trades.future.BTC.100ms", "data": [
            {"trade_id": str(i), "timestamp": TS, "instrument_name": n, "price": 90000,
             "direction": "sell", "amount": 10, "liquidation": "T"}
            for i, n in enumerate(names)]}})


def test_okx_detail_without_pos_side_or_side_costs_only_itself(
        caplog: pytest.LogCaptureFixture) -> None:
    push = okx_push(okx_item("BTC-USDT-SWAP", {"posSide": "long", "side": "sell"},
                             {"side": ""},  # net mode with an empty side: no position known
                             {"side": "buy"}))  # no posSide, an order side: net mode
    with caplog.at_level(logging.WARNING):
        events = decoder_for("okx")(push)
        events += decoder_for("okx")(push)
    assert [e.position_side.value for e in events] == ["long", "short"] * 2
    assert sum(n for (venue, _), n in ITEM_FAULTS.items() if venue == "okx") == 2
    assert len([r for r in caplog.records if "skipped a liquidation item" in r.message]) == 1


def test_unknown_okx_instrument_beside_known_ones(caplog: pytest.LogCaptureFixture) -> None:
    push = okx_push(okx_item("NOPE-USDT-SWAP", {"posSide": "long"}),
                    okx_item("BTC-USDT-SWAP", {"posSide": "short"}))
    [event] = decoder_for("okx")(push)
    assert event.symbol == "BTC-USDT-SWAP" and event.coin == "BTC"
    [(venue, kind)] = ITEM_FAULTS
    assert venue == "okx" and kind.startswith("unknown instrument, no ctVal")
    # Alone in its push, the unknown instrument is the frame's error, as before.
    with pytest.raises(okx.UnknownInstrument):
        decoder_for("okx")(okx_push(okx_item("NOPE-USDT-SWAP", {"posSide": "long"})))


def test_deribit_option_in_a_batch_with_a_perpetual() -> None:
    events = deribit.parse_message(deribit_trades("BTC-27DEC24-60000-C", "BTC-PERPETUAL",
                                                  "ETH-27DEC24-3000-P"), TS)
    assert [e.symbol for e in events] == ["BTC-PERPETUAL"]
    # Two options, one kind of fault: counted twice, one key.
    assert dict(ITEM_FAULTS) == {
        ("deribit", "options are not supported (premium is quoted in the coin)"): 2}


def test_binance_and_bybit_batches_keep_their_good_items() -> None:
    good = {"e": "forceOrder", "E": TS, "o": {"s": "BTCUSDT", "S": "SELL", "q": "1", "p": "1",
                                              "ap": "1", "z": "1", "T": TS}}
    bad = {"e": "forceOrder", "E": TS, "o": {"s": "BTCUSDT", "S": "HOLD"}}
    assert len(binance.parse_message(json.dumps([bad, good]), TS)) == 1
    frame = {"topic": "allLiquidation.BTCUSDT", "ts": TS, "data": [
        {"T": TS, "s": "BTCUSDT", "S": "Buy", "v": "x", "p": "1"},
        {"T": TS, "s": "BTCUSDT", "S": "Buy", "v": "1", "p": "1"}]}
    assert len(bybit.parse_message(json.dumps(frame), TS)) == 1
    assert {k[0] for k in ITEM_FAULTS} == {"binance", "bybit"}
    with pytest.raises(ParseError):  # nothing good in the frame: the frame is bad
        binance.parse_message(json.dumps([bad, bad]), TS)


def test_okx_decode_skips_a_pong_line() -> None:
    r = run_liqbot("decode", "--exchange", "okx", stdin="pong\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
