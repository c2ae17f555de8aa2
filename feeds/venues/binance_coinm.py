"""Binance COIN-M (delivery) futures: `!forceOrder@arr` liquidations sized in USD contracts."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, DecimalException
from functools import partial
from pathlib import Path
from typing import Any

from feeds.model import DAY_MS, Liquidation, ParseError, canonical_coin
from feeds.net.http import DEFAULT_TIMEOUT_S, JsonClient
from feeds.net.ws import Frame, Sink, WsFeed
from feeds.venues import binance
from feeds.venues.base import FeedOptions, VenueFeed
from feeds.venues.instruments import InstrumentTable, Specs
from feeds.venues.parsing import need, positive, read_json_file, text

logger = logging.getLogger(__name__)

EXCHANGE = "binance-coinm"
# The USDⓈ-M /market route split does not apply to dstream (PROTOCOLS.md §2).
DEFAULT_URL = "wss://dstream.binance.com/ws/!forceOrder@arr"
DEFAULT_REST_URL = "https://dapi.binance.com"
EXCHANGE_INFO_PATH = "/dapi/v1/exchangeInfo"
# Shipped with the package: the offline start's contract sizes and base assets, used when
# neither the venue nor the store's cache answers (feeds/venues/data/README.md).
SNAPSHOT = Path(__file__).parent / "data" / "binance_coinm_exchange_info.json"
# Like USDⓈ-M: at most one liquidation per symbol per 1000 ms.
SAMPLED = True


class UnknownContract(ParseError):
    """A symbol whose contractSize is not in the table: never guessed."""

    def __init__(self, symbol: str, message: str) -> None:
        super().__init__(message)
        self.symbol = symbol


# -- contract sizes ----------------------------------------------------------------------------


def parse_exchange_info(payload: Any, where: str = "exchangeInfo") -> Specs:
    """Index the USD value (and base asset) of one contract by symbol AND by pair.

    {"symbols": [{"symbol": "BTCUSD_PERP",         # or a delivery contract, BTCUSD_200925
                  "pair": "BTCUSD",
                  "baseAsset": "BTC", "quoteAsset": "USD", "marginAsset": "BTC",
                  "contractSize": 100, ...}]}      # USD per contract (10 on most non-BTC)

    The pair entry lets an expired delivery contract, gone from exchangeInfo, still be sized;
    a pair whose symbols disagree gets no pair entry. Malformed rows are skipped.
    """
    rows = need(payload, "symbols", where)
    if not isinstance(rows, list):
        raise ParseError(f"{where}: 'symbols' must be a list")
    specs: Specs = {}
    by_pair: dict[str, set[Decimal]] = {}
    pair_base: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        try:
            symbol = text(need(row, "symbol", f"{where}: symbols[{i}]"), "symbol")
            size = positive(need(row, "contractSize", symbol), f"{symbol}.contractSize")
        except ParseError as exc:
            logger.warning("%s: skipped an exchangeInfo row: %s", EXCHANGE, exc)
            continue
        specs[symbol] = {"contractSize": str(size)}
        base = row.get("baseAsset")
        if isinstance(base, str) and base.isalnum():
            specs[symbol]["baseAsset"] = base
        pair = row.get("pair")
        if isinstance(pair, str) and pair:
            by_pair.setdefault(pair, set()).add(size)
            pair_base.setdefault(pair, set()).add(specs[symbol].get("baseAsset", ""))
    for pair, sizes in by_pair.items():
        if len(sizes) == 1 and pair not in specs:
            specs[pair] = {"contractSize": str(sizes.pop())}
            bases = pair_base[pair]
            if len(bases) == 1 and "" not in bases:
                specs[pair]["baseAsset"] = bases.pop()
    return specs


def contract_sizes(specs: Specs) -> dict[str, Decimal]:
    """Turn table rows into Decimals; a row that is not a positive number is left out."""
    sizes: dict[str, Decimal] = {}
    for key, spec in specs.items():
        try:
            sizes[key] = positive(spec.get("contractSize"), f"{key}.contractSize")
        except (ParseError, AttributeError):
            logger.warning("%s: ignoring a bad contractSize for %s", EXCHANGE, key)
    return sizes


def base_assets(specs: Specs) -> dict[str, str]:
    """symbol (and pair) -> canonical base coin, from the table's `baseAsset`."""
    return {key: canonical_coin(spec["baseAsset"]) for key, spec in specs.items()
            if isinstance(spec, dict) and isinstance(spec.get("baseAsset"), str)}


def read_exchange_info(path: str | Path) -> Specs:
    """Read a saved `GET /dapi/v1/exchangeInfo` response; problems are ParseErrors."""
    payload = read_json_file(path, "exchangeInfo")
    return parse_exchange_info(payload, where=str(path))


