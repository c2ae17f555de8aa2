"""The chart benchmark runs end to end at a tiny scale and draws real PNGs (its speed target
is a measurement for `make bench`, not asserted here)."""

from __future__ import annotations

from bench import chart


def test_chart_bench_small(capsys):
    res = chart.main(["--events", "5000", "--repeat", "2"])
    assert res["checks"]["png"] and res["baseline_ms"] > 0
    assert set(res["median_ms"]) == {"BTC", "*"}
    assert "ratio = chart / baseline" in capsys.readouterr().out
