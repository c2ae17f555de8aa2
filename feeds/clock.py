"""One place every time read goes through, so tests and replays can swap the clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall time, epoch milliseconds UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds for timers and backoff; never jumps."""
        ...


class WallClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class SimClock:
    """A clock that only moves when told to: replays and tests."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def monotonic(self) -> float:
        return self._now / 1000.0

    def advance_to(self, ts_ms: int) -> None:
        if ts_ms < self._now:
            raise ValueError(f"simulated clock cannot go back ({ts_ms} < {self._now})")
        self._now = ts_ms
