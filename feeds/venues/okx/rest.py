"""OKX v5 REST: contract values (`ctVal`, also from a shipped snapshot), funding, open interest."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from feeds.model import HOUR_MS, Funding, OpenInterest, ParseError
from feeds.net.http import DEFAULT_TIMEOUT_S, JsonClient
from feeds.venues.base import FundingPoll, Item, PollContext
from feeds.venues.instruments import Specs
from feeds.venues.parsing import (
    dec,
    interval_hours,
    json_rows,
    need,
    non_negative,
    positive,
    read_json_file,
    text,
    ts_ms,
)

logger = logging.getLogger(__name__)

EXCHANGE = "okx"
DEFAULT_REST_URL = "https://www.okx.com"
INSTRUMENTS_PATH = "/api/v5/public/instruments"

# Shipped with the package (pyproject package-data "feeds.venues" = data/*.json).
DEFAULT_OKX_SWAPS = Path(__file__).parent.parent / "data" / "okx_instruments_swap.json"


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What one contract is worth: `ct_val` units of `ct_val_ccy` (base coin when linear)."""

    inst_id: str
    ct_val: Decimal
    ct_val_ccy: str
    ct_type: str

    @property
    def linear(self) -> bool:
        return self.ct_type == "linear"


def parse_okx_instruments(payload: Any, where: str = "instruments") -> dict[str, ContractSpec]:
    """Index an OKX `/api/v5/public/instruments` response by instId.

    {"code": "0", "msg": "",
     "data": [{"instId": "BTC-USDT-SWAP",
               "ctVal": "0.01", "ctValCcy": "BTC",      # one contract = 0.01 BTC
               "ctType": "linear", ...}]}               # inverse: ctValCcy is USD
    """
    code = need(payload, "code", where)
    if str(code) != "0":
        raise ParseError(f"{where}: OKX error response, code {code!r}")
    rows = need(payload, "data", where)
    if not isinstance(rows, list):
        raise ParseError(f"{where}: 'data' must be a list")
    specs: dict[str, ContractSpec] = {}
    for i, row in enumerate(rows):
        at = f"{where}: data[{i}]"
        inst_id = text(need(row, "instId", at), f"{at}.instId")
        specs[inst_id] = ContractSpec(
            inst_id=inst_id,
            ct_val=positive(need(row, "ctVal", at), f"{inst_id}.ctVal"),
            ct_val_ccy=str(row.get("ctValCcy", "")),
            ct_type=str(row.get("ctType", "linear")) or "linear",
        )
    return specs


def read_okx_instruments(path: str | Path) -> dict[str, ContractSpec]:
    """Read one instruments file; every problem is a ParseError naming the file."""
    payload = read_json_file(path, "instruments")
    return parse_okx_instruments(payload, where=str(path))


def load_okx_instruments(path: str | Path | None = None) -> dict[str, ContractSpec]:
    """Return the shipped snapshot, overridden per instId by the user's file when given."""
    specs = read_okx_instruments(DEFAULT_OKX_SWAPS)
    if path is not None:
        specs.update(read_okx_instruments(path))
    return specs


# -- the instrument table ----------------------------------------------------------------------


def instrument_rows(payload: Any, where: str) -> Specs:
    """Index one instruments response by instId, keeping the fields the parser reads.

    Rows without a usable ctVal are skipped: one odd pre-listing must not block a refresh.
    """
    code = need(payload, "code", where)
    if str(code) != "0":
        raise ParseError(f"{where}: OKX error response, code {code!r}")
    rows = need(payload, "data", where)
    if not isinstance(rows, list):
        raise ParseError(f"{where}: 'data' must be a list")
    specs: Specs = {}
    for row in rows:
        spec = _one_spec(row, where)
        if spec is not None:
            specs[spec.inst_id] = _spec_row(spec)
    return specs


def contract_specs(specs: Specs) -> dict[str, ContractSpec]:
    """Table rows back to ContractSpecs; unusable rows are left out."""
    out: dict[str, ContractSpec] = {}
    for row in specs.values():
        spec = _one_spec(row, "instruments")
        if spec is not None:
            out[spec.inst_id] = spec
    return out


def _one_spec(row: Any, where: str) -> ContractSpec | None:
    try:
        [spec] = parse_okx_instruments({"code": "0", "data": [row]}, where).values()
    except ParseError as exc:
        logger.debug("%s: skipped an instrument row: %s", EXCHANGE, exc)
        return None
    return spec


