"""Parity: `liqbot run --replay F` and `liqbot backtest --data F` find exactly the same signals.

Compared per alert: (kind, scope, window, window start, severity), with the replay's side
read from what the real CLI printed on the console.
"""

from __future__ import annotations

import json

import pytest

from backtests.bars import load_bars
from backtests.cli import main as backtest_main
from backtests.engine import run_vectorized
from backtests.synthetic import synthetic_history
from backtests.windows import WindowCache
from signals import SignalParams
from tests.backtests.files import console_alerts, result_alerts, write_coinalyze, write_regime
from tests.helpers.cli import run_liqbot
from tests.helpers.history_files import require_shared_data


def replay(tmp_path, *args: str) -> list[tuple]:
    r = run_liqbot("run", "--replay", *args, "--speed", "0", "--db", str(tmp_path / "r.db"))
    assert r.returncode == 0, r.stderr
    return console_alerts(r.stdout)


def backtest(tmp_path, *args: str) -> list[tuple]:
    out = tmp_path / "bt"
    assert backtest_main(["--data", *args, "--out", str(out), "--placebo-draws", "20"]) == 0
    return result_alerts(json.loads((out / "results.json").read_text()))


@pytest.mark.realdata
def test_replay_and_backtest_agree_on_the_real_regime_file(tmp_path):
    path = require_shared_data("coinglass_btc", "regime_1h.csv")
    printed = replay(tmp_path, str(path), "--symbol", "BTC")
    found = [r.key for r in run_vectorized(WindowCache(load_bars([path], symbol="BTC")),
                                           SignalParams())]
    assert sorted(printed) == sorted(found)
    assert len(found) > 100


def test_replay_and_backtest_cli_agree_on_a_synthetic_regime_file(tmp_path, capsys):
    data = synthetic_history(("BTC",), 24 * 21, seed=4, bursts_per_week=8)
    csv = write_regime(tmp_path / "regime.csv", data)
    printed = replay(tmp_path, str(csv), "--symbol", "BTC")
    assert sorted(printed) == sorted(backtest(tmp_path, str(csv), "--symbol", "BTC"))
    assert len(printed) > 10
    assert {a[0] for a in printed} == {"short_squeeze", "long_cascade"}


def test_replay_and_backtest_agree_on_several_coins(tmp_path):
    data = synthetic_history(("BTC", "ETH", "SOL"), 24 * 8, seed=8, bursts_per_week=12)
    folder = write_coinalyze(tmp_path / "coinalyze", data)
    printed = replay(tmp_path, str(folder))
    found = [r.key for r in run_vectorized(WindowCache(load_bars([folder])), SignalParams())]
    assert sorted(printed) == sorted(found)
    assert {a[1] for a in printed} == {"*", "BTC", "ETH", "SOL"}
