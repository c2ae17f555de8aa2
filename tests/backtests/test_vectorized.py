"""The vectorized engine finds exactly the alerts of the per-bar reference path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from backtests.bars import build_bars, load_bars
from backtests.engine import run_vectorized
from backtests.reference import run_reference
from backtests.synthetic import synthetic_history
from backtests.windows import WindowCache
from signals import SignalKind, SignalParams, WindowStat, cascade, squeeze
from signals.vectorized import classify_arrays
from signals.windows import Context
from tests.helpers.history_files import require_shared_data

HOUR = 3_600_000
CONFIGS = {
    "defaults": SignalParams(),
    "loose": SignalParams(windows=("1h", "4h"), min_share=0.6, tiers_usd_1h=(1e6, 3e6, 8e6)),
    "confirmations": SignalParams(require_price_confirmation=True,
                                  require_funding_confirmation=True, tiers_ratio=(2.0, 4.0, 8.0)),
    "market only": SignalParams(per_coin=False, tiers_ratio=(3.0, 6.0, 9.0)),
    "two coins max": SignalParams(max_coins=2, min_share=0.6, tiers_ratio=(2.0, 4.0, 8.0)),
    "short baseline": SignalParams(baseline_hours=24, windows=("4h", "1h", "24h")),
}


@pytest.fixture(scope="module")
def synthetic_bars():
    # Gaps, and funding stamped 90 s past the hour: the live runner then also evaluates at
    # odd times, where windows straddle bars.
    data = synthetic_history(("BTC", "ETH", "SOL"), 24 * 45, seed=11, bursts_per_week=5,
                             gaps=25, funding_offset_ms=90_000)
    return build_bars(data)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_vectorized_equals_per_bar_on_synthetic_data(synthetic_bars, name):
    params = CONFIGS[name]
    fast = run_vectorized(WindowCache(synthetic_bars), params)
    slow = run_reference(synthetic_bars, params)
    assert fast == slow
    assert len(fast) > 10, "a test that finds nothing proves nothing"


def test_synthetic_cases_cover_escalations_windows_and_scopes(synthetic_bars):
    alerts = run_vectorized(WindowCache(synthetic_bars), CONFIGS["loose"])
    assert any(a.escalation for a in alerts)
    assert {a.window_ms for a in alerts} == {HOUR, 4 * HOUR}
    assert {a.scope for a in alerts} == {"*", "BTC", "ETH", "SOL"}
    assert any(a.end_ms % HOUR for a in run_vectorized(WindowCache(synthetic_bars),
                                                        CONFIGS["short baseline"]))


@pytest.fixture(scope="module")
def real_bars():
    regime = require_shared_data("coinglass_btc", "regime_1h.csv")
    coinalyze = require_shared_data("coinalyze_binance_1h_2024")
    return load_bars([regime], symbol="BTC"), load_bars([coinalyze])


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["defaults", "confirmations", "short baseline"])
def test_vectorized_equals_per_bar_on_real_files(real_bars, name):
    for bars in real_bars:
        fast = run_vectorized(WindowCache(bars), CONFIGS[name])
        assert fast == run_reference(bars, CONFIGS[name]) and fast


def _stat(long_usd: float, short_usd: float, baseline: float | None, price: float | None,
          funding: float | None) -> WindowStat:
    return WindowStat("BTC", 0, HOUR, long_usd, short_usd, baseline,
                      context=Context(price_change=price, funding_8h=funding))


def test_array_classifier_matches_the_classifiers_value_by_value():
    # Values sit on every threshold: 75 % share, $10M/$25M/$50M, 5x/10x/20x, floor $2M.
    sizes = [0.0, 1.9e6, 2e6, 2.5e6, 9.99e6, 10e6, 25e6, 50e6, 60e6]
    shares = [0.0, 0.5, 0.74999, 0.75, 0.9, 1.0]
    baselines = [None, 1e5, 2e5, 4e5, 5e6]
    contexts = [None, -0.01, 0.0, 0.01]
    params = [SignalParams(), SignalParams(require_price_confirmation=True,
                                           require_funding_confirmation=True)]
    cases = [(t * (1 - s), t * s, b, c, c) for t, s, b, c in
             itertools.product(sizes, shares, baselines, contexts)]
    arr = [np.array([np.nan if x is None else x for x in col], dtype=float)
           for col in zip(*cases, strict=True)]
    for p, (kind, classify) in itertools.product(
            params, [(SignalKind.SHORT_SQUEEZE, squeeze.classify),
                     (SignalKind.LONG_CASCADE, cascade.classify)]):
        got = classify_arrays(kind, *arr, HOUR, p)
        for i, case in enumerate(cases):
            s = classify(_stat(*case), p)
            assert int(got.severity[i]) == (s.severity if s else 0), (kind, p, case)
            if s:
                assert got.share[i] == s.share
                assert (np.isnan(got.ratio[i]) and s.ratio is None) or got.ratio[i] == s.ratio
