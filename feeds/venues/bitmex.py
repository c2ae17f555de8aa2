"""BitMEX: the `liquidation` table, every liquidation order entering the book (PROTOCOLS.md §5)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection

from feeds.clock import Clock
from feeds.model import Liquidation, ParseError, Side
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming, Frame, GapFn, Sink, WsFeed
from feeds.venues.base import FeedOptions, refuse_rest_url

# Re-exported: the venue's names stay where callers and tests import them from.
from feeds.venues.bitmex_contracts import (  # noqa: F401
    BUILTIN_CONTRACTS,
    SNAPSHOT,
    Contract,
    UnknownContract,
    contract_of,
    known_contracts,
    load_instruments,
)
from feeds.venues.parsing import dec, loads, need, note_fault, positive, text
from feeds.venues.reference import REFERENCE

logger = logging.getLogger(__name__)

EXCHANGE = "bitmex"
DEFAULT_URL = "wss://ws.bitmex.com/realtime?subscribe=liquidation"
# BitMEX: after 5 s without a message send `ping`; no `pong` within 5 s means a dead socket.
PING_AFTER_S = 5.0
PONG_TIMEOUT_S = 5.0
DEFAULT_REST_URL = None  # contract sizes come from a file, not REST
SAMPLED = False  # each liquidation order is published as it enters the book

_SIDES = {"Sell": Side.LONG, "Buy": Side.SHORT}  # the ORDER side: a Sell closes a long
_MAX_OPEN = 10_000  # open liquidation orders tracked; the book is tiny, this only bounds junk


def parse_liquidation_row(
    row: Any, recv_ms: int, contracts: Mapping[str, Contract] = BUILTIN_CONTRACTS
) -> Liquidation:
    """Normalize one `insert` row of the `liquidation` table.

    {"table": "liquidation", "action": "insert",
     "data": [{"orderID": "98ae1dad-6a3b-51c4-14bd-e076919e9e30",
               "symbol": "XBTUSD", "side": "Buy",    # ORDER side: Buy closes a SHORT
               "price": 13854.5,                      # the liquidation order's price
               "leavesQty": 314930}]}                 # contracts; XBTUSD: 1 contract = 1 USD
    No timestamp anywhere: the event is stamped with the receive time. `orderID` is the
    event's venue id: two orders alike in price and size in one frame are two events.
    """
    symbol = text(need(row, "symbol", "data[]"), "symbol")
    side_raw = need(row, "side", symbol)
    if not isinstance(side_raw, str) or side_raw not in _SIDES:
        raise ParseError(f"side: unknown side {str(side_raw)[:20]!r}")
    price = positive(need(row, "price", symbol), "price")
    leaves = positive(need(row, "leavesQty", symbol), "leavesQty")
    spec = contracts.get(symbol)
    if spec is None:
        raise UnknownContract(f"{symbol}: unknown instrument, no contract size; pass the "
                              f"/api/v1/instrument/active response as the instruments file")
    qty, usd, quote = spec.convert(leaves, price, recv_ms)
    if spec.kind == "inverse" and spec.base == "BTC":
        REFERENCE.note("BTC", recv_ms, price)  # XBTUSD prices the quanto and XBT-quoted rows
    order_id = row.get("orderID")
    return Liquidation(
        exchange=EXCHANGE, symbol=symbol, position_side=_SIDES[side_raw],
        qty_base=qty, price=price, notional_usd=usd,
        ts_exchange_ms=None, ts_recv_ms=recv_ms,
        sampled=False,  # every liquidation order is published as it enters the book
        raw=row, base=spec.base, venue_id=order_id if isinstance(order_id, str) else None,
        quote=quote,
    )


class LiquidationTable:
    """Follow the `liquidation` table of one socket: `insert` rows, and growth, are events.

    Open orders are tracked by orderID. An `update` that shrinks leavesQty is the order
    filling, and a `delete` its end: bookkeeping, never a new liquidation. An `update` that
    RAISES leavesQty (a recorded session: 12,900 -> 21,600 contracts) is BitMEX merging
    further liquidated positions into the open order, so the growth is counted as a new
    liquidation of the same symbol, side and price (the update's price if it sends one).
    """

    def __init__(self, contracts: Mapping[str, Contract] | None = None) -> None:
        self.contracts = {**BUILTIN_CONTRACTS, **(contracts or {})}
        self.open: dict[str, Decimal | None] = {}  # orderID -> leavesQty
        self._rows: dict[str, dict[str, Any]] = {}  # orderID -> symbol, side, price as known
        self._warned: set[str] = set()

    def parse(self, frame: Frame | Any, recv_ms: int) -> list[Liquidation]:
        """Apply one frame; return the liquidations it inserted (acks and `pong` -> [])."""
        if frame in ("pong", b"pong"):
            return []
        msg = loads(frame) if isinstance(frame, (str, bytes)) else frame
        if not isinstance(msg, dict):
            raise ParseError(f"expected an object, got {type(msg).__name__}")
        if "table" not in msg:
            return _control(msg)
        if msg["table"] != "liquidation":
            return []  # another table on a shared socket
        action = need(msg, "action", "liquidation")
        rows = need(msg, "data", "liquidation")
        if not isinstance(rows, list):
            raise ParseError("data: expected a list")
        if action == "insert":
            return self._insert(rows, recv_ms)
        ids = [_order_id(row) for row in rows]
        return self._bookkeep(action, rows, ids, recv_ms)

    def _bookkeep(self, action: Any, rows: list[Any], ids: list[str],
                  recv_ms: int) -> list[Liquidation]:
        """Apply a `partial`, `update` or `delete`; only an order's growth is an event."""
        if action == "partial":
            # The snapshot sent on (re)connect is the book of orders ALREADY open: they
            # entered it before this socket existed, so they were counted then or fell in a
            # recorded gap. Counting them would add every open order again per reconnect,
            # and with no timestamp in the rows they would be misdated to "now" as well.
            self.open = {i: _leaves(row) for i, row in zip(ids, rows, strict=True)}
            self._rows = {i: _known(row, {}) for i, row in zip(ids, rows, strict=True)}
        elif action == "update":
            changes = [(i, _leaves(r), r) for i, r in zip(ids, rows, strict=True)
                       if "leavesQty" in r]
            grown: list[Liquidation] = []
            for i, leaves, row in changes:
                if i not in self.open:  # an order we never saw inserted stays unknown
                    continue
                before = self.open[i]
                self.open[i] = leaves
                self._rows[i] = _known(row, self._rows.get(i, {}))
                if before is not None and leaves is not None and leaves > before:
                    grown += self._growth(i, leaves - before, leaves, recv_ms)
            return grown
        elif action == "delete":
            for i in ids:
                self.open.pop(i, None)
                self._rows.pop(i, None)
        else:
            raise ParseError(f"action: unknown action {str(action)[:20]!r}")
        return []

    def _growth(self, order_id: str, added: Decimal, leaves: Decimal,
                recv_ms: int) -> list[Liquidation]:
        row = {**self._rows.get(order_id, {}), "orderID": order_id, "leavesQty": added}
        try:
            liq = parse_liquidation_row(row, recv_ms, self.contracts)
        except ParseError as exc:  # an order we know too little about (no price or side)
            note_fault(EXCHANGE, exc)
            return []
        # The id names the order and how far it grew, so each growth step is its own event.
        return [replace(liq, venue_id=f"{order_id}+{leaves}")]
    def _insert(self, rows: list[Any], recv_ms: int) -> list[Liquidation]:
        # Everything is checked before the book changes: a frame with no good row leaves
        # no trace. Each row stands alone: a bad one is counted, its neighbours kept.
        events: list[Liquidation] = []
        bad: list[ParseError] = []
        fresh: dict[str, tuple[Decimal | None, dict[str, Any]]] = {}
        for row in rows:
            try:
                i = _order_id(row)
                if i in self.open or i in fresh:
                    continue  # a resent insert, or an order the partial already listed
                events.append(parse_liquidation_row(row, recv_ms, self.contracts))
                fresh[i] = (_leaves(row), _known(row, {}))
            except UnknownContract as exc:
                bad.append(exc)
                fresh[i] = (_leaves(row), _known(row, {}))
            except ParseError as exc:
                bad.append(exc)
        if bad and not events:
            raise bad[0]
        for i, (leaves, known) in fresh.items():
            self._remember(i, leaves, known)
        for skipped in bad:  # the frame's good rows still count; say what was not
            if isinstance(skipped, UnknownContract):
                self._warn_once(skipped)
            else:
                note_fault(EXCHANGE, skipped)
        return events

    def _remember(self, order_id: str, leaves: Decimal | None, known: dict[str, Any]) -> None:
        if order_id not in self.open and len(self.open) >= _MAX_OPEN:
            oldest = next(iter(self.open))
            del self.open[oldest]
            self._rows.pop(oldest, None)
        self.open[order_id] = leaves
        self._rows[order_id] = known

    def _warn_once(self, exc: ParseError) -> None:
        key = str(exc).split(":", 1)[0]
        if key not in self._warned and len(self._warned) < 1000:
            self._warned.add(key)
            logger.warning("%s: liquidation skipped (%s)", EXCHANGE, exc)


def _control(msg: dict[str, Any]) -> list[Liquidation]:
    """Welcome banner, subscribe ack -> []; an error reply is surfaced as a ParseError."""
    if "error" in msg:
        raise ParseError(f"error reply: {str(msg['error'])[:120]}")
    if "info" in msg or "success" in msg:
        return []
    raise ParseError("not a table message: missing key 'table'")


def _order_id(row: Any) -> str:
    return text(need(row, "orderID", "data[]"), "orderID")


def _known(row: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """What a later growth event needs of an order: its symbol, side and price."""
    return {**before, **{k: row[k] for k in ("symbol", "side", "price") if k in row}}


def _leaves(row: dict[str, Any]) -> Decimal | None:
    value = row.get("leavesQty")
    return None if value is None else dec(value, "leavesQty")


class TextPing:
    """Keep a socket alive with text `ping` frames; a missing `pong` ends the connection.

    `idle_only`: ping only after `every_s` without any frame (BitMEX); otherwise ping every
    `every_s` regardless (CoinGlass). Call `saw()` on every received frame.
    """

    def __init__(self, every_s: float, timeout_s: float, *, idle_only: bool) -> None:
        if not (every_s > 0 and timeout_s > 0):
            raise ValueError(f"need every_s > 0 and timeout_s > 0, got {every_s}, {timeout_s}")
        self.every_s, self.timeout_s, self.idle_only = every_s, timeout_s, idle_only
        self.pings = 0
        self._last_rx = time.monotonic()
        self._pong = asyncio.Event()

    def saw(self, frame: Frame) -> bool:
        """Note a received frame; return True when it is the `pong`."""
        self._last_rx = time.monotonic()
        if frame in ("pong", b"pong"):
            self._pong.set()
            return True
        return False

    async def __call__(self, ws: ClientConnection) -> None:
        """The WsFeed keepalive hook: runs for the life of one connection."""
        self._last_rx = time.monotonic()
        while True:
            await self._wait_turn()
            self._pong.clear()
            await ws.send("ping")
            self.pings += 1
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._pong.wait()
            except TimeoutError:
                raise TimeoutError(f"no pong within {self.timeout_s:g}s") from None

    async def _wait_turn(self) -> None:
        if not self.idle_only:
            await asyncio.sleep(self.every_s)
            return
        left = self.every_s
        while left > 0:  # frames keep arriving: keep putting the ping off
            await asyncio.sleep(left)
            left = self._last_rx + self.every_s - time.monotonic()


def bitmex_feed(
    sink: Sink,
    *,
    url: str = DEFAULT_URL,
    contracts: Mapping[str, Contract] | None = None,
    on_gap: GapFn | None = None,
    clock: Clock | None = None,
    backoff: Backoff | None = None,
    timing: FeedTiming | None = None,
    ping_after_s: float = PING_AFTER_S,
    pong_timeout_s: float = PONG_TIMEOUT_S,
    connect_options: Mapping[str, Any] | None = None,
) -> WsFeed:
    """Build the live liquidation feed; the URL's `?subscribe=liquidation` subscribes."""
    table = LiquidationTable(contracts)
    ping = TextPing(ping_after_s, pong_timeout_s, idle_only=True)

    def parse(frame: Frame, recv_ms: int) -> list[Liquidation]:
        return [] if ping.saw(frame) else table.parse(frame, recv_ms)

    return WsFeed(EXCHANGE, url, parse, sink, on_gap=on_gap, keepalive=ping, clock=clock,
                  backoff=backoff, timing=timing, connect_options=connect_options)


def make_feeds(sink: Sink, options: FeedOptions) -> list[WsFeed]:
    """The venue surface: one socket, contracts from the snapshot and an instruments file."""
    refuse_rest_url(EXCHANGE, options.rest_url)
    return [bitmex_feed(sink, url=options.url or DEFAULT_URL,
                        contracts=known_contracts(options.instruments_path), **options.socket())]


def decoder(instruments_path: str | None = None) -> Callable[[str], list[Liquidation]]:
    """`liqbot decode --exchange bitmex`: lines share one table, so updates stay silent."""
    table = LiquidationTable(known_contracts(instruments_path))
    return lambda line: table.parse(line.strip(), time.time_ns() // 1_000_000)
