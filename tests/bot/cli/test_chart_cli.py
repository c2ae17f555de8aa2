"""`liqbot chart`: the PNG an alert or `/chart` sends, from a database to a file, run as the
real CLI; bad input is one line and a non-zero exit."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from bot.policy import Policy
from feeds.model import HOUR_MS
from feeds.store import Store
from signals import SignalParams
from tests.helpers.charts import check_png, seed_day
from tests.helpers.cli import run_liqbot
from tests.helpers.factories import ALERT, T0

END = T0 + HOUR_MS
BTC = dataclasses.replace(ALERT, key="short_squeeze|BTC|3600000|0|3", scope="BTC")


def _db(tmp_path: Path) -> Path:
    db = tmp_path / "c.db"
    store = Store(db)
    seed_day(store, END)
    Policy(store, SignalParams()).record([BTC], ["console"], int(time.time() * 1000))
    store.close()
    return db


def test_chart_of_a_window_and_of_an_alert(tmp_path):
    db = _db(tmp_path)
    out = run_liqbot("chart", "--db", str(db), "--symbol", "BTC", "--window", "4h",
                     "--out", str(tmp_path / "w.png"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("BTC: ") and "Largest: binance BTCUSDT" in out.stdout
    check_png((tmp_path / "w.png").read_bytes())
    out = run_liqbot("chart", "--db", str(db), "--alert", "latest-extreme",
                     "--out", str(tmp_path / "a.png"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "🚨 SHORT SQUEEZE — BTC · extreme"
    assert out.stdout.splitlines()[-1] == "#BTC #squeeze"
    check_png((tmp_path / "a.png").read_bytes())


def test_bad_input_is_one_line(tmp_path):
    db = _db(tmp_path)
    cases = [(["--db", str(tmp_path / "typo.db")], "no such database file", 1),
             (["--db", str(db), "--window", "7d"], "--symbol/--window", 2),
             (["--db", str(db), "--alert", "nope"], "--alert: no such alert", 2),
             (["--db", str(db), "--symbol", "DOGE"], "'DOGE' is not a coin liqbot has seen", 2)]
    for args, says, code in cases:
        out = run_liqbot("chart", *args, "--out", str(tmp_path / "x.png"))
        assert out.returncode == code and says in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and not out.stdout
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "x.png").exists()
