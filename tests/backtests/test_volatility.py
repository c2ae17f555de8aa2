"""Volatility outcomes: the size of the next move, from the raw CSV, in the FDR family."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from backtests.bars import load_bars
from backtests.results import generate_results
from backtests.study import StudyConfig, run_study
from backtests.volatility import _p
from tests.helpers.history_files import require_shared_data

HOUR = 3_600_000


def test_p_is_two_sided_with_the_draw_correction() -> None:
    draws = np.arange(100, dtype=float)
    assert _p(1000.0, draws) == pytest.approx(2 / 101)
    assert _p(-5.0, draws) == pytest.approx(2 / 101)
    assert _p(49.5, draws) == 1.0


@pytest.mark.realdata
def test_range_and_abs_return_match_the_raw_columns_and_join_the_fdr_family() -> None:
    path = require_shared_data("coinglass_btc", "regime_1h.csv")
    config = StudyConfig(placebo_draws=50, bootstrap_draws=20)
    bars = load_bars([path], symbol="BTC")
    results = generate_results(run_study(bars, config), bars)
    with open(path, newline="") as f:
        raw = {int(r["timestamp"]): (float(r["price_open"]), float(r["price_high"]),
                                     float(r["price_low"])) for r in csv.DictReader(f)}
    rows = {(r["kind"], r["cohort"], r["horizon"]): r for r in results["volatility"]}
    checked = 0
    for kind in ("short_squeeze", "long_cascade"):
        row = rows[(kind, "first", "4h")]
        ranges, absret = [], []
        for s in results["signals"]:
            if s["kind"] != kind or "first" not in s["cohorts"] or s["returns"]["4h"] is None \
                    or s["vol"] is None:
                continue
            t = s["entry_ms"]
            held = [raw[t + j * HOUR] for j in range(4)]
            entry = raw[t][0]
            ranges.append((max(x[1] for x in held) - min(x[2] for x in held)) / entry)
            absret.append(abs(raw[t + 4 * HOUR][0] / entry - 1))
        assert row["n"] == len(ranges) > 20
        assert row["range"]["mean"] == pytest.approx(sum(ranges) / len(ranges), abs=1e-9)
        assert row["abs_return"]["mean"] == pytest.approx(sum(absret) / len(absret), abs=1e-9)
        assert 0 <= row["range"]["p"] <= 1 and row["range"]["q"] >= row["range"]["p"]
        checked += 1
    assert checked == 2
    tested = sum(1 for r in results["volatility"] for k in ("abs_return", "range")
                 if r[k] and r[k]["p"] is not None)
    assert tested > 0 and results["fdr"]["m"] > tested
    assert "volatility" in results["fdr"]["family"]
    assert results["execution"]["settings"]["latency_s"] == 60.0
    assert results["config"]["latency_s"] == 60.0
