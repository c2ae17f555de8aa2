"""Pure signal logic: window statistics in, signals out. No I/O, no clock, no asyncio."""

from signals.base import Signal
from signals.kinds import SignalKind
from signals.params import DEFAULTS, SignalParams
from signals.registry import REGISTRY, evaluate
from signals.windows import Context, WindowStat

__all__ = [
    "DEFAULTS", "REGISTRY", "Context", "Signal", "SignalKind", "SignalParams", "WindowStat",
    "evaluate",
]
