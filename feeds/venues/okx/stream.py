"""OKX v5: the `liquidation-orders` channel for SWAP and FUTURES, sized in contracts (`ctVal`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import DecimalException
from functools import partial
from typing import Any

from websockets.asyncio.client import ClientConnection

from feeds.model import DAY_MS, Liquidation, ParseError, Side, canonical_coin
from feeds.net.ws import Frame, Sink, WsFeed
from feeds.venues.base import FeedOptions, VenueFeed
from feeds.venues.instruments import InstrumentTable
from feeds.venues.okx.rest import (
    DEFAULT_REST_URL,
    EXCHANGE,
    INSTRUMENTS_PATH,
    ContractSpec,
    contract_specs,
    fetch_instruments,
    load_okx_instruments,
    snapshot,
)
from feeds.venues.parsing import each_item, loads, need, positive, text, ts_ms
from feeds.venues.reference import QUOTE_COINS, REFERENCE, USD_QUOTES, to_usd

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://ws.okx.com:8443/ws/v5/public"
CHANNEL = "liquidation-orders"
# OKX says the channel carries only part of its liquidations (PROTOCOLS.md §4).
SAMPLED = True
INST_TYPES = ("SWAP", "FUTURES")
# OKX closes a connection after 30 s without traffic (RELIABILITY.md item 3).
OKX_IDLE_LIMIT_S = 30.0

_POSITIONS = {"long": Side.LONG, "short": Side.SHORT}  # posSide names the position itself
_ORDERS = {"sell": Side.LONG, "buy": Side.SHORT}  # net mode: the liquidation ORDER's side


class UnknownInstrument(ParseError):
    """An instId missing from the contract table: never guessed."""

    def __init__(self, inst_id: str) -> None:
        super().__init__(f"{inst_id}: unknown instrument, no ctVal; load {INSTRUMENTS_PATH} "
                         "(decode: --instruments FILE)")
        self.inst_id = inst_id


# -- parsing -----------------------------------------------------------------------------------


def position_side(detail: dict[str, Any], where: str) -> Side:
    """`posSide` long/short is the position; `net` (or none given) falls back to the order
    `side`. Neither known: this detail cannot be counted (its neighbours still are)."""
    pos = detail.get("posSide")
    if isinstance(pos, str) and pos in _POSITIONS:
        return _POSITIONS[pos]
    if pos not in ("net", "", None):
        raise ParseError(f"{where}: unknown posSide {str(pos)[:20]!r}")
    side = detail.get("side")
    if not isinstance(side, str) or side not in _ORDERS:
        raise ParseError(f"{where}: net position with unknown side {str(side)[:20]!r}")
    return _ORDERS[side]


def base_of(item: dict[str, Any], inst_id: str) -> str:
    """The base coin OKX names: `instFamily`/`uly` BTC-USD, else the instId's head."""
    for key in ("instFamily", "uly"):
        family = item.get(key)
        if isinstance(family, str) and "-" in family:
            return canonical_coin(family.split("-", 1)[0])
    return canonical_coin(inst_id.split("-", 1)[0])


