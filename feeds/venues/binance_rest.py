"""Binance USDⓈ-M REST answers: funding history, funding intervals, premium index, open interest.

Pure parsers (no I/O); feeds/venues/binance.py polls with them. Apart from the stream
module so each stays a readable size; `binance.parse_*` names keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from feeds.model import Funding, OpenInterest
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

EXCHANGE = "binance"

__all__ = ["Premium", "parse_funding_history", "parse_funding_info", "parse_open_interest",
           "parse_premium_index"]

@dataclass(frozen=True, slots=True)
class Premium:
    """Binance premiumIndex row: the current funding plus the mark price OI is valued at."""

    funding: Funding
    mark_price: Decimal
    next_funding_ms: int | None


def parse_funding_history(
    raw: Any, intervals: Mapping[str, float] | None = None
) -> list[Funding]:
    """Normalize `GET /fapi/v1/fundingRate` rows (ascending, as Binance sends them).

    [{"symbol": "BTCUSDT", "fundingRate": "-0.03750000",   # raw rate for one interval
      "fundingTime": 1570608000000,                        # settlement time, ms
      "markPrice": "34287.54619963"}, ...]
    `intervals` is parse_funding_info(); symbols missing there get the spacing of
    their own fundingTime values, else 8 h.
    """
    parsed = [
        (text(need(r, "symbol", "fundingRate"), "symbol"),
         ts_ms(need(r, "fundingTime", "fundingRate"), "fundingTime"),
         dec(need(r, "fundingRate", "fundingRate"), "fundingRate"))
        for r in json_rows(raw, "fundingRate")
    ]
    return funding_by_symbol(parsed, intervals or {}, EXCHANGE)


def parse_funding_info(raw: Any) -> dict[str, float]:
    """Return symbol -> interval hours from `GET /fapi/v1/fundingInfo`.

    [{"symbol": "BLZUSDT", "adjustedFundingRateCap": "0.02500000",
      "adjustedFundingRateFloor": "-0.02500000",
      "fundingIntervalHours": 4, "disclaimer": false}]   # only symbols whose settings changed
    """
    return {
        text(need(r, "symbol", "fundingInfo"), "symbol"):
            interval_hours(need(r, "fundingIntervalHours", "fundingInfo"), "fundingIntervalHours")
        for r in json_rows(raw, "fundingInfo")
    }


def parse_premium_index(
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
    for r in json_rows(raw if isinstance(raw, list) else [raw], "premiumIndex"):
        symbol = text(need(r, "symbol", "premiumIndex"), "symbol")
        rate = need(r, "lastFundingRate", "premiumIndex")
        if rate == "":
            continue
        hours = (intervals or {}).get(symbol, DEFAULT_INTERVAL_H)
        funding = Funding(EXCHANGE, symbol, ts_ms(need(r, "time", "premiumIndex"), "time"),
                          dec(rate, "lastFundingRate"), hours)
        nxt = r.get("nextFundingTime")
        next_ms = ts_ms(nxt, "nextFundingTime") if nxt not in (None, 0, "", "0") else None
        mark = non_negative(need(r, "markPrice", "premiumIndex"), "markPrice")
        out.append(Premium(funding, mark, next_ms))
    return out


def parse_open_interest(raw: Any, mark_price: Decimal | None = None) -> OpenInterest:
    """Normalize `GET /fapi/v1/openInterest`; USD only when a mark price is known.

    {"openInterest": "10659.509",      # BASE coin (BTC), both sides counted once
     "symbol": "BTCUSDT", "time": 1589437530011}
    """
    oi = non_negative(need(raw, "openInterest", "openInterest"), "openInterest")
    usd = oi * mark_price if mark_price is not None and mark_price > 0 else None
    return OpenInterest(EXCHANGE, text(need(raw, "symbol", "openInterest"), "symbol"),
                        ts_ms(need(raw, "time", "openInterest"), "time"), oi, usd)
