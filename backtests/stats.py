"""Statistics of forward returns: pure functions of saved numbers, re-runnable from results.json.

Returns are raw price changes (0.012 = +1.2 %). A kind's "continuation" direction is up for
squeezes and down for cascades; the reversal hypothesis is its mirror. A trade's net return
subtracts the round-trip cost (fees + slippage, both sides). Confidence intervals resample
whole blocks of alerts (`backtests.null`): with no blocks given, each alert is its own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from backtests.null import block_weights, cluster_t, weighted_medians

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
SMALL_N = 20
BOOTSTRAP = 10_000


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of one group of returns at one horizon."""

    n: int
    mean: float | None
    median: float | None
    std: float | None
    t_stat: float | None
    hit: float | None  # continuation: price moved the kind's way
    hit_reversal: float | None
    mean_ci: tuple[float, float] | None  # block-bootstrap 95 %
    median_ci: tuple[float, float] | None
    hit_ci: tuple[float, float] | None
    net_continuation: float | None  # mean trade return after costs
    net_reversal: float | None
    small_n: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Abnormal:
    """Returns minus the drift benchmark known at entry, for the alerts a matched placebo
    can serve (finite drift and trailing volatility): what the matched p-values judge."""

    n: int
    blocks: int  # independent blocks (alerts chained within the block length)
    mean: float | None
    median: float | None
    mean_ci: tuple[float, float] | None  # block-bootstrap 95 %
    median_ci: tuple[float, float] | None
    t_stat: float | None  # mean against 0 (= against drift), block-robust standard error
    hit: float | None  # raw: price moved the kind's way (what placebo.hit is drawn for)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Placebo:
    """The same statistics over random entry times: centre, 95 % band, two-sided p-value.

    `method` "matched": mean and median are of abnormal returns (against `Abnormal`), hit of
    raw returns; draws matched on volatility and hour and de-clustered ("clustered" counts
    draws that kept entries closer than the spacing). "uniform": raw returns from any
    eligible hour (the easier null of results.json version 2).
    """

    draws: int
    mean: float | None
    mean_band: tuple[float, float] | None
    median: float | None
    median_band: tuple[float, float] | None
    hit: float | None
    hit_band: tuple[float, float] | None
    p_mean: float | None
    p_median: float | None
    p_hit: float | None
    method: str = "uniform"
    clustered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _f(x: float | np.floating[Any]) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _band(values: Floats) -> tuple[float, float] | None:
    if values.size == 0 or np.isnan(values).all():
        return None
    lo, hi = np.nanpercentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def _renumber(blocks: Ints | None, keep: npt.NDArray[np.bool_]) -> Ints:
    if blocks is None:
        return np.arange(int(keep.sum()), dtype=np.int64)
    return np.unique(blocks[keep], return_inverse=True)[1].astype(np.int64)


def _resampled(r: Floats, blocks: Ints, direction: int, boot: int, seed: int
               ) -> tuple[Floats, Floats, Floats]:
    """Block-bootstrap means, medians and hit rates of r ([draw])."""
    w = block_weights(blocks, boot, np.random.default_rng(seed))
    total = w.sum(axis=1)
    return w @ r / total, weighted_medians(r, w), w @ (direction * r > 0) / total


def compute_stats(
    returns: Floats, direction: int, cost: float, *, seed: int = 0, boot: int = BOOTSTRAP,
    small_n: int = SMALL_N, blocks: Ints | None = None,
) -> Stats:
    """n, mean, median, t-stat, hit rates, block-bootstrap CIs and net trade returns."""
    keep = np.isfinite(returns)
    r = returns[keep]
    n = int(r.size)
    if n == 0:
        return Stats(0, None, None, None, None, None, None, None, None, None, None, None, True)
    signed = direction * r
    std = float(r.std(ddof=1)) if n > 1 else math.nan
    t = float(r.mean()) / (std / math.sqrt(n)) if n > 1 and std > 0 else math.nan
    means, medians, hits = _resampled(r, _renumber(blocks, keep), direction, boot, seed)
    return Stats(
        n=n, mean=_f(r.mean()), median=_f(np.median(r)), std=_f(std), t_stat=_f(t),
        hit=_f((signed > 0).mean()), hit_reversal=_f((signed < 0).mean()),
        mean_ci=_band(means), median_ci=_band(medians), hit_ci=_band(hits),
        net_continuation=_f(signed.mean() - cost), net_reversal=_f(-signed.mean() - cost),
        small_n=n < small_n,
    )


