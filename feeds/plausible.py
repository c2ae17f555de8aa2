"""The plausibility gate every liquidation passes before it is stored.

Parsers check that a frame is well formed; this checks that what it says could be true.
One bad event — `usd: 1e17` against a qty x price of 950, a price of 1e17, a timestamp in
2200, a symbol holding NUL or a right-to-left override — would otherwise be summed into
every window it touches and reach alert text ("$100000T liquidated in 5m"). It runs in one
place, `Store.insert_liquidations`, so every venue, replay and loader is held to it alike.
A rejected event is counted per fault, logged the first time its fault is seen, and
never stored.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable

from feeds.model import DAY_MS, Liquidation

logger = logging.getLogger(__name__)

# qty x price and the USD value venues report agree to rounding (linear, inverse and
# quanto conversions all derive one from the other); a factor of 2 leaves room for any
# venue's rounding and still catches a USD field off by orders of magnitude.
USD_FACTOR = 2.0
MAX_USD = 1e10  # one liquidation of $10B: the largest ever seen is ~1 % of it
MIN_PRICE, MAX_PRICE = 1e-12, 1e8  # USD per base unit
MIN_TS_MS = 1_262_304_000_000  # 2010-01-01: before any derivatives venue
MAX_AHEAD_MS = DAY_MS  # exchange clocks run close to ours; a day ahead is a wrong field
MAX_SYMBOL = 40  # Deribit's longest instrument names are about half this
_printable = re.compile(rf"[!-~]{{1,{MAX_SYMBOL}}}").fullmatch  # printable ASCII, no space
# (exchange, symbol) pairs that passed the name check; bounded, so hostile names cannot grow it.
_NAMES_SEEN: set[tuple[str, str]] = set()
_MAX_NAMES_SEEN = 10_000
FAULTS = ("usd_vs_qty_price", "usd", "price", "qty", "timestamp", "symbol")


def fault(e: Liquidation, now_ms: int | None = None) -> str | None:
    """The first thing implausible about `e` (one of FAULTS), or None when it can be stored.

    `now_ms`: the wall clock, for "not in the future"; a replay's simulated clock does not
    matter here, since no recorded event can come from after the moment it is read.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if (e.exchange, e.symbol) not in _NAMES_SEEN and not _names_ok(e.exchange, e.symbol):
        return "symbol"
    # Floats, not Decimal arithmetic: this runs for every stored event, and a factor-of-2
    # test needs no exact digits. Decimal NaN/inf become float NaN/inf, which every
    # comparison below refuses; a signalling NaN cannot be converted at all.
    try:
        qty, price, usd = float(e.qty_base), float(e.price), float(e.notional_usd)
    except ValueError:
        return "qty"
    if not (0 < qty < math.inf):
        return "qty"
    if not MIN_PRICE <= price <= MAX_PRICE:
        return "price"
    implied = qty * price
    if implied == math.inf:  # a quantity no venue can hold
        return "qty"
    if usd == 0 and e.quote is not None:
        pass  # coin-quoted with no reference price: stored unpriced, its USD says nothing
    elif not 0 < usd < math.inf:
        return "usd"
    elif e.quote is None and not implied / USD_FACTOR <= usd <= implied * USD_FACTOR:
        # A coin-quoted price is in that coin, so qty x price is not USD; its conversion
        # (feeds/venues/reference.py) is the venue's, and only the USD bound applies.
        return "usd_vs_qty_price"
    elif usd > MAX_USD:
        return "usd"
    if not MIN_TS_MS <= e.ts_ms <= now_ms + MAX_AHEAD_MS:
        return "timestamp"
    return None


def passes(qty: float, price: float, usd: float, ts_ms: int, coin_quoted: bool,
           now_ms: int) -> bool:
    """`fault(e, now_ms) is None` for an event whose (exchange, symbol) passed the name check
    before, on its qty, price and USD as floats: one expression, so the store's single pass
    over a batch checks each event for about a third of what `fault` costs. Anything it
    refuses goes to `Gate.refuse`, which names the fault (tests/feeds/test_plausible.py
    checks the two agree)."""
    implied = qty * price
    return (0 < qty < math.inf and MIN_PRICE <= price <= MAX_PRICE and implied != math.inf
            and MIN_TS_MS <= ts_ms <= now_ms + MAX_AHEAD_MS
            and ((usd == 0 and coin_quoted)
                 or (0 < usd <= MAX_USD
                     and (coin_quoted or implied / USD_FACTOR <= usd <= implied * USD_FACTOR))))


def known_name(exchange: str, symbol: str) -> bool:
    """The pair passed the name check before (the set is bounded: a miss only costs `fault`)."""
    return (exchange, symbol) in _NAMES_SEEN


def _names_ok(exchange: str, symbol: str) -> bool:
    """Printable names; a pair that passes is remembered (a venue lists a few hundred)."""
    if not (_printable(symbol) and _printable(exchange)):
        return False
    if len(_NAMES_SEEN) < _MAX_NAMES_SEEN:
        _NAMES_SEEN.add((exchange, symbol))
    return True


class Gate:
    """Filters batches; `rejected` counts per fault (every fault present from the start)."""

    def __init__(self) -> None:
        self.rejected: dict[str, int] = dict.fromkeys(FAULTS, 0)

    def admit(self, events: Iterable[Liquidation]) -> list[Liquidation]:
        """The events that pass; each one that does not is counted and never stored."""
        now_ms = int(time.time() * 1000)
        return [e for e in events if not self.refuse(e, now_ms)]

    def refuse(self, e: Liquidation, now_ms: int) -> bool:
        """True when `e` is implausible: counted under its fault, logged the first time."""
        why = fault(e, now_ms)
        if why is None:
            return False
        self.rejected[why] += 1
        if self.rejected[why] == 1:  # once per fault; the counter tells the rest
            logger.warning(
                "rejected an implausible %s event (%s): symbol %r, qty %s, price %s, "
                "usd %s, ts %s; further ones are only counted "
                "(liqbot_events_rejected_total)", e.exchange[:MAX_SYMBOL], why,
                e.symbol[:MAX_SYMBOL], e.qty_base, e.price, e.notional_usd, e.ts_ms)
        return True
