"""Recent USD prices of the coins some contracts are quoted in (Binance ETHBTC, BNBBTC).

Kept from what the feeds already receive: every liquidation of a USD-quoted BTC or ETH
contract notes its price, and so does every mark price the funding pollers fetch (Binance
premiumIndex, Hyperliquid metaAndAssetCtxs), so a quiet market still has a recent one.
A coin-quoted liquidation is converted with the price noted closest before it, if that is
recent enough; otherwise it has no USD value and says so.
"""

from __future__ import annotations

from decimal import Decimal

from feeds.model import MINUTE_MS

# The coins contracts are quoted in besides USD and stablecoins.
QUOTE_COINS = frozenset({"BTC", "ETH"})
# A liquidation price is within a few percent of the market; after a quarter of an hour the
# market may have moved further than that, so an older reference is not used.
MAX_AGE_MS = 15 * MINUTE_MS


class ReferencePrices:
    """The latest USD price seen per quote coin, with the event time it was seen at."""

    def __init__(self, max_age_ms: int = MAX_AGE_MS) -> None:
        self.max_age_ms = max_age_ms
        # coin -> (event ms, USD price). The hottest parser (Binance) sets it directly:
        # `latest[coin] = (ts, price)`; the last one noted wins, even if a venue sends a
        # slightly older event late, since a liquidation price only serves within minutes.
        self.latest: dict[str, tuple[int, Decimal]] = {}

    def note(self, coin: str, ts_ms: int, price: Decimal) -> None:
        self.latest[coin] = (ts_ms, price)

    def usd(self, coin: str, ts_ms: int) -> Decimal | None:
        """The USD price of `coin` at `ts_ms`, or None when none recent enough is known."""
        last = self.latest.get(coin)
        if last is None or abs(ts_ms - last[0]) > self.max_age_ms:
            return None
        return last[1]

    def clear(self) -> None:
        self.latest.clear()


# One table per process: every venue's USD-quoted liquidations feed it, live and in replay.
REFERENCE = ReferencePrices()


def note_mark(coin: str | None, ts_ms: int, mark: Decimal) -> None:
    """Note a USD(-stablecoin) mark price of `coin` when contracts are quoted in that coin."""
    if coin in QUOTE_COINS and mark > 0:
        REFERENCE.note(coin, ts_ms, mark)


USD_QUOTES = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD"})


def to_usd(value: Decimal, quote: str, ts_ms: int) -> tuple[Decimal, bool]:
    """(USD, priced) of `value` units of `quote`: stablecoins as USD, BTC/ETH at their
    reference price, anything else (or no recent reference) unpriced at 0."""
    if quote in USD_QUOTES:
        return value, True
    ref = REFERENCE.usd(quote, ts_ms)
    return (value * ref, True) if ref is not None else (Decimal(0), False)
