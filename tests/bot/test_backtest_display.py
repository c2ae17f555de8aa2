"""/backtest (Telegram and Discord share its text) prints q beside every p it prints."""

from __future__ import annotations

import copy

import pytest

from backtests.track import save_latest
from bot.commands import Ctx, dispatch
from bot.discord.render import reply_chunks
from feeds.store import Store
from tests.backtests.test_track import RESULTS


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


def _backtest(store):
    return dispatch(store, Ctx(platform="telegram", chat_id="42", now_ms=0), "backtest", [])


def test_q_sits_beside_p(store):
    results = copy.deepcopy(RESULTS)
    for i, row in enumerate(results["summary"]):
        row["placebo"].update(q_hit=0.31 + i / 100, q_mean=0.6)
    save_latest(store, results)
    lines = _backtest(store).text.splitlines()
    assert "q: the same, corrected for the study's many tests" in lines[0]
    assert "(random 51%, p=0.04, q=0.31)" in lines[1]
    assert lines[2] == "  escalations n=4, median -0.4%, up 25%, p=0.04, q=0.33"
    assert "(random 49%, p=0.04, q=0.36)" in lines[3]
    assert "".join(reply_chunks(_backtest(store).text)).count("q=0.") == 3  # Discord


def test_a_track_record_saved_before_q_values_prints_p_alone(store):
    save_latest(store, RESULTS)
    text = _backtest(store).text
    assert "p=0.04" in text and "q=" not in text and "q: " not in text
