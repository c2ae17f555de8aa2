"""bench/telegram_fanout.py runs end to end at a tiny scale; its checks hold there too."""

from __future__ import annotations

from bench import telegram_fanout


def test_fanout_bench_small(capsys):
    res = telegram_fanout.main(["--chats", "120", "--rates", "300"])
    (run,) = res["fanout"]
    assert run["lost"] == 0 and run["duplicates"] == 0 and run["unhandled_429"] == 0
    assert run["outbox"] == {"sent": 120}
    assert "ratio = achieved rate / R" in capsys.readouterr().out
