"""The one parameter object that drives live alerts and backtests alike."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

HOUR_MS = 3_600_000
SEVERITY_NAMES = {1: "notable", 2: "large", 3: "extreme"}


@dataclass(frozen=True, slots=True)
class SignalParams:
    """Thresholds for short squeezes and long cascades.

    Absolute sizes are given for a 1h window and scaled by sqrt(window / 1h) for
    other windows: liquidations cluster, so a 4h total is far less than 4x a
    busy hour, and a 5m burst is more than 1/12 of one.
    """

    windows: tuple[str, ...] = ("5m", "15m", "1h", "4h")
    # Dominant side's share of the window total (0.75 = "75 % shorts").
    min_share: float = 0.75
    # Absolute tiers, USD per 1h window: notable / large / extreme.
    tiers_usd_1h: tuple[float, float, float] = (10e6, 25e6, 50e6)
    # Relative tiers: multiple of the trailing mean for the same window length...
    tiers_ratio: tuple[float, float, float] = (5.0, 10.0, 20.0)
    # ...which only counts above this floor (USD per 1h window), so dust never alerts.
    relative_floor_usd_1h: float = 2e6
    # Trailing baseline: mean window total over this many hours before the window.
    baseline_hours: int = 168
    # Relative tiers only count when this share of the baseline's whole hours holds data
    # (feed gaps count as missing): a fresh store or one back from an outage has a baseline
    # of a few hours, and a multiple of that says little. Absolute tiers always count.
    min_coverage: float = 0.9
    # Optional context: when True and the context is known, it must agree.
    require_price_confirmation: bool = False
    require_funding_confirmation: bool = False
    # Evaluate per-coin signals as well as the market-wide sum.
    per_coin: bool = True
    max_coins: int = 20
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def scale(self, window_ms: int) -> float:
        """Return the size multiplier for a window relative to 1h."""
        return math.sqrt(window_ms / HOUR_MS)

    def tier_usd(self, window_ms: int) -> tuple[float, ...]:
        return tuple(t * self.scale(window_ms) for t in self.tiers_usd_1h)

    def floor_usd(self, window_ms: int) -> float:
        return self.relative_floor_usd_1h * self.scale(window_ms)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignalParams:
        """Build from config, rejecting unknown keys by name."""
        names = {f.name for f in dataclasses.fields(cls) if f.name != "extra"}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown signal parameter(s): {', '.join(unknown)}")
        values = dict(data)
        for key in ("windows", "tiers_usd_1h", "tiers_ratio"):
            if key in values:
                values[key] = tuple(values[key])
        params = cls(**values)
        params.validate()
        return params

    def validate(self) -> None:
        """Raise ValueError naming the first out-of-range parameter."""
        for key in ("min_share", "tiers_usd_1h", "tiers_ratio", "relative_floor_usd_1h",
                    "baseline_hours", "max_coins"):
            # NaN passes every comparison below as "in range"; a bool is no number.
            value = getattr(self, key)
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                       for v in (value if isinstance(value, tuple) else (value,))):
                raise ValueError(f"{key} must be finite numbers, got {value!r}")
        if self.relative_floor_usd_1h < 0 or self.max_coins < 1:
            raise ValueError("relative_floor_usd_1h must not be negative, max_coins at least 1")
        if not 0.5 <= self.min_share <= 1.0:
            raise ValueError(f"min_share must be within 0.5..1.0, got {self.min_share}")
        for key in ("tiers_usd_1h", "tiers_ratio"):
            tiers = getattr(self, key)
            if len(tiers) != 3 or any(t <= 0 for t in tiers) or list(tiers) != sorted(tiers):
                raise ValueError(f"{key} must be three increasing positive numbers, got {tiers}")
        if self.baseline_hours < 1:
            raise ValueError(f"baseline_hours must be >= 1, got {self.baseline_hours}")
        if not 0.0 <= self.min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be within 0..1, got {self.min_coverage}")
        if not self.windows:
            raise ValueError("windows must name at least one window")

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("extra")
        return out


DEFAULTS = SignalParams()
