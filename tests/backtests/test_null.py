"""The null and the uncertainty: drift known at entry, matched and spaced placebo draws,
block bootstrap, Benjamini-Hochberg, on numbers a reader can check."""

from __future__ import annotations

import numpy as np
import pytest

from backtests.bars import PriceSeries
from backtests.null import (
    bh_qvalues,
    block_weights,
    blocks_of,
    draw_matched,
    matched_pool,
    series,
)
from backtests.outcomes import parse_horizons
from backtests.stats import compute_stats

HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
H1, H4 = parse_horizons("1h,4h")


def _prices(opens) -> PriceSeries:
    o = np.asarray(opens, dtype=float)
    return PriceSeries("hand-made", "BTC", T0, HOUR, o, o * 1.01, o * 0.99, o)


def test_benjamini_hochberg_by_hand():
    # Sorted .01 .03 .04 .2 -> .04 .06 .0533 .2 -> running minimum from the top.
    q = bh_qvalues([0.01, 0.04, 0.03, 0.2])
    assert q == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    assert bh_qvalues([]) == [] and bh_qvalues([0.9, 0.95]) == pytest.approx([0.95, 0.95])


def test_steady_growth_is_all_drift_and_no_abnormal_return():
    s = series(_prices(100 * 1.01 ** np.arange(24 * 20)), H4, 5 * 24 * HOUR, 24 * HOUR)
    known = np.isfinite(s.abnormal)
    assert known[24 * 5 :].any() and not known[:4].any()  # nothing closed before the first h
    assert s.drift[known] == pytest.approx(1.01 ** 4 - 1)
    assert np.abs(s.abnormal[known]).max() < 1e-12
    assert s.vol[30:100] == pytest.approx(0.0, abs=1e-12)  # constant log returns


def test_the_benchmark_and_volatility_never_see_past_the_entry():
    rng = np.random.default_rng(3)
    opens = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 24 * 40)))
    k = 24 * 25
    changed = opens.copy()
    changed[k + 1 :] *= rng.uniform(0.5, 2.0, changed.size - k - 1)
    a = series(_prices(opens), H4, 10 * 24 * HOUR, 24 * HOUR)
    b = series(_prices(changed), H4, 10 * 24 * HOUR, 24 * HOUR)
    # Up to the entry's own open: identical benchmark and volatility.
    assert np.array_equal(a.drift[: k + 1], b.drift[: k + 1], equal_nan=True)
    assert np.array_equal(a.vol[: k + 1], b.vol[: k + 1], equal_nan=True)
    assert not np.array_equal(a.drift[k + 8 :], b.drift[k + 8 :], equal_nan=True)
    # By hand at k: the mean of the 4h returns that closed by open[k], over 10 days.
    j = np.arange(k - 240, k - 4 + 1)
    assert a.drift[k] == pytest.approx(np.mean(opens[j + 4] / opens[j] - 1), abs=1e-12)
    lr = np.log(opens[k - 23 : k + 1] / opens[k - 24 : k])
    assert a.vol[k] == pytest.approx(lr.std(), abs=1e-12)


def test_matched_draws_keep_the_stratum_and_the_spacing():
    rng = np.random.default_rng(5)
    opens = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 24 * 60) * rng.uniform(0.2, 3, 24 * 60)))
    s = series(_prices(opens), H1, 30 * 24 * HOUR, 24 * HOUR)
    pool = matched_pool(s, np.arange(24 * 10, 24 * 60), vol_bins=3, hour_bins=6)
    alerts = np.array([24 * 20 + 3, 24 * 21 + 14, 24 * 40 + 22])
    st, ct = pool.ranges(s.vol[alerts], s.hour[alerts], min_size=5)
    assert (ct >= 5).all()
    draws = draw_matched([pool], [st], [ct], 2000, 4 * HOUR, np.random.default_rng(1))
    assert draws.abnormal.shape == (2000, 3) and draws.clustered == 0
    strata = pool.stratum(s.vol[alerts], s.hour[alerts])
    for col in range(3):  # every draw comes from its alert's stratum
        vals = set(pool.abnormal[pool.strata == strata[col]].tolist())
        assert set(draws.abnormal[:, col].tolist()) <= vals
    # Spacing: each drawn value names its entry (random prices: no two values alike).
    lookup = dict(zip(pool.abnormal.tolist(), pool.entry_ms.tolist(), strict=True))
    assert len(lookup) == pool.size
    when = np.vectorize(lookup.get)(draws.abnormal)
    gaps = np.diff(np.sort(when, axis=1), axis=1)
    assert (gaps >= 4 * HOUR).all()


def test_blocks_chain_alerts_within_a_day():
    t = np.array([0, 10, 30, 80, 81, 200]) * HOUR
    assert blocks_of(t, 24 * HOUR).tolist() == [0, 0, 0, 1, 1, 2]
    assert blocks_of(t[::-1], 24 * HOUR).tolist() == [2, 1, 1, 0, 0, 0]
    w = block_weights(np.array([0, 0, 1]), 50, np.random.default_rng(0))
    assert (w[:, 0] == w[:, 1]).all() and (w.sum(axis=1) > 0).all()


def test_one_block_leaves_no_room_for_the_mean_to_move():
    r = np.array([0.01, -0.02, 0.04, 0.0])
    together = compute_stats(r, 1, 0.0, boot=500, blocks=np.zeros(4, dtype=np.int64))
    apart = compute_stats(r, 1, 0.0, boot=500)
    assert together.mean_ci == pytest.approx((0.0075, 0.0075))
    assert apart.mean_ci[1] - apart.mean_ci[0] > 0.01


def test_circular_shifts_keep_every_gap_and_wrap_inside_the_period():
    from backtests.null import ShiftColumn, circular_shifts

    size, day = 24 * 10, 24
    values = np.arange(size, dtype=float)
    ok = np.ones(size, dtype=bool)
    ok[100] = False  # not an eligible entry: NaN where a shift lands on it
    cols = [ShiftColumn(values, values, ok, k, 24, 24 * 9, day) for k in (30, 33, 200)]
    abn, _ = circular_shifts(cols)
    assert abn.shape == (7, 3)  # 8 days in the period: shifts of 1 to 7 days
    span = 24 * 8
    for j in range(1, 8):
        expected = [24 + (k - 24 + j * day) % span for k in (30, 33, 200)]
        got = [np.nan if e == 100 else float(e) for e in expected]
        assert np.array_equal(abn[j - 1], got, equal_nan=True)
    # Hour of day and the gap between the first two alerts never change.
    assert ((abn[:, 1] - abn[:, 0]) == 3).all() and (abn[:, 0] % 24 == 6).all()
