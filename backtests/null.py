"""The null an alert must beat, and honest uncertainty around what it did.

- **Abnormal return**: the return at h minus a drift benchmark known at entry: the mean
  h-return over the trailing `drift_days` of entries whose h had already closed (entry
  + h <= this entry). Nothing after the entry's open enters it.
- **Matched placebo**: random entries drawn, per alert, from the eligible entries of its
  scope with the same trailing-volatility bin (quantiles of the pool) and hour-of-day
  block, so "quiet Sunday mornings" cannot make a noisy hour look special. Draws are
  de-clustered like the alerts: within one draw no two entries are closer than the
  cohort's spacing (the cooldown), redrawn until they are.
- **Block bootstrap**: alerts whose entries chain within `block_ms` of each other form one
  block, resampled whole, so clustered episodes do not pass for independent ones.
- **Circular shifts**: every alert of a group moved by the same whole number of days,
  wrapping around the period, keeps hour of day, spacing and the alerts' own clustering
  exactly (not volatility): the robustness check beside the matched placebo.
- **Benjamini–Hochberg** q-values over a family of p-values.

Everything is vectorised over draws (numpy), so 10,000 draws per row cost seconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backtests.bars import Floats, Ints, PriceSeries
from backtests.outcomes import Horizon, bars_for
from feeds.model import HOUR_MS

MAX_REDRAWS = 40  # de-clustering passes; leftovers (rare, tiny strata) are counted


@dataclass(frozen=True, slots=True)
class Series:
    """Per price bar k, an entry at open[k]: return at h, its drift benchmark, the abnormal
    return, the trailing volatility (std of 1-bar log returns up to open[k]) and the hour."""

    entry_ms: Ints
    ret: Floats
    drift: Floats
    abnormal: Floats
    vol: Floats
    hour: Ints


def _window_mean(x: Floats, lo: Ints, hi: Ints, need: int) -> Floats:
    """Mean of the finite x[lo:hi] per entry (NaN under `need` values)."""
    ok = np.isfinite(x)
    cs = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
    cc = np.concatenate([[0], np.cumsum(ok)])
    lo, hi = np.clip(lo, 0, x.size), np.clip(hi, 0, x.size)
    hi = np.maximum(hi, lo)
    n = cc[hi] - cc[lo]
    with np.errstate(all="ignore"):
        out: Floats = np.where(n >= need, (cs[hi] - cs[lo]) / n, np.nan)
    return out


def series(prices: PriceSeries, h: Horizon, drift_ms: int, vol_ms: int) -> Series:
    """The per-entry arrays of one price series at one horizon."""
    o = np.where(prices.open > 0, prices.open, np.nan)
    n, size = bars_for(h, prices), prices.open.size
    k = np.arange(size)
    ret = np.full(size, np.nan)
    if n < size:
        ret[: size - n] = o[n:] / o[: size - n] - 1.0
    # Entries j with j + n <= k closed by k's open; the window reaches drift_ms back.
    span = max(1, drift_ms // prices.span_ms)
    drift = _window_mean(ret, k - span, k - n + 1, max(1, span // 8))
    logret = np.full(size, np.nan)
    with np.errstate(all="ignore"):
        logret[1:] = np.log(o[1:] / o[:-1])  # known at open[j]
    vbars = max(2, vol_ms // prices.span_ms)
    # Windows over the log returns up to open[k]; exact (no running sums: they cancel).
    view = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([np.full(vbars - 1, np.nan), logret]), vbars)
    held = np.isfinite(view).sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing windows: NaN
        vol = np.where(held >= max(2, vbars // 2), np.nanstd(view, axis=1), np.nan)
    entry_ms = prices.origin_ms + k * prices.span_ms
    return Series(entry_ms, ret, drift, ret - drift, vol, (entry_ms // HOUR_MS) % 24)


@dataclass(frozen=True)
class MatchedPool:
    """Eligible entries of one scope at one horizon, sorted by (volatility bin, hour
    block): every stratum, and every volatility bin, is one contiguous run."""

    entry_ms: Ints
    ret: Floats
    abnormal: Floats
    edges: Floats  # inner volatility-bin edges
    hour_bins: int
    strata: Ints  # sorted stratum id per entry

    @property
    def size(self) -> int:
        return int(self.entry_ms.size)

    def stratum(self, vol: Floats, hour: Ints) -> Ints:
        vb = np.searchsorted(self.edges, vol, side="right")
        return vb * self.hour_bins + hour * self.hour_bins // 24

    def ranges(self, vol: Floats, hour: Ints, min_size: int) -> tuple[Ints, Ints]:
        """(start, count) per entry of its stratum; a thin stratum widens to its whole
        volatility bin (every hour)."""
        s = self.stratum(vol, hour)
        lo = np.searchsorted(self.strata, s, side="left")
        hi = np.searchsorted(self.strata, s, side="right")
        vb = s // self.hour_bins
        wlo = np.searchsorted(self.strata, vb * self.hour_bins, side="left")
        whi = np.searchsorted(self.strata, (vb + 1) * self.hour_bins, side="left")
        thin = hi - lo < min_size
        return np.where(thin, wlo, lo), np.where(thin, whi - wlo, hi - lo)


def matched_pool(s: Series, eligible_k: Ints, vol_bins: int, hour_bins: int) -> MatchedPool:
    k = np.unique(eligible_k[(eligible_k >= 0) & (eligible_k < s.ret.size)])
    k = k[np.isfinite(s.abnormal[k]) & np.isfinite(s.vol[k])]
    vol = s.vol[k]
    qs = np.linspace(0, 1, vol_bins + 1)[1:-1]
    edges = np.quantile(vol, qs) if vol.size else np.empty(0)
    vb = np.searchsorted(edges, vol, side="right")
    strata = vb * hour_bins + s.hour[k] * hour_bins // 24
    order = np.argsort(strata, kind="stable")
    k = k[order]
    return MatchedPool(s.entry_ms[k], s.ret[k], s.abnormal[k], edges, hour_bins, strata[order])


@dataclass(frozen=True)
class Draws:
    """[draw, entry] random returns matched to a group's alerts, and how many draws were
    left with entries closer than the spacing after every redraw."""

    ret: Floats
    abnormal: Floats
    clustered: int


def draw_matched(pools: Sequence[MatchedPool], starts: Sequence[Ints], counts: Sequence[Ints],
                 draws: int, spacing_ms: int, rng: np.random.Generator) -> Draws:
    """One random entry per alert per draw from the alert's own stratum (pool `i` serves
    the alerts whose `starts[i]`/`counts[i]` it holds); no two entries of a draw closer than
    `spacing_ms` (redrawn, the later of each close pair, up to MAX_REDRAWS passes)."""
    offset, start, count = 0, [], []
    for pool, st, ct in zip(pools, starts, counts, strict=True):
        start.append(st + offset)
        count.append(ct)
        offset += pool.size
    st, ct = np.concatenate(start or [np.empty(0, np.int64)]), np.concatenate(
        count or [np.empty(0, np.int64)])
    if st.size == 0 or (ct <= 0).any():
        empty = np.empty((draws, 0))
        return Draws(empty, empty, 0)
    times = np.concatenate([p.entry_ms for p in pools])
    idx = st + (rng.random((draws, st.size)) * ct).astype(np.int64)
    clustered = 0
    if spacing_ms > 0 and st.size > 1:
        rows = np.arange(draws)  # draws still holding a close pair: only these are redone
        for attempt in range(MAX_REDRAWS + 1):
            t = times[idx[rows]]
            order = np.argsort(t, axis=1)
            close = np.diff(np.take_along_axis(t, order, axis=1), axis=1) < spacing_ms
            still = close.any(axis=1)
            rows, order, close = rows[still], order[still], close[still]
            if rows.size == 0 or attempt == MAX_REDRAWS:
                break
            bad = np.zeros((rows.size, st.size), dtype=bool)
            np.put_along_axis(bad, order[:, 1:], close, axis=1)
            r, c = np.nonzero(bad)
            idx[rows[r], c] = st[c] + (rng.random(r.size) * ct[c]).astype(np.int64)
        clustered = int(rows.size)
    ret = np.concatenate([p.ret for p in pools])
    abnormal = np.concatenate([p.abnormal for p in pools])
    return Draws(ret[idx], abnormal[idx], clustered)


def blocks_of(entry_ms: Ints, block_ms: int) -> Ints:
    """Block id per entry: entries chained within `block_ms` of the previous share one."""
    order = np.argsort(entry_ms, kind="stable")
    ids = np.empty(entry_ms.size, dtype=np.int64)
    ids[order] = np.concatenate([[0], np.cumsum(np.diff(entry_ms[order]) > block_ms)])
    return ids


def block_weights(blocks: Ints, draws: int, rng: np.random.Generator) -> Floats:
    """[draw, entry]: how often each entry is taken when whole blocks are resampled."""
    n_blocks = int(blocks.max()) + 1
    pick = rng.integers(0, n_blocks, size=(draws, n_blocks))
    flat = (np.arange(draws)[:, None] * n_blocks + pick).ravel()
    counts = np.bincount(flat, minlength=draws * n_blocks).reshape(draws, n_blocks)
    return counts[:, blocks].astype(np.float64)


def weighted_medians(values: Floats, weights: Floats) -> Floats:
    """Per row of weights, the (lower) weighted median of `values`."""
    order = np.argsort(values)
    cw = np.cumsum(weights[:, order], axis=1)
    at = np.argmax(cw >= cw[:, -1:] / 2, axis=1)
    out: Floats = values[order][at]
    return out


def cluster_t(values: Floats, blocks: Ints) -> float:
    """t-stat of the mean against 0 with a block-robust standard error (NaN if < 2 blocks)."""
    n_blocks = int(blocks.max()) + 1 if blocks.size else 0
    if n_blocks < 2:
        return float("nan")
    resid = values - values.mean()
    sums = np.bincount(blocks, weights=resid, minlength=n_blocks)
    se = float(np.sqrt((sums ** 2).sum() * n_blocks / (n_blocks - 1))) / values.size
    return float(values.mean()) / se if se > 0 else float("nan")


def bh_qvalues(p: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q), in the order given."""
    arr = np.asarray(p, dtype=float)
    m = arr.size
    if m == 0:
        return []
    order = np.argsort(arr)
    scaled = arr[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return [float(x) for x in out]


@dataclass(frozen=True)
class ShiftColumn:
    """One alert for the circular-shift placebo: its scope's per-bar arrays, which bars may
    be entries, the alert's own bar, the period's bar range and a day in bars."""

    abnormal: Floats
    ret: Floats
    ok: npt.NDArray[np.bool_]
    k: int
    lo: int
    hi: int
    day: int


def circular_shifts(cols: Sequence[ShiftColumn]) -> tuple[Floats, Floats]:
    """[shift, alert]: every alert moved by the same whole number of days (1, 2, ... up to
    the period's length), wrapping around the period: hour of day, spacing and clustering
    all kept exactly. A shifted entry that is not eligible is NaN."""
    if not cols:
        return np.empty((0, 0)), np.empty((0, 0))
    days = min((c.hi - c.lo) // max(c.day, 1) for c in cols)
    j = np.arange(1, max(days, 1))
    abn = np.full((j.size, len(cols)), np.nan)
    ret = np.full((j.size, len(cols)), np.nan)
    for i, c in enumerate(cols):
        kk = c.lo + (c.k - c.lo + j * c.day) % max(c.hi - c.lo, 1)
        good = c.ok[kk]
        abn[:, i] = np.where(good, c.abnormal[kk], np.nan)
        ret[:, i] = np.where(good, c.ret[kk], np.nan)
    return abn, ret
