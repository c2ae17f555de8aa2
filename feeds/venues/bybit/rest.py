"""Bybit v5 REST: current funding and open interest (tickers), funding intervals (instruments)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from feeds.model import Funding, OpenInterest, ParseError
from feeds.venues.base import FundingPoll, Item, PollContext
from feeds.venues.bybit.stream import DEFAULT_REST_URL, EXCHANGE, INSTRUMENTS_PATH, looks_inverse
from feeds.venues.parsing import (
    DEFAULT_INTERVAL_H,
    dec,
    funding_by_symbol,
    interval_hours,
    json_rows,
    need,
    non_negative,
    text,
    ts_ms,
)


def _result(raw: Any, where: str) -> dict[str, Any]:
    code = need(raw, "retCode", where)
    # bool is an int in Python: reject True/False explicitly before comparing with 0.
    if isinstance(code, bool) or code not in (0, "0"):
        msg = str(raw.get("retMsg", ""))[:80]
        raise ParseError(f"{where}: retCode {str(code)[:20]!r} ({msg!r})")
    result = need(raw, "result", where)
    if not isinstance(result, dict):
        raise ParseError(f"{where}: result is not an object")
    return result


def parse_funding_history(raw: Any, interval_min: int | None = None) -> list[Funding]:
    """Normalize `GET /v5/market/funding/history`, returned oldest first.

    {"retCode": 0, "retMsg": "OK",
     "result": {"category": "linear", "list": [                         # NEWEST first
        {"symbol": "BTCPERP", "fundingRate": "0.0001",
         "fundingRateTimestamp": "1671955200000"}]}}                     # ms, as a string
    `interval_min` is instruments-info `fundingInterval`; without it the spacing decides.
    """
    rows = json_rows(need(_result(raw, "funding/history"), "list", "result"), "list")
    parsed = sorted(
        ((text(need(r, "symbol", "list"), "symbol"),
          ts_ms(need(r, "fundingRateTimestamp", "list"), "fundingRateTimestamp"),
          dec(need(r, "fundingRate", "list"), "fundingRate")) for r in rows),
        key=lambda row: row[1],
    )
    known: dict[str, float] = {}
    if interval_min is not None:
        hours = interval_hours(Decimal(interval_min) / 60, "fundingInterval")
        known = {symbol: hours for symbol, _, _ in parsed}
    return funding_by_symbol(parsed, known, EXCHANGE)


def parse_funding_intervals(raw: Any) -> dict[str, float]:
    """Return symbol -> interval hours from instruments-info `fundingInterval` (minutes).

    {"retCode": 0, "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "fundingInterval": 480, ...}]}}   # 480 min = 8 h
    """
    rows = json_rows(need(_result(raw, "instruments-info"), "list", "result"), "list")
    return {
        text(need(r, "symbol", "list"), "symbol"):
            interval_hours(dec(r["fundingInterval"], "fundingInterval") / 60, "fundingInterval")
        for r in rows
        if r.get("fundingInterval") not in (None, "", 0, "0")  # dated futures have none
    }


def parse_tickers(
    raw: Any, category: str = "linear", intervals: Mapping[str, float] | None = None
) -> tuple[list[Funding], list[OpenInterest]]:
    """Normalize `GET /v5/market/tickers` into current funding and open interest.

    {"retCode": 0, "time": 1739502303204,                 # envelope time: our ts_ms
     "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "fundingRate": "0.0001", "nextFundingTime": "1739520000000",
         "markPrice": "96000.5",
         "openInterest": "55000.1",          # linear: base coin; inverse: USD contracts
         "openInterestValue": "5280022..."}]}}  # linear: USD(T); inverse: settlement coin
    """
    result = _result(raw, "tickers")
    t = ts_ms(need(raw, "time", "tickers"), "time")
    cat = result.get("category") or category
    if cat not in ("linear", "inverse"):
        raise ParseError(f"tickers: unsupported category {str(cat)[:20]!r}")
    funding, oi = [], []
    for r in json_rows(need(result, "list", "result"), "list"):
        symbol = text(need(r, "symbol", "list"), "symbol")
        rate = r.get("fundingRate", "")
        if rate not in ("", None):  # dated futures carry no funding
            hours = (intervals or {}).get(symbol, DEFAULT_INTERVAL_H)
            funding.append(Funding(EXCHANGE, symbol, t, dec(rate, "fundingRate"), hours))
        count = non_negative(need(r, "openInterest", "list"), "openInterest")
        value = non_negative(need(r, "openInterestValue", "list"), "openInterestValue")
        base, usd = (count, value) if cat == "linear" else (value, count)
        oi.append(OpenInterest(EXCHANGE, symbol, t, base, usd))
    return funding, oi


def category_of(symbol: str) -> str:
    """BTCUSD (and BTCUSDH25) is inverse; BTCUSDT, BTCPERP (USDC) and the like are linear."""
    return "inverse" if looks_inverse(symbol.upper()) else "linear"


async def fetch_funding(ctx: PollContext, symbols: Sequence[str]) -> list[Item]:
    """One poll: tickers per symbol, with its instruments-info interval cached."""
    async def one(symbol: str) -> list[Item]:
        params = {"category": category_of(symbol), "symbol": symbol}
        intervals = await ctx.cached(f"instruments:{symbol}", lambda: ctx.get(
            INSTRUMENTS_PATH, params, parse_funding_intervals))
        funding, oi = await ctx.get("/v5/market/tickers", params, lambda raw: parse_tickers(
            raw, params["category"], intervals))
        return [*funding, *oi]

    return await ctx.each_symbol(symbols, one)


FUNDING = FundingPoll(DEFAULT_REST_URL, ("BTCUSDT", "ETHUSDT", "SOLUSDT"), fetch_funding)
