"""The Signal type and the sizing rules both classifiers share."""

from __future__ import annotations

from dataclasses import dataclass

from feeds.model import Side
from signals.kinds import KINDS, SignalKind
from signals.params import SEVERITY_NAMES, SignalParams
from signals.windows import WindowStat


@dataclass(frozen=True, slots=True)
class Signal:
    """A classifier's finding for one scope and window; pure data, no I/O."""

    kind: SignalKind
    severity: int  # 1 notable, 2 large, 3 extreme
    stat: WindowStat
    share: float  # dominant side's share of the total
    ratio: float | None  # multiple of the trailing baseline, when known
    reasons: tuple[str, ...] = ()
    # The baseline covered too little of its lookback for relative tiers to count.
    thin_history: bool = False

    @property
    def severity_name(self) -> str:
        return SEVERITY_NAMES[self.severity]

    @property
    def scope(self) -> str:
        return self.stat.scope

    @property
    def dedup_key(self) -> str:
        """(kind, scope, window): the identity an alert cooldown applies to."""
        return f"{self.kind.value}|{self.scope}|{self.stat.window_ms}"


def thin_history(stat: WindowStat, p: SignalParams) -> bool:
    """Too little of the baseline's lookback holds data for a multiple of it to count."""
    return stat.coverage is not None and stat.coverage < p.min_coverage


def size_severity(stat: WindowStat, p: SignalParams) -> tuple[int, float | None]:
    """Return (severity 0-3, baseline ratio) from absolute and relative size.

    The ratio is reported whenever a baseline exists, but on thin history it never
    raises the severity: only absolute size does.
    """
    total, window = stat.total_usd, stat.window_ms
    absolute = sum(total >= t for t in p.tier_usd(window))
    ratio = None
    relative = 0
    if stat.baseline_usd:
        ratio = total / stat.baseline_usd
        if total >= p.floor_usd(window) and not thin_history(stat, p):
            relative = sum(ratio >= t for t in p.tiers_ratio)
    return max(absolute, relative), ratio


def classify_dominant(
    stat: WindowStat, p: SignalParams, kind: SignalKind, confirmations: tuple[bool | None, ...],
) -> Signal | None:
    """Shared rule: big enough, one-sided enough, and not contradicted by required context."""
    share = stat.share(short=KINDS[kind].dominant is Side.SHORT)
    if share < p.min_share:
        return None
    severity, ratio = size_severity(stat, p)
    if severity == 0:
        return None
    price_ok, funding_ok = confirmations
    if p.require_price_confirmation and price_ok is False:
        return None
    if p.require_funding_confirmation and funding_ok is False:
        return None
    reasons = tuple(
        r for r, ok in (("price confirms", price_ok), ("funding confirms", funding_ok)) if ok
    )
    return Signal(kind, severity, stat, share, ratio, reasons, thin_history(stat, p))
