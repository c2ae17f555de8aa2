"""The classifiers' rules over arrays: one call classifies every evaluation of a window.

Same arithmetic, same order of operations as `signals.base.classify_dominant`, so the
results are bit-for-bit those of the per-window classifiers (`tests/backtests/
test_vectorized.py` proves it on real and synthetic data); those stay the reference.
Unknown values (no baseline, no price, no funding) are NaN here where they are None there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from feeds.model import Side
from signals.kinds import KINDS, SignalKind
from signals.params import SignalParams

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Classified:
    """Per evaluation: severity (0 = no signal), dominant share and baseline multiple."""

    severity: npt.NDArray[np.int8]
    share: Floats
    ratio: Floats  # NaN where the baseline is unknown


def _share(side: Floats, total: Floats) -> Floats:
    out = np.zeros_like(total)
    np.divide(side, total, out=out, where=total > 0)
    return out


def size_severity(
    total: Floats, baseline: Floats, window_ms: int, p: SignalParams,
    coverage: Floats | None = None,
) -> tuple[npt.NDArray[np.int8], Floats]:
    """Return (severity 0-3, ratio) from absolute and relative size, as base.size_severity.

    `coverage`: the baseline's covered share per window (None: all fully covered).
    """
    absolute = np.zeros(total.shape, dtype=np.int8)
    for tier in p.tier_usd(window_ms):
        absolute += total >= tier
    known = ~np.isnan(baseline) & (baseline != 0)
    ratio = np.full_like(total, np.nan)
    np.divide(total, baseline, out=ratio, where=known)
    relative = np.zeros(total.shape, dtype=np.int8)
    counted = known & (total >= p.floor_usd(window_ms))
    if coverage is not None:
        counted &= coverage >= p.min_coverage
    for tier in p.tiers_ratio:
        relative += counted & (ratio >= tier)
    return np.maximum(absolute, relative), ratio


def _contradicted(values: Floats, agrees: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Known and disagreeing: the only case a required confirmation rejects."""
    return ~np.isnan(values) & ~agrees


def classify_arrays(
    kind: SignalKind, long_usd: Floats, short_usd: Floats, baseline_usd: Floats,
    price_change: Floats, funding_8h: Floats, window_ms: int, p: SignalParams,
    coverage: Floats | None = None,
) -> Classified:
    """Classify many windows of one length at once; arrays share one shape."""
    squeeze = kind is SignalKind.SHORT_SQUEEZE
    total = long_usd + short_usd
    share = _share(short_usd if KINDS[kind].dominant is Side.SHORT else long_usd, total)
    severity, ratio = size_severity(total, baseline_usd, window_ms, p, coverage)
    fire = (share >= p.min_share) & (severity > 0)
    if p.require_price_confirmation:
        with np.errstate(invalid="ignore"):
            agrees = price_change > 0 if squeeze else price_change < 0
        fire &= ~_contradicted(price_change, agrees)
    if p.require_funding_confirmation:
        # Squeezes feed on shorts that were paying (negative funding); cascades the mirror.
        with np.errstate(invalid="ignore"):
            agrees = funding_8h < 0 if squeeze else funding_8h > 0
        fire &= ~_contradicted(funding_8h, agrees)
    return Classified(np.where(fire, severity, 0).astype(np.int8), share, ratio)