def abnormal_stats(abnormal: Floats, raw: Floats, direction: int, blocks: Ints, *,
                   seed: int = 0, boot: int = BOOTSTRAP) -> Abnormal | None:
    """Abnormal-return statistics of the entries where both returns are known."""
    keep = np.isfinite(abnormal) & np.isfinite(raw)
    a = abnormal[keep]
    if a.size == 0:
        return None
    b = _renumber(blocks, keep)
    means, medians, _ = _resampled(a, b, direction, boot, seed)
    return Abnormal(n=int(a.size), blocks=int(b.max()) + 1, mean=_f(a.mean()),
                    median=_f(np.median(a)), mean_ci=_band(means), median_ci=_band(medians),
                    t_stat=_f(cluster_t(a, b)), hit=_f((direction * raw[keep] > 0).mean()))


def _p_two_sided(dist: Floats, observed: float | None) -> float | None:
    """Share of random draws at least as extreme, both tails, with the +1 correction."""
    if observed is None or dist.size == 0:
        return None
    above = (1 + int(np.count_nonzero(dist >= observed))) / (1 + dist.size)
    below = (1 + int(np.count_nonzero(dist <= observed))) / (1 + dist.size)
    return min(1.0, 2 * min(above, below))


def compare_placebo(draws: Floats, direction: int, observed: Stats) -> Placebo | None:
    """Where the observed statistics sit in the random-time distribution ([draw, entry])."""
    if draws.size == 0 or observed.n == 0:
        return None
    means = draws.mean(axis=1)
    medians = np.median(draws, axis=1)
    hits = (direction * draws > 0).mean(axis=1)
    return Placebo(
        draws=int(draws.shape[0]), mean=_f(means.mean()), mean_band=_band(means),
        median=_f(np.median(medians)), median_band=_band(medians), hit=_f(hits.mean()),
        hit_band=_band(hits), p_mean=_p_two_sided(means, observed.mean),
        p_median=_p_two_sided(medians, observed.median), p_hit=_p_two_sided(hits, observed.hit),
    )


def compare_matched(abnormal: Floats, raw: Floats, clustered: int, direction: int,
                    observed: Abnormal | None) -> Placebo | None:
    """Where the observed abnormal mean and median, and raw hit rate, sit among matched
    random entries ([draw, entry] arrays)."""
    if abnormal.size == 0 or observed is None:
        return None
    means = abnormal.mean(axis=1)
    medians = np.median(abnormal, axis=1)
    hits = (direction * raw > 0).mean(axis=1)
    return Placebo(
        draws=int(abnormal.shape[0]), mean=_f(means.mean()), mean_band=_band(means),
        median=_f(np.median(medians)), median_band=_band(medians), hit=_f(hits.mean()),
        hit_band=_band(hits), p_mean=_p_two_sided(means, observed.mean),
        p_median=_p_two_sided(medians, observed.median), p_hit=_p_two_sided(hits, observed.hit),
        method="matched", clustered=clustered,
    )


def compare_shifts(abnormal: Floats, raw: Floats, direction: int,
                   observed: Abnormal | None) -> Placebo | None:
    """As `compare_matched`, over circular shifts ([shift, alert], NaN where a shifted
    entry is not eligible; shifts with none left are dropped)."""
    keep = np.isfinite(abnormal).any(axis=1) if abnormal.size else np.zeros(0, dtype=bool)
    if observed is None or not keep.any():
        return None
    a, r = abnormal[keep], raw[keep]
    means = np.nanmean(a, axis=1)
    medians = np.nanmedian(a, axis=1)
    hits = np.nansum(direction * r > 0, axis=1) / np.isfinite(r).sum(axis=1)
    return Placebo(
        draws=int(a.shape[0]), mean=_f(means.mean()), mean_band=_band(means),
        median=_f(np.median(medians)), median_band=_band(medians), hit=_f(hits.mean()),
        hit_band=_band(hits), p_mean=_p_two_sided(means, observed.mean),
        p_median=_p_two_sided(medians, observed.median), p_hit=_p_two_sided(hits, observed.hit),
        method="shift",
    )


def drift(pool: Floats) -> dict[str, float | int | None]:
    """Unconditional drift: every eligible entry's forward return, no signal needed."""
    if pool.size == 0:
        return {"n": 0, "mean": None, "median": None, "up": None}
    return {"n": int(pool.size), "mean": _f(pool.mean()), "median": _f(np.median(pool)),
            "up": _f((pool > 0).mean())}
