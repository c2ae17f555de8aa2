"""Bybit v5: `allLiquidation.{symbol}` on the linear and inverse public sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import DecimalException
from functools import partial
from typing import Any

from websockets.asyncio.client import ClientConnection

from feeds.model import Liquidation, ParseError, Side, canonical_coin
from feeds.net.backoff import Backoff
from feeds.net.http import DEFAULT_TIMEOUT_S, JsonClient
from feeds.net.ws import Frame, Sink, WsFeed
from feeds.venues.base import FeedOptions, VenueFeed
from feeds.venues.instruments import InstrumentTable, Specs
from feeds.venues.parsing import (
    each_item,
    loads,
    need,
    positive,
    read_json_file,
    text,
    ts_ms,
)

logger = logging.getLogger(__name__)

EXCHANGE = "bybit"
DEFAULT_URL = "wss://stream.bybit.com/v5/public"  # + "/linear" or "/inverse"
DEFAULT_REST_URL = "https://api.bybit.com"
INSTRUMENTS_PATH = "/v5/market/instruments-info"
CATEGORIES = ("linear", "inverse")
TOPIC = "allLiquidation."
SAMPLED = False  # every liquidation is pushed (PROTOCOLS.md §3)
# Used only when neither the venue nor the cache can list symbols: better the majors than none.
FALLBACK_SYMBOLS: dict[str, tuple[str, ...]] = {
    "linear": ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"),
    "inverse": ("BTCUSD", "ETHUSD"),
}
BaseOf = Callable[[str], str | None]

# `S` is the side of the liquidated POSITION, unlike every other venue (PROTOCOLS.md §0).
_SIDES = {"Buy": Side.LONG, "Sell": Side.SHORT}
# Inverse contracts are quoted in USD: BTCUSD perpetual, BTCUSDH25 quarterly.
_INVERSE = re.compile(r"USD(?:[FGHJKMNQUVXZ]\d{2})?$")
_MAX_PAGES = 50


def looks_inverse(symbol: str) -> bool:
    """Guess the category from the symbol (decode without an instruments file)."""
    return bool(_INVERSE.search(symbol))


# -- parsing -----------------------------------------------------------------------------------


def _no_base(symbol: str) -> str | None:
    return None


def parse_liquidation(
    item: Any, recv_ms: int, is_inverse: Callable[[str], bool] = looks_inverse,
    base_of: BaseOf = _no_base,
) -> Liquidation:
    """Normalize one item of an `allLiquidation` push.

    {"T": 1739502302929,        # ms: our exchange timestamp (the frame's "ts" is later)
     "s": "ROSEUSDT",
     "S": "Sell",               # POSITION side: Sell = a SHORT was liquidated (not the order!)
     "v": "20000",              # size: base coin (linear) / 1-USD contracts (inverse)
     "p": "0.04499"}            # bankruptcy price, not the fill
    linear: usd = v × p; inverse: usd = v, qty = v / p. The base coin is instruments-info's
    `baseCoin` (`base_of`); None leaves it to the symbol guess.
    """
    symbol = text(need(item, "s", "data[]"), "s")
    side = item.get("S")
    if not isinstance(side, str) or side not in _SIDES:
        raise ParseError(f"{symbol}: unknown side S={str(side)[:20]!r}")
    size = positive(need(item, "v", symbol), f"{symbol}.v")
    price = positive(need(item, "p", symbol), f"{symbol}.p")
    try:
        qty, usd = (size / price, size) if is_inverse(symbol) else (size, size * price)
    except DecimalException:
        raise ParseError(f"{symbol}: size or price out of range") from None
    if not (qty.is_finite() and qty > 0 and usd > 0):
        raise ParseError(f"{symbol}: size or price out of range")
    return Liquidation(
        exchange=EXCHANGE, symbol=symbol, position_side=_SIDES[side], qty_base=qty,
        price=price, notional_usd=usd, ts_exchange_ms=ts_ms(need(item, "T", symbol), "T"),
        ts_recv_ms=recv_ms, sampled=False, raw=item, base=base_of(symbol),
    )


def parse_message(
    msg: Frame | Any, recv_ms: int, is_inverse: Callable[[str], bool] = looks_inverse,
    base_of: BaseOf = _no_base,
) -> list[Liquidation]:
    """Normalize one frame; subscribe acks and pongs yield [] (a failed ack is logged)."""
    if isinstance(msg, (str, bytes)):
        msg = loads(msg)
    if not isinstance(msg, dict):
        raise ParseError(f"expected an object, got {type(msg).__name__}")
    if "op" in msg:
        _check_reply(msg)
        return []
    topic = need(msg, "topic", "frame")
    if not isinstance(topic, str) or not topic.startswith(TOPIC):
        logger.debug("%s: ignoring topic %.60r", EXCHANGE, topic)
        return []
    data = need(msg, "data", topic)
    if not isinstance(data, list):
        raise ParseError(f"{topic}: 'data' must be a list")
    return each_item(EXCHANGE, data,
                     lambda item: [parse_liquidation(item, recv_ms, is_inverse, base_of)])


def _check_reply(msg: dict[str, Any]) -> None:
    """Acks: {"success": false, "ret_msg": "...", "op": "subscribe"} means no data for it."""
    if msg.get("success") is False:
        logger.warning("%s: %s rejected: %.200s (req_id %.40s)", EXCHANGE, msg.get("op"),
                       msg.get("ret_msg"), msg.get("req_id"))


# -- symbols -----------------------------------------------------------------------------------


def parse_instruments_page(payload: Any, where: str = "instruments-info") -> tuple[Specs, str]:
    """Return the Trading symbols of one page and the cursor of the next ("" at the end).

    {"retCode": 0, "retMsg": "OK",
     "result": {"category": "linear", "nextPageCursor": "...",
                "list": [{"symbol": "BTCUSDT", "contractType": "LinearPerpetual",
                          "status": "Trading", "baseCoin": "BTC", "quoteCoin": "USDT",
                          "settleCoin": "USDT", ...}]}}
    """
    code = need(payload, "retCode", where)
    if str(code) != "0":
        raise ParseError(f"{where}: Bybit error {code!r}: {str(payload.get('retMsg'))[:100]}")
    result = need(payload, "result", where)
    rows = need(result, "list", where)
    if not isinstance(rows, list):
        raise ParseError(f"{where}: 'list' must be a list")
    specs: Specs = {}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
            continue
        if row.get("status", "Trading") == "Trading":
            spec = {"contractType": str(row.get("contractType", ""))}
            for key in ("baseCoin", "quoteCoin", "settleCoin"):
                if isinstance(row.get(key), str) and row[key].isalnum():
                    spec[key] = row[key]
            specs[row["symbol"]] = spec
    cursor = result.get("nextPageCursor")
    return specs, cursor if isinstance(cursor, str) else ""


async def fetch_symbols(
    rest_url: str, category: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Specs:
    """Every Trading symbol of a category, following `nextPageCursor`.

    No retries: the instrument table retries on its own schedule.
    """
    specs: Specs = {}
    cursor = ""
    async with JsonClient(rest_url, name=EXCHANGE, timeout_s=timeout_s, retries=0) as http:
        url = http.base_url + INSTRUMENTS_PATH
        for _ in range(_MAX_PAGES):
            params = {"category": category, "status": "Trading", "limit": "1000"}
            if cursor:
                params["cursor"] = cursor
            payload = await http.get(INSTRUMENTS_PATH, params)
            page, cursor = parse_instruments_page(payload, f"{url} ({category})")
            specs.update(page)
            if not cursor:
                return specs
    raise ParseError(f"{url} ({category}): still paging after {_MAX_PAGES} pages")


# -- the live feed -----------------------------------------------------------------------------


class BybitFeed(VenueFeed):
    """One category socket: subscribes every listed symbol, pings, adds new listings live.

    Subscribes go out from the per-connection session hook rather than `WsFeed.subscribe`:
    only the hook knows what its connection already has, so a refresh can add new listings
    to the open socket. The price: a 23 h recycle subscribes just after the swap, not before.
    """

    def __init__(self, category: str, url: str, sink: Sink, *, table: InstrumentTable,
                 batch_size: int, ping_interval_s: float, pong_timeout_s: float,
                 **kwargs: Any) -> None:
        inverse = category == "inverse"
        super().__init__(EXCHANGE, url, partial(parse_message, is_inverse=lambda _: inverse,
                                                base_of=lambda s: base_coin(table.specs, s)),
                         sink, table=table, keepalive=self._session, **kwargs)
        self.category, self.batch_size = category, batch_size
        self.ping_interval_s, self.pong_timeout_s = ping_interval_s, pong_timeout_s
        self.topics: list[str] = []  # what every new connection subscribes
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        table.on_update(self._set_symbols)

    def _set_symbols(self, specs: Specs) -> None:
        self.topics = [TOPIC + symbol for symbol in sorted(specs)]
        # A fresh event per change: every open session wakes up and subscribes what it lacks.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _session(self, ws: ClientConnection) -> None:
        """Per connection: subscribe in batches, then ping and pick up new listings."""
        sent: set[str] = set()
        next_ping = time.monotonic() + self.ping_interval_s
        while True:
            changed = self._changed  # taken first, so a change during the sends is not missed
            await self._subscribe(ws, [t for t in self.topics if t not in sent], sent)
            wait_s = next_ping - time.monotonic()
            if wait_s > 0:
                try:
                    async with asyncio.timeout(wait_s):
                        await changed.wait()
                except TimeoutError:
                    pass
                continue
            await self._ping(ws)
            next_ping = time.monotonic() + self.ping_interval_s

    async def _subscribe(self, ws: ClientConnection, topics: list[str], sent: set[str]) -> None:
        for i in range(0, len(topics), self.batch_size):
            batch = topics[i:i + self.batch_size]
            await ws.send(json.dumps({"req_id": f"sub-{next(self._ids)}", "op": "subscribe",
                                      "args": batch}))
            sent.update(batch)
        if topics:
            logger.info("%s %s: subscribed %d topics (%d on this connection)",
                        EXCHANGE, self.category, len(topics), len(sent))

    async def _ping(self, ws: ClientConnection) -> None:
        before = self.frames_heard
        await ws.send(json.dumps({"req_id": f"ping-{next(self._ids)}", "op": "ping"}))
        # Any frame proves the link: a pong, or data that overtook it.
        if not await self.wait_frame(before, self.pong_timeout_s):
            raise TimeoutError(f"{self.category}: no pong or data {self.pong_timeout_s:g}s "
                               "after a ping")


def make_feeds(sink: Sink, options: FeedOptions) -> list[WsFeed]:
    """The venue surface: one socket per category, with Bybit's own defaults."""
    return category_feeds(sink, options)


