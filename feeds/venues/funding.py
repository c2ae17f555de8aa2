"""Funding-rate and open-interest REST parsers: Binance USDⓈ-M, Bybit, OKX, Deribit, Hyperliquid.

Pure functions, JSON in and model out; every malformed input raises ParseError. Intervals come
from the venue's own data (PROTOCOLS.md §10): nothing here assumes 8 h unless the venue
documents 8 h as the default for symbols it does not list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from feeds.model import HOUR_MS, Funding, OpenInterest, ParseError
from feeds.venues.parsing import dec, need, text, ts_ms

# Binance and Bybit: symbols absent from fundingInfo / without fundingInterval settle every 8 h.
DEFAULT_INTERVAL_H = 8.0
_MAX_INTERVAL_H = 24.0 * 7


@dataclass(frozen=True, slots=True)
class Premium:
    """Binance premiumIndex row: the current funding plus the mark price OI is valued at."""

    funding: Funding
    mark_price: Decimal
    next_funding_ms: int | None


# -- shared -------------------------------------------------------------------------------


def _rows(obj: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(obj, list):
        raise ParseError(f"{where}: expected a list, got {type(obj).__name__}")
    for row in obj:
        if not isinstance(row, dict):
            raise ParseError(f"{where}: expected objects, got {type(row).__name__}")
    return obj


def _hours(value: Any, name: str) -> float:
    h = float(dec(value, name))
    if not 0 < h <= _MAX_INTERVAL_H:
        raise ParseError(f"{name}: funding interval out of range: {h} h")
    return h


def _non_negative(value: Any, name: str) -> Decimal:
    d = dec(value, name)
    if d < 0:
        raise ParseError(f"{name}: must not be negative, got {d}")
    return d


def interval_from_times(times_ms: Iterable[int]) -> float | None:
    """Return the funding interval (hours) implied by settlement times, or None if unclear.

    The smallest gap wins, so a missing row in the middle does not double the interval;
    rounding to a quarter hour absorbs Binance's few-ms jitter on fundingTime.
    """
    ordered = sorted(set(times_ms))
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    if not gaps:
        return None
    hours = round(min(gaps) / HOUR_MS * 4) / 4
    return hours if 0.25 <= hours <= 24 else None


def _by_symbol_interval(
    parsed: list[tuple[str, int, Decimal]], known: Mapping[str, float], exchange: str
) -> list[Funding]:
    """Funding rows with an interval per symbol: published, else derived, else 8 h."""
    times: dict[str, list[int]] = {}
    for symbol, t, _ in parsed:
        times.setdefault(symbol, []).append(t)
    hours = {
        s: known.get(s) or interval_from_times(ts) or DEFAULT_INTERVAL_H for s, ts in times.items()
    }
    return [Funding(exchange, s, t, rate, hours[s]) for s, t, rate in parsed]


# -- Binance USDⓈ-M -----------------------------------------------------------------------


def parse_binance_funding_history(
    raw: Any, intervals: Mapping[str, float] | None = None
) -> list[Funding]:
    """Normalize `GET /fapi/v1/fundingRate` rows (ascending, as Binance sends them).

    [{"symbol": "BTCUSDT", "fundingRate": "-0.03750000",   # raw rate for one interval
      "fundingTime": 1570608000000,                        # settlement time, ms
      "markPrice": "34287.54619963"}, ...]
    `intervals` is parse_binance_funding_info(); symbols missing there get the spacing of
    their own fundingTime values, else 8 h.
    """
    parsed = [
        (text(need(r, "symbol", "fundingRate"), "symbol"),
         ts_ms(need(r, "fundingTime", "fundingRate"), "fundingTime"),
         dec(need(r, "fundingRate", "fundingRate"), "fundingRate"))
        for r in _rows(raw, "fundingRate")
    ]
    return _by_symbol_interval(parsed, intervals or {}, "binance")


def parse_binance_funding_info(raw: Any) -> dict[str, float]:
    """Return symbol -> interval hours from `GET /fapi/v1/fundingInfo`.

    [{"symbol": "BLZUSDT", "adjustedFundingRateCap": "0.02500000",
      "adjustedFundingRateFloor": "-0.02500000",
      "fundingIntervalHours": 4, "disclaimer": false}]   # only symbols whose settings changed
    """
    return {
        text(need(r, "symbol", "fundingInfo"), "symbol"):
            _hours(need(r, "fundingIntervalHours", "fundingInfo"), "fundingIntervalHours")
        for r in _rows(raw, "fundingInfo")
    }


def parse_binance_premium_index(
    raw: Any, intervals: Mapping[str, float] | None = None
) -> list[Premium]:
    """Normalize `GET /fapi/v1/premiumIndex` (one object with ?symbol=, else an array).

    {"symbol": "BTCUSDT", "markPrice": "11793.63104562",
     "lastFundingRate": "0.00038246",          # the rate for the running interval
     "nextFundingTime": 1597392000000,
     "time": 1597370495002}                    # observation time: our ts_ms
    Delivery contracts carry "lastFundingRate": "" and are skipped.
    """
    out = []
    for r in _rows(raw if isinstance(raw, list) else [raw], "premiumIndex"):
        symbol = text(need(r, "symbol", "premiumIndex"), "symbol")
        rate = need(r, "lastFundingRate", "premiumIndex")
        if rate == "":
            continue
        hours = (intervals or {}).get(symbol, DEFAULT_INTERVAL_H)
        funding = Funding("binance", symbol, ts_ms(need(r, "time", "premiumIndex"), "time"),
                          dec(rate, "lastFundingRate"), hours)
        nxt = r.get("nextFundingTime")
        next_ms = ts_ms(nxt, "nextFundingTime") if nxt not in (None, 0, "", "0") else None
        mark = _non_negative(need(r, "markPrice", "premiumIndex"), "markPrice")
        out.append(Premium(funding, mark, next_ms))
    return out


def parse_binance_open_interest(raw: Any, mark_price: Decimal | None = None) -> OpenInterest:
    """Normalize `GET /fapi/v1/openInterest`; USD only when a mark price is known.

    {"openInterest": "10659.509",      # BASE coin (BTC), both sides counted once
     "symbol": "BTCUSDT", "time": 1589437530011}
    """
    oi = _non_negative(need(raw, "openInterest", "openInterest"), "openInterest")
    usd = oi * mark_price if mark_price is not None and mark_price > 0 else None
    return OpenInterest("binance", text(need(raw, "symbol", "openInterest"), "symbol"),
                        ts_ms(need(raw, "time", "openInterest"), "time"), oi, usd)


# -- Bybit v5 -----------------------------------------------------------------------------


def _bybit_result(raw: Any, where: str) -> dict[str, Any]:
    code = need(raw, "retCode", where)
    # bool is an int in Python: reject True/False explicitly before comparing with 0.
    if isinstance(code, bool) or code not in (0, "0"):
        msg = str(raw.get("retMsg", ""))[:80]
        raise ParseError(f"{where}: retCode {str(code)[:20]!r} ({msg!r})")
    result = need(raw, "result", where)
    if not isinstance(result, dict):
        raise ParseError(f"{where}: result is not an object")
    return result


def parse_bybit_funding_history(raw: Any, interval_min: int | None = None) -> list[Funding]:
    """Normalize `GET /v5/market/funding/history`, returned oldest first.

    {"retCode": 0, "retMsg": "OK",
     "result": {"category": "linear", "list": [                         # NEWEST first
        {"symbol": "BTCPERP", "fundingRate": "0.0001",
         "fundingRateTimestamp": "1671955200000"}]}}                     # ms, as a string
    `interval_min` is instruments-info `fundingInterval`; without it the spacing decides.
    """
    rows = _rows(need(_bybit_result(raw, "funding/history"), "list", "result"), "list")
    parsed = sorted(
        ((text(need(r, "symbol", "list"), "symbol"),
          ts_ms(need(r, "fundingRateTimestamp", "list"), "fundingRateTimestamp"),
          dec(need(r, "fundingRate", "list"), "fundingRate")) for r in rows),
        key=lambda row: row[1],
    )
    known: dict[str, float] = {}
    if interval_min is not None:
        hours = _hours(Decimal(interval_min) / 60, "fundingInterval")
        known = {symbol: hours for symbol, _, _ in parsed}
    return _by_symbol_interval(parsed, known, "bybit")


def parse_bybit_instruments(raw: Any) -> dict[str, float]:
    """Return symbol -> interval hours from instruments-info `fundingInterval` (minutes).

    {"retCode": 0, "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "fundingInterval": 480, ...}]}}   # 480 min = 8 h
    """
    rows = _rows(need(_bybit_result(raw, "instruments-info"), "list", "result"), "list")
    return {
        text(need(r, "symbol", "list"), "symbol"):
            _hours(dec(r["fundingInterval"], "fundingInterval") / 60, "fundingInterval")
        for r in rows
        if r.get("fundingInterval") not in (None, "", 0, "0")  # dated futures have none
    }


def parse_bybit_tickers(
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
    result = _bybit_result(raw, "tickers")
    t = ts_ms(need(raw, "time", "tickers"), "time")
    cat = result.get("category") or category
    if cat not in ("linear", "inverse"):
        raise ParseError(f"tickers: unsupported category {str(cat)[:20]!r}")
    funding, oi = [], []
    for r in _rows(need(result, "list", "result"), "list"):
        symbol = text(need(r, "symbol", "list"), "symbol")
        rate = r.get("fundingRate", "")
        if rate not in ("", None):  # dated futures carry no funding
            hours = (intervals or {}).get(symbol, DEFAULT_INTERVAL_H)
            funding.append(Funding("bybit", symbol, t, dec(rate, "fundingRate"), hours))
        count = _non_negative(need(r, "openInterest", "list"), "openInterest")
        value = _non_negative(need(r, "openInterestValue", "list"), "openInterestValue")
        base, usd = (count, value) if cat == "linear" else (value, count)
        oi.append(OpenInterest("bybit", symbol, t, base, usd))
    return funding, oi


# -- OKX v5 -------------------------------------------------------------------------------


def _okx_data(raw: Any, where: str) -> list[dict[str, Any]]:
    code = need(raw, "code", where)
    if code != "0":
        raise ParseError(f"{where}: code {str(code)[:20]!r} ({str(raw.get('msg', ''))[:80]!r})")
    return _rows(need(raw, "data", where), where)


def parse_okx_funding_rate(raw: Any) -> list[Funding]:
    """Normalize `GET /api/v5/public/funding-rate`; interval = nextFundingTime − fundingTime.

    {"code": "0", "data": [{"instId": "BTC-USDT-SWAP",
        "fundingRate": "0.0000182221218054",   # applies at fundingTime (longs pay if > 0)
        "fundingTime": "1743609600000", "nextFundingTime": "1743638400000",
        "settFundingRate": "0.0000145824401745", "settState": "settled",
        "ts": "1743588686291"}]}               # observation time: our ts_ms
    """
    out = []
    for r in _okx_data(raw, "funding-rate"):
        start = ts_ms(need(r, "fundingTime", "funding-rate"), "fundingTime")
        end = ts_ms(need(r, "nextFundingTime", "funding-rate"), "nextFundingTime")
        hours = _hours(Decimal(end - start) / HOUR_MS, "nextFundingTime - fundingTime")
        out.append(Funding("okx", text(need(r, "instId", "funding-rate"), "instId"),
                           ts_ms(need(r, "ts", "funding-rate"), "ts"),
                           dec(need(r, "fundingRate", "funding-rate"), "fundingRate"), hours))
    return out


def parse_okx_open_interest(raw: Any) -> list[OpenInterest]:
    """Normalize `GET /api/v5/public/open-interest`.

    {"code": "0", "data": [{"instType": "SWAP", "instId": "BTC-USDT-SWAP",
        "oi": "5000",            # contracts (ctVal each): not used
        "oiCcy": "555.55",       # base coin
        "oiUsd": "50000",        # USD
        "ts": "1597026383085"}]}
    """
    return [
        OpenInterest("okx", text(need(r, "instId", "open-interest"), "instId"),
                     ts_ms(need(r, "ts", "open-interest"), "ts"),
                     _non_negative(need(r, "oiCcy", "open-interest"), "oiCcy"),
                     _non_negative(need(r, "oiUsd", "open-interest"), "oiUsd"))
        for r in _okx_data(raw, "open-interest")
    ]


# -- Deribit ------------------------------------------------------------------------------


def _rpc_result(raw: Any, where: str) -> Any:
    if isinstance(raw, dict) and "error" in raw:
        err = raw["error"]
        msg = err.get("message", err) if isinstance(err, dict) else err
        raise ParseError(f"{where}: JSON-RPC error {str(msg)[:80]!r}")
    return need(raw, "result", where)


def parse_deribit_funding_history(
    raw: Any, instrument: str = "BTC-PERPETUAL", *, use_8h: bool = False
) -> list[Funding]:
    """Normalize `public/get_funding_rate_history` (the envelope or its `result` list).

    {"jsonrpc": "2.0", "result": [{"timestamp": 1569891600000,   # hourly points
        "interest_1h": -4.739622041017375e-7,    # rate for that hour: rate, interval 1 h
        "interest_8h": -0.00009234260068476106,  # Deribit's own 8 h figure
        "index_price": 8222.87, "prev_index_price": 8305.72}]}
    Both figures are validated. By default rate = interest_1h over 1 h; `use_8h` gives
    rate = interest_8h over 8 h, so rate_8h equals Deribit's interest_8h exactly.
    """
    rows = raw if isinstance(raw, list) else _rpc_result(raw, "get_funding_rate_history")
    out = []
    for r in _rows(rows, "get_funding_rate_history"):
        t = ts_ms(need(r, "timestamp", "funding"), "timestamp")
        one = dec(need(r, "interest_1h", "funding"), "interest_1h")
        eight = dec(need(r, "interest_8h", "funding"), "interest_8h")
        out.append(Funding("deribit", instrument, t, eight if use_8h else one,
                           8.0 if use_8h else 1.0))
    return out


def parse_deribit_ticker(raw: Any) -> OpenInterest:
    """Normalize `public/ticker` open interest (the envelope or its `result`).

    {"result": {"instrument_name": "BTC-PERPETUAL", "timestamp": 1739502303204,
        "open_interest": 1006596600,     # inverse: USD; linear (BTC_USDC-...): base coin
        "mark_price": 96000.5, "current_funding": 0.0, "funding_8h": 0.00001}}
    """
    wrapped = isinstance(raw, dict) and ("result" in raw or "error" in raw)
    r = _rpc_result(raw, "ticker") if wrapped else raw
    symbol = text(need(r, "instrument_name", "ticker"), "instrument_name")
    oi = _non_negative(need(r, "open_interest", "ticker"), "open_interest")
    mark = _non_negative(need(r, "mark_price", "ticker"), "mark_price")
    t = ts_ms(need(r, "timestamp", "ticker"), "timestamp")
    if "_" in symbol.split("-", 1)[0]:  # BTC_USDC-PERPETUAL: linear, sized in coin
        return OpenInterest("deribit", symbol, t, oi, oi * mark)
    return OpenInterest("deribit", symbol, t, oi / mark if mark > 0 else None, oi)


# -- Hyperliquid --------------------------------------------------------------------------


def parse_hyperliquid_meta_and_ctxs(
    raw: Any, now_ms: int, coins: Iterable[str] | None = None
) -> tuple[list[Funding], list[OpenInterest]]:
    """Normalize `POST /info {"type": "metaAndAssetCtxs"}`; the payload has no time, so now_ms.

    [{"universe": [{"name": "SOL", "szDecimals": 2, "maxLeverage": 50}]},
     [{"funding": "0.0000198",          # HOURLY rate: interval 1 h
       "openInterest": "10764.48",      # base coin
       "markPx": "108.04", ...}]]       # ctxs[i] belongs to universe[i]: matched by index
    """
    if not isinstance(raw, list) or len(raw) != 2:
        raise ParseError("metaAndAssetCtxs: expected [meta, ctxs]")
    universe = _rows(need(raw[0], "universe", "meta"), "universe")
    ctxs = _rows(raw[1], "ctxs")
    if len(universe) != len(ctxs):
        # Pairing is by index only: a length mismatch would shift every coin onto another's data.
        raise ParseError(f"metaAndAssetCtxs: {len(universe)} coins but {len(ctxs)} contexts")
    wanted = None if coins is None else {c.upper() for c in coins}
    funding, oi = [], []
    for meta, ctx in zip(universe, ctxs, strict=True):
        coin = text(need(meta, "name", "universe"), "name")
        if wanted is not None and coin.upper() not in wanted:
            continue
        rate = dec(need(ctx, "funding", coin), "funding")
        base = _non_negative(need(ctx, "openInterest", coin), "openInterest")
        mark = _non_negative(need(ctx, "markPx", coin), "markPx")
        funding.append(Funding("hyperliquid", coin, now_ms, rate, 1.0))
        oi.append(OpenInterest("hyperliquid", coin, now_ms, base, base * mark))
    return funding, oi
