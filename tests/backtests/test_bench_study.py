"""bench/study.py runs end to end at a tiny scale (speed is measured by `make bench`, not here)."""

from __future__ import annotations

from backtests.synthetic import synthetic_history
from bench import study
from tests.backtests.files import write_regime


def test_study_bench_small(tmp_path, capsys):
    csv = write_regime(tmp_path / "regime.csv", synthetic_history(("BTC",), 24 * 30, seed=2,
                                                                  bursts_per_week=8))
    res = study.main(["--data", str(csv), "--draws", "200", "--loop-draws", "5",
                      "--repeat", "1"])
    assert res["rows"] > 0 and res["baseline_s"] > 0 and res["ratio"] > 0
    out = capsys.readouterr().out
    assert "ratio vs the per-draw loop" in out and "under 10 s" in out
