"""Do alerts foretell the size of the next move, whatever its direction?

Per kind and cohort (scopes pooled and de-clustered, as the headline), at each horizon: the
mean absolute return, realised range ((max high - min low) / entry over the hold) and the
favourable and adverse excursions in the continuation direction, against the same numbers
at matched random times (`backtests.null.draw_matched`: same scope, trailing-volatility bin
and hour block, spaced like the alerts). `ratio` is the alerts' mean over the placebo's;
p (two-sided, from the draws) for the absolute return and the range joins the report's
Benjamini-Hochberg family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from backtests.bars import Bars, Floats
from backtests.null import MatchedPool, draw_matched
from backtests.outcomes import DIRECTION, Horizon, _extreme, bars_for
from feeds.model import HOUR_MS

if TYPE_CHECKING:
    from backtests.pools import Pools
    from backtests.study import SignalOutcome, StudyConfig

STATS = ("abs_return", "range", "mfe", "mae")
TESTED = ("abs_return", "range")  # the ones with a p-value (in the FDR family)


def _sizes(bars: Bars, scope: str, k: np.ndarray[Any, Any], h: Horizon, d: int
           ) -> dict[str, Floats]:
    """Per entry bar k: |return|, range, favourable and adverse excursion (direction d)."""
    p = bars.prices[scope]
    n = bars_for(h, p)
    ok = (k >= 0) & (k + n < p.open.size)
    kk = np.where(ok, k, 0)
    with np.errstate(all="ignore"):
        entry = np.where(ok & (p.open[kk] > 0), p.open[kk], np.nan)
        ret = p.open[np.clip(kk + n, 0, p.open.size - 1)] / entry - 1
        hi = _extreme(p.high, kk, n, "max") / entry - 1
        lo = _extreme(p.low, kk, n, "min") / entry - 1
    fav, adv = (hi, lo) if d > 0 else (-lo, -hi)
    return {"abs_return": np.abs(ret), "range": hi - lo, "mfe": fav, "mae": adv}


def _p(observed: float, draws: Floats) -> float:
    draws = draws[np.isfinite(draws)]
    if not draws.size:
        return float("nan")
    up = (np.sum(draws >= observed) + 1) / (draws.size + 1)
    down = (np.sum(draws <= observed) + 1) / (draws.size + 1)
    return float(min(1.0, 2 * min(up, down)))


def _row(members: Sequence[SignalOutcome], bars: Bars, pools: Pools, h: Horizon, d: int,
         spacing_ms: int, config: StudyConfig, seed: list[int]) -> dict[str, Any] | None:
    these = [s for s in members if s.vol is not None and s.entry_ms is not None
             and s.returns.get(h.name) is not None]
    if not these:
        return None
    names = sorted({s.record.scope for s in these})
    observed: dict[str, list[Floats]] = {k: [] for k in STATS}
    pools_by: dict[str, list[MatchedPool]] = {k: [] for k in STATS}
    starts, counts = [], []
    for sc in names:
        mine = [s for s in these if s.record.scope == sc]
        prices = bars.prices[sc]
        k = (np.array([s.entry_ms for s in mine], dtype=np.int64) - prices.origin_ms) \
            // prices.span_ms
        for key, v in _sizes(bars, sc, k, h, d).items():
            observed[key].append(v)
        pool = pools.matched(sc, h)
        st, ct = pool.ranges(np.array([s.vol for s in mine], dtype=float),
                             (np.array([s.entry_ms for s in mine], dtype=np.int64) // HOUR_MS)
                             % 24, config.min_stratum)
        starts.append(st)
        counts.append(ct)
        pk = (pool.entry_ms - prices.origin_ms) // prices.span_ms
        sizes = _sizes(bars, sc, pk, h, d)
        for key in STATS:
            pools_by[key].append(dataclasses.replace(pool, ret=sizes[key]))
    out: dict[str, Any] = {"n": len(these)}
    for key in STATS:
        rng = np.random.default_rng(seed)  # the same seed: every statistic sees the same draws
        draws = draw_matched(pools_by[key], starts, counts, config.placebo_draws, spacing_ms,
                             rng).ret
        obs = np.concatenate(observed[key])
        if not draws.size or not np.isfinite(obs).any():
            out[key] = None
            continue
        with np.errstate(all="ignore"):
            per_draw = np.nanmean(draws, axis=1)
        mean, base = float(np.nanmean(obs)), float(np.nanmean(per_draw))
        out[key] = {"mean": mean, "median": float(np.nanmedian(obs)), "placebo_mean": base,
                    "ratio": mean / base if base != 0 else None,
                    "p": _p(mean, per_draw) if key in TESTED else None}
    return out


def volatility_rows(signals: Sequence[SignalOutcome], bars: Bars, pools: Pools,
                    config: StudyConfig) -> list[dict[str, Any]]:
    """One row per kind, cohort and horizon (scopes pooled and de-clustered)."""
    from backtests.study import ALL, COHORTS, ESCALATION, groups_of

    rows = []
    for gi, (kind, cohort, scope, sev, members) in enumerate(
            groups_of(signals, config.cooldown_ms)):
        if scope != ALL or sev is not None or cohort not in COHORTS:
            continue
        spacing = 0 if cohort == ESCALATION else config.cooldown_ms
        for hi, h in enumerate(config.horizons):
            row = _row(members, bars, pools, h, DIRECTION[kind], spacing, config,
                       [config.seed, 7919, gi, hi])
            if row is not None:
                rows.append({"kind": kind, "cohort": cohort, "horizon": h.name, **row})
    return rows


def volatility_table(results: dict[str, Any], labels: dict[str, str]
                     ) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Headers and rows for the report: alerts' mean against the matched placebo's."""
    from backtests.blocks import pct, pval

    def cell(x: dict[str, Any] | None, tested: bool) -> str:
        if not x:
            return "—"
        ratio = "" if x["ratio"] is None else f" ({x['ratio']:.2f}×)"
        text = f"{pct(x['mean'], 2, False)}{ratio}"
        return f"{text}, p {pval(x['p'])} q {pval(x.get('q'))}" if tested else text

    headers: tuple[str, ...] = ("Kind", "Cohort", "Horizon", "n", "Abs. return (× matched)",
                                "Range (× matched)", "MFE", "MAE")
    rows: list[tuple[str, ...]] = [
        (str(labels.get(r["kind"], r["kind"])), str(r["cohort"]), str(r["horizon"]),
         str(r["n"]), cell(r["abs_return"], True), cell(r["range"], True), cell(r["mfe"], False),
         cell(r["mae"], False)) for r in results.get("volatility", [])]
    return headers, rows


