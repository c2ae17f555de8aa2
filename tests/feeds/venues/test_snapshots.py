"""Shipped instrument snapshots: an offline start converts and attributes beyond one contract."""

from __future__ import annotations

import json

import pytest

from feeds.model import ParseError
from feeds.venues import binance, binance_coinm, bitmex
from feeds.venues.decode import decoder_for
from feeds.venues.reference import REFERENCE


def bitmex_insert(symbol: str, qty: int, price: float, order_id: str = "o1") -> str:
    return json.dumps({"table": "liquidation", "action": "insert", "data": [
        {"orderID": order_id, "symbol": symbol, "side": "Sell", "price": price,
         "leavesQty": qty}]})


def coinm_order(symbol: str, pair: str, contracts: str, price: str) -> str:
    return json.dumps({"e": "forceOrder", "E": 1_767_225_600_000, "o": {
        "s": symbol, "ps": pair, "S": "BUY", "o": "LIMIT", "f": "IOC", "q": contracts,
        "p": price, "ap": price, "X": "FILLED", "l": contracts, "z": contracts,
        "T": 1_767_225_600_000}})


@pytest.mark.parametrize(("symbol", "qty", "price", "coin", "base_qty", "usd"), [
    ("XBTUSD", 1000, 90000, "BTC", 1000 / 90000, 1000),      # inverse, 1 USD a contract
    ("XBTZ21", 1000, 50000, "BTC", 0.02, 1000),               # a dated inverse future
    ("XBTUSDT", 100, 90000, "BTC", 0.0001, 9),                # linear: 1e6 contracts per coin
    ("ETHUSDT", 1000, 3000, "ETH", 0.01, 30),                 # linear: 1e5 contracts per coin
])
def test_bitmex_offline_start_converts_the_snapshot_contracts(
    symbol: str, qty: int, price: float, coin: str, base_qty: float, usd: float
) -> None:
    [event] = decoder_for("bitmex")(bitmex_insert(symbol, qty, price))
    assert event.base == coin
    assert float(event.qty_base) == pytest.approx(base_qty)
    assert float(event.notional_usd) == pytest.approx(usd)


def test_bitmex_a_file_row_wins_over_the_snapshot(tmp_path) -> None:
    path = tmp_path / "instruments.json"
    path.write_text(json.dumps([{
        "symbol": "XBTUSDT", "rootSymbol": "XBT", "quoteCurrency": "USDT",
        "settlCurrency": "USDt", "isInverse": False, "isQuanto": False, "multiplier": 1,
        "underlyingToPositionMultiplier": 100}]))
    [event] = bitmex.decoder(str(path))(bitmex_insert("XBTUSDT", 100, 90000))
    assert float(event.qty_base) == 1


def test_bitmex_quanto_contracts_need_a_btc_price_never_a_guess() -> None:
    REFERENCE.clear()
    decode = decoder_for("bitmex")
    with pytest.raises(ParseError, match="SOLUSDT: quanto, no recent BTC price"):
        decode(bitmex_insert("SOLUSDT", 1000, 150))
    decode(bitmex_insert("XBTUSD", 100, 80000, "o2"))  # notes the BTC price
    [event] = decode(bitmex_insert("SOLUSDT", 1000, 150, "o3"))
    # SOLUSDT multiplier 1000 satoshi: 1000 × 1000e-8 × 150 = 1.5 XBT, at 80,000 USD
    assert event.base == "SOL" and float(event.notional_usd) == pytest.approx(120_000)
    REFERENCE.clear()


@pytest.mark.parametrize(("symbol", "pair", "coin", "size"), [
    ("BTCUSD_PERP", "BTCUSD", "BTC", 100),
    ("ETHUSD_PERP", "ETHUSD", "ETH", 10),
    ("ETHUSD_260327", "ETHUSD", "ETH", 10),   # listed after the snapshot: its pair sizes it
    ("DOTUSD_PERP", "DOTUSD", "DOT", 10),
])
def test_coinm_offline_start_sizes_and_attributes(symbol: str, pair: str, coin: str,
                                                  size: int) -> None:
    [event] = decoder_for("binance-coinm")(coinm_order(symbol, pair, "3", "50"))
    assert (event.base, float(event.notional_usd)) == (coin, 3 * size)


def test_snapshots_say_where_they_come_from() -> None:
    for path in (binance.SNAPSHOT, binance_coinm.SNAPSHOT):
        assert "bmoscon/cryptofeed" in json.loads(path.read_text())["_provenance"]
    assert len(bitmex.load_instruments(bitmex.SNAPSHOT)) > 30
