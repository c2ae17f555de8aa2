"""Every signal kind and its classifier, in one table."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from signals import cascade, squeeze
from signals.base import Signal
from signals.kinds import SignalKind
from signals.params import DEFAULTS, SignalParams
from signals.windows import WindowStat

Classifier = Callable[[WindowStat, SignalParams], Signal | None]

REGISTRY: dict[SignalKind, Classifier] = {
    SignalKind.SHORT_SQUEEZE: squeeze.classify,
    SignalKind.LONG_CASCADE: cascade.classify,
}


def evaluate(stats: Iterable[WindowStat], p: SignalParams = DEFAULTS) -> list[Signal]:
    """Run every registered classifier over every window; return what fired."""
    out = []
    for stat in stats:
        for classify in REGISTRY.values():
            signal = classify(stat, p)
            if signal is not None:
                out.append(signal)
    return out