def category_feeds(
    sink: Sink,
    options: FeedOptions,
    *,
    categories: Sequence[str] = CATEGORIES,
    batch_size: int = 10,
    ping_interval_s: float = 20.0,
    pong_timeout_s: float = 10.0,
) -> list[WsFeed]:
    """One socket per category, at `options.url` + "/" + category.

    Symbols come from the REST instruments-info (refreshed hourly unless `options.refresh_s`
    says otherwise, cached in `options.store_path`); `batch_size` topics go in each
    subscribe message.
    """
    unknown = set(categories) - set(CATEGORIES)
    if unknown or not categories:
        raise ValueError(f"{EXCHANGE}: categories must be among {CATEGORIES}, got {categories}")
    if batch_size < 1 or not (ping_interval_s > 0 and pong_timeout_s > 0):
        raise ValueError(f"{EXCHANGE}: batch_size >= 1 and positive ping timers required")
    base = re.sub(r"/(linear|inverse)/?$", "", (options.url or DEFAULT_URL).rstrip("/"))
    rest_url = options.rest_url or DEFAULT_REST_URL
    feeds: list[WsFeed] = []
    for i, category in enumerate(categories):
        table = InstrumentTable(
            f"{EXCHANGE}:{category}",
            partial(fetch_symbols, rest_url, category, options.rest_timeout_s),
            store_path=options.store_path, refresh_s=options.refresh_s or 3600.0,
            clock=options.clock, fallback=partial(_fallback, category),
        )
        own = replace(options, backoff=_own_backoff(options.backoff, i))
        feeds.append(BybitFeed(
            category, f"{base}/{category}", sink, table=table, batch_size=batch_size,
            ping_interval_s=ping_interval_s, pong_timeout_s=pong_timeout_s, **own.socket(),
        ))
    return feeds


