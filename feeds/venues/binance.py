"""Binance USDⓈ-M futures: `!forceOrder@arr` liquidations on the `/market` route; funding and OI.

The stream is sampled: at most one liquidation per symbol per 1000 ms (PROTOCOLS.md §1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from feeds.clock import Clock
from feeds.model import DAY_MS, Liquidation, ParseError, Side, canonical_coin
from feeds.net.backoff import Backoff
from feeds.net.http import DEFAULT_TIMEOUT_S, JsonClient
from feeds.net.ws import FeedTiming, GapFn, Sink, WsFeed
from feeds.venues.base import FeedOptions, FundingPoll, Item, PollContext, VenueFeed
from feeds.venues.binance_rest import (
    parse_funding_info,
    parse_open_interest,
    parse_premium_index,
)
from feeds.venues.instruments import InstrumentTable, Specs
from feeds.venues.parsing import (
    dec,
    each_item,
    loads,
    need,
    positive,
    read_json_file,
    text,
    ts_ms,
)
from feeds.venues.reference import QUOTE_COINS, REFERENCE, note_mark

logger = logging.getLogger(__name__)

EXCHANGE = "binance"
# Since 2026-04-23 forceOrder is only served on the /market route (PROTOCOLS.md §1).
DEFAULT_URL = "wss://fstream.binance.com/market/ws/!forceOrder@arr"
# exchangeInfo: each symbol's baseAsset and quoteAsset (PROTOCOLS.md §1), refreshed daily.
DEFAULT_REST_URL = "https://fapi.binance.com"
EXCHANGE_INFO_PATH = "/fapi/v1/exchangeInfo"
# Shipped with the package (pyproject package-data "feeds.venues" = data/*.json): the offline
# start's table, used when neither the venue nor the store's cache answers.
SNAPSHOT = Path(__file__).parent / "data" / "binance_exchange_info.json"
FUNDING_URL = DEFAULT_REST_URL
SAMPLED = True
# The production host, where a route outside /market/ silently carries no forceOrder at all.
_HOSTS = frozenset({"fstream.binance.com"})

_SIDES = {"SELL": Side.LONG, "BUY": Side.SHORT}
_TS_LO, _TS_HI = 1_000_000_000_000, 10_000_000_000_000  # parsing.ts_ms's sane range
_MAX = Decimal("1e18")  # parsing.dec's bound
# Binance names every futures contract {base}{quote}, a delivery one with _{YYMMDD} after it
# (BTCUSDT_260327), a COIN-M one with _PERP (BTCUSD_PERP). The quote assets it lists:
_QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "USD", "BTC")
_USD_QUOTES = frozenset({"FDUSD", "USDT", "USDC", "BUSD", "USD"})
_LATEST = REFERENCE.latest
_loads = orjson.loads


def split_symbol(symbol: str) -> tuple[str | None, str | None]:
    """(base, quote) of a Binance futures symbol; (None, None) outside its naming rule."""
    pair = symbol.split("_", 1)[0].upper()
    for quote in _QUOTE_ASSETS:
        if pair.endswith(quote) and len(pair) > len(quote):
            return canonical_coin(pair[: -len(quote)]), quote
    return None, None


# symbol -> (base, quote, USD-quoted?, a reference coin to note?): a plain dict, not an
# lru_cache, because this runs for every event on the hottest path of ingest. exchangeInfo
# fills it (learn_parts); the naming rule only fills the symbols no table has listed.
_PARTS: dict[str, tuple[str | None, str | None, bool, bool]] = {}
_MAX_PARTS = 10_000
# Called with the symbol when the naming rule had to serve (the live table asks again).
_unlisted: list[Callable[[str], None]] = []


def _parts(base: str | None, quote: str | None) -> tuple[str | None, str | None, bool, bool]:
    usd_quoted = quote in _USD_QUOTES
    return base, quote, usd_quoted, usd_quoted and base in QUOTE_COINS


def symbol_parts(exchange: str, symbol: str) -> tuple[str | None, str | None, bool, bool]:
    """split_symbol, said once per symbol: the last resort when no exchangeInfo listed it
    (COIN-M replaces the base from its own table, so only USDⓈ-M logs it)."""
    base, quote = split_symbol(symbol)
    if exchange == EXCHANGE:
        logger.info("%s %s: not in exchangeInfo; base %s, quote %s read from the symbol name",
                    exchange, symbol, base, quote)
        for hook in _unlisted:
            hook(symbol)
    parts = _parts(base, quote)
    if len(_PARTS) < _MAX_PARTS:
        _PARTS[symbol] = parts
    return parts


def learn_parts(specs: Specs) -> None:
    """Put exchangeInfo's base and quote of every listed symbol where the parser looks."""
    for symbol, spec in specs.items():
        base, quote = spec.get("baseAsset"), spec.get("quoteAsset")
        if not (isinstance(base, str) and isinstance(quote, str)):
            continue  # a cache row from elsewhere: the naming rule serves it
        if len(_PARTS) >= _MAX_PARTS and symbol not in _PARTS:
            break
        _PARTS[symbol] = _parts(canonical_coin(base), quote.upper())