def normal_ranges(signals: Sequence[SignalOutcome], bars: Bars, config: StudyConfig
                  ) -> list[dict[str, float | None]]:
    """Per signal and horizon, the 'normal' range known at its entry: the mean range of
    every entry in the trailing `drift_days` whose hold had closed by then (as the drift
    benchmark), so a quote's "× normal" never uses the future."""
    from backtests.null import _window_mean

    cache: dict[tuple[str, str], Floats] = {}
    out: list[dict[str, float | None]] = []
    for s in signals:
        row: dict[str, float | None] = {}
        prices = bars.prices.get(s.record.scope)
        for h in config.horizons:
            if prices is None or s.entry_ms is None:
                row[h.name] = None
                continue
            key = (s.record.scope, h.name)
            if key not in cache:
                k = np.arange(prices.open.size)
                n = bars_for(h, prices)
                rng = _sizes(bars, s.record.scope, k, h, 1)["range"]
                span = max(1, int(config.drift_days * 24 * HOUR_MS) // prices.span_ms)
                cache[key] = _window_mean(rng, k - span, k - n + 1, max(1, span // 8))
            k0 = (s.entry_ms - prices.origin_ms) // prices.span_ms
            v = cache[key][k0] if 0 <= k0 < cache[key].size else np.nan
            row[h.name] = float(v) if np.isfinite(v) else None
        out.append(row)
    return out
