"""bench/sweep.py runs end to end at a tiny scale and every baseline finds the same alerts.

Speed is not asserted here: the ratios are measurements for `make bench`.
"""

from __future__ import annotations

from bench import sweep


def test_sweep_bench_small(capsys):
    res = sweep.main(["--configs", "8", "--hours", "300", "--symbols", "2", "--live-configs",
                      "1", "--live-ticks", "40", "--reference-configs", "1"])
    assert res["identical"] and res["configs"] == 8
    assert res["ratio_reference"] > 0 and res["ratio_same_configs"] > 0
    out = capsys.readouterr().out
    # The reference is the baseline; the live path is checked for equal alerts, not timed.
    assert "ratio vs the pure per-bar reference" in out and "live path yes" in out
    assert "extrapolated" not in out


def test_grid_has_a_thousand_distinct_configurations():
    cands = sweep.grid(1000)
    assert len(cands) == 1000 and len({c.label for c in cands}) == 1000
