"""--from/--until keep a period untouched, the report names the periods, and the alert
budget is alerts per day per scope."""

from __future__ import annotations

import json

import pytest

from backtests.cli import main
from backtests.synthetic import synthetic_history
from feeds.model import iso_z
from tests.backtests.files import write_regime

HOUR = 3_600_000


@pytest.fixture(scope="module")
def regime(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("holdout")
    return write_regime(tmp / "regime.csv", synthetic_history(("BTC",), 24 * 40, seed=3,
                                                              bursts_per_week=10))


def _run(regime, tmp_path, *argv):
    out = tmp_path / "out"
    assert main(["--data", str(regime), "--symbol", "BTC", "--out", str(out),
                 "--placebo-draws", "50", "--bootstrap-draws", "50", *argv]) == 0
    return json.loads((out / "results.json").read_text()), (out / "report.md").read_text()


def test_nothing_at_or_after_until_is_read(regime, tmp_path, capsys):
    whole, _ = _run(regime, tmp_path)
    cut = whole["signals"][len(whole["signals"]) // 2]["decided_ms"]
    until = iso_z(cut - cut % (24 * HOUR))
    results, md = _run(regime, tmp_path, "--until", until[:10])
    end = cut - cut % (24 * HOUR)
    assert results["data"]["end"] == until and results["signals"]
    assert all(s["decided_ms"] < end for s in results["signals"])
    for s in results["signals"]:
        for h, ret in s["returns"].items():
            assert ret is None or s["closes_ms"][h] <= end
    assert any(s["decided_ms"] >= end for s in whole["signals"])
    held = f"held out, never read: {until}"
    assert any(p.startswith(held) for p in results["data"]["periods"])
    assert held in md and held in capsys.readouterr().out
    # The same alerts as the whole run, up to the cut (the hold-out cannot move them).
    before = [s["time"] for s in whole["signals"] if s["decided_ms"] < end]
    assert [s["time"] for s in results["signals"]] == before


def test_from_and_the_budget(regime, tmp_path, capsys):
    whole, _ = _run(regime, tmp_path)
    start = whole["signals"][3]["decided_ms"]
    results, md = _run(regime, tmp_path, "--from", iso_z(start))
    assert all(s["decided_ms"] >= start for s in results["signals"])
    [row] = results["budget"]
    days = (whole["signals"][-1]["decided_ms"] - start) / (24 * HOUR)
    assert row["alerts"] == len(results["signals"]) and row["days"] >= days
    assert row["per_day"] == pytest.approx(row["alerts"] / row["days"])
    assert "Alert budget under these parameters, per day" in md
    assert "Alert budget" in capsys.readouterr().out


def test_an_empty_span_is_one_line(regime, tmp_path, capsys):
    assert main(["--data", str(regime), "--symbol", "BTC", "--out", str(tmp_path / "o"),
                 "--from", "2030-01-01"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--from/--until" in err[0]
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(regime), "--until", "yesterday"])
    assert exit_.value.code == 2 and "expected a date" in capsys.readouterr().err
