"""bench/latency.py end to end at a tiny scale: the frame is alerted and timed on both paths.

No latency target is asserted here (a timed test would be flaky); `make bench` measures it.
"""

from __future__ import annotations

from bench import latency


def test_latency_bench_small(tmp_path, capsys):
    res = latency.main(["--trials", "2", "--baseline-trials", "1", "--events", "2000",
                        "--background", "2", "--max-gap-s", "0.2", "--eval-s", "2",
                        "--tmpdir", str(tmp_path)])
    ours, base = res["ours"], res["baseline"]
    assert ours["trials"] == 2 and base["trials"] == 1 and ours["missed"] == base["missed"] == 0
    # Each trial's crossing woke exactly one evaluation; the baseline woke none.
    assert ours["triggered"] == 2 and base["triggered"] == 0
    assert 0 < ours["p50_s"] <= ours["p99_s"] and base["p50_s"] > 0
    out = capsys.readouterr().out
    assert "baseline: scheduled evaluation only" in out and "ratio baseline / ours" in out
    assert "evaluate interval 2 s (NOT the default)" in out and "one evaluation" in out
