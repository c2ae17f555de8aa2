"""Normalized market data: what every feed produces and everything downstream reads."""

from __future__ import annotations

import enum
import functools
import hashlib
import logging
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

logger = logging.getLogger(__name__)

# Stablecoin and fiat quotes, longest first so "USDT" wins over "USD". PERP: Bybit's old USDC
# perpetual naming (BTCPERP). No TUSD: it would read XBTUSD as XB and DOTUSD as DO.
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "USDE", "USD", "PERP", "EUR")
# Quarterly contracts named by month code and year: XBTZ25 (BitMEX), BTCUSDH26 (Bybit inverse).
_DATED = re.compile(r"^([A-Z0-9]{2,}?)(?:USDT|USDC|USD)?[FGHJKMNQUVXZ]\d{2}$")
# One name per asset: venues that spell it otherwise are mapped here (BitMEX's XBT).
COIN_ALIASES = {"XBT": "BTC"}
MARKET = "*"  # scope / coin / exchange wildcard: "summed across all"
# event_key's hash and its reading as a signed big-endian 64-bit int (int.from_bytes(...,
# "big", signed=True) gives the same number, at twice the cost per event).
_blake2b = hashlib.blake2b
_signed64 = struct.Struct(">q").unpack


class ParseError(ValueError):
    """A raw frame or file row that cannot be normalized; the message names why."""


class Side(enum.StrEnum):
    """The liquidated POSITION, never the raw order side."""

    LONG = "long"
    SHORT = "short"


def canonical_coin(name: str) -> str:
    """The one name of an asset across venues: XBT -> BTC, anything else upper-cased."""
    upper = name.upper()
    return COIN_ALIASES.get(upper, upper)


@functools.lru_cache(maxsize=4096)  # called per event; venues list a few hundred symbols
def coin_of(symbol: str) -> str:
    """Guess the base asset from a symbol string; venues that know it say so instead.

    BTCUSDT, BTC-USDT-SWAP, BTCUSD_PERP, BTCUSDT_260327, BTC_USDC-PERPETUAL, XBTUSD, XBTZ25,
    BTCUSDH26, BTCPERP -> BTC. A bare coin (BTC, XBT) is its own base.
    """
    s = symbol.upper()
    for sep in ("-", "/", ":"):
        if sep in s:  # BTC-USDT-SWAP, BTC_USDC-PERPETUAL, BTC/USDT: the base comes first
            s = s.split(sep, 1)[0]
            break
    if "_" in s:
        head, tail = s.split("_", 1)
        # BTC_USDC (Deribit linear): the base is the head as it stands; BTCUSD_PERP and
        # BTCUSDT_260327 (Binance): the head still carries its quote.
        if tail in ("USDC", "USDT"):
            return canonical_coin(head)
        s = head
    for quote in _QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            return canonical_coin(s[: -len(quote)])
    dated = _DATED.match(s)
    if dated:
        return canonical_coin(dated.group(1))
    return canonical_coin(s)


@functools.lru_cache(maxsize=4096)
def guessed_coin(exchange: str, symbol: str) -> str:
    """coin_of for an event whose venue did not name its base: logged once per symbol."""
    coin = coin_of(symbol)
    logger.info("%s %s: base coin guessed from the symbol as %s (no instrument metadata)",
                exchange, symbol, coin)
    return coin


