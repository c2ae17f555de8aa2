"""Every funding / OI REST parser, fed hostile payloads: ParseError is the only way to fail."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.model import ParseError
from feeds.net.http import decode_json
from feeds.venues import binance_rest, bybit, deribit, hyperliquid, okx
from tests.helpers.fake_http import fixture_text

pytestmark = pytest.mark.playback
D = Decimal


def load(name: str) -> Any:
    """A fixture decoded the way JsonClient decodes bodies (JSON numbers as Decimal)."""
    return decode_json(fixture_text(name))


BYBIT_TICKERS = {  # synthetic, shaped per PROTOCOLS.md §3 (no recorded tickers fixture)
    "retCode": 0, "retMsg": "OK", "time": 1739502303204,
    "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "fundingRate": "-0.00012", "nextFundingTime": "1739520000000",
         "markPrice": "96000.5", "openInterest": "55000.1", "openInterestValue": "5280037.5"},
        {"symbol": "BTCUSDT-28MAR25", "fundingRate": "", "markPrice": "97000",
         "openInterest": "10", "openInterestValue": "970000"}]},
}

DERIBIT_TICKER = {"jsonrpc": "2.0", "result": {  # synthetic, per PROTOCOLS.md §6 field names
    "instrument_name": "BTC-PERPETUAL", "timestamp": 1739502303204,
    "open_interest": 960000000, "mark_price": 96000, "funding_8h": 0.00001}}

PARSERS: dict[str, tuple[str | Any, Callable[[Any], Any]]] = {
    "binance-history": ("binance_funding_history.json", binance_rest.parse_funding_history),
    "binance-premium": ("binance_premium_index.json", binance_rest.parse_premium_index),
    "binance-oi": ("binance_open_interest.json",
                   lambda raw: binance_rest.parse_open_interest(raw, D("1.5"))),
    "binance-info": ([{"symbol": "BLZUSDT", "fundingIntervalHours": 4}],
                     binance_rest.parse_funding_info),
    "bybit-history": ("bybit_funding_history.json", bybit.parse_funding_history),
    "bybit-tickers": (BYBIT_TICKERS, bybit.parse_tickers),
    "bybit-instruments": ({"retCode": 0, "result": {"list": [
        {"symbol": "BTCUSDT", "fundingInterval": 480}]}}, bybit.parse_funding_intervals),
    "okx-funding": ("okx_funding_rate.json", okx.parse_funding_rate),
    "okx-oi": ("okx_open_interest.json", okx.parse_open_interest),
    "deribit-history": ("deribit_funding_history.json", deribit.parse_funding_history),
    "deribit-ticker": (DERIBIT_TICKER, deribit.parse_ticker),
    "hyperliquid": ("hyperliquid_meta_and_asset_ctxs.json",
                    lambda raw: hyperliquid.parse_meta_and_ctxs(raw, 1700000000000)),
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
