"""BitMEX contract values: what one contract of a symbol is worth, from /api/v1/instrument.

feeds/venues/bitmex.py follows the liquidation table; this module reads instrument rows (an
instruments file over the shipped snapshot) and turns contracts into a base quantity and USD.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from feeds.model import ParseError, canonical_coin
from feeds.venues.parsing import dec, need, positive, read_json_file, text
from feeds.venues.reference import REFERENCE, to_usd

# Shipped with the package: recorded /api/v1/instrument/active rows (feeds/venues/data/README.md),
# so an offline start converts and attributes more than XBTUSD; a file's rows win per symbol.
SNAPSHOT = Path(__file__).parent / "data" / "bitmex_instruments.json"
_USD_QUOTES = frozenset({"USD", "USDT", "USDC"})
_SATOSHI = Decimal(100_000_000)

class UnknownContract(ParseError):
    """A well-formed row whose symbol has no known USD conversion (never guessed)."""


@dataclass(frozen=True, slots=True)
class Contract:
    """What one contract of a symbol is worth; `kind` says how to read `per_contract`."""

    symbol: str
    kind: Literal["inverse", "linear", "quanto", "xbt-linear", "unsupported"]
    # inverse: USD per contract; linear, xbt-linear: base coin per contract; quanto: XBT per
    # contract and USD of price (|multiplier| satoshi)
    per_contract: Decimal = Decimal(0)
    why: str = ""  # unsupported: the reason, quoted in the ParseError
    base: str | None = None  # canonical base coin: rootSymbol / underlying (XBT -> BTC)

    def convert(self, contracts: Decimal, price: Decimal,
                ts_ms: int = 0) -> tuple[Decimal, Decimal, str | None]:
        """(qty_base, notional_usd, quote) of `contracts` at `price`; quote is "BTC" for an
        XBT-quoted contract (usd 0 when no recent BTC price is known: unpriced)."""
        if self.kind == "unsupported":
            raise UnknownContract(f"{self.symbol}: no USD conversion known ({self.why})")
        try:
            if self.kind == "inverse":
                usd = contracts * self.per_contract
                return usd / price, usd, None
            if self.kind == "quanto":
                # Worth |multiplier| × price satoshi each: USD needs the BTC price, and so does
                # the base quantity, so without one the row is refused, not stored unpriced.
                btc = REFERENCE.usd("BTC", ts_ms)
                if btc is None:
                    raise UnknownContract(f"{self.symbol}: quanto, no recent BTC price to "
                                          f"value it")
                usd = contracts * self.per_contract * price * btc
                return usd / price, usd, None
            qty = contracts * self.per_contract
            if self.kind == "xbt-linear":
                return qty, to_usd(qty * price, "BTC", ts_ms)[0], "BTC"
            return qty, qty * price, None
        except ArithmeticError:  # Decimal overflow on absurd sizes or prices
            raise ParseError(f"{self.symbol}: size or price out of range") from None


# XBTUSD is the one contract whose size is documented outside the instruments endpoint.
BUILTIN_CONTRACTS: dict[str, Contract] = {
    "XBTUSD": Contract("XBTUSD", "inverse", Decimal(1), base="BTC")}


def contract_of(row: Any, where: str = "instrument") -> Contract:
    """Work out one contract's value from an `/api/v1/instrument/active` row.

    {"symbol": "XBTUSD", "quoteCurrency": "USD", "settlCurrency": "XBt",
     "isInverse": true, "isQuanto": false, "multiplier": -100000000,   # |mult| sat per 1/price
     "underlyingToPositionMultiplier": null,                          # linear: contracts per coin
     "rootSymbol": "XBT", "underlying": "XBT"}                        # the base coin, XBT = BTC

    USD(T/C)-quoted inverse (XBt-settled), linear and XBt-settled quanto contracts, and
    XBT-quoted linear ones, are converted (the last two with the reference BTC price);
    anything else (EUR-quoted, ...) is kept as `unsupported` so its rows fail loudly.
    """
    symbol = text(need(row, "symbol", where), f"{where}.symbol")
    return replace(_contract_of(row, symbol), base=_root(row))


def _root(row: dict[str, Any]) -> str | None:
    for key in ("rootSymbol", "underlying"):
        value = row.get(key)
        if isinstance(value, str) and value.isalnum():
            return canonical_coin(value)
    return None


def _contract_of(row: dict[str, Any], symbol: str) -> Contract:
    quote, settle = row.get("quoteCurrency"), row.get("settlCurrency")
    inverse, quanto = row.get("isInverse"), row.get("isQuanto")
    if not isinstance(inverse, bool) or not isinstance(quanto, bool):
        return Contract(symbol, "unsupported", why="isInverse/isQuanto missing")
    if quote == "XBT" and not inverse and not quanto:  # ETHU21: priced in XBT, sized in ETH
        u2p = row.get("underlyingToPositionMultiplier")
        if u2p is None:
            return Contract(symbol, "unsupported", why="XBT-quoted without a multiplier")
        return Contract(symbol, "xbt-linear",
                        1 / positive(u2p, f"{symbol}.underlyingToPositionMultiplier"))
    if quote not in _USD_QUOTES:
        return Contract(symbol, "unsupported", why=f"quoted in {str(quote)[:12]!r}, not USD")
    if quanto:
        if settle != "XBt":
            return Contract(symbol, "unsupported", why=f"quanto settled in {str(settle)[:12]!r}")
        mult = abs(dec(need(row, "multiplier", symbol), f"{symbol}.multiplier"))
        if mult == 0:
            raise ParseError(f"{symbol}.multiplier: must not be 0")
        return Contract(symbol, "quanto", mult / _SATOSHI)
    if inverse:
        if settle != "XBt":
            return Contract(symbol, "unsupported", why=f"inverse settled in {str(settle)[:12]!r}")
        # An inverse contract is worth multiplier / price satoshi, i.e. |multiplier| / 1e8 USD.
        mult = abs(dec(need(row, "multiplier", symbol), f"{symbol}.multiplier"))
        if mult == 0:
            raise ParseError(f"{symbol}.multiplier: must not be 0")
        return Contract(symbol, "inverse", mult / _SATOSHI)
    u2p = row.get("underlyingToPositionMultiplier")
    if u2p is None:
        return Contract(symbol, "unsupported", why="linear without underlyingToPositionMultiplier")
    return Contract(symbol, "linear", 1 / positive(u2p, f"{symbol}.underlyingToPositionMultiplier"))


def load_instruments(path: str | Path) -> dict[str, Contract]:
    """Read a saved `GET /api/v1/instrument/active` response; ParseError names the file."""
    rows = read_json_file(path, "instruments")
    if not isinstance(rows, list):
        raise ParseError(f"{path}: expected the instrument list of /api/v1/instrument/active")
    specs: dict[str, Contract] = {}
    for i, row in enumerate(rows):
        try:
            spec = contract_of(row, f"[{i}]")
        except ParseError as exc:
            raise ParseError(f"{path}: {exc}") from None
        specs[spec.symbol] = spec
    return specs


def known_contracts(path: str | Path | None = None) -> dict[str, Contract]:
    """The shipped snapshot's contracts, with those of an instruments file over them."""
    contracts = load_instruments(SNAPSHOT)
    if path:
        contracts.update(load_instruments(path))
    return contracts
