"""Sweeps that cannot fool you: tuned per kind and direction, checked for data snooping.

Each *family* is one kind traded one way (squeezes with the continuation = long, squeezes
reversed = short, cascades continued = short, ...); its members are the sweep's
configurations. Per family:

- a multi-fold walk-forward: on each fold the best configuration of the tuning period (the
  past only) is read on the next period, and the Spearman correlation between every
  configuration's in-sample and out-of-sample net mean says whether tuning ranks carry
  over at all (near 0 or below: the ranking is noise);
- the probability of backtest overfitting (Bailey, Borwein, López de Prado and Zhu's
  combinatorially symmetric cross-validation): the span is cut into S blocks; for every way
  of taking half the blocks as in-sample, the in-sample winner's rank among all
  configurations on the other half is noted; PBO is the share of splits where it lands at
  or below the out-of-sample median. PBO near 0.5 or above: the tuned choice is no better
  than a random one. All splits are one matrix product over the per-block sums the sweep
  already computed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from backtests.engine import KINDS
from backtests.outcomes import DIRECTION
from feeds.model import iso_z

HYPOTHESES = ("continuation", "reversal")
BLOCKS = 10  # CSCV blocks: C(10, 5) = 252 splits
FArr = NDArray[np.float64]


def blocks_of(span: tuple[int, int], n: int = BLOCKS) -> list[tuple[int, int]]:
    """`n` equal calendar blocks of the span (the CSCV unit)."""
    a, b = span
    edges = [a + (b - a) * i // n for i in range(n + 1)]
    return list(itertools.pairwise(edges))


def ranks(x: FArr) -> FArr:
    """Average ranks (1 = lowest), ties sharing their mean rank; NaN stays NaN."""
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    v = x[ok]
    order = np.argsort(v, kind="mergesort")
    sv = v[order]
    r = np.empty(v.size)
    # Ties: every member of a run of equal values gets the run's mean position.
    starts = np.r_[0, np.flatnonzero(np.diff(sv)) + 1]
    ends = np.r_[starts[1:], sv.size]
    r[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    out[ok] = r
    return out


def spearman(a: FArr, b: FArr) -> float | None:
    """Rank correlation over the pairs where both are finite; None below 3 pairs."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return None
    ra, rb = ranks(a[ok]), ranks(b[ok])
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _arrays(scores: Sequence[Sequence[dict[str, Any]]], kind: str, first: int, last: int
            ) -> tuple[FArr, FArr, FArr, FArr]:
    """n, sum of continuation-signed returns, ups, downs: [configuration, period]."""
    def grab(key: str) -> FArr:
        return np.array([[float(p["kinds"][kind][key]) for p in s[first:last]] for s in scores],
                        dtype=np.float64).reshape(len(scores), last - first)
    return grab("n"), grab("sum"), grab("up"), grab("down")


def _net(n: FArr, s: FArr, sign: float, cost: float) -> FArr:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, sign * s / np.where(n > 0, n, 1) - cost, np.nan)


def pbo(n: FArr, s: FArr, sign: float, cost: float, min_n: int) -> dict[str, Any]:
    """CSCV over the block columns of `n` and `s` ([configuration, block])."""
    blocks = n.shape[1]
    half = blocks // 2
    if blocks < 2 or n.shape[0] < 2:
        return {"pbo": None, "splits": 0, "blocks": blocks, "median_logit": None}
    combos = np.array(list(itertools.combinations(range(blocks), half)), dtype=np.intp)
    ins = np.zeros((combos.shape[0], blocks))
    ins[np.arange(combos.shape[0])[:, None], combos] = 1.0
    outs = 1.0 - ins
    n_is, s_is, n_oos, s_oos = n @ ins.T, s @ ins.T, n @ outs.T, s @ outs.T  # [config, split]
    perf_is = _net(n_is, s_is, sign, cost)
    perf_is = np.where(n_is >= min_n, perf_is, -np.inf)
    perf_oos = _net(n_oos, s_oos, sign, cost)
    best = np.argmax(perf_is, axis=0)
    cols = np.arange(combos.shape[0])
    usable = np.isfinite(perf_is[best, cols]) & np.isfinite(perf_oos[best, cols])
    valid = np.isfinite(perf_oos)
    chosen = perf_oos[best, cols]
    below = np.sum(valid & (perf_oos < chosen), axis=0)
    equal = np.sum(valid & (perf_oos == chosen), axis=0)
    total = valid.sum(axis=0)
    usable &= total >= 2
    if not usable.any():
        return {"pbo": None, "splits": 0, "blocks": blocks, "median_logit": None}
    omega = (below + 0.5 * (equal - 1) + 1) / (total + 1)  # relative rank in (0, 1)
    logit = np.log(omega / (1 - omega))[usable]
    return {"pbo": float(np.mean(logit <= 0)), "splits": int(usable.sum()), "blocks": blocks,
            "median_logit": float(np.median(logit))}


