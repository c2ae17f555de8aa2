"""The track record: saved once, quoted in alerts and answered by /backtest."""

from __future__ import annotations

import re

import pytest

from backtests.track import render_backtest_summary, save_latest, track_record
from feeds.store import Store


def _row(kind, scope, severity, n, median, hit, random_hit, horizon="4h", cohort="first"):
    return {"kind": kind, "cohort": cohort, "scope": scope, "severity": severity,
            "horizon": horizon, "n": n, "mean": median, "median": median, "hit": hit,
            "hit_reversal": 1 - hit, "net_continuation": median - 0.002,
            "net_reversal": -median - 0.002, "small_n": n < 20,
            "placebo": {"hit": random_hit, "p_hit": 0.04, "p_mean": 0.2}}


H = 3_600_000
T = 1_764_828_000_000  # 2025-12-04 06:00 UTC


def _signal(kind, scope, severity, day, ret, cohorts=("first",)):
    entry = T + day * 24 * H
    return {"kind": kind, "symbol": scope, "severity": severity, "cohorts": list(cohorts),
            "entry_ms": entry, "returns": {"4h": ret}, "closes_ms": {"4h": entry + 4 * H}}


# Squeezes (notable, first alerts) on days 1..8 on BTC: five up, three down.
SIGNALS = [_signal("short_squeeze", "BTC", 1, d, r) for d, r in
           enumerate((0.01, -0.01, 0.02, 0.03, -0.005, 0.01, 0.015, -0.02), start=1)]
SIGNALS.append(_signal("short_squeeze", "BTC", 3, 2, 0.05, ("escalation", "peak")))
SIGNALS += [_signal("long_cascade", "ETH", 2, d, -0.01) for d in range(1, 7)]

RESULTS = {
    "generated_at": "2026-06-03T00:00:00Z",
    "data": {"files": ["../shared/data/coinglass_btc/regime_1h.csv"],
             "start": "2025-12-04T06:00:00Z", "end": "2026-05-31T00:00:00Z",
             "price_coins": {"BTC": "BTC", "*": "BTC", "ETH": "ETH"}},
    "config": {"main_horizon": "4h", "round_trip_cost": 0.002, "small_n": 20},
    "scopes_with_episodes": ["BTC"],
    "signals": SIGNALS,
    "summary": [
        _row("short_squeeze", "BTC", None, 37, 0.018, 0.62, 0.51),
        _row("short_squeeze", "BTC", None, 37, 0.05, 0.7, 0.5, horizon="24h"),
        _row("short_squeeze", "BTC", None, 4, -0.004, 0.25, 0.5, cohort="escalation"),
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


def _at(day, hour=0):
    return T + day * 24 * H + hour * H


def test_nothing_is_quoted_before_a_backtest_was_saved(store):
    assert track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(30)) is None
    assert "No backtest stored yet" in render_backtest_summary(store)


def test_an_alert_quotes_only_episodes_closed_before_it(store):
    save_latest(store, RESULTS)
    assert track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(1)) == (
        "no track record before this alert (first alerts, notable)")
    # Day 3's episode enters at 06:00 and closes at 10:00: known at 10:00, not at 09:00.
    assert track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(3, 3)).startswith(
        "only 2 similar before this alert (first alerts, notable)")
    assert track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(3, 4)).startswith(
        "only 3 similar")
    assert track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(6, 4)) == (
        "after 6 similar (first alerts, notable; each closed before this alert): BTC median "
        "+1.0% at 4h, up 67% of the time (2025-12-05→2025-12-10, p=0.69 vs a coin flip)"
        " — small sample")
    late = track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(100))
    assert late.startswith("after 8 similar") and "up 62%" in late


def test_no_falling_back_across_severities_or_cohorts(store):
    save_latest(store, RESULTS)
    # Eight notable first alerts are known, but an extreme first alert has none of its own.
    assert track_record(store, "short_squeeze", 3, "BTC", at_ms=_at(100)) == (
        "no track record before this alert (first alerts, extreme)")
    # An escalation quotes escalations only: one, too few.
    assert track_record(store, "short_squeeze", 3, "BTC", at_ms=_at(100),
                        escalation=True) == (
        "only 1 similar before this alert (escalations, extreme): too few to quote")


def test_a_coin_with_too_few_of_its_own_quotes_the_coins_not_the_market(store):
    save_latest(store, RESULTS)
    text = track_record(store, "long_cascade", 2, "SOL", at_ms=_at(100))
    assert text.startswith("after 6 similar (first alerts, large; each closed before this "
                           "alert): ETH median -1.0% at 4h, down 100% of the time")
    assert track_record(store, "long_cascade", 2, "*", at_ms=_at(100)) == (
        "no track record before this alert (first alerts, large)")


def test_a_record_saved_before_point_in_time_episodes_says_nothing(store):
    old = {k: v for k, v in RESULTS.items() if k != "signals"}
    old["signals"] = [{k: v for k, v in s.items() if k != "closes_ms"} for s in SIGNALS]
    save_latest(store, old)
    assert track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(100)) == (
        "no track record before this alert (first alerts, notable)")
    store.set_meta("backtest_latest", '{"version": 1, "rows": []}')
    assert track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(100)) is None


