"""results.json version 2 names cohorts; a version 1 file still reads, as first alerts."""

from __future__ import annotations

import json

from backtests.report import build_blocks, render_markdown
from backtests.results import VERSION, read_results
from backtests.terminal import render_table


def _v1(path):
    row = {"kind": "long_cascade", "scope": "BTC", "severity": None, "horizon": "4h", "n": 3,
           "mean": 0.01, "median": 0.01, "std": 0.01, "t_stat": 1.0, "hit": 0.5,
           "hit_reversal": 0.5, "mean_ci": None, "median_ci": None, "hit_ci": None,
           "net_continuation": -0.01, "net_reversal": -0.01, "small_n": True, "placebo": None}
    signal = {"time": "2025-01-01T00:00:00Z", "kind": "long_cascade", "symbol": "BTC",
              "window": "1h", "severity": 1, "severity_name": "notable", "usd": 1e7,
              "share": 0.9, "ratio": 6.0, "escalation": False, "warmup": False,
              "counted": True, "entry_price": 1.0, "returns": {"4h": 0.01},
              "favourable": {"4h": 0.02}, "adverse": {"4h": -0.01}}
    data = {"version": 1, "data": {"files": ["x.csv"], "bar": "1h", "start": "2025-01-01",
                                   "end": "2025-02-01", "scopes": ["BTC"], "evaluations": 1,
                                   "prices": {}, "price_coins": {}},
            "config": {"main_horizon": "4h", "horizons": ["4h"], "round_trip_cost": 0.002,
                       "small_n": 20},
            "summary": [row], "signals": [signal], "scopes_with_episodes": ["BTC"]}
    path.write_text(json.dumps(data))
    return path


def test_a_version_1_file_reads_as_first_alert_rows(tmp_path):
    assert VERSION == 3
    results = read_results(_v1(tmp_path / "results.json"))
    assert results["summary"][0]["cohort"] == "first"
    assert results["signals"][0]["cohorts"] == ["first"]
    table = render_table(results)
    assert "Long cascades  first alerts  BTC" in table


def test_a_fresh_report_names_every_cohort(tmp_path):
    from backtests.bars import build_bars
    from backtests.results import generate_results
    from backtests.study import StudyConfig, run_study
    from backtests.synthetic import synthetic_history

    bars = build_bars(synthetic_history(("BTC",), 24 * 30, seed=2, bursts_per_week=12))
    results = generate_results(run_study(bars, StudyConfig(placebo_draws=20)), bars)
    assert results["version"] == 3
    assert {r["cohort"] for r in results["summary"]} == {"first", "escalation", "peak"}
    counted = [s for s in results["signals"] if s["cohorts"]]
    assert all(s["counted"] == ("first" in s["cohorts"]) for s in results["signals"])
    # Each episode has one peak, and an episode's severity is its peak's.
    peaks = [s for s in counted if "peak" in s["cohorts"]]
    for p in peaks:
        same = [s for s in results["signals"] if (s["kind"], s["symbol"], s["episode_start"])
                == (p["kind"], p["symbol"], p["episode_start"])]
        assert p["severity"] == max(s["severity"] for s in same)
    md = render_markdown(build_blocks(results, {}))
    assert "| Cohort |" in md and "episode peaks" in md and "escalations" in md


def test_a_version_2_file_reads_with_its_uniform_placebo_and_q_values(tmp_path):
    from backtests.bars import build_bars
    from backtests.results import generate_results
    from backtests.study import StudyConfig, run_study
    from backtests.synthetic import synthetic_history

    bars = build_bars(synthetic_history(("BTC",), 24 * 30, seed=2, bursts_per_week=12))
    v3 = generate_results(run_study(bars, StudyConfig(placebo_draws=20, bootstrap_draws=20)),
                          bars)
    assert v3["config"]["null"]["placebo_draws"] == 20 and v3["fdr"]["m"] > 0
    assert [p["kind"] for p in v3["primary"]] == ["short_squeeze", "long_cascade"]
    shown = [r for r in v3["summary"] if r["scope"] != "all" and r["severity"] is None]
    assert all(r["placebo"]["method"] == "matched" and "q_hit" in r["placebo"]
               and r["abnormal"]["blocks"] <= r["abnormal"]["n"] for r in shown if r["n"])
    # What version 2 wrote: the uniform placebo as "placebo", no q, no abnormal returns.
    v2 = json.loads(json.dumps(v3))
    v2["version"] = 2
    for key in ("fdr", "primary"):
        del v2[key]
    del v2["config"]["null"]
    for r in v2["summary"]:
        r["placebo"] = {k: v for k, v in (r.pop("uniform") or {}).items()
                        if k not in ("method", "clustered")} or None
        del r["abnormal"], r["shifted"]
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(v2))
    up = read_results(path)
    # The same family less the primary hypotheses' circular-shift p-values.
    shift_ps = sum(p["shift_p"] is not None for p in v3["primary"])
    assert up["version"] == 3 and up["primary"] == []
    assert up["fdr"]["m"] == v3["fdr"]["m"] - shift_ps and shift_ps == 2
    row = next(r for r in up["summary"] if r["n"] and r["scope"] != "all")
    assert row["placebo"]["method"] == "uniform" and row["uniform"] is row["placebo"]
    assert 0 <= row["placebo"]["q_hit"] <= 1 and row["abnormal"] is None
    assert "Short squeezes" in render_table(up)
    assert "| q |" in render_markdown(build_blocks(up, {}))
