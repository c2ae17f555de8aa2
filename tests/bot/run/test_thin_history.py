"""A fresh database: alerts on a few hours of history fire on absolute size only, and say so."""

from __future__ import annotations

import re

from bot.cli.main import main as liqbot
from tests.helpers.cli import alert_blocks, write_coinglass_csv


def _replay(tmp_path, capsys, hours, spikes):
    csv = write_coinglass_csv(tmp_path / "h.csv", hours, spikes)
    db = tmp_path / "fresh.db"
    assert not db.exists()  # the store starts empty, as a fresh install does
    capsys.readouterr()
    assert liqbot(["run", "--replay", str(csv), "--symbol", "BTC", "--speed", "0",
                   "--db", str(db)]) == 0
    out = capsys.readouterr().out
    return [b for b in out.split("\n\n") if "liquidated in" in b], alert_blocks(out)


def test_eight_hours_of_history_never_make_an_alert_extreme_by_ratio(tmp_path, capsys):
    # 8 quiet hours (~$0.7M each), then $30.2M of longs: 43x the mean so far (extreme by
    # ratio before this rule), large by absolute size ($25M tier), on 8/168 of a baseline.
    texts, blocks = _replay(tmp_path, capsys, 10, {8: (30e6, 0.2e6), 9: (4e6, 0.1e6)})
    assert len(blocks) == 1, texts
    title, headline, _, window = blocks[0]
    assert title.endswith("· large") and "extreme" not in texts[0]
    assert headline.startswith("$30.2M liquidated in 1h")
    assert re.search(r"× the trailing average · thin history \(baseline 5% covered\)$", window)


def test_a_covered_week_lets_the_ratio_speak(tmp_path, capsys):
    # The same hour after 170 quiet hours: 168 whole hours behind it, fully covered.
    texts, blocks = _replay(tmp_path, capsys, 172, {170: (30e6, 0.2e6)})
    assert [b[0].rsplit("· ", 1)[1] for b in blocks] == ["extreme"], texts
    assert "thin history" not in texts[0]


def test_no_alert_is_extreme_by_ratio_while_its_baseline_is_thin(tmp_path, capsys):
    # $32M+ hours every 40h from a fresh start: 20x+ the mean of what came before each, under
    # the $50M extreme tier. Thin ones are sized by absolute tiers (large); the last has a
    # covered week behind it and is extreme by ratio.
    spikes = {h: (32e6 + h * 1e4, 0.2e6) for h in (6, 46, 86, 126, 166, 196)}
    texts, _ = _replay(tmp_path, capsys, 200, spikes)
    assert len(texts) == 6
    for t in texts:
        title, window = t.splitlines()[0], t.splitlines()[3]
        ratio = float(re.search(r"([\d.]+)× the trailing average", window).group(1))
        assert ratio >= 20, t
        found = re.search(r"baseline (\d+)% covered", window)
        if found:
            assert int(found.group(1)) < 90 and title.endswith("· large"), t
        else:
            assert title.endswith("· extreme"), t
    assert "thin history" in texts[0] and "thin history" not in texts[-1]