def ms_to_dt(ts_ms: int) -> datetime:
    """Return the aware UTC datetime of an epoch-millisecond timestamp."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def iso_z(ts_ms: int) -> str:
    """Return `2026-01-13T22:00:00Z` for an epoch-millisecond timestamp."""
    return ms_to_dt(ts_ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_ms(ts_ms: int, span_ms: int) -> int:
    """Return the open of the bar of width `span_ms` that contains `ts_ms`."""
    return ts_ms - ts_ms % span_ms


def ceil_ms(ts_ms: int, span_ms: int) -> int:
    """Return the first bar boundary of width `span_ms` at or after `ts_ms`."""
    return -(-ts_ms // span_ms) * span_ms


# Not frozen, though nothing may change one once made: a frozen dataclass sets each of
# these 13 fields through object.__setattr__, which cost 1.0 of the 2.5 µs a Binance frame
# took to parse (issue 16). `unsafe_hash` keeps the field-wise hash frozen gave; build a
# changed copy with dataclasses.replace, as before.
@dataclass(slots=True, unsafe_hash=True)
class Liquidation:
    """One forced liquidation, normalized (PROTOCOLS.md §0). Treat it as immutable."""

    exchange: str
    symbol: str
    position_side: Side
    qty_base: Decimal
    price: Decimal
    notional_usd: Decimal
    ts_exchange_ms: int | None
    ts_recv_ms: int
    sampled: bool
    raw: Any = field(default=None, compare=False, repr=False)
    # The venue's own identity: base coin (canonical, from its instrument name or metadata)
    # and the id it gives the fill or order (Deribit trade_id, BitMEX orderID); None when
    # the venue gives none.
    base: str | None = None
    venue_id: str | None = None
    # The coin `price` is quoted in when that is not USD or a stablecoin (Binance ETHBTC:
    # "BTC"); notional_usd was then converted at a reference price, or is 0 (unpriced).
    # None for the usual USD-quoted contract.
    quote: str | None = None

    @property
    def ts_ms(self) -> int:
        """Exchange time when the venue sends one, else receive time (BitMEX)."""
        return self.ts_exchange_ms if self.ts_exchange_ms is not None else self.ts_recv_ms

    @property
    def priced(self) -> bool:
        """False when the contract is quoted in a coin (ETHBTC) and no USD price of that coin
        was known at the time: notional_usd is then 0, never a coin amount labelled USD.
        Every priced event is worth more than 0 (each parser checks), so 0 says it; no
        field, because each one more costs every event on the hottest path of ingest."""
        return bool(self.notional_usd)

    @property
    def coin(self) -> str:
        base = self.base
        return base if base is not None else guessed_coin(self.exchange, self.symbol)

    def event_key(self) -> int:
        """Return a signed 64-bit id that is equal for the same event seen twice.

        Built from exchange, symbol, side, exchange time, price and quantity
        (RELIABILITY.md item 4), so a resent frame maps onto the stored row; plus the venue's
        own id when it gives one, so two fills alike in all of those stay two. Without an id
        the text is what it always was: rows stored before ids were keyed keep their key.
        """
        # `_value_`, not `.value`: the enum's property costs as much as the rest of the key;
        # the time inline, not through the `ts_ms` property, for the same reason. `!s`: the
        # same text as plain `{}`, without Decimal.__format__, a quarter of this method's time.
        ts = self.ts_exchange_ms
        text = (
            f"{self.exchange}|{self.symbol}|{self.position_side._value_}|"
            f"{self.ts_recv_ms if ts is None else ts}|"
            f"{self.price.normalize()!s}|{self.qty_base.normalize()!s}"
        )
        if self.venue_id is not None:
            text += f"|id={self.venue_id}"
        key: int = _signed64(_blake2b(text.encode(), digest_size=8).digest())[0]
        return key

    def as_short_dict(self) -> dict[str, Any]:
        """Return the `liqbot decode` JSON shape (DESIGN.md short keys).

        `coin` is the base the event is counted under; `id` (only when the venue gives one)
        keeps distinct fills distinct when the output is replayed.
        """
        out = {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "coin": self.coin,
            "side": self.position_side.value,
            "qty": float(self.qty_base),
            "price": float(self.price),
            "usd": round(float(self.notional_usd), 8),
            "ts": self.ts_ms,
            "sampled": self.sampled,
        }
        if self.venue_id is not None:
            out["id"] = self.venue_id
        if self.quote is not None:
            out["quote"] = self.quote  # the price is in this coin, not USD
        if not self.priced:
            out["unpriced"] = True
        return out


@dataclass(frozen=True, slots=True)
class Bucket:
    """Liquidations aggregated over [start_ms, start_ms + span_ms) for one exchange and coin.

    `exchange` / `coin` are MARKET ("*") for rows that already sum across them
    (a CoinGlass market-wide export). `source` names where the row came from.
    """

    start_ms: int
    span_ms: int
    exchange: str
    coin: str
    long_usd: float
    short_usd: float
    long_count: int = 0
    short_count: int = 0
    source: str = "events"

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.span_ms


@dataclass(frozen=True, slots=True)
class Funding:
    """One funding rate observation; `rate` is raw per `interval_h` hours."""

    exchange: str
    symbol: str
    ts_ms: int
    rate: Decimal
    interval_h: float = 8.0

    @property
    def rate_8h(self) -> float:
        """The rate normalized to an 8-hour period, for display and comparison."""
        return float(self.rate) * 8.0 / self.interval_h

    @property
    def coin(self) -> str:
        return coin_of(self.symbol)


@dataclass(frozen=True, slots=True)
class OpenInterest:
    """Open interest at a time: base-coin amount and, when known, USD value."""

    exchange: str
    symbol: str
    ts_ms: int
    oi_base: Decimal | None
    oi_usd: Decimal | None

    @property
    def coin(self) -> str:
        return coin_of(self.symbol)


@dataclass(frozen=True, slots=True)
class Candle:
    """A price bar, bar-open labelled, used as context and for backtest returns."""

    exchange: str
    coin: str
    start_ms: int
    span_ms: int
    open: float
    high: float
    low: float
    close: float