def parse_detail(
    detail: Any, item: dict[str, Any], spec: ContractSpec, recv_ms: int
) -> Liquidation:
    """Normalize one `details[]` entry of one instrument.

    {"instId": "IOST-USDT-SWAP", "instType": "SWAP", "uly": "IOST-USDT",
     "details": [{"posSide": "short",    # the liquidated position (net: use "side")
                  "side": "buy",         # the liquidation order
                  "sz": "13",            # contracts, each ctVal units of ctValCcy
                  "bkPx": "0.007831",    # bankruptcy price
                  "bkLoss": "0", "ccy": "",
                  "ts": "1692266434010"}]}   # ms, as a string
    linear: qty = sz × ctVal, usd = qty × bkPx; inverse (ctValCcy USD): usd = sz × ctVal,
    qty = usd / bkPx.
    """
    where = spec.inst_id
    if not isinstance(detail, dict):
        raise ParseError(f"{where}: detail must be an object")
    side = position_side(detail, where)
    size = positive(need(detail, "sz", where), f"{where}.sz")
    price = positive(need(detail, "bkPx", where), f"{where}.bkPx")
    ts = ts_ms(need(detail, "ts", where), f"{where}.ts")
    base = base_of(item, spec.inst_id)
    parts = spec.inst_id.split("-")  # BTC-USDT-SWAP, BTC-USD-260327: the quote is second
    quote = parts[1] if len(parts) > 2 else "USD"
    priced = True
    try:
        if spec.ct_type == "inverse" or spec.ct_val_ccy.upper() == "USD":
            usd = size * spec.ct_val
            qty = usd / price
        else:
            qty = size * spec.ct_val
            # Linear: bkPx is in the quote currency; a coin quote is converted (reference.py).
            usd, priced = to_usd(qty * price, quote, ts)
    except DecimalException:
        raise ParseError(f"{where}: size or price out of range") from None
    if not (qty.is_finite() and qty > 0 and (usd > 0 or not priced)):
        raise ParseError(f"{where}: size or price out of range")
    if quote in USD_QUOTES and base in QUOTE_COINS:
        REFERENCE.note(base, ts, price)
    raw = {**{k: v for k, v in item.items() if k != "details"}, "details": [detail]}
    return Liquidation(
        exchange=EXCHANGE, symbol=spec.inst_id, position_side=side, qty_base=qty, price=price,
        notional_usd=usd, ts_exchange_ms=ts, ts_recv_ms=recv_ms, sampled=True, raw=raw,
        base=base,  # usd 0 when unpriced (Liquidation.priced)
        quote=None if spec.ct_type == "inverse" or quote in USD_QUOTES else quote,
    )


def parse_message(
    msg: Frame | Any,
    recv_ms: int,
    specs: Mapping[str, ContractSpec],
    on_unknown: Callable[[UnknownInstrument], None] | None = None,
) -> list[Liquidation]:
    """Normalize every `data[].details[]` entry of one push; `pong` and events yield [].

    Each item and each detail stands alone: a bad one is counted and skipped (parsing.each_item)
    and the rest of the push still counts. With `on_unknown`, an unknown instId is reported
    there instead (the feed refreshes its table). Resent old events are NOT removed here:
    the store's idempotent key does that.
    """
    if msg in ("pong", b"pong"):
        return []
    if isinstance(msg, (str, bytes)):
        msg = loads(msg)
    if not isinstance(msg, dict):
        raise ParseError(f"expected an object, got {type(msg).__name__}")
    if "event" in msg:
        _check_event(msg)
        return []
    arg = need(msg, "arg", "push")
    if not isinstance(arg, dict) or arg.get("channel") != CHANNEL:
        logger.debug("%s: ignoring a push on %.80r", EXCHANGE, arg)
        return []
    data = need(msg, "data", CHANNEL)
    if not isinstance(data, list):
        raise ParseError(f"{CHANNEL}: 'data' must be a list")

    def one(item: Any) -> list[Liquidation]:
        try:
            return _parse_item(item, recv_ms, specs)
        except UnknownInstrument as exc:
            if on_unknown is None:
                raise
            on_unknown(exc)
            return []

    return each_item(EXCHANGE, data, one)


def _parse_item(item: Any, recv_ms: int, specs: Mapping[str, ContractSpec]) -> list[Liquidation]:
    inst_id = text(need(item, "instId", "data[]"), "instId")
    details = need(item, "details", inst_id)
    if not isinstance(details, list):
        raise ParseError(f"{inst_id}: 'details' must be a list")
    spec = specs.get(inst_id)
    if spec is None:
        raise UnknownInstrument(inst_id)
    return each_item(EXCHANGE, details, lambda d: [parse_detail(d, item, spec, recv_ms)])


def _check_event(msg: dict[str, Any]) -> None:
    """`subscribe` acks are fine; `error` means no data will come; `notice` warns of a cut."""
    event = msg.get("event")
    if event in ("error", "notice"):
        logger.warning("%s: %s %.20s: %.200s", EXCHANGE, event, msg.get("code"), msg.get("msg"))


# -- the live feed -----------------------------------------------------------------------------


