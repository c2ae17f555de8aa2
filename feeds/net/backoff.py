"""Capped, jittered exponential backoff: the one retry schedule of sockets, pollers and clients."""

from __future__ import annotations

import random


class Backoff:
    """Capped exponential delays with "equal" jitter: half fixed, half random.

    The fixed half keeps a flapping venue from being hammered; the random half keeps many
    clients (or feeds) from reconnecting in lockstep.
    """

    def __init__(
        self,
        base_s: float = 1.0,
        cap_s: float = 60.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < base_s <= cap_s or factor < 1:
            raise ValueError(f"need 0 < base_s <= cap_s and factor >= 1, got {base_s}, {cap_s}, "
                             f"{factor}")
        self.base_s, self.cap_s, self.factor = base_s, cap_s, factor
        self.rng = rng or random.Random()
        self.attempt = 0

    def ceiling(self) -> float:
        """The largest delay the next call can return."""
        # Cap the exponent too: factor ** attempt overflows a float after ~1000 failures.
        return min(self.cap_s, self.base_s * self.factor ** min(self.attempt, 64))

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        top = self.ceiling()
        self.attempt += 1
        return top / 2 + self.rng.uniform(0, top / 2)

    def reset(self) -> None:
        self.attempt = 0