def test_backtest_command_summarises_each_kind(store):
    save_latest(store, RESULTS)
    text = render_backtest_summary(store)
    lines = text.splitlines()
    assert lines[0].startswith("Latest backtest: regime_1h.csv, 2025-12-04→2026-05-31;")
    assert lines[1].startswith("Short squeezes (BTC, first alerts): n=37 · 4h median +1.8% · "
                               "up 62% (random 51%, p=0.04)")
    assert lines[2] == "  escalations n=4, median -0.4%, up 25%, p=0.04"
    assert lines[3].startswith("Long cascades (BTC, first alerts): n=12")
    assert "small sample" in lines[3]
    assert render_backtest_summary(store, "cascade").splitlines()[1:] == lines[3:]
    assert render_backtest_summary(store, "pump") == "Unknown kind 'pump': use squeeze or cascade."


def test_a_real_results_file_round_trips(store, tmp_path):
    from backtests.bars import build_bars
    from backtests.results import generate_results
    from backtests.study import StudyConfig, run_study
    from backtests.synthetic import synthetic_history

    bars = build_bars(synthetic_history(("BTC",), 24 * 60, seed=2, bursts_per_week=6))
    results = generate_results(run_study(bars, StudyConfig(placebo_draws=50)), bars)
    save_latest(store, results)
    text = track_record(store, "long_cascade", 1, "BTC", at_ms=bars.end_ms + 10**9)
    assert text is not None and text.startswith("after ")
    assert render_backtest_summary(store).startswith("Latest backtest: ")


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


def _alert_end_ms(window_line):
    """The decision time of a console alert: the end of its `YYYY-MM-DD HH:MM–HH:MM UTC`."""
    from datetime import UTC, datetime, timedelta

    m = re.match(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d)–(\d\d:\d\d) UTC", window_line)
    start = datetime.fromisoformat(f"{m[1]}T{m[2]}").replace(tzinfo=UTC)
    end = datetime.fromisoformat(f"{m[1]}T{m[3]}").replace(tzinfo=UTC)
    if end <= start:
        end += timedelta(days=1)
    return int(end.timestamp() * 1000)


def test_a_replay_after_a_saved_backtest_quotes_only_episodes_closed_before_each_alert(
        tmp_path, capsys):
    from backtests.cli import main as backtest
    from backtests.results import read_results
    from backtests.synthetic import synthetic_history
    from bot.cli.main import main as liqbot
    from tests.backtests.files import write_regime

    csv = write_regime(tmp_path / "r.csv", synthetic_history(("BTC",), 24 * 40, seed=2,
                                                            bursts_per_week=12))
    db = str(tmp_path / "bot.db")
    assert backtest(["--data", str(csv), "--symbol", "BTC", "--out", str(tmp_path / "o"),
                     "--placebo-draws", "20", "--db", db]) == 0
    signals = read_results(tmp_path / "o" / "results.json")["signals"]
    capsys.readouterr()
    assert liqbot(["run", "--replay", str(csv), "--symbol", "BTC", "--speed", "0",
                   "--db", db]) == 0
    blocks = [b.splitlines() for b in capsys.readouterr().out.split("\n\n")
              if "liquidated in" in b]
    assert blocks
    severities = {"notable": 1, "large": 2, "extreme": 3}
    quoted = 0
    for lines in blocks:
        title, quote = lines[0], lines[-2]  # the track record; below it only the hashtags
        assert lines[-1] == "#BTC #" + ("squeeze" if "SQUEEZE" in title else "cascade")
        kind = "short_squeeze" if "SHORT SQUEEZE" in title else "long_cascade"
        severity = severities[re.search(r"· (\w+)", title)[1]]
        cohort = "escalation" if "(escalated)" in title else "first"
        at = _alert_end_ms(lines[3])
        known = [s for s in signals if s["kind"] == kind and s["severity"] == severity
                 and cohort in s["cohorts"] and s["returns"]["4h"] is not None
                 and s["closes_ms"]["4h"] <= at]  # one scope (BTC): no family pooling
        if not known:
            assert quote.startswith("no track record before this alert"), lines
        elif len(known) < 5:
            assert quote.startswith(f"only {len(known)} similar before this alert"), lines
        else:
            assert quote.startswith(f"after {len(known)} similar ("), lines
            quoted += 1
    assert blocks[0][-2].startswith("no track record before this alert")
    assert quoted  # and later alerts do get a record once enough has closed


def _with_moves(q):
    """RESULTS with ranges per squeeze (2% each, 'normal' 1.25%) and a range row of q."""
    signals = [{**s, "favourable": {"4h": 0.012}, "adverse": {"4h": -0.008},
                "normal_range": {"4h": 0.0125}} for s in SIGNALS]
    vol = [{"kind": "short_squeeze", "cohort": "first", "horizon": "4h", "n": 8,
            "range": {"mean": 0.02, "ratio": 1.6, "p": 0.001, "q": q}}]
    return {**RESULTS, "signals": signals, "volatility": vol}


def test_a_volatility_lead_is_quoted_point_in_time_only_when_it_survived_correction(store):
    save_latest(store, _with_moves(0.05))
    line = track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(6, 4))
    assert line.startswith("after 6 similar") and line.endswith(
        "; next 4h range typically 2.0% high to low, 1.6× normal (n=6) — small sample")
    # Too few closed before the alert: the size quote is left out with the rest.
    assert "range" not in track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(3, 4))
    assert "range" not in track_record(store, "long_cascade", 2, "ETH", at_ms=_at(30))
    save_latest(store, _with_moves(0.3))
    assert "range" not in track_record(store, "short_squeeze", 1, "BTC", at_ms=_at(6, 4))
