"""The track record: saved once, quoted in alerts and answered by /backtest."""

from __future__ import annotations

import copy
import re

import pytest

from backtests.track import render_backtest_summary, save_latest, track_record
from feeds.store import Store


def _row(kind, scope, severity, n, median, hit, random_hit, horizon="4h"):
    return {"kind": kind, "scope": scope, "severity": severity, "horizon": horizon, "n": n,
            "mean": median, "median": median, "hit": hit, "hit_reversal": 1 - hit,
            "net_continuation": median - 0.002, "net_reversal": -median - 0.002,
            "small_n": n < 20, "placebo": {"hit": random_hit, "p_hit": 0.04, "p_mean": 0.2}}


RESULTS = {
    "generated_at": "2026-06-03T00:00:00Z",
    "data": {"files": ["../shared/data/coinglass_btc/regime_1h.csv"],
             "start": "2025-12-04T06:00:00Z", "end": "2026-05-31T00:00:00Z",
             "price_coins": {"BTC": "BTC", "*": "BTC", "ETH": "ETH"}},
    "config": {"main_horizon": "4h", "round_trip_cost": 0.002, "small_n": 20},
    "scopes_with_episodes": ["BTC"],
    "summary": [
        _row("short_squeeze", "BTC", None, 37, 0.018, 0.62, 0.51),
        _row("short_squeeze", "BTC", None, 37, 0.05, 0.7, 0.5, horizon="24h"),
        _row("short_squeeze", "BTC", 3, 6, 0.031, 0.83, 0.52),
        _row("short_squeeze", "all", None, 37, 0.018, 0.62, 0.5),
        _row("long_cascade", "BTC", None, 12, -0.004, 0.58, 0.49),
        _row("long_cascade", "BTC", 2, 3, -0.01, 0.67, 0.5),
        _row("long_cascade", "all", None, 12, -0.004, 0.58, 0.49),
    ],
}


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


def test_nothing_is_quoted_before_a_backtest_was_saved(store):
    assert track_record(store, "short_squeeze", 1, "BTC") is None
    assert "No backtest stored yet" in render_backtest_summary(store)


def test_an_alert_quotes_the_similar_signals(store):
    save_latest(store, RESULTS)
    assert track_record(store, "short_squeeze", 1, "BTC") == (
        "after 37 similar: BTC median +1.8% at 4h, up 62% of the time "
        "(random times 51%; n=37, 2025-12→2026-05)")


def test_the_same_severity_is_preferred_when_it_has_enough_cases(store):
    save_latest(store, RESULTS)
    text = track_record(store, "short_squeeze", 3, "BTC")
    assert text.startswith("after 6 similar: BTC median +3.1% at 4h, up 83%")
    assert text.endswith("— small sample")


def test_cascades_say_down_and_thin_severities_fall_back(store):
    save_latest(store, RESULTS)
    text = track_record(store, "long_cascade", 2, "BTC")  # severity 2 has only 3 cases
    assert re.match(r"after 12 similar: BTC median -0\.4% at 4h, down 58% of the time", text)


def test_another_coin_gets_the_pooled_record(store):
    save_latest(store, RESULTS)
    assert track_record(store, "short_squeeze", 1, "ETH").startswith("after 37 similar: BTC")


def test_too_few_cases_say_nothing(store):
    few = copy.deepcopy(RESULTS)
    for r in few["summary"]:
        r["n"] = 4
    save_latest(store, few)
    assert track_record(store, "short_squeeze", 1, "BTC") is None


def test_backtest_command_summarises_each_kind(store):
    save_latest(store, RESULTS)
    text = render_backtest_summary(store)
    lines = text.splitlines()
    assert lines[0].startswith("Latest backtest: regime_1h.csv, 2025-12→2026-05")
    assert lines[1].startswith("Short squeezes (BTC): n=37 · 4h median +1.8% · up 62% "
                               "(random 51%, p=0.04)")
    assert lines[2].startswith("Long cascades (BTC): n=12") and "small sample" in lines[2]
    assert render_backtest_summary(store, "cascade").splitlines()[1:] == lines[2:]
    assert render_backtest_summary(store, "pump") == "Unknown kind 'pump': use squeeze or cascade."


def test_a_real_results_file_round_trips(store, tmp_path):
    from backtests.bars import build_bars
    from backtests.results import generate_results
    from backtests.study import StudyConfig, run_study
    from backtests.synthetic import synthetic_history

    bars = build_bars(synthetic_history(("BTC",), 24 * 60, seed=2, bursts_per_week=6))
    results = generate_results(run_study(bars, StudyConfig(placebo_draws=50)), bars)
    save_latest(store, results)
    text = track_record(store, "long_cascade", 1, "BTC")
    assert text is not None and text.startswith("after ")
    assert render_backtest_summary(store).count("\n") == 2


def test_backtest_db_flag_keeps_the_track_record(tmp_path, capsys):
    from backtests.cli import main
    from backtests.synthetic import synthetic_history
    from tests.backtests.files import write_regime

    csv = write_regime(tmp_path / "r.csv", synthetic_history(("BTC",), 24 * 12, seed=2,
                                                            bursts_per_week=12))
    db = tmp_path / "bot.db"
    assert main(["--data", str(csv), "--symbol", "BTC", "--out", str(tmp_path / "o"),
                 "--placebo-draws", "20", "--db", str(db)]) == 0
    assert f"track record saved to {db}" in capsys.readouterr().err
    store = Store(str(db))
    try:
        assert render_backtest_summary(store).startswith("Latest backtest: r.csv")
    finally:
        store.close()


def test_alerts_after_a_saved_backtest_quote_its_record(tmp_path, capsys):
    from backtests.cli import main as backtest
    from backtests.synthetic import synthetic_history
    from bot.cli.main import main as liqbot
    from tests.backtests.files import write_regime

    csv = write_regime(tmp_path / "r.csv", synthetic_history(("BTC",), 24 * 12, seed=2,
                                                            bursts_per_week=12))
    db = str(tmp_path / "bot.db")
    assert backtest(["--data", str(csv), "--symbol", "BTC", "--out", str(tmp_path / "o"),
                     "--placebo-draws", "20", "--db", db]) == 0
    capsys.readouterr()
    assert liqbot(["run", "--replay", str(csv), "--symbol", "BTC", "--speed", "0",
                   "--db", db]) == 0
    blocks = [b for b in capsys.readouterr().out.split("\n\n") if "liquidated in" in b]
    quoted = [b for b in blocks if "similar: BTC median" in b]
    assert blocks and len(quoted) == len(blocks), blocks[:3]
