"""An independent recomputation: every return and abnormal return in results.json, rebuilt
from the raw price column of the CSV with nothing but the csv module, to 1e-9."""

from __future__ import annotations

import csv

import pytest

from backtests.bars import load_bars
from backtests.results import generate_results
from backtests.study import StudyConfig, run_study
from tests.helpers.history_files import require_shared_data

HOUR = 3_600_000


@pytest.mark.realdata
def test_returns_and_abnormal_returns_match_the_raw_price_column():
    path = require_shared_data("coinglass_btc", "regime_1h.csv")
    config = StudyConfig(placebo_draws=20, bootstrap_draws=20)
    bars = load_bars([path], symbol="BTC")
    results = generate_results(run_study(bars, config), bars)
    with open(path, newline="") as f:
        opens = {int(r["timestamp"]): float(r["price_open"]) for r in csv.DictReader(f)}
    hours = {"1h": 1, "4h": 4, "24h": 24}

    def ret(t: int, n: int) -> float | None:
        a, b = opens.get(t), opens.get(t + n * HOUR)
        return None if a is None or b is None or a <= 0 else b / a - 1

    checked = 0
    for s in results["signals"]:
        if s["entry_ms"] is None:
            continue
        t = s["entry_ms"]
        assert s["entry_price"] == opens[t]
        for h, n in hours.items():
            expected = ret(t, n)
            if expected is None:
                assert s["returns"][h] is None
                continue
            assert s["returns"][h] == pytest.approx(expected, rel=0, abs=1e-9)
            # The benchmark: 4h returns (say) of every entry in the 30 days before whose
            # 4h had closed by this entry.
            past = [r for j in range(n, 30 * 24 + 1)
                    if (r := ret(t - j * HOUR, n)) is not None]
            if s["abnormal"][h] is None:
                assert len(past) < 30 * 24 // 8
                continue
            bench = sum(past) / len(past)
            assert s["benchmark"][h] == pytest.approx(bench, rel=0, abs=1e-9)
            assert s["abnormal"][h] == pytest.approx(expected - bench, rel=0, abs=1e-9)
            checked += 1
    assert checked > 300
