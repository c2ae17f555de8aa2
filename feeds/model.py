"""Normalized market data: what every feed produces and everything downstream reads."""

from __future__ import annotations

import enum
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

# Stablecoin and fiat quotes, longest first so "USDT" wins over "USD".
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "USDE", "TUSD", "USD", "PERP", "EUR")
MARKET = "*"  # scope / coin / exchange wildcard: "summed across all"


class ParseError(ValueError):
    """A raw frame or file row that cannot be normalized; the message names why."""


class Side(enum.StrEnum):
    """The liquidated POSITION, never the raw order side."""

    LONG = "long"
    SHORT = "short"


@functools.lru_cache(maxsize=4096)  # called per event; venues list a few hundred symbols
def coin_of(symbol: str) -> str:
    """Return the base asset of a venue symbol: BTCUSDT, BTC-USDT-SWAP, BTCUSD_PERP -> BTC."""
    s = symbol.upper()
    for sep in ("-", "_", "/", ":"):
        if sep in s:
            return s.split(sep, 1)[0]
    for quote in _QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)]
    return s


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


@dataclass(frozen=True, slots=True)
class Liquidation:
    """One forced liquidation, normalized (PROTOCOLS.md §0)."""

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

    @property
    def ts_ms(self) -> int:
        """Exchange time when the venue sends one, else receive time (BitMEX)."""
        return self.ts_exchange_ms if self.ts_exchange_ms is not None else self.ts_recv_ms

    @property
    def coin(self) -> str:
        return coin_of(self.symbol)

    def event_key(self) -> int:
        """Return a signed 64-bit id that is equal for the same event seen twice.

        Built from exchange, symbol, side, exchange time, price and quantity
        (RELIABILITY.md item 4), so a resent frame maps onto the stored row.
        """
        text = (
            f"{self.exchange}|{self.symbol}|{self.position_side.value}|{self.ts_ms}|"
            f"{self.price.normalize()}|{self.qty_base.normalize()}"
        )
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    def as_short_dict(self) -> dict[str, Any]:
        """Return the `liqbot decode` JSON shape (DESIGN.md short keys)."""
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "side": self.position_side.value,
            "qty": float(self.qty_base),
            "price": float(self.price),
            "usd": round(float(self.notional_usd), 8),
            "ts": self.ts_ms,
            "sampled": self.sampled,
        }


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
