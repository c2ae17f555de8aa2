"""Binance USDⓈ-M futures: `!forceOrder@arr` liquidations on the `/market` route."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from feeds.clock import Clock
from feeds.model import Liquidation, ParseError, Side
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming, GapFn, Sink, WsFeed
from feeds.venues.parsing import dec, loads, need, positive, text, ts_ms

EXCHANGE = "binance"
# Since 2026-04-23 forceOrder is only served on the /market route (PROTOCOLS.md §1).
DEFAULT_URL = "wss://fstream.binance.com/market/ws/!forceOrder@arr"
STREAM = "!forceOrder@arr"
# The production host, where a route outside /market/ silently carries no forceOrder at all.
_HOSTS = frozenset({"fstream.binance.com"})

_SIDES = {"SELL": Side.LONG, "BUY": Side.SHORT}


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
    o = need(raw, "o", "forceOrder")
    symbol = text(need(o, "s", "o"), "o.s")
    side_raw = need(o, "S", "o")
    if not isinstance(side_raw, str) or side_raw not in _SIDES:
        raise ParseError(f"o.S: unknown side {str(side_raw)[:20]!r}")
    qty = positive(need(o, "z", "o"), "o.z")
    price = dec(need(o, "ap", "o"), "o.ap")
    if price <= 0:  # ap is 0 on some unfilled edge cases: fall back to the limit price
        price = positive(need(o, "p", "o"), "o.p")
    # Positional: keywords cost a third more on the hottest line of ingest.
    return Liquidation(exchange, symbol, _SIDES[side_raw], qty, price, qty * price,
                       ts_ms(o.get("T", raw.get("E")), "o.T"), recv_ms,
                       True,  # sampled: at most one liquidation per symbol per 1000 ms
                       raw)


def parse_message(
    msg: Any,
    recv_ms: int,
    parse_item: Callable[[dict[str, Any], int], Liquidation] = parse_force_order,
) -> list[Liquidation]:
    """Normalize one websocket message: raw, combined-stream wrapped, or an array.

    Subscription acks ({"result": null, "id": 1}) and other event types yield [].
    """
    if isinstance(msg, (str, bytes)):
        msg = loads(msg)
    if isinstance(msg, dict) and "stream" in msg and "data" in msg:
        msg = msg["data"]
    items = msg if isinstance(msg, list) else [msg]
    out: list[Liquidation] = []
    for item in items:
        if not isinstance(item, dict):
            raise ParseError(f"expected an object, got {type(item).__name__}")
        if "result" in item and "id" in item:
            continue  # subscription ack
        if item.get("e") != "forceOrder":
            if "e" in item:
                continue  # another stream's event on a combined socket
            raise ParseError("not a forceOrder event: missing key 'e'")
        out.append(parse_item(item, recv_ms))
    return out


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
    """`liqbot decode --exchange binance`: USDⓈ-M needs no contract table."""
    return lambda line: parse_message(line, time.time_ns() // 1_000_000)


def make_feeds(
    sink: Sink, *, clock: Clock | None = None, on_gap: GapFn | None = None,
    backoff: Backoff | None = None, url: str | None = None, **_: Any,
) -> list[WsFeed]:
    """The venue registry's entry point: one socket carries every USDⓈ-M symbol."""
    return [binance_feed(sink, url=url or DEFAULT_URL, on_gap=on_gap, clock=clock,
                         backoff=backoff)]
