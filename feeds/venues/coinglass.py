"""CoinGlass websocket: `liquidationOrders`, single orders across exchanges (PROTOCOLS.md §8).

The API key travels in the URL's query, so every log line that could show the URL goes
through `redact()`: `cg-api-key=***`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from feeds.clock import Clock
from feeds.model import Liquidation, ParseError, Side, canonical_coin
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming, Frame, GapFn, Sink, WsFeed
from feeds.venues.base import FeedOptions, refuse_rest_url
from feeds.venues.bitmex import TextPing
from feeds.venues.parsing import each_item, loads, need, positive, text, ts_ms

logger = logging.getLogger(__name__)

EXCHANGE = "coinglass"
DEFAULT_URL = "wss://open-ws.coinglass.com/ws-api"
API_KEY_ENV = "LIQBOT_COINGLASS_API_KEY"
CHANNEL = "liquidationOrders"  # Standard plan and above
SUBSCRIBE = {"method": "subscribe", "channels": [CHANNEL]}
PING_EVERY_S = 20.0
PONG_TIMEOUT_S = 10.0
# Aggregates over REST live in coinglass_api.py; the socket needs no instrument table.
DEFAULT_REST_URL = None
SAMPLED = False  # single orders as the venues report them

_SIDES = {1: Side.SHORT, 2: Side.LONG}  # the ORDER side: 1 = Buy closes a short, 2 = Sell
_KEY_PARAM = "cg-api-key"
_KEY_IN_TEXT = re.compile(r"(cg-api-key=)[^&\s'\"]+", re.IGNORECASE)
# Loggers that may print the connect URL: the connector ("connected to <url>") and websockets'
# own debug lines ("> GET /ws-api?cg-api-key=... HTTP/1.1").
_URL_LOGGERS = ("feeds.net.ws", "websockets.client", __name__)


def parse_order(raw: Any, recv_ms: int) -> Liquidation:
    """Normalize one `liquidationOrders` item.

    {"channel": "liquidationOrders",
     "data": [{"baseAsset": "BTC", "exName": "Binance",   # exName is kept in `raw`
               "symbol": "BTCUSDT", "price": 56738.0,      # number, or a numeric string
               "side": 2,                                  # ORDER side: 2 = Sell -> a LONG
               "time": 1725416318379,                      # ms
               "volUsd": 3858.18}]}                        # USD notional
    """
    symbol = text(need(raw, "symbol", "data[]"), "symbol")
    side = _side(need(raw, "side", symbol))
    price = positive(need(raw, "price", symbol), "price")
    usd = positive(need(raw, "volUsd", symbol), "volUsd")
    try:
        qty = usd / price
    except ArithmeticError:
        raise ParseError(f"{symbol}: volUsd or price out of range") from None
    base = raw.get("baseAsset")  # CoinGlass names the coin itself: no guess needed
    return Liquidation(
        exchange=EXCHANGE, symbol=symbol, position_side=side,
        qty_base=qty, price=price, notional_usd=usd,
        ts_exchange_ms=ts_ms(need(raw, "time", symbol), "time"), ts_recv_ms=recv_ms,
        sampled=False, raw=raw,
        base=canonical_coin(base) if isinstance(base, str) and base.isalnum() else None,
    )


def _side(value: Any) -> Side:
    if isinstance(value, str) and value in ("1", "2"):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in _SIDES:
        raise ParseError(f"side: unknown side {str(value)[:20]!r}")
    return _SIDES[value]


def parse_message(frame: Frame | Any, recv_ms: int) -> list[Liquidation]:
    """Normalize one frame; `pong`, acks and other channels -> []."""
    if frame in ("pong", b"pong"):
        return []
    msg = loads(frame) if isinstance(frame, (str, bytes)) else frame
    if not isinstance(msg, dict):
        raise ParseError(f"expected an object, got {type(msg).__name__}")
    channel = msg.get("channel")
    if channel is None:
        return _control(msg)
    if channel != CHANNEL:
        return []
    items = need(msg, "data", CHANNEL)
    if not isinstance(items, list):
        raise ParseError("data: expected a list")
    return each_item(EXCHANGE, items, lambda item: [parse_order(item, recv_ms)])


def _control(msg: dict[str, Any]) -> list[Liquidation]:
    """A reply that is not a push: an error is surfaced (e.g. a plan without the channel)."""
    code = msg.get("code")
    if "error" in msg or msg.get("success") is False or code not in (None, 0, "0", 200, "200"):
        detail = msg.get("msg", msg.get("error", ""))
        raise ParseError(f"error reply: code {str(code)[:12]}: {str(detail)[:120]}")
    return []


# -- the key -------------------------------------------------------------------------------


def redact(line: str) -> str:
    """Hide the value of every `cg-api-key=` in a line."""
    return _KEY_IN_TEXT.sub(r"\1***", line)


class RedactKey(logging.Filter):
    """Rewrite a record whose message carries `cg-api-key=<key>` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_REDACT = RedactKey()


def _install_redaction() -> None:
    for name in _URL_LOGGERS:
        target = logging.getLogger(name)
        if _REDACT not in target.filters:
            target.addFilter(_REDACT)


def keyed_url(base: str, api_key: str) -> str:
    """Return `base` with the key added as `?cg-api-key=` (URL-quoted)."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != _KEY_PARAM]
    query.append((_KEY_PARAM, api_key))
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- the feed ------------------------------------------------------------------------------


def coinglass_feed(
    sink: Sink,
    *,
    api_key: str,
    url: str = DEFAULT_URL,
    on_gap: GapFn | None = None,
    clock: Clock | None = None,
    backoff: Backoff | None = None,
    timing: FeedTiming | None = None,
    ping_every_s: float = PING_EVERY_S,
    pong_timeout_s: float = PONG_TIMEOUT_S,
    connect_options: Mapping[str, Any] | None = None,
) -> WsFeed:
    """Build the live feed; `api_key` comes from the caller (env `LIQBOT_COINGLASS_API_KEY`)."""
    if not isinstance(api_key, str) or not api_key.strip():
        raise ValueError(f"{EXCHANGE}: no API key; set {API_KEY_ENV}")
    _install_redaction()
    ping = TextPing(ping_every_s, pong_timeout_s, idle_only=False)

    def parse(frame: Frame, recv_ms: int) -> list[Liquidation]:
        return [] if ping.saw(frame) else parse_message(frame, recv_ms)

    try:
        return WsFeed(EXCHANGE, keyed_url(url, api_key.strip()), parse, sink,
                      subscribe=[SUBSCRIBE], on_gap=on_gap, keepalive=ping, clock=clock,
                      backoff=backoff, timing=timing, connect_options=connect_options)
    except ValueError as exc:  # an invalid URL is echoed in the message, key included
        raise ValueError(redact(str(exc))) from None


def make_feeds(sink: Sink, options: FeedOptions) -> list[WsFeed]:
    """The venue surface: one socket, keyed with `api_key`; nothing is kept on disk."""
    refuse_rest_url(EXCHANGE, options.rest_url)
    return [coinglass_feed(sink, api_key=options.api_key or "", url=options.url or DEFAULT_URL,
                           **options.socket())]


def decoder(instruments_path: str | None = None) -> Callable[[str], list[Liquidation]]:
    """`liqbot decode --exchange coinglass`: pushes carry USD already."""
    return lambda line: parse_message(line.strip(), time.time_ns() // 1_000_000)