def _fallback(category: str) -> Specs:
    # Every fallback symbol is {coin}USDT or {coin}USD: the base is the symbol's head.
    quote = "USDT" if category == "linear" else "USD"
    return {symbol: {"baseCoin": symbol.removesuffix(quote)}
            for symbol in FALLBACK_SYMBOLS[category]}


def base_coin(specs: Specs, symbol: str) -> str | None:
    """The canonical base coin instruments-info gives `symbol`, or None."""
    base = specs.get(symbol, {}).get("baseCoin")
    return canonical_coin(base) if isinstance(base, str) else None


def _own_backoff(backoff: Backoff | None, index: int) -> Backoff | None:
    # Each socket counts its own failures; a shared counter would couple their delays.
    if backoff is None or index == 0:
        return backoff
    return Backoff(base_s=backoff.base_s, cap_s=backoff.cap_s, factor=backoff.factor)


def decoder(instruments_path: str | None = None) -> Callable[[str], list[Liquidation]]:
    """`liqbot decode --exchange bybit`; an instruments-info file settles linear vs inverse."""
    kinds: Specs = {}
    if instruments_path is not None:
        payload = read_json_file(instruments_path, "instruments")
        kinds, _ = parse_instruments_page(payload, instruments_path)

    def is_inverse(symbol: str) -> bool:
        kind = kinds.get(symbol, {}).get("contractType")
        return kind.startswith("Inverse") if kind else looks_inverse(symbol)

    return lambda line: parse_message(line, time.time_ns() // 1_000_000, is_inverse,
                                      partial(base_coin, kinds))
