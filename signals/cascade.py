"""Long cascade: longs forced out in size, usually into a falling price."""

from __future__ import annotations

from signals.base import Signal, classify_dominant
from signals.kinds import SignalKind
from signals.params import DEFAULTS, SignalParams
from signals.windows import WindowStat


def classify(stat: WindowStat, p: SignalParams = DEFAULTS) -> Signal | None:
    """Flag a window dominated by long liquidations that is large in absolute or relative size.

    Confirmation (optional in params): price fell over the window; funding was
    positive, i.e. longs were crowded and paying.
    """
    ctx = stat.context
    price_ok = None if ctx.price_change is None else ctx.price_change < 0
    funding_ok = None if ctx.funding_8h is None else ctx.funding_8h > 0
    return classify_dominant(stat, p, SignalKind.LONG_CASCADE, (price_ok, funding_ok))