class OkxFeed(VenueFeed):
    """The public socket: pings with text `ping` whenever it has heard nothing for a while."""

    def __init__(self, url: str, sink: Sink, *, table: InstrumentTable, subscribe: Any,
                 ping_after_s: float, pong_timeout_s: float, **kwargs: Any) -> None:
        self.specs: dict[str, ContractSpec] = {}
        super().__init__(EXCHANGE, url, self._parse, sink, table=table, subscribe=subscribe,
                         keepalive=self._keepalive, **kwargs)
        self.ping_after_s, self.pong_timeout_s = ping_after_s, pong_timeout_s
        self._warned: set[str] = set()
        # Merge, never replace: an expired future's late events still need its ctVal.
        table.on_update(lambda rows: self.specs.update(contract_specs(rows)))

    def _parse(self, frame: Frame, recv_ms: int) -> list[Liquidation]:
        return parse_message(frame, recv_ms, self.specs, self._unknown)

    def _unknown(self, exc: UnknownInstrument) -> None:
        self.stats.parse_errors += 1
        if exc.inst_id not in self._warned and len(self._warned) < 1000:
            self._warned.add(exc.inst_id)
            logger.warning("%s: skipping events of %s", EXCHANGE, exc)
        if self.table is not None:
            self.table.request_refresh(str(exc))  # most likely a new listing

    async def _keepalive(self, ws: ClientConnection) -> None:
        """OKX's own rule: after `ping_after_s` of silence send `ping`, expect a frame back."""
        started = time.monotonic()
        while True:
            quiet_s = time.monotonic() - max(self.heard_at, started)
            if quiet_s < self.ping_after_s:
                await asyncio.sleep(self.ping_after_s - quiet_s)
                continue
            before = self.frames_heard
            await ws.send("ping")
            if not await self.wait_frame(before, self.pong_timeout_s):
                raise TimeoutError(f"no pong or data {self.pong_timeout_s:g}s after a ping")


def make_feeds(sink: Sink, options: FeedOptions) -> list[WsFeed]:
    """The venue surface: one socket, with OKX's own defaults."""
    return [okx_feed(sink, options)]


def okx_feed(
    sink: Sink,
    options: FeedOptions,
    *,
    inst_types: Sequence[str] = INST_TYPES,
    ping_after_s: float = 20.0,
    pong_timeout_s: float = 8.0,
) -> OkxFeed:
    """One socket subscribed to `liquidation-orders` for every type in `inst_types`.

    ctVal comes from the REST instruments (refreshed daily unless `options.refresh_s` says
    otherwise, cached in `options.store_path`); if OKX cannot be reached: the cache, however
    old, then `options.instruments_path` over the shipped snapshot.
    """
    if not 0 < ping_after_s < OKX_IDLE_LIMIT_S or not pong_timeout_s > 0:
        raise ValueError(f"{EXCHANGE}: need 0 < ping_after_s < {OKX_IDLE_LIMIT_S:g} and "
                         f"pong_timeout_s > 0")
    if not inst_types:
        raise ValueError(f"{EXCHANGE}: inst_types is empty")
    table = InstrumentTable(
        EXCHANGE, partial(fetch_instruments, options.rest_url or DEFAULT_REST_URL,
                          tuple(inst_types), options.rest_timeout_s),
        store_path=options.store_path, refresh_s=options.refresh_s or DAY_MS / 1000,
        clock=options.clock, fallback=partial(snapshot, options.instruments_path),
    )
    subscribe = {"op": "subscribe",
                 "args": [{"channel": CHANNEL, "instType": t} for t in inst_types]}
    return OkxFeed(options.url or DEFAULT_URL, sink, table=table, subscribe=[subscribe],
                   ping_after_s=ping_after_s, pong_timeout_s=pong_timeout_s, **options.socket())


def decoder(instruments_path: str | None = None) -> Callable[[str], list[Liquidation]]:
    """`liqbot decode --exchange okx`: the shipped snapshot, overridden by the file per instId."""
    specs = load_okx_instruments(instruments_path)
    # strip(): a line read from a file still ends in its newline, and `pong\n` is a pong.
    return lambda line: parse_message(line.strip(), time.time_ns() // 1_000_000, specs)
