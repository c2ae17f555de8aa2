"""Deribit: liquidations picked out of the `trades.*` channels (PROTOCOLS.md §6); funding, OI."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection

from feeds.clock import Clock
from feeds.model import (
    HOUR_MS,
    Funding,
    Liquidation,
    OpenInterest,
    ParseError,
    Side,
    canonical_coin,
)
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming, Frame, GapFn, Sink, WsFeed
from feeds.venues.base import FeedOptions, FundingPoll, Item, PollContext, refuse_rest_url
from feeds.venues.parsing import (
    dec,
    each_item,
    json_rows,
    loads,
    need,
    non_negative,
    positive,
    text,
    ts_ms,
)
from feeds.venues.reference import USD_QUOTES, to_usd

EXCHANGE = "deribit"
DEFAULT_URL = "wss://www.deribit.com/ws/api/v2"
DEFAULT_REST_URL = None  # the stream needs no instrument table
FUNDING_URL = "https://www.deribit.com"
SAMPLED = False  # every liquidation trade is published; 100ms only batches them
# Unauthenticated clients get `100ms`, not `raw`. Kind-wide channels are unconfirmed
# (PROTOCOLS.md §6); per-instrument ones (`trades.BTC-PERPETUAL.100ms`) also work here.
DEFAULT_CHANNELS = ("trades.future.BTC.100ms", "trades.future.ETH.100ms")
HEARTBEAT_S = 30  # what we ask for with public/set_heartbeat; Deribit's minimum is 10

# Who was liquidated, by the taker's direction. The maker took the other side of the trade.
_TAKER = {"sell": Side.LONG, "buy": Side.SHORT}
_MAKER = {"sell": Side.SHORT, "buy": Side.LONG}
# BTC_USDC-PERPETUAL: amount in base coin, price in the quote after the underscore.
_LINEAR = re.compile(r"^[A-Z0-9]+_([A-Z0-9]+)-")
_OPTION = re.compile(r"-\d+(d\d+)?-[CP]$")  # BTC-27DEC24-60000-C


def parse_trade(raw: Any, recv_ms: int) -> list[Liquidation]:
    """Normalize one trade; [] unless it carries `liquidation` (M, T or MT: two events).

    {"trade_id": "9178", "trade_seq": 933, "timestamp": 1550736299753,
     "instrument_name": "BTC-PERPETUAL",     # inverse: amount is USD
     "price": 3948.69, "index_price": 3930.73, "tick_direction": 3,
     "direction": "sell",                     # the TAKER's side
     "amount": 10,                            # USD (inverse) or base coin (BTC_USDC-...)
     "liquidation": "T"}                      # T: taker liquidated -> sold -> a LONG
    The base coin is the instrument name's head (BTC-PERPETUAL, BTC_USDC-PERPETUAL: BTC);
    `trade_id` is the venue's id, so two fills alike in time, price and size stay two.
    """
    if not isinstance(raw, dict):
        raise ParseError(f"data[]: expected an object, got {type(raw).__name__}")
    who = raw.get("liquidation")
    if who is None:
        return []  # an ordinary trade
    if who not in ("M", "T", "MT"):
        raise ParseError(f"liquidation: unknown value {str(who)[:20]!r}")
    direction = need(raw, "direction", "trade")
    if not isinstance(direction, str) or direction not in _TAKER:
        raise ParseError(f"direction: unknown direction {str(direction)[:20]!r}")
    name = text(need(raw, "instrument_name", "trade"), "instrument_name")
    price = positive(need(raw, "price", name), "price")
    amount = positive(need(raw, "amount", name), "amount")
    ts = ts_ms(need(raw, "timestamp", name), "timestamp")
    qty, usd = _convert(name, amount, price, ts)
    sides = ([_TAKER[direction]] if "T" in who else []) + (
        [_MAKER[direction]] if "M" in who else [])
    trade_id = raw.get("trade_id")
    vid = (str(trade_id) if isinstance(trade_id, (str, int)) and not isinstance(trade_id, bool)
           and trade_id != "" else None)
    base = base_of(name)
    return [
        Liquidation(
            exchange=EXCHANGE, symbol=name, position_side=side, qty_base=qty, price=price,
            notional_usd=usd, ts_exchange_ms=ts, ts_recv_ms=recv_ms,
            sampled=False,  # every liquidation trade is published; 100ms only batches them
            raw=raw, base=base, venue_id=vid,  # usd 0 when unpriced (Liquidation.priced)
            quote=_coin_quote(name),
        )
        for side in sides
    ]


def _coin_quote(name: str) -> str | None:
    """The coin a linear contract is quoted in (ETH_BTC-PERPETUAL: BTC); None for USD ones."""
    linear = _LINEAR.match(name)
    quote = linear.group(1) if linear else None
    return None if quote is None or quote in USD_QUOTES else quote


def base_of(instrument_name: str) -> str:
    """BTC-PERPETUAL, BTC-27MAR26, BTC_USDC-PERPETUAL, ETH-27DEC24-3000-C -> BTC / ETH."""
    return canonical_coin(instrument_name.split("-", 1)[0].split("_", 1)[0])


def _convert(name: str, amount: Decimal, price: Decimal,
             ts: int) -> tuple[Decimal, Decimal]:
    """Return (qty_base, notional_usd) of a trade `amount`; USD 0 when it cannot be priced."""
    if _OPTION.search(name):
        raise ParseError(f"{name}: options are not supported (premium is quoted in the coin)")
    try:
        linear = _LINEAR.match(name)
        if linear:  # a quote other than USDC/USDT is converted, or the event is unpriced
            return amount, to_usd(amount * price, linear.group(1), ts)[0]
        return amount / price, amount  # perpetuals and inverse futures: amount is USD
    except ArithmeticError:
        raise ParseError(f"{name}: amount or price out of range") from None


def parse_message(
    frame: Frame | Any, recv_ms: int, on_test_request: Callable[[], None] | None = None
) -> list[Liquidation]:
    """Normalize one JSON-RPC frame; results, heartbeats and other channels -> [].

    {"jsonrpc": "2.0", "method": "subscription",
     "params": {"channel": "trades.BTC-PERPETUAL.100ms", "data": [<trade>, ...]}}
    {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
    """
    msg = loads(frame) if isinstance(frame, (str, bytes)) else frame
    if not isinstance(msg, dict):
        raise ParseError(f"expected an object, got {type(msg).__name__}")
    if "error" in msg:
        raise ParseError(f"error reply: {str(msg['error'])[:120]}")
    method = msg.get("method")
    if method is None:
        if "result" in msg:
            return []  # the answer to one of our requests
        raise ParseError("missing key 'method'")
    params = need(msg, "params", str(method)[:20])
    if method == "heartbeat":
        if need(params, "type", "heartbeat") == "test_request" and on_test_request:
            on_test_request()
        return []
    if method != "subscription":
        return []
    channel = text(need(params, "channel", "params"), "params.channel")
    if not channel.startswith("trades."):
        return []
    trades = need(params, "data", channel)
    if not isinstance(trades, list):
        raise ParseError("params.data: expected a list")
    # Each trade stands alone: an option liquidation beside a perpetual one costs only itself.
    return each_item(EXCHANGE, trades, lambda trade: parse_trade(trade, recv_ms))


def _request(request_id: int, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": dict(params)}


class Heartbeat:
    """Answer each `test_request` with `public/test`; silence past `stale_after_s` is fatal.

    Once `public/set_heartbeat` is on, Deribit sends a frame at least every interval, so a
    quiet socket is a dead one; the connector reconnects when this raises.
    """

    def __init__(self, stale_after_s: float) -> None:
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s!r}")
        self.stale_after_s = stale_after_s
        self.answered = 0
        self._pending = 0
        self._wake = asyncio.Event()
        self._last_rx = time.monotonic()
        self._ids = itertools.count(1000)

    def saw(self) -> None:
        """Note that a frame arrived."""
        self._last_rx = time.monotonic()

    def test_requested(self) -> None:
        self._pending += 1
        self._wake.set()

    async def __call__(self, ws: ClientConnection) -> None:
        """The WsFeed keepalive hook: runs for the life of one connection."""
        self._pending, self._last_rx = 0, time.monotonic()
        self._wake.clear()
        while True:
            left = self._last_rx + self.stale_after_s - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no frame for {self.stale_after_s:g}s despite heartbeats")
            try:
                async with asyncio.timeout(left):
                    await self._wake.wait()
            except TimeoutError:
                continue
            self._wake.clear()
            while self._pending:
                self._pending -= 1
                await ws.send(json.dumps(_request(next(self._ids), "public/test", {})))
                self.answered += 1


def subscribe_messages(channels: Sequence[str], heartbeat_s: int) -> list[dict[str, Any]]:
    """The requests sent on every (re)connect: heartbeat first, then the channels."""
    if not channels:
        raise ValueError("deribit: at least one trades channel is needed")
    return [
        _request(1, "public/set_heartbeat", {"interval": heartbeat_s}),
        _request(2, "public/subscribe", {"channels": list(channels)}),
    ]


def deribit_feed(
    sink: Sink,
    *,
    url: str = DEFAULT_URL,
    channels: Sequence[str] = DEFAULT_CHANNELS,
    heartbeat_s: int = HEARTBEAT_S,
    stale_after_s: float | None = None,
    on_gap: GapFn | None = None,
    clock: Clock | None = None,
    backoff: Backoff | None = None,
    timing: FeedTiming | None = None,
    connect_options: Mapping[str, Any] | None = None,
) -> WsFeed:
    """Build the live feed: trades channels, filtered to liquidations, kept alive by heartbeat."""
    if heartbeat_s < 10:
        raise ValueError(f"{EXCHANGE}: heartbeat_s must be >= 10 (Deribit's minimum)")
    heartbeat = Heartbeat(stale_after_s or 3 * heartbeat_s)

    def parse(frame: Frame, recv_ms: int) -> list[Liquidation]:
        heartbeat.saw()
        return parse_message(frame, recv_ms, on_test_request=heartbeat.test_requested)

    return WsFeed(EXCHANGE, url, parse, sink,
                  subscribe=subscribe_messages(channels, heartbeat_s), on_gap=on_gap,
                  keepalive=heartbeat, clock=clock, backoff=backoff, timing=timing,
                  connect_options=connect_options)


def make_feeds(sink: Sink, options: FeedOptions) -> list[WsFeed]:
    """The venue surface: one socket for every channel; nothing is kept on disk."""
    refuse_rest_url(EXCHANGE, options.rest_url)
    return [deribit_feed(sink, url=options.url or DEFAULT_URL, **options.socket())]


def decoder(instruments_path: str | None = None) -> Callable[[str], list[Liquidation]]:
    """`liqbot decode --exchange deribit`: instrument names carry the size unit."""
    return lambda line: parse_message(line, time.time_ns() // 1_000_000)


# -- funding and open interest (REST) ----------------------------------------------------------


def _rpc_result(raw: Any, where: str) -> Any:
    if isinstance(raw, dict) and "error" in raw:
        err = raw["error"]
        msg = err.get("message", err) if isinstance(err, dict) else err
        raise ParseError(f"{where}: JSON-RPC error {str(msg)[:80]!r}")
    return need(raw, "result", where)


def parse_funding_history(
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
    for r in json_rows(rows, "get_funding_rate_history"):
        t = ts_ms(need(r, "timestamp", "funding"), "timestamp")
        one = dec(need(r, "interest_1h", "funding"), "interest_1h")
        eight = dec(need(r, "interest_8h", "funding"), "interest_8h")
        out.append(Funding(EXCHANGE, instrument, t, eight if use_8h else one,
                           8.0 if use_8h else 1.0))
    return out


def parse_ticker(raw: Any) -> OpenInterest:
    """Normalize `public/ticker` open interest (the envelope or its `result`).

    {"result": {"instrument_name": "BTC-PERPETUAL", "timestamp": 1739502303204,
        "open_interest": 1006596600,     # inverse: USD; linear (BTC_USDC-...): base coin
        "mark_price": 96000.5, "current_funding": 0.0, "funding_8h": 0.00001}}
    """
    wrapped = isinstance(raw, dict) and ("result" in raw or "error" in raw)
    r = _rpc_result(raw, "ticker") if wrapped else raw
    symbol = text(need(r, "instrument_name", "ticker"), "instrument_name")
    oi = non_negative(need(r, "open_interest", "ticker"), "open_interest")
    mark = non_negative(need(r, "mark_price", "ticker"), "mark_price")
    t = ts_ms(need(r, "timestamp", "ticker"), "timestamp")
    if "_" in symbol.split("-", 1)[0]:  # BTC_USDC-PERPETUAL: linear, sized in coin
        return OpenInterest(EXCHANGE, symbol, t, oi, oi * mark)
    return OpenInterest(EXCHANGE, symbol, t, oi / mark if mark > 0 else None, oi)


async def fetch_funding(ctx: PollContext, symbols: Sequence[str]) -> list[Item]:
    """One poll: the latest hourly funding point and the ticker's OI per instrument."""
    async def one(symbol: str) -> list[Item]:
        now = ctx.clock.now_ms()
        # Hourly points: a 3 h window always holds the latest completed one.
        history = await ctx.get(
            "/api/v2/public/get_funding_rate_history",
            {"instrument_name": symbol, "start_timestamp": now - 3 * HOUR_MS,
             "end_timestamp": now},
            lambda raw: parse_funding_history(raw, symbol))
        oi = await ctx.get("/api/v2/public/ticker", {"instrument_name": symbol}, parse_ticker)
        latest = [max(history, key=lambda f: f.ts_ms)] if history else []
        return [*latest, oi]

    return await ctx.each_symbol(symbols, one)


FUNDING = FundingPoll(FUNDING_URL, ("BTC-PERPETUAL", "ETH-PERPETUAL"), fetch_funding)
