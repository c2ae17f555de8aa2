"""Forward returns, excursions and statistics on hand-made numbers a reader can check."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from backtests.bars import PriceSeries
from backtests.cli import main
from backtests.outcomes import excursions, forward, parse_horizons
from backtests.stats import compute_stats
from feeds.model import iso_z

HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def _prices(opens: list[float]) -> PriceSeries:
    o = np.array(opens, dtype=float)
    return PriceSeries("hand-made", "BTC", T0, HOUR, o, o + 1, o - 1, np.roll(o, -1))


def test_returns_run_from_the_next_bar_open_to_the_open_h_later():
    prices = _prices([100, 102, 101, 105, 104, 110, 99, 100])
    fwd = forward(prices, np.array([T0 + 2 * HOUR]), parse_horizons("1h,2h"))
    assert fwd.entry_price[0] == 101 and fwd.entry_ms[0] == T0 + 2 * HOUR
    assert fwd.returns["1h"][0] == pytest.approx(105 / 101 - 1)
    assert fwd.returns["2h"][0] == pytest.approx(104 / 101 - 1)
    # Held over bars 2 and 3: highest high 106, lowest low 100.
    assert fwd.high["2h"][0] == pytest.approx(106 / 101 - 1)
    assert fwd.low["2h"][0] == pytest.approx(100 / 101 - 1)
    favour, adverse = excursions(fwd, "2h", np.array([-1.0]))  # a cascade: short
    assert favour[0] == pytest.approx(1 - 100 / 101) and adverse[0] == pytest.approx(1 - 106 / 101)


def test_a_decision_between_bars_enters_at_the_following_open_and_the_end_is_unknown():
    prices = _prices([100, 102, 101, 105])
    fwd = forward(prices, np.array([T0 + HOUR + 60_000, T0 + 3 * HOUR]), parse_horizons("1h"))
    assert fwd.entry_price[0] == 101 and fwd.returns["1h"][0] == pytest.approx(105 / 101 - 1)
    assert math.isnan(fwd.returns["1h"][1])  # no bar after the last one


def test_horizons_parse_and_reject_nonsense():
    assert [h.ms for h in parse_horizons("24h, 1h,30m,2d")] == [1_800_000, HOUR, 24 * HOUR,
                                                                  48 * HOUR]
    for bad in ("", "5x", "0h", "h"):
        with pytest.raises(ValueError):
            parse_horizons(bad)


def test_statistics_of_four_returns():
    s = compute_stats(np.array([0.01, -0.02, 0.03, 0.0, np.nan]), 1, 0.002, boot=200)
    assert s.n == 4 and s.mean == pytest.approx(0.005) and s.median == pytest.approx(0.005)
    assert s.hit == 0.5 and s.hit_reversal == 0.25
    sd = np.std([0.01, -0.02, 0.03, 0.0], ddof=1)
    assert s.t_stat == pytest.approx(0.005 / (sd / 2))
    assert s.net_continuation == pytest.approx(0.003) and s.net_reversal == pytest.approx(-0.007)
    assert s.small_n and s.mean_ci[0] <= s.mean <= s.mean_ci[1]


def _regime_with_one_squeeze(path, hours: int = 300, spike: int = 250):
    lines = ["timestamp,datetime_utc,price_open,price_high,price_low,price_close,"
             "liquidation_long_usd,liquidation_short_usd,liquidation_total_usd,funding_open,"
             "funding_high,funding_low,funding_close,oi_open,oi_high,oi_low,oi_close"]
    for i in range(hours):
        o = 1000 + 3 * i
        lo, sh = (1e6, 60e6) if i == spike else (4e5 + 1000 * (i % 7), 3e5 + 1000 * (i % 5))
        lines.append(f"{T0 + i * HOUR},x,{o},{o + 5},{o - 5},{o + 3},{lo},{sh},{lo + sh},"
                     f"0,0,0,-0.001,0,0,0,1e9")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_report_reader_can_check_one_squeeze_by_hand(tmp_path, capsys):
    csv = _regime_with_one_squeeze(tmp_path / "regime.csv")
    assert main(["--data", str(csv), "--symbol", "BTC", "--out", str(tmp_path / "out"),
                 "--placebo-draws", "50", "--json"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert json.loads(capsys.readouterr().out) == results  # --json prints the same data
    [s] = results["signals"]
    entry = 1000 + 3 * 251
    assert (s["time"], s["entry_time"]) == (iso_z(T0 + 250 * HOUR), iso_z(T0 + 251 * HOUR))
    assert (s["kind"], s["symbol"], s["window"], s["severity"]) == ("short_squeeze", "BTC",
                                                                     "1h", 3)
    assert s["usd"] == 61e6 and s["share"] == pytest.approx(60 / 61)
    assert s["entry_price"] == entry and s["counted"] and not s["warmup"]
    for h, n in (("1h", 1), ("4h", 4), ("24h", 24)):
        assert s["returns"][h] == pytest.approx((entry + 3 * n) / entry - 1)
    assert s["favourable"]["4h"] == pytest.approx((1000 + 3 * 254 + 5) / entry - 1)
    assert s["adverse"]["4h"] == pytest.approx((entry - 5) / entry - 1)
