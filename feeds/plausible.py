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
import time
from collections.abc import Iterable
from decimal import Decimal

from feeds.model import DAY_MS, Liquidation

logger = logging.getLogger(__name__)

# qty x price and the USD value venues report agree to rounding (linear, inverse and
# quanto conversions all derive one from the other); a factor of 2 leaves room for any
# venue's rounding and still catches a USD field off by orders of magnitude.
USD_FACTOR = Decimal(2)
MAX_USD = Decimal(10) ** 10  # one liquidation of $10B: the largest ever seen is ~1 % of it
MIN_PRICE, MAX_PRICE = Decimal("1e-12"), Decimal(10) ** 8  # USD per base unit
MIN_TS_MS = 1_262_304_000_000  # 2010-01-01: before any derivatives venue
MAX_AHEAD_MS = DAY_MS  # exchange clocks run close to ours; a day ahead is a wrong field
MAX_SYMBOL = 40  # Deribit's longest instrument names are about half this
FAULTS = ("usd_vs_qty_price", "usd", "price", "qty", "timestamp", "symbol")


def fault(e: Liquidation, now_ms: int | None = None) -> str | None:
    """The first thing implausible about `e` (one of FAULTS), or None when it can be stored.

    `now_ms`: the wall clock, for "not in the future"; a replay's simulated clock does not
    matter here, since no recorded event can come from after the moment it is read.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    for name in (e.symbol, e.exchange):
        if not 0 < len(name) <= MAX_SYMBOL or not all("!" <= ch <= "~" for ch in name):
            return "symbol"
    if not (e.qty_base.is_finite() and e.qty_base > 0):  # Decimal NaN refuses comparisons
        return "qty"
    if not (e.price.is_finite() and MIN_PRICE <= e.price <= MAX_PRICE):
        return "price"
    usd = e.notional_usd
    if not (usd.is_finite() and usd > 0):
        return "usd"
    try:
        implied = e.qty_base * e.price
        if not implied / USD_FACTOR <= usd <= implied * USD_FACTOR:
            return "usd_vs_qty_price"
    except ArithmeticError:  # Decimal overflow: a quantity no venue can hold
        return "qty"
    if usd > MAX_USD:
        return "usd"
    if not MIN_TS_MS <= e.ts_ms <= now_ms + MAX_AHEAD_MS:
        return "timestamp"
    return None


class Gate:
    """Filters batches; `rejected` counts per fault (every fault present from the start)."""

    def __init__(self) -> None:
        self.rejected: dict[str, int] = dict.fromkeys(FAULTS, 0)

    def admit(self, events: Iterable[Liquidation]) -> list[Liquidation]:
        """The events that pass; each one that does not is counted and never stored."""
        now_ms = int(time.time() * 1000)
        kept = []
        for e in events:
            why = fault(e, now_ms)
            if why is None:
                kept.append(e)
                continue
            self.rejected[why] += 1
            if self.rejected[why] == 1:  # once per fault; the counter tells the rest
                logger.warning(
                    "rejected an implausible %s event (%s): symbol %r, qty %s, price %s, "
                    "usd %s, ts %s; further ones are only counted "
                    "(liqbot_events_rejected_total)", e.exchange[:MAX_SYMBOL], why,
                    e.symbol[:MAX_SYMBOL], e.qty_base, e.price, e.notional_usd, e.ts_ms)
        return kept
