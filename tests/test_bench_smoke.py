"""The benchmarks run end to end at a tiny scale and their correctness checks pass.

Speed targets are not asserted here: they are measurements for `make bench`.
"""

from __future__ import annotations

from bench import ingest, replay, totals


def test_ingest_bench_small(tmp_path, capsys):
    res = ingest.main(["--frames", "2000", "--repeat", "1", "--tmpdir", str(tmp_path)])
    assert res["checks_ok"], res["checks"]
    assert res["ours_fps"] > 0 and res["baseline_fps"] > 0
    assert "ratio = ours / baseline" in capsys.readouterr().out


def test_totals_bench_small(tmp_path, capsys):
    argv = ["--events", "20000", "--queries", "10", "--store-sample", "1000",
            "--data-dir", str(tmp_path)]
    res = totals.main(argv)
    assert res["checks_ok"], res["checks"]
    assert res["build"]["stored"] == 20_000
    assert all(r["agree"] == r["n"] == 10 for r in res["results"].values())
    again = totals.main(argv)  # the second run reuses the cached DB
    assert "(cached)" in capsys.readouterr().out and again["checks_ok"]



def test_replay_bench_small(tmp_path, capsys):
    res = replay.main(["--sizes", "2000,4000", "--tmpdir", str(tmp_path),
                       "--data-dir", str(tmp_path / "data")])
    assert res["checks_ok"], res["checks"]
    assert [r["stored"] for r in res["results"]] == [2000, 4000]
    assert all(r["ours_eps"] > 0 and r["plain_eps"] > 0 for r in res["results"])
    out = capsys.readouterr().out
    assert "ratio = replay events/s / plain json + executemany" in out and "slope:" in out
