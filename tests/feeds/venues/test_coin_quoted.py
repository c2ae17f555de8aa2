"""A coin-quoted contract is converted to USD, or stored as unpriced: never a coin amount."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.render import render_totals
from feeds.clock import SimClock
from feeds.history.jsonl import load_events_jsonl
from feeds.model import HOUR_MS, MINUTE_MS
from feeds.net.http import JsonClient
from feeds.store import Store
from feeds.venues import binance
from feeds.venues.base import PollContext
from feeds.venues.hyperliquid import parse_meta_and_ctxs
from feeds.venues.reference import REFERENCE
from tests.helpers.fake_rest import FakeRest

TS = 1_767_225_600_000


@pytest.fixture(autouse=True)
def _no_reference() -> Iterator[None]:
    REFERENCE.clear()
    yield
    REFERENCE.clear()


def force_order(symbol: str, qty: str, price: str, ts: int) -> str:
    return json.dumps({"e": "forceOrder", "E": ts, "o": {
        "s": symbol, "S": "SELL", "o": "LIMIT", "f": "IOC", "q": qty, "p": price, "ap": price,
        "X": "FILLED", "l": qty, "z": qty, "T": ts}})


def test_ethbtc_without_a_btc_price_is_unpriced_not_0_345_usd() -> None:
    [e] = binance.parse_message(force_order("ETHBTC", "10", "0.0345", TS), TS)
    assert (e.coin, e.notional_usd, e.priced) == ("ETH", Decimal(0), False)
    assert e.as_short_dict()["unpriced"] is True and e.as_short_dict()["usd"] == 0


def test_ethbtc_is_converted_with_the_btc_price_of_a_usd_quoted_twin() -> None:
    binance.parse_message(force_order("BTCUSDT", "0.01", "90000", TS), TS)
    [e] = binance.parse_message(force_order("ETHBTC", "10", "0.0345", TS + MINUTE_MS), TS)
    assert e.priced and e.notional_usd == Decimal("10") * Decimal("0.0345") * 90000
    # A quarter of an hour later the reference is too old to use.
    [late] = binance.parse_message(force_order("ETHBTC", "10", "0.0345", TS + HOUR_MS), TS)
    assert not late.priced and late.notional_usd == 0


def test_unpriced_events_are_stored_at_zero_and_totals_say_so(tmp_path: Path) -> None:
    events = binance.parse_message(force_order("ETHBTC", "10", "0.0345", TS), TS)
    events += binance.parse_message(force_order("ETHUSDT", "1", "3000", TS + 1), TS)
    path = tmp_path / "decoded.jsonl"  # and through decode output and a replay
    path.write_text("".join(json.dumps(e.as_short_dict()) + "\n" for e in events))
    replayed = load_events_jsonl(path).liquidations
    assert [e.priced for e in replayed] == [False, True]
    store = Store(tmp_path / "u.db")
    try:
        store.insert_liquidations(replayed)
        usd = [r[0] for r in store.database.conn.execute("SELECT usd FROM events ORDER BY ts_ms")]
        assert usd == [0.0, 3000.0]
        t = store.totals(TS + HOUR_MS, HOUR_MS, coin="ETH")
    finally:
        store.close()
    assert (t.total_usd, t.count, t.unpriced, t.as_dict()["unpriced"]) == (3000, 2, 1, 1)
    assert "Not in the sums: 1 coin-quoted events with no USD price known." in render_totals(
        t, HOUR_MS, "ETH")


def test_converted_coin_quoted_events_pass_the_plausibility_gate(tmp_path: Path) -> None:
    # qty x price of ETHBTC is in BTC, so the gate's USD-vs-qty×price test must not apply to
    # it; the same mismatch on a USD-quoted contract is still refused.
    binance.parse_message(force_order("BTCUSDT", "0.01", "90000", TS), TS)
    [priced] = binance.parse_message(force_order("ETHBTC", "10", "0.0345", TS + 1), TS)
    [unpriced] = binance.parse_message(force_order("ETHBTC", "10", "0.0345", TS + HOUR_MS), TS)
    assert (priced.quote, unpriced.quote, priced.priced, unpriced.priced) == (
        "BTC", "BTC", True, False)
    wrong = dataclasses.replace(priced, symbol="ETHUSDT", quote=None)
    store = Store(tmp_path / "g.db")
    try:
        assert store.insert_liquidations([priced, unpriced, wrong]) == 2
        assert store.gate.rejected["usd_vs_qty_price"] == 1
    finally:
        store.close()


# -- mark prices the funding pollers already fetch -------------------------------------------


async def test_a_binance_mark_price_poll_prices_a_btc_quoted_liquidation() -> None:
    premium = {"symbol": "BTCUSDT", "markPrice": "90000", "lastFundingRate": "0.0001",
               "nextFundingTime": TS + HOUR_MS, "time": TS}
    routes = {"/fapi/v1/fundingInfo": [], "/fapi/v1/premiumIndex": premium,
              "/fapi/v1/openInterest": {"openInterest": "10", "symbol": "BTCUSDT", "time": TS}}
    async with FakeRest(routes) as rest, JsonClient(rest.url, name="binance") as http:
        await binance.fetch_funding(PollContext("binance", http, SimClock(TS)), ["BTCUSDT"])
    [e] = binance.parse_message(force_order("ETHBTC", "10", "0.0345", TS + MINUTE_MS), TS)
    assert e.priced and float(e.notional_usd) == pytest.approx(10 * 0.0345 * 90000)


def test_a_hyperliquid_mark_price_is_a_reference_too() -> None:
    raw = [{"universe": [{"name": "BTC"}, {"name": "SOL"}]},
           [{"funding": "0.00001", "openInterest": "1", "markPx": "80000"},
            {"funding": "0.00001", "openInterest": "1", "markPx": "150"}]]
    parse_meta_and_ctxs(raw, TS)
    assert REFERENCE.usd("BTC", TS) == Decimal(80000) and REFERENCE.usd("SOL", TS) is None
