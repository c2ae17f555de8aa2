"""`liqbot totals` and `liqbot decode` as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from feeds.store import Store
from tests.helpers.cli import run_liqbot, write_coinglass_csv
from tests.helpers.factories import T0, make_liq
from tests.helpers.shared import FIXTURES

FIXTURE = FIXTURES / "binance_usdm_forceorder.json"
HOUR = 3_600_000


def test_decode_binance_fixture_and_reject_bad_lines_by_number():
    frame = json.dumps(json.loads(Path(FIXTURE).read_text()))
    stdin = "\n".join([frame, '{"result": null, "id": 1}', "{oops", '{"e": "forceOrder"}', ""])
    r = run_liqbot("decode", "--exchange", "binance", stdin=stdin)
    assert r.returncode == 1
    (line,) = r.stdout.splitlines()
    assert json.loads(line) == {"exchange": "binance", "symbol": "BTCUSDT", "coin": "BTC",
                                "side": "long",
                                "qty": 0.014, "price": 9910.0, "usd": 138.74,
                                "ts": 1568014460893, "sampled": True}
    errors = r.stderr.splitlines()
    assert errors[0].startswith("line 3: not JSON")
    assert errors[1] == "line 4: forceOrder: missing key 'o'"


def test_decode_clean_input_exits_zero_and_unknown_venue_is_named():
    frame = json.dumps(json.loads(Path(FIXTURE).read_text()))
    assert run_liqbot("decode", "--exchange", "binance", stdin=frame + "\n").returncode == 0
    r = run_liqbot("decode", "--exchange", "kraken", stdin="")
    assert r.returncode == 2 and "unknown exchange 'kraken'" in r.stderr


def test_totals_json_and_text(tmp_path):
    db = tmp_path / "t.db"
    s = Store(db)
    s.insert_liquidations([make_liq(ts_exchange_ms=T0 + i * 60_000, symbol=sym)
                           for i, sym in enumerate(["BTCUSDT", "BTCUSDT", "ETHUSDT"])])
    s.close()
    at = "2026-01-13T22:00:00Z"
    r = run_liqbot("totals", "--window", "1h", "--at", at, "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["short_usd"] == 300_000 and data["count"] == 3 and data["lower_bound"] is True
    r = run_liqbot("totals", "--window", "1h", "--symbol", "BTC", "--at", at, "--db", str(db))
    assert r.stdout.splitlines()[0] == "BTC: $200K liquidated in 1h, 100% shorts"
    assert "Lower bound: binance" in r.stdout


def test_totals_after_replay_at_latest(tmp_path):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 30, {29: (1e6, 3e6)})
    db = str(tmp_path / "r.db")
    assert run_liqbot("run", "--replay", str(csv), "--symbol", "BTC", "--db", db).returncode == 0
    r = run_liqbot("totals", "--window", "1h", "--at", "latest", "--db", db)
    assert r.stdout.splitlines()[0] == "All coins: $4M liquidated in 1h, 75% shorts"


def test_totals_bad_arguments_get_one_line_of_help(tmp_path):
    r = run_liqbot("totals", "--window", "2d", "--db", str(tmp_path / "x.db"))
    assert r.returncode == 2
    assert r.stderr.strip() == ("liqbot: error: --window: unknown window '2d': "
                                "use one of 5m, 15m, 30m, 1h, 4h, 24h")
    r = run_liqbot("totals", "--at", "yesterday", "--db", str(tmp_path / "x.db"))
    assert r.returncode == 2 and "--at: not an ISO time" in r.stderr