async def fetch_exchange_info(rest_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Specs:
    """Fetch the live contract sizes (no retries: the instrument table has its own)."""
    async with JsonClient(rest_url, name=EXCHANGE, timeout_s=timeout_s, retries=0) as http:
        payload = await http.get(EXCHANGE_INFO_PATH)
    return parse_exchange_info(payload, where=f"{http.base_url}{EXCHANGE_INFO_PATH}")


# -- parsing -----------------------------------------------------------------------------------


def parse_force_order(
    raw: dict[str, Any], recv_ms: int, sizes: Mapping[str, Decimal],
    bases: Mapping[str, str] | None = None,
) -> Liquidation:
    """Normalize one COIN-M forceOrder event; sizes are contracts worth `contractSize` USD.

    {"e": "forceOrder", "E": 1591154240950,
     "o": {"s": "BTCUSD_200925", "ps": "BTCUSD",   # symbol, pair
           "S": "SELL",                             # order side: SELL = a LONG was liquidated
           "q": "1", "p": "9425.5",                 # contracts ordered, IOC limit price
           "ap": "9496.5", "z": "1",                # average fill price, contracts filled
           "X": "FILLED", "T": 1591154240949}}      # trade time: our exchange timestamp
    notional_usd = z × contractSize; qty_base = notional_usd / ap (never p). The base coin is
    exchangeInfo's `baseAsset` (by symbol, then pair); without a table, the pair's name.
    """
    o = need(raw, "o", "forceOrder")
    symbol = text(need(o, "s", "o"), "o.s")
    size = _contract_size(o, symbol, sizes)
    # Side, z, ap (with its zero fallback) and T are validated exactly as on USDⓈ-M.
    base = binance.parse_force_order(raw, recv_ms, EXCHANGE)
    contracts, price = base.qty_base, base.price
    try:
        usd = contracts * size
        qty = usd / price
    except DecimalException:
        raise ParseError(f"{symbol}: size or price out of range") from None
    if not (qty.is_finite() and qty > 0 and usd > 0):
        raise ParseError(f"{symbol}: size or price out of range")
    coin = _base_asset(o, symbol, bases or {}) or base.base
    # Contracts are USD-sized whatever the quote, so the event is always priced.
    return dataclasses.replace(base, qty_base=qty, notional_usd=usd, base=coin)


def _base_asset(o: dict[str, Any], symbol: str, bases: Mapping[str, str]) -> str | None:
    pair = o.get("ps")
    return bases.get(symbol) or (bases.get(pair) if isinstance(pair, str) else None)


def _contract_size(o: dict[str, Any], symbol: str, sizes: Mapping[str, Decimal]) -> Decimal:
    pair = o.get("ps")
    if not isinstance(pair, str) or not pair:
        pair = symbol.split("_", 1)[0]  # BTCUSD_PERP -> BTCUSD, the venue's pair naming
    size = sizes.get(symbol) or sizes.get(pair)
    if size is None:
        raise UnknownContract(symbol, f"{symbol}: unknown contractSize (pair {pair}); load "
                              f"{EXCHANGE_INFO_PATH} (decode: --instruments FILE)")
    return size


def parse_message(
    msg: Frame | Any, recv_ms: int, sizes: Mapping[str, Decimal],
    bases: Mapping[str, str] | None = None,
) -> list[Liquidation]:
    """Normalize one websocket message: raw, combined-stream wrapped, or an array."""
    return binance.parse_message(msg, recv_ms,
                                 partial(parse_force_order, sizes=sizes, bases=bases),
                                 exchange=EXCHANGE)


# -- the venue surface -------------------------------------------------------------------------


def make_feeds(sink: Sink, options: FeedOptions) -> list[WsFeed]:
    """One socket for every COIN-M symbol; contract sizes are fetched before it connects.

    Sizes come from `options.rest_url` (refreshed daily unless `options.refresh_s` says
    otherwise, cached in `options.store_path`); if the venue cannot be reached: the cache,
    however old, then `options.instruments_path`, then the shipped snapshot.
    """
    sizes: dict[str, Decimal] = {}
    bases: dict[str, str] = {}
    path = options.instruments_path
    table = InstrumentTable(
        EXCHANGE, partial(fetch_exchange_info, options.rest_url or DEFAULT_REST_URL,
                          options.rest_timeout_s),
        store_path=options.store_path, refresh_s=options.refresh_s or DAY_MS / 1000,
        clock=options.clock, fallback=partial(read_exchange_info, path or SNAPSHOT),
    )
    # Merge, never replace: an expired delivery contract still has late events to size.
    table.on_update(lambda specs: sizes.update(contract_sizes(specs)))
    table.on_update(lambda specs: bases.update(base_assets(specs)))

    def parse(frame: Frame, recv_ms: int) -> list[Liquidation]:
        try:
            return parse_message(frame, recv_ms, sizes, bases)
        except UnknownContract as exc:
            table.request_refresh(str(exc))  # a new listing: look again, at most every 5 min
            raise

    return [VenueFeed(EXCHANGE, options.url or DEFAULT_URL, parse, sink, table=table,
                      **options.socket())]


def decoder(instruments_path: str | None = None) -> Callable[[str], list[Liquidation]]:
    """`liqbot decode --exchange binance-coinm`: sizes from an exchangeInfo file, over the
    shipped snapshot (a file's entries win per symbol)."""
    specs = read_exchange_info(SNAPSHOT)
    if instruments_path:
        specs.update(read_exchange_info(instruments_path))
    sizes, bases = contract_sizes(specs), base_assets(specs)
    return lambda line: parse_message(line, time.time_ns() // 1_000_000, sizes, bases)
