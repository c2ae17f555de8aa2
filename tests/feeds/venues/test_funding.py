"""Funding and OI parsers against the shared fixtures (README "funding / OI" table) and junk."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.model import Funding, OpenInterest, ParseError
from feeds.net.http import decode_json
from feeds.venues import funding as fp
from tests.helpers.fake_http import fixture_text

pytestmark = pytest.mark.playback
D = Decimal


def load(name: str) -> Any:
    """A fixture decoded the way JsonClient decodes bodies (JSON numbers as Decimal)."""
    return decode_json(fixture_text(name))


# -- Binance ------------------------------------------------------------------------------


def test_binance_history_matches_readme_and_derives_8h_from_spacing() -> None:
    rows = fp.parse_binance_funding_history(load("binance_funding_history.json"))
    assert rows == [
        Funding("binance", "BTCUSDT", 1570608000000, D("-0.03750000"), 8.0),
        Funding("binance", "BTCUSDT", 1570636800000, D("0.00010000"), 8.0),
    ]
    assert rows[0].rate_8h == pytest.approx(-0.0375)


def test_binance_history_uses_funding_info_interval_over_spacing() -> None:
    rows = fp.parse_binance_funding_history(load("binance_funding_history.json"),
                                            {"BTCUSDT": 4.0})
    assert {r.interval_h for r in rows} == {4.0}
    assert rows[1].rate_8h == pytest.approx(0.0002)  # 4 h rate x 2


def test_binance_history_derives_4h_when_symbol_is_not_in_funding_info() -> None:
    raw = [{"symbol": "XUSDT", "fundingRate": "0.0001", "fundingTime": 1700000000000 + i * d}
           for i, d in enumerate((0, 4 * 3_600_000 + 3, 8 * 3_600_000))]  # ms jitter included
    assert {r.interval_h for r in fp.parse_binance_funding_history(raw, {"BTCUSDT": 8.0})} == {
        4.0}


def test_binance_single_row_without_info_falls_back_to_8h() -> None:
    raw = [{"symbol": "XUSDT", "fundingRate": "0.0001", "fundingTime": 1700000000000}]
    assert fp.parse_binance_funding_history(raw)[0].interval_h == 8.0


def test_binance_funding_info_maps_symbol_to_hours() -> None:
    raw = [{"symbol": "BLZUSDT", "adjustedFundingRateCap": "0.02500000",
            "adjustedFundingRateFloor": "-0.02500000", "fundingIntervalHours": 4,
            "disclaimer": False}]
    assert fp.parse_binance_funding_info(raw) == {"BLZUSDT": 4.0}
    with pytest.raises(ParseError):
        fp.parse_binance_funding_info([{"symbol": "X", "fundingIntervalHours": 0}])


def test_binance_premium_index_matches_readme() -> None:
    [p] = fp.parse_binance_premium_index(load("binance_premium_index.json"))
    assert p.funding == Funding("binance", "BTCUSDT", 1597370495002, D("0.00038246"), 8.0)
    assert p.mark_price == D("11793.63104562")
    assert p.next_funding_ms == 1597392000000


def test_binance_premium_index_array_skips_delivery_and_applies_4h() -> None:
    perp = load("binance_premium_index.json")
    delivery = {**perp, "symbol": "BTCUSDT_250926", "lastFundingRate": "", "nextFundingTime": 0}
    [p] = fp.parse_binance_premium_index([perp, delivery], {"BTCUSDT": 4.0})
    assert p.funding.interval_h == 4.0
    assert p.funding.rate_8h == pytest.approx(2 * 0.00038246)


def test_binance_open_interest_is_base_coin_and_usd_needs_mark() -> None:
    raw = load("binance_open_interest.json")
    assert fp.parse_binance_open_interest(raw) == OpenInterest(
        "binance", "BTCUSDT", 1589437530011, D("10659.509"), None)
    oi = fp.parse_binance_open_interest(raw, D("11793.63104562"))
    assert oi.oi_usd == D("10659.509") * D("11793.63104562")


# -- Bybit --------------------------------------------------------------------------------


def test_bybit_history_matches_readme_oldest_first() -> None:
    rows = fp.parse_bybit_funding_history(load("bybit_funding_history.json"))
    assert [(r.symbol, r.ts_ms, r.rate) for r in rows] == [
        ("BTCPERP", 1671926400000, D("0.0001")), ("BTCPERP", 1671955200000, D("0.0001"))]
    assert {r.interval_h for r in rows} == {8.0}  # 28 800 000 ms apart


def test_bybit_history_prefers_instruments_interval() -> None:
    rows = fp.parse_bybit_funding_history(load("bybit_funding_history.json"), interval_min=240)
    assert {r.interval_h for r in rows} == {4.0}


def test_bybit_rejects_non_zero_ret_code_and_bool() -> None:
    raw = load("bybit_funding_history.json")
    for code in (10001, False, "1"):
        with pytest.raises(ParseError, match="retCode"):
            fp.parse_bybit_funding_history({**raw, "retCode": code})


BYBIT_TICKERS = {  # synthetic, shaped per PROTOCOLS.md §3 (no recorded tickers fixture)
    "retCode": 0, "retMsg": "OK", "time": 1739502303204,
    "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "fundingRate": "-0.00012", "nextFundingTime": "1739520000000",
         "markPrice": "96000.5", "openInterest": "55000.1", "openInterestValue": "5280037.5"},
        {"symbol": "BTCUSDT-28MAR25", "fundingRate": "", "markPrice": "97000",
         "openInterest": "10", "openInterestValue": "970000"}]},
}


def test_bybit_tickers_linear_funding_and_oi() -> None:
    funding, oi = fp.parse_bybit_tickers(BYBIT_TICKERS, intervals={"BTCUSDT": 4.0})
    assert funding == [Funding("bybit", "BTCUSDT", 1739502303204, D("-0.00012"), 4.0)]
    assert oi[0] == OpenInterest("bybit", "BTCUSDT", 1739502303204, D("55000.1"), D("5280037.5"))
    assert len(oi) == 2  # the dated future has OI but no funding


def test_bybit_tickers_inverse_swaps_units() -> None:
    raw = copy.deepcopy(BYBIT_TICKERS)
    raw["result"]["category"] = "inverse"
    _, oi = fp.parse_bybit_tickers(raw)
    assert (oi[0].oi_base, oi[0].oi_usd) == (D("5280037.5"), D("55000.1"))


def test_bybit_instruments_minutes_to_hours() -> None:
    raw = {"retCode": 0, "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "fundingInterval": 480}, {"symbol": "XUSDT", "fundingInterval": 60},
        {"symbol": "BTC-28MAR25", "fundingInterval": 0}]}}
    assert fp.parse_bybit_instruments(raw) == {"BTCUSDT": 8.0, "XUSDT": 1.0}


# -- OKX ----------------------------------------------------------------------------------


def test_okx_funding_rate_interval_from_next_minus_current() -> None:
    [f] = fp.parse_okx_funding_rate(load("okx_funding_rate.json"))
    assert f == Funding("okx", "BTC-USDT-SWAP", 1743588686291, D("0.0000182221218054"), 8.0)


def test_okx_funding_rate_4h_and_bad_interval() -> None:
    raw = load("okx_funding_rate.json")
    row = raw["data"][0]
    four = {**raw, "data": [{**row, "nextFundingTime": str(1743609600000 + 4 * 3_600_000)}]}
    assert fp.parse_okx_funding_rate(four)[0].rate_8h == pytest.approx(2 * 0.0000182221218054)
    backwards = {**raw, "data": [{**row, "nextFundingTime": row["fundingTime"]}]}
    with pytest.raises(ParseError, match="interval"):
        fp.parse_okx_funding_rate(backwards)
    with pytest.raises(ParseError, match="code"):
        fp.parse_okx_funding_rate({**raw, "code": "51001"})


def test_okx_open_interest_matches_readme() -> None:
    assert fp.parse_okx_open_interest(load("okx_open_interest.json")) == [
        OpenInterest("okx", "BTC-USDT-SWAP", 1597026383085, D("555.55"), D("50000"))]


# -- Deribit ------------------------------------------------------------------------------


def test_deribit_history_is_hourly_interest_1h() -> None:
    rows = fp.parse_deribit_funding_history(load("deribit_funding_history.json"))
    assert [(r.ts_ms, r.rate, r.interval_h) for r in rows] == [
        (1569891600000, D("-4.739622041017375E-7"), 1.0),
        (1569895200000, D("-2.8583510923267753E-7"), 1.0)]
    assert rows[0].rate_8h == pytest.approx(8 * -4.739622041017375e-7)
    assert rows[1].ts_ms - rows[0].ts_ms == 3_600_000


def test_deribit_use_8h_reproduces_interest_8h_exactly() -> None:
    rows = fp.parse_deribit_funding_history(load("deribit_funding_history.json"), use_8h=True)
    assert [r.rate_8h for r in rows] == [-0.00009234260068476106, -0.00006720918180255509]


def test_deribit_float_and_decimal_decoding_agree() -> None:
    as_float = json.loads(fixture_text("deribit_funding_history.json"))
    assert fp.parse_deribit_funding_history(as_float) == fp.parse_deribit_funding_history(
        load("deribit_funding_history.json"))


def test_deribit_rpc_error_is_a_parse_error() -> None:
    error = {"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params"}}
    with pytest.raises(ParseError, match="Invalid params"):
        fp.parse_deribit_funding_history(error)


DERIBIT_TICKER = {"jsonrpc": "2.0", "result": {  # synthetic, per PROTOCOLS.md §6 field names
    "instrument_name": "BTC-PERPETUAL", "timestamp": 1739502303204,
    "open_interest": 960000000, "mark_price": 96000, "funding_8h": 0.00001}}


def test_deribit_ticker_inverse_oi_is_usd_linear_is_coin() -> None:
    oi = fp.parse_deribit_ticker(DERIBIT_TICKER)
    assert (oi.oi_usd, oi.oi_base) == (D(960000000), D(10000))
    linear = {"result": {**DERIBIT_TICKER["result"], "instrument_name": "BTC_USDC-PERPETUAL",
                         "open_interest": 2}}
    oi = fp.parse_deribit_ticker(linear)
    assert (oi.oi_base, oi.oi_usd) == (D(2), D(192000))


# -- Hyperliquid --------------------------------------------------------------------------


def test_hyperliquid_matches_readme() -> None:
    funding, oi = fp.parse_hyperliquid_meta_and_ctxs(
        load("hyperliquid_meta_and_asset_ctxs.json"), 1700000000000)
    assert funding == [Funding("hyperliquid", "SOL", 1700000000000, D("0.0000198"), 1.0)]
    assert funding[0].rate_8h == pytest.approx(0.0001584)
    assert oi == [OpenInterest("hyperliquid", "SOL", 1700000000000, D("10764.48"),
                               D("1162994.4192"))]


def test_hyperliquid_filters_coins_and_refuses_misaligned_lists() -> None:
    raw = load("hyperliquid_meta_and_asset_ctxs.json")
    assert fp.parse_hyperliquid_meta_and_ctxs(raw, 1700000000000, ["BTC"]) == ([], [])
    with pytest.raises(ParseError, match="1 coins but 2 contexts"):
        fp.parse_hyperliquid_meta_and_ctxs([raw[0], raw[1] * 2], 1700000000000)


# -- hostile input ------------------------------------------------------------------------

PARSERS: dict[str, tuple[str | Any, Callable[[Any], Any]]] = {
    "binance-history": ("binance_funding_history.json", fp.parse_binance_funding_history),
    "binance-premium": ("binance_premium_index.json", fp.parse_binance_premium_index),
    "binance-oi": ("binance_open_interest.json",
                   lambda raw: fp.parse_binance_open_interest(raw, D("1.5"))),
    "binance-info": ([{"symbol": "BLZUSDT", "fundingIntervalHours": 4}],
                     fp.parse_binance_funding_info),
    "bybit-history": ("bybit_funding_history.json", fp.parse_bybit_funding_history),
    "bybit-tickers": (BYBIT_TICKERS, fp.parse_bybit_tickers),
    "bybit-instruments": ({"retCode": 0, "result": {"list": [
        {"symbol": "BTCUSDT", "fundingInterval": 480}]}}, fp.parse_bybit_instruments),
    "okx-funding": ("okx_funding_rate.json", fp.parse_okx_funding_rate),
    "okx-oi": ("okx_open_interest.json", fp.parse_okx_open_interest),
    "deribit-history": ("deribit_funding_history.json", fp.parse_deribit_funding_history),
    "deribit-ticker": (DERIBIT_TICKER, fp.parse_deribit_ticker),
    "hyperliquid": ("hyperliquid_meta_and_asset_ctxs.json",
                    lambda raw: fp.parse_hyperliquid_meta_and_ctxs(raw, 1700000000000)),
}

LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "0", "-1", "NaN", "Infinity", "1e999", "0x10", "1_000", " 1 ", "1e-999"]),
    # JSON decoded with parse_float=Decimal yields finite Decimals only: a NaN literal
    # goes through parse_constant and arrives as a float, which the floats above cover.
    st.decimals(allow_nan=False, allow_infinity=False),
)
JSONISH = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(obj: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    obj = copy.deepcopy(obj)
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


def _only_parse_errors(parse: Callable[[Any], Any], raw: Any) -> None:
    try:
        parse(raw)
    except ParseError:
        pass


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_payloads_raise_only_parse_error(name: str, data: st.DataObject) -> None:
    sample, parse = PARSERS[name]
    base = load(sample) if isinstance(sample, str) else sample
    path = data.draw(st.sampled_from(_paths(base)), label="path")
    value = data.draw(JSONISH, label="value")
    _only_parse_errors(parse, _mutate(base, path, value, data.draw(st.booleans())))
    _only_parse_errors(parse, data.draw(JSONISH, label="whole"))
