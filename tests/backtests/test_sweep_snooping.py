"""The data-snooping test: ranks, Spearman, CSCV's PBO and the per-kind walk-forward."""

from __future__ import annotations

import numpy as np

from backtests.report_sweep import snooping_blocks, sweep_blocks
from backtests.snooping import blocks_of, pbo, ranks, snooping, spearman

DAY = 86_400_000


def test_ranks_share_ties_and_skip_nan():
    r = ranks(np.array([3.0, 1.0, 3.0, np.nan, 2.0]))
    assert r[:3].tolist() == [3.5, 1.0, 3.5] and np.isnan(r[3]) and r[4] == 2.0


def test_spearman():
    a = np.arange(10.0)
    assert abs(spearman(a, a**3) - 1) < 1e-12 and abs(spearman(a, -a) + 1) < 1e-12
    assert spearman(a[:2], a[:2]) is None


def test_pbo_noise_near_half_and_skill_near_zero():
    rng = np.random.default_rng(7)
    n = np.full((50, 10), 30.0)
    noise = rng.normal(0, 1, (50, 10)) * 30
    assert 0.3 < pbo(n, noise, 1.0, 0.0, 5)["pbo"] < 0.7
    skill = noise * 0.01 + np.linspace(-1, 1, 50)[:, None] * 30  # persistent differences
    res = pbo(n, skill, 1.0, 0.0, 5)
    assert res["pbo"] == 0.0 and res["splits"] == 252 and res["median_logit"] > 0
    # Traded the other way the persistent winner is the persistent loser.
    assert pbo(n, -skill, 1.0, 0.0, 5)["pbo"] == 0.0


def _scores(rng, configs, periods):
    return [[{"kinds": {k: {"n": 30, "sum": float(rng.normal(0, 0.01) * 30), "up": 15,
                            "down": 15} for k in ("long_cascade", "short_squeeze")}}
             for _ in range(periods)] for _ in range(configs)]


def test_snooping_on_noise_says_no_edge_and_reports():
    rng = np.random.default_rng(3)
    periods = blocks_of((0, 40 * DAY), 4)
    blocks = blocks_of((0, 40 * DAY))
    scores = _scores(rng, 20, len(periods) + len(blocks))
    out = snooping([f"c{i}" for i in range(20)], scores, periods, blocks, 0.001, 20)
    fams = out["families"]
    assert len(fams) == 4 and {f["trade"] for f in fams} == {"long", "short"}
    assert all(len(f["folds"]) == 3 and f["folds"][0]["choice"] for f in fams)
    assert all(f["verdict"] == "no edge" for f in fams)  # costs alone sink pure noise
    text = " ".join(str(b) for b in snooping_blocks({"snooping": out}))
    assert "No edge" in text and "PBO" in text


def test_older_results_without_snooping_still_render():
    assert snooping_blocks({}) == []
    assert sweep_blocks({"sweep": None}) == []


def test_backtest_writes_the_snooping_section(tmp_path, capsys):
    import json

    from backtests.cli import main
    from backtests.results import read_results
    from backtests.synthetic import synthetic_history
    from tests.backtests.files import write_regime

    csv = write_regime(tmp_path / "regime.csv", synthetic_history(("BTC",), 24 * 60, seed=2,
                                                                  bursts_per_week=6))
    code = main(["--data", str(csv), "--symbol", "BTC", "--out", str(tmp_path / "out"),
                 "--placebo-draws", "100", "--sweep", "min_share=0.6,0.8",
                 "tiers_usd_scale=0.25,1", "--folds", "2", "--horizons", "1h,4h"])
    assert code == 0
    results = read_results(tmp_path / "out" / "results.json")
    sn = results["sweep"]["snooping"]
    assert len(sn["blocks"]) == 10 and len(sn["families"]) == 4
    assert all(len(f["folds"]) == 2 for f in sn["families"])
    assert json.loads(json.dumps(sn)) == sn
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Data snooping: tuned per kind and direction" in md and "PBO" in md
    capsys.readouterr()
