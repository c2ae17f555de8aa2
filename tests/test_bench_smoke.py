"""The benchmarks run end to end at a tiny scale and their correctness checks pass.

Speed targets are not asserted here: they are measurements for `make bench`.
"""

from __future__ import annotations

from bench import ingest, replay, totals


def test_ingest_bench_small(tmp_path, capsys):
    res = ingest.main(["--frames", "2000", "--repeat", "1", "--tmpdir", str(tmp_path)])
    assert res["checks_ok"], res["checks"]
    assert res["ours_fps"] > 0 and res["baseline_fps"] > 0 and res["single_ratio"] > 0
    # Payloads in blocks: the stored file is smaller than the same rows with the JSON in them.
    assert 0 < res["bytes_per_event"] < res["old_bytes_per_event"]
    out = capsys.readouterr().out
    assert "ratio = ours / baseline" in out and "one frame per transaction" in out


def test_totals_bench_small(tmp_path, capsys):
    argv = ["--events", "20000", "--queries", "10", "--store-sample", "1000",
            "--data-dir", str(tmp_path), "--load-seconds", "0.5", "--load-rate", "500"]
    res = totals.main(argv)
    # Whether the writer kept its rate is a speed figure, for the benchmark to judge.
    correct = {k: v for k, v in res["checks"].items() if not k.startswith("writer kept up")}
    assert all(correct.values()) and len(correct) == len(res["checks"]) - 1, res["checks"]
    assert res["build"]["stored"] == 20_000
    assert all(r["agree"] == r["n"] == 10 for r in res["results"].values())
    # The test extra installs DuckDB: its row is measured, and agrees.
    assert all(r["duck_agree"] == r["n"] for r in res["results"].values())
    assert set(res["load"]["p99"]) == {"24h", "1h"}
    again = totals.main([*argv[:-4], "--load-seconds", "0"])  # reuses the cached DB
    assert "(cached)" in capsys.readouterr().out and again["checks_ok"]



def test_startup_bench_small(capsys):
    from bench import startup

    res = startup.main(["--runs", "1", "--idle-s", "3"])
    out = capsys.readouterr().out
    assert set(res["times"]) == {"python -c pass", "liqbot --help", "liqbot totals"}
    assert "÷ python -c pass" in out and "liqbot run idle after 3 s" in out
    assert res["imports"]["--help"]["heavy"] == [] and res["imports"]["totals"]["heavy"] == []
    assert res["idle"]["final_mb"] > 0 and res["idle"]["heavy_mapped"] == []


def test_soak_runs_for_seconds_and_loses_nothing(tmp_path, capsys):
    """All seven venues' fakes to a real `liqbot run` for a few seconds: every event sent is
    received and stored (the 10-minute run is `make soak`)."""
    from bench import soak

    res = soak.main(["--minutes", "0.1", "--sample-s", "1", "--warmup-s", "2",
                     "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    assert res["sent"] > 100
    assert res["received"] == res["sent"] == res["stored"]
    assert len(res["rss_mb"]) >= 4 and "RSS curve" in out
    for venue in ("binance", "binance-coinm", "bybit", "okx", "bitmex", "deribit", "coinglass"):
        assert f"| {venue}" in out


def test_replay_bench_small(tmp_path, capsys):
    res = replay.main(["--sizes", "2000,4000", "--tmpdir", str(tmp_path),
                       "--data-dir", str(tmp_path / "data")])
    assert res["checks_ok"], res["checks"]
    assert [r["stored"] for r in res["results"]] == [2000, 4000]
    assert all(r["ours_eps"] > 0 and r["plain_eps"] > 0 for r in res["results"])
    out = capsys.readouterr().out
    assert "ratio = replay events/s / plain json + executemany" in out and "slope:" in out
