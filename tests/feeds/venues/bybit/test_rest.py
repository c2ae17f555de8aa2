"""Bybit funding / OI parsers against the shared fixtures and synthetic tickers."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from feeds.model import Funding, OpenInterest, ParseError
from feeds.net.http import decode_json
from feeds.venues import bybit
from tests.helpers.fake_http import fixture_text

pytestmark = pytest.mark.playback
D = Decimal


def load(name: str) -> Any:
    """A fixture decoded the way JsonClient decodes bodies (JSON numbers as Decimal)."""
    return decode_json(fixture_text(name))


def test_bybit_history_matches_readme_oldest_first() -> None:
    rows = bybit.parse_funding_history(load("bybit_funding_history.json"))
    assert [(r.symbol, r.ts_ms, r.rate) for r in rows] == [
        ("BTCPERP", 1671926400000, D("0.0001")), ("BTCPERP", 1671955200000, D("0.0001"))]
    assert {r.interval_h for r in rows} == {8.0}  # 28 800 000 ms apart


def test_bybit_history_prefers_instruments_interval() -> None:
    rows = bybit.parse_funding_history(load("bybit_funding_history.json"), interval_min=240)
    assert {r.interval_h for r in rows} == {4.0}


def test_bybit_rejects_non_zero_ret_code_and_bool() -> None:
    raw = load("bybit_funding_history.json")
    for code in (10001, False, "1"):
        with pytest.raises(ParseError, match="retCode"):
            bybit.parse_funding_history({**raw, "retCode": code})


BYBIT_TICKERS = {  # synthetic, shaped per PROTOCOLS.md §3 (no recorded tickers fixture)
    "retCode": 0, "retMsg": "OK", "time": 1739502303204,
    "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "fundingRate": "-0.00012", "nextFundingTime": "1739520000000",
         "markPrice": "96000.5", "openInterest": "55000.1", "openInterestValue": "5280037.5"},
        {"symbol": "BTCUSDT-28MAR25", "fundingRate": "", "markPrice": "97000",
         "openInterest": "10", "openInterestValue": "970000"}]},
}


def test_bybit_tickers_linear_funding_and_oi() -> None:
    funding, oi = bybit.parse_tickers(BYBIT_TICKERS, intervals={"BTCUSDT": 4.0})
    assert funding == [Funding("bybit", "BTCUSDT", 1739502303204, D("-0.00012"), 4.0)]
    assert oi[0] == OpenInterest("bybit", "BTCUSDT", 1739502303204, D("55000.1"), D("5280037.5"))
    assert len(oi) == 2  # the dated future has OI but no funding


def test_bybit_tickers_inverse_swaps_units() -> None:
    raw = copy.deepcopy(BYBIT_TICKERS)
    raw["result"]["category"] = "inverse"
    _, oi = bybit.parse_tickers(raw)
    assert (oi[0].oi_base, oi[0].oi_usd) == (D("5280037.5"), D("55000.1"))


def test_bybit_instruments_minutes_to_hours() -> None:
    raw = {"retCode": 0, "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "fundingInterval": 480}, {"symbol": "XUSDT", "fundingInterval": 60},
        {"symbol": "BTC-28MAR25", "fundingInterval": 0}]}}
    assert bybit.parse_funding_intervals(raw) == {"BTCUSDT": 8.0, "XUSDT": 1.0}


def test_category_follows_the_stream_rule_for_inverse_symbols() -> None:
    assert [bybit.category_of(s) for s in ("BTCUSD", "BTCUSDH25", "BTCUSDT", "BTCPERP")] == [
        "inverse", "inverse", "linear", "linear"]