# -- exchangeInfo --------------------------------------------------------------------------------


def parse_exchange_info(payload: Any, where: str = "exchangeInfo") -> Specs:
    """symbol -> {baseAsset, quoteAsset} from `GET /fapi/v1/exchangeInfo`.

    {"symbols": [{"symbol": "ETHBTC", "pair": "ETHBTC", "contractType": "PERPETUAL",
                  "baseAsset": "ETH", "quoteAsset": "BTC", "marginAsset": "BTC", ...}]}
    Delivery contracts (BTCUSDT_260327) are listed under their own symbol. Malformed rows
    are skipped with a warning.
    """
    rows = need(payload, "symbols", where)
    if not isinstance(rows, list):
        raise ParseError(f"{where}: 'symbols' must be a list")
    specs: Specs = {}
    for i, row in enumerate(rows):
        try:
            symbol = text(need(row, "symbol", f"{where}: symbols[{i}]"), "symbol")
            base = text(need(row, "baseAsset", symbol), f"{symbol}.baseAsset")
            quote = text(need(row, "quoteAsset", symbol), f"{symbol}.quoteAsset")
        except ParseError as exc:
            logger.warning("%s: skipped an exchangeInfo row: %s", EXCHANGE, exc)
            continue
        if base.isalnum() and quote.isalnum():
            specs[symbol] = {"baseAsset": base, "quoteAsset": quote}
        else:
            logger.warning("%s: skipped exchangeInfo row %s: odd asset names", EXCHANGE, symbol)
    return specs


def read_exchange_info(path: str | Path) -> Specs:
    """Read a saved `GET /fapi/v1/exchangeInfo` response; problems are ParseErrors."""
    payload = read_json_file(path, "exchangeInfo")
    return parse_exchange_info(payload, where=str(path))


