"""`liqbot backtest` writes a readable report: markdown, offline HTML, charts, results.json."""

from __future__ import annotations

import json
import re

import pytest

from backtests.cli import main
from backtests.synthetic import synthetic_history
from tests.backtests.files import write_regime

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
CHARTS = ("price_path.png", "returns.png", "severity.png", "equity.png")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One run with a small walk-forward sweep; (folder, stdout, stderr)."""
    import contextlib
    import io

    tmp = tmp_path_factory.mktemp("report")
    csv = write_regime(tmp / "regime.csv", synthetic_history(("BTC",), 24 * 60, seed=2,
                                                             bursts_per_week=6))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--data", str(csv), "--symbol", "BTC", "--out", str(tmp / "out"),
                     "--placebo-draws", "100", "--sweep", "min_share=0.6,0.8",
                     "tiers_usd_scale=0.25,1", "--horizons", "1h,4h,12h"])
    assert code == 0, err.getvalue()
    return tmp / "out", out.getvalue(), err.getvalue()


def test_every_file_is_written(report):
    folder, _, _ = report
    for name in ("report.md", "report.html", "results.json", *CHARTS):
        assert (folder / name).stat().st_size > 0, name
    for name in CHARTS:
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained(report):
    html = (report[0] / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(CHARTS)
    assert not re.search(r"(src|href)=\"?https?:", html) and "<script" not in html


def test_results_json_follows_the_contract(report):
    results = json.loads((report[0] / "results.json").read_text())
    assert {"signals", "summary", "baseline"} <= set(results)
    assert results["signals"], "the synthetic bursts should give signals"
    for s in results["signals"]:
        assert {"time", "kind", "symbol", "window", "usd", "share", "severity", "entry_time",
                "entry_price", "returns"} <= set(s)
        assert ISO.match(s["time"]) and ISO.match(s["entry_time"])
        assert s["kind"] in ("short_squeeze", "long_cascade") and s["window"] in ("1h", "4h")
        assert set(s["returns"]) == {"1h", "4h", "12h"}
        assert all(r is None or isinstance(r, float) for r in s["returns"].values())
        assert 0.75 <= s["share"] <= 1 and s["usd"] > 0 and s["severity"] in (1, 2, 3)
    row = results["summary"][0]
    assert {"n", "mean", "median", "hit", "hit_reversal", "mean_ci", "t_stat",
            "net_continuation", "net_reversal", "small_n", "placebo"} <= set(row)
    assert set(results["baseline"]["drift"]["BTC"]) == {"1h", "4h", "12h"}
    fold = results["sweep"]["folds"][0]
    assert fold["tune"][1] == fold["test"][0] and fold["tune"][0] < fold["test"][0]


def test_report_names_both_periods_and_lists_every_alert(report):
    folder, _, _ = report
    md = (folder / "report.md").read_text()
    results = json.loads((folder / "results.json").read_text())
    fold = results["sweep"]["folds"][0]
    assert f"tuned on {fold['tune'][0]} → {fold['tune'][1]}, tested on {fold['test'][0]}" in md
    assert f"## Every alert ({len(results['signals'])})" in md
    assert md.count("| Short squeeze |") + md.count("| Long cascade |") == \
        len(results["signals"])
    assert "random entry times" in md and "## Headline" in md


def test_terminal_gets_the_table_and_stderr_the_progress(report):
    _, out, err = report
    assert re.search(r"Kind\s+Cohort\s+Scope\s+n\s+Median 4h\s+Abn. mean\s+Hit\s+Random hit", out)
    assert "Short squeezes" in out and "Long cascades" in out
    for cohort in ("first alerts", "escalations", "episode peaks"):
        assert re.search(rf"Long cascades\s+{cohort}\s+BTC\s+\d+", out), cohort
    assert "sweep [" in err and "4/4" in err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--horizons", "5x"], 2, "bad horizon"),
    (["--sweep", "colour=red"], 2, "--sweep"),
    (["--fees-bps", "-1"], 2, "costs"),
])
def test_bad_arguments_get_one_clear_line(report, tmp_path, capsys, argv, code, message):
    src = report[0].parent / "regime.csv"
    out = tmp_path / "unused"
    assert main(["--data", str(src), "--symbol", "BTC", "--out", str(out), *argv]) == code
    assert not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_missing_file_is_an_error_not_a_trace(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]) == 1
    assert "nope.csv" in capsys.readouterr().err