def _score(n: float, s: float, hits: float, sign: float, cost: float) -> dict[str, Any]:
    return {"n": int(n), "net_mean": sign * s / n - cost if n else None,
            "hit": hits / n if n else None}


def family(labels: Sequence[str], scores: Sequence[Sequence[dict[str, Any]]], kind: str,
           hypothesis: str, periods: Sequence[tuple[int, int]], cost: float, min_n: int
           ) -> dict[str, Any]:
    """Walk-forward and PBO for one kind traded one way."""
    sign = 1.0 if hypothesis == "continuation" else -1.0
    p = len(periods)
    n, s, up, down = _arrays(scores, kind, 0, len(scores[0]))
    hits = up if sign > 0 else down
    net = _net(n, s, sign, cost)
    folds, oos_n, oos_s = [], 0.0, 0.0
    for i in range(p - 1):
        tune = np.where(n[:, i] >= min_n, net[:, i], np.nan)
        fold: dict[str, Any] = {
            "tune": [iso_z(periods[i][0]), iso_z(periods[i][1])],
            "test": [iso_z(periods[i + 1][0]), iso_z(periods[i + 1][1])],
            "choice": None, "tune_score": None, "test_score": None,
            "spearman": spearman(tune, net[:, i + 1]),
            "ranked": int((np.isfinite(tune) & np.isfinite(net[:, i + 1])).sum())}
        if np.isfinite(tune).any():
            k = int(np.nanargmax(tune))  # ties: the first in grid order
            fold.update(choice=labels[k],
                        tune_score=_score(n[k, i], s[k, i], hits[k, i], sign, cost),
                        test_score=_score(n[k, i + 1], s[k, i + 1], hits[k, i + 1], sign, cost))
            oos_n += n[k, i + 1]
            oos_s += s[k, i + 1]
        folds.append(fold)
    rhos = [f["spearman"] for f in folds if f["spearman"] is not None]
    test = pbo(n[:, p:], s[:, p:], sign, cost, max(1, min_n // 2))
    oos = sign * oos_s / oos_n - cost if oos_n else None
    edge = (oos is not None and oos > 0 and test["pbo"] is not None and test["pbo"] < 0.5
            and bool(rhos) and float(np.mean(rhos)) > 0)
    long = DIRECTION[kind] * sign > 0
    return {"kind": kind, "hypothesis": hypothesis, "trade": "long" if long else "short",
            "folds": folds, "mean_spearman": float(np.mean(rhos)) if rhos else None,
            "oos_n": int(oos_n), "oos_net_mean": oos, **test,
            "verdict": "edge not ruled out" if edge else "no edge"}


def snooping(labels: Sequence[str], scores: Sequence[Sequence[dict[str, Any]]],
             periods: Sequence[tuple[int, int]], blocks: Sequence[tuple[int, int]],
             cost: float, min_n: int) -> dict[str, Any]:
    """Every family; `scores[c]` holds the walk-forward periods, then the CSCV blocks."""
    if not scores or len(scores[0]) != len(periods) + len(blocks):
        raise ValueError("snooping: each score list must cover the periods then the blocks")
    fams = [family(labels, scores, k.value, hyp, periods, cost, min_n)
            for k in KINDS for hyp in HYPOTHESES]
    return {"method": "per kind and direction: walk-forward over the folds with Spearman "
                      "rank agreement of in- vs out-of-sample net means, and the probability "
                      "of backtest overfitting by combinatorially symmetric cross-validation",
            "blocks": [[iso_z(a), iso_z(b)] for a, b in blocks], "families": fams}
