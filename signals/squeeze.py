"""Short squeeze: shorts forced out in size, usually into a rising price."""

from __future__ import annotations

from signals.base import Signal, classify_dominant
from signals.kinds import SignalKind
from signals.params import DEFAULTS, SignalParams
from signals.windows import WindowStat


def classify(stat: WindowStat, p: SignalParams = DEFAULTS) -> Signal | None:
    """Flag a window dominated by short liquidations that is large in absolute or relative size.

    Confirmation (optional in params): price rose over the window; funding had been
    negative, i.e. shorts were paying to stay in, the crowd a squeeze feeds on.
    """
    ctx = stat.context
    price_ok = None if ctx.price_change is None else ctx.price_change > 0
    funding_ok = None if ctx.funding_8h is None else ctx.funding_8h < 0
    return classify_dominant(stat, p, SignalKind.SHORT_SQUEEZE, (price_ok, funding_ok))