async def fetch_exchange_info(rest_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Specs:
    """Fetch the live table (no retries: the instrument table has its own)."""
    async with JsonClient(rest_url, name=EXCHANGE, timeout_s=timeout_s, retries=0) as http:
        payload = await http.get(EXCHANGE_INFO_PATH)
    return parse_exchange_info(payload, where=f"{http.base_url}{EXCHANGE_INFO_PATH}")


def parse_force_order(
    raw: dict[str, Any], recv_ms: int, exchange: str = EXCHANGE
) -> Liquidation:
    """Normalize one forceOrder event.

    {"e": "forceOrder", "E": 1568014460893,
     "o": {"s": "BTCUSDT", "S": "SELL",          # SELL: the order sold, so a LONG was liquidated
           "q": "0.014", "p": "9910",             # original qty, IOC limit price (worse than fill)
           "ap": "9910", "z": "0.014",            # average fill price, cumulative filled qty
           "T": 1568014460893}}                   # trade time: our exchange timestamp
    """
    try:
        o = raw["o"]
    except (KeyError, TypeError):
        o = need(raw, "o", "forceOrder")  # raises, naming what is wrong
    try:  # every field there, the rule: one lookup each
        symbol, side_raw, qty_raw, price_raw = o["s"], o["S"], o["z"], o["ap"]
    except (KeyError, TypeError):  # the helpers name what is missing
        symbol, side_raw = need(o, "s", "o"), need(o, "S", "o")
        qty_raw, price_raw = need(o, "z", "o"), need(o, "ap", "o")
    if type(symbol) is not str or not symbol:
        text(symbol, "o.s")
    side = _SIDES.get(side_raw) if type(side_raw) is str else None
    if side is None:
        raise ParseError(f"o.S: unknown side {str(side_raw)[:20]!r}")
    fast = False
    if type(qty_raw) is str and type(price_raw) is str:  # the rule: the checks of dec, inline
        try:
            qty, price = Decimal(qty_raw), Decimal(price_raw)
            fast = 0 < qty <= _MAX and 0 < price <= _MAX
        except (InvalidOperation, ValueError):  # not a number, or a NaN compared
            pass
    if not fast:  # anything else: the helpers decide, and name what is wrong
        qty = positive(qty_raw, "o.z")
        price = dec(price_raw, "o.ap")
        if price <= 0:  # ap is 0 on some unfilled edge cases: fall back to the limit price
            price = positive(need(o, "p", "o"), "o.p")
    t = o["T"] if "T" in o else raw.get("E")
    # A plain int in range is the rule; ts_ms says what is wrong with anything else.
    ts = t if type(t) is int and _TS_LO <= t < _TS_HI else ts_ms(t, "o.T")
    base, quote, usd_quoted, reference = _PARTS.get(symbol) or symbol_parts(exchange, symbol)
    usd = qty * price
    if reference:
        _LATEST[base] = (ts, price)  # type: ignore[index]  # REFERENCE.note, inlined
    elif not usd_quoted and quote is not None:  # ETHBTC: qty × price is BTC, not USD
        ref = REFERENCE.usd(quote, ts)
        usd = usd * ref if ref is not None else Decimal(0)  # 0: unpriced (Liquidation.priced)
    # Positional: keywords cost a third more on the hottest line of ingest.
    return Liquidation(exchange, symbol, side, qty, price, usd, ts, recv_ms,
                       True,  # sampled: at most one liquidation per symbol per 1000 ms
                       raw, base, None, None if usd_quoted else quote)


def parse_message(
    msg: Any,
    recv_ms: int,
    parse_item: Callable[[dict[str, Any], int], Liquidation] = parse_force_order,
    exchange: str = EXCHANGE,
) -> list[Liquidation]:
    """Normalize one websocket message: raw, combined-stream wrapped, or an array.

    Subscription acks ({"result": null, "id": 1}) and other event types yield [].
    """
    if isinstance(msg, (str, bytes)):
        try:  # orjson itself: the helper's call costs a tenth of the decoding on this path
            msg = _loads(msg)
        except (ValueError, RecursionError):
            msg = loads(msg)  # raises the ParseError that names the problem
    if type(msg) is dict:  # one event per frame: the common case, kept short
        if "stream" in msg and "data" in msg:
            msg = msg["data"]
        elif msg.get("e") == "forceOrder":
            return [parse_item(msg, recv_ms)]
    if not isinstance(msg, list):
        if type(msg) is dict and msg.get("e") == "forceOrder":  # a combined stream's event
            return [parse_item(msg, recv_ms)]
        return _one(msg, recv_ms, parse_item)
    # `!forceOrder@arr` may batch: each item stands alone (parsing.each_item).
    return each_item(exchange, msg, lambda item: _one(item, recv_ms, parse_item))


def _one(
    item: Any, recv_ms: int, parse_item: Callable[[dict[str, Any], int], Liquidation]
) -> list[Liquidation]:
    if not isinstance(item, dict):
        raise ParseError(f"expected an object, got {type(item).__name__}")
    if item.get("e") != "forceOrder":
        if "e" in item or ("result" in item and "id" in item):
            return []  # another stream's event on a combined socket, or a subscription ack
        raise ParseError("not a forceOrder event: missing key 'e'")
    return [parse_item(item, recv_ms)]


def binance_feed(
    sink: Sink,
    *,
    url: str = DEFAULT_URL,
    on_gap: GapFn | None = None,
    clock: Clock | None = None,
    backoff: Backoff | None = None,
    timing: FeedTiming | None = None,
    connect_options: Mapping[str, Any] | None = None,
) -> WsFeed:
    """Build the live USDⓈ-M liquidation feed; `await feed.run()` streams until cancelled.

    The raw-stream URL names the stream itself, so nothing is sent after connecting.
    """
    _check_route(url)
    return WsFeed(
        EXCHANGE, url, parse_message, sink,
        on_gap=on_gap, clock=clock, backoff=backoff, timing=timing,
        connect_options=connect_options,
    )


def _check_route(url: str) -> None:
    parts = urlsplit(url)
    if parts.hostname in _HOSTS and not parts.path.startswith("/market/"):
        raise ValueError(
            f"{url}: Binance serves forceOrder only on the /market route since 2026-04-23; "
            f"use {DEFAULT_URL}"
        )


def decoder(instruments_path: str | None = None) -> Callable[[str], list[Liquidation]]:
    """`liqbot decode --exchange binance`: base and quote from an exchangeInfo file, else
    the shipped snapshot, else the naming rule."""
    learn_parts(read_exchange_info(instruments_path or SNAPSHOT))
    return lambda line: parse_message(line, time.time_ns() // 1_000_000)


def make_feeds(sink: Sink, options: FeedOptions) -> list[WsFeed]:
    """One socket carries every USDⓈ-M symbol; exchangeInfo is fetched before it connects.

    The table comes from `options.rest_url` (refreshed daily unless `options.refresh_s` says
    otherwise, cached in `options.store_path`); if the venue cannot be reached: the cache,
    however old, then `options.instruments_path`, then the shipped snapshot. A custom
    `options.url` without a REST URL fetches nothing: the file or snapshot serves.
    """
    url = options.url or DEFAULT_URL
    _check_route(url)
    fallback = partial(read_exchange_info, options.instruments_path or SNAPSHOT)
    if options.rest_url is None and url != DEFAULT_URL:
        # A socket pointed elsewhere (a relay, a test exchange) and no REST URL: the venue's
        # own host may not be reachable from there, so the file or snapshot serves, unfetched.
        learn_parts(fallback())
        _unlisted.clear()
        return [VenueFeed(EXCHANGE, url, parse_message, sink, **options.socket())]
    table = InstrumentTable(
        EXCHANGE, partial(fetch_exchange_info, options.rest_url or DEFAULT_REST_URL,
                          options.rest_timeout_s),
        store_path=options.store_path, refresh_s=options.refresh_s or DAY_MS / 1000,
        clock=options.clock, fallback=fallback,
    )
    # Merge, never replace: a delisted symbol's late events keep their base and quote.
    table.on_update(learn_parts)
    _unlisted[:] = [lambda symbol: table.request_refresh(f"{symbol} is not in exchangeInfo")]
    return [VenueFeed(EXCHANGE, url, parse_message, sink, table=table, **options.socket())]


# -- funding and open interest (REST): the parsers are feeds/venues/binance_rest.py ---------


async def fetch_funding(ctx: PollContext, symbols: Sequence[str]) -> list[Item]:
    """One poll: premiumIndex (funding + mark) and openInterest per symbol."""
    # Symbols absent from fundingInfo settle every 8 h (PROTOCOLS.md §1); listed ones say so.
    intervals = await ctx.cached("fundingInfo", lambda: ctx.get(
        "/fapi/v1/fundingInfo", {}, parse_funding_info))

    async def one(symbol: str) -> list[Item]:
        prem = await ctx.get("/fapi/v1/premiumIndex", {"symbol": symbol},
                             lambda raw: parse_premium_index(raw, intervals))
        mark = prem[0].mark_price if prem else None
        if mark is not None:
            base, _, _, reference = _PARTS.get(symbol) or symbol_parts(EXCHANGE, symbol)
            if reference:  # a USD-quoted BTC or ETH contract: its mark prices ETHBTC
                note_mark(base, prem[0].funding.ts_ms, mark)
        oi = await ctx.get("/fapi/v1/openInterest", {"symbol": symbol},
                           lambda raw: parse_open_interest(raw, mark))
        return [*(p.funding for p in prem), oi]

    return await ctx.each_symbol(symbols, one)


FUNDING = FundingPoll(FUNDING_URL, ("BTCUSDT", "ETHUSDT", "SOLUSDT"), fetch_funding)