def _spec_row(spec: ContractSpec) -> dict[str, Any]:
    return {"instId": spec.inst_id, "ctVal": str(spec.ct_val), "ctValCcy": spec.ct_val_ccy,
            "ctType": spec.ct_type}


async def fetch_instruments(
    rest_url: str, inst_types: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S
) -> Specs:
    """Every instrument of `inst_types`; all types or nothing, so the cache stays whole.

    No retries: the instrument table retries on its own schedule.
    """
    specs: Specs = {}
    async with JsonClient(rest_url, name=EXCHANGE, timeout_s=timeout_s, retries=0) as http:
        url = http.base_url + INSTRUMENTS_PATH
        for inst_type in inst_types:
            payload = await http.get(INSTRUMENTS_PATH, {"instType": inst_type})
            specs.update(instrument_rows(payload, f"{url} ({inst_type})"))
    return specs


def snapshot(instruments_path: str | None) -> Specs:
    """The table's last resort: the shipped snapshot, overridden by the user's file."""
    return {k: _spec_row(v) for k, v in load_okx_instruments(instruments_path).items()}


# -- funding and open interest ---------------------------------------------------------------


def _data(raw: Any, where: str) -> list[dict[str, Any]]:
    code = need(raw, "code", where)
    if code != "0":
        raise ParseError(f"{where}: code {str(code)[:20]!r} ({str(raw.get('msg', ''))[:80]!r})")
    return json_rows(need(raw, "data", where), where)


def parse_funding_rate(raw: Any) -> list[Funding]:
    """Normalize `GET /api/v5/public/funding-rate`; interval = nextFundingTime − fundingTime.

    {"code": "0", "data": [{"instId": "BTC-USDT-SWAP",
        "fundingRate": "0.0000182221218054",   # applies at fundingTime (longs pay if > 0)
        "fundingTime": "1743609600000", "nextFundingTime": "1743638400000",
        "settFundingRate": "0.0000145824401745", "settState": "settled",
        "ts": "1743588686291"}]}               # observation time: our ts_ms
    """
    out = []
    for r in _data(raw, "funding-rate"):
        start = ts_ms(need(r, "fundingTime", "funding-rate"), "fundingTime")
        end = ts_ms(need(r, "nextFundingTime", "funding-rate"), "nextFundingTime")
        hours = interval_hours(Decimal(end - start) / HOUR_MS, "nextFundingTime - fundingTime")
        out.append(Funding(EXCHANGE, text(need(r, "instId", "funding-rate"), "instId"),
                           ts_ms(need(r, "ts", "funding-rate"), "ts"),
                           dec(need(r, "fundingRate", "funding-rate"), "fundingRate"), hours))
    return out


def parse_open_interest(raw: Any) -> list[OpenInterest]:
    """Normalize `GET /api/v5/public/open-interest`.

    {"code": "0", "data": [{"instType": "SWAP", "instId": "BTC-USDT-SWAP",
        "oi": "5000",            # contracts (ctVal each): not used
        "oiCcy": "555.55",       # base coin
        "oiUsd": "50000",        # USD
        "ts": "1597026383085"}]}
    """
    return [
        OpenInterest(EXCHANGE, text(need(r, "instId", "open-interest"), "instId"),
                     ts_ms(need(r, "ts", "open-interest"), "ts"),
                     non_negative(need(r, "oiCcy", "open-interest"), "oiCcy"),
                     non_negative(need(r, "oiUsd", "open-interest"), "oiUsd"))
        for r in _data(raw, "open-interest")
    ]


async def fetch_funding(ctx: PollContext, symbols: Sequence[str]) -> list[Item]:
    """One poll: funding-rate and open-interest per SWAP instId."""
    async def one(symbol: str) -> list[Item]:
        funding = await ctx.get("/api/v5/public/funding-rate", {"instId": symbol},
                                parse_funding_rate)
        oi = await ctx.get("/api/v5/public/open-interest",
                           {"instType": "SWAP", "instId": symbol}, parse_open_interest)
        return [*funding, *oi]

    return await ctx.each_symbol(symbols, one)


FUNDING = FundingPoll(DEFAULT_REST_URL,
                      ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"), fetch_funding)
