"""Dedup, cooldown, escalation and the durable outbox."""

import pytest

from bot.policy import Policy, PolicyConfig
from bot.state.outbox import Outbox
from bot.state.schema import migrate_store
from feeds.store import Store
from signals import SignalParams, evaluate
from tests.helpers.factories import T0, make_stat

HOUR = 3_600_000


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "p.db")
    migrate_store(s)  # the chat tables, as the bot opens the file
    yield s
    s.close()


def signals_at(hour: int, short_usd: float, window_ms: int = HOUR, scope: str = "BTC"):
    end = T0 + (hour + 1) * HOUR
    return evaluate([make_stat(scope=scope, start_ms=end - window_ms, end_ms=end,
                               long_usd=0.5e6, short_usd=short_usd, baseline_usd=None)])


def run(policy: Policy, hour: int, short_usd: float, **kw):
    alerts = policy.decide(signals_at(hour, short_usd, **kw))
    policy.record(alerts, ["console"], T0 + hour * HOUR)
    return alerts


def test_consecutive_hours_of_one_episode_alert_once(store):
    policy = Policy(store, SignalParams())
    fired = [run(policy, h, 15e6) for h in range(4)]
    assert [len(a) for a in fired] == [1, 0, 0, 0]


def test_realert_after_cooldown(store):
    policy = Policy(store, SignalParams(), PolicyConfig(cooldown_ms=4 * HOUR))
    counts = [len(run(policy, h, 15e6)) for h in range(9)]
    assert counts == [1, 0, 0, 0, 1, 0, 0, 0, 1]


def test_escalation_realerts_within_cooldown_and_keeps_episode(store):
    policy = Policy(store, SignalParams())
    (first,) = run(policy, 0, 15e6)
    (second,) = run(policy, 1, 60e6)
    assert second.escalation and second.severity == 3
    assert second.episode_ms == first.episode_ms
    assert run(policy, 2, 30e6) == []  # de-escalation is quiet


def test_overlapping_windows_yield_one_alert(store):
    policy = Policy(store, SignalParams())
    sigs = signals_at(0, 60e6) + signals_at(0, 70e6, window_ms=4 * HOUR)
    alerts = policy.decide(sigs)
    assert len(alerts) == 1 and alerts[0].window_ms == HOUR  # 60M/1h outranks 70M/4h


def test_kinds_and_scopes_are_independent(store):
    policy = Policy(store, SignalParams())
    assert len(run(policy, 0, 15e6, scope="BTC")) == 1
    assert len(run(policy, 0, 15e6, scope="ETH")) == 1


def test_rerun_over_same_data_decides_and_records_nothing_new(store):
    """A rerun (a restarted replay, a second look at the same bar) finds its own alerts:
    the alert and its deliveries were stored together, so nothing is sent twice."""
    policy = Policy(store, SignalParams())
    first = [a for h in range(9) for a in run(policy, h, 15e6)]
    assert first
    assert [a.key for h in range(9) for a in policy.decide(signals_at(h, 15e6))] == []
    assert policy.record(first, ["console"], T0) == 0  # the same alerts again: nothing new


def test_outbox_pending_sent_and_retry(store):
    policy = Policy(store, SignalParams())
    (alert,) = policy.decide(signals_at(0, 15e6))
    policy.record([alert], ["console", "telegram:1"], T0)
    box = Outbox(store, PolicyConfig(retry_base_ms=1000, max_attempts=2))
    due = box.due(T0)
    assert [(i.alert.key, i.destination) for i in due] == [
        (alert.key, "console"), (alert.key, "telegram:1")]
    box.mark_sent(alert.key, "console", T0)
    box.mark_failed(due[1], T0, "timeout", permanent=False)
    assert box.due(T0) == []  # backed off
    assert [i.destination for i in box.due(T0 + 1000)] == ["telegram:1"]
    box.mark_failed(box.due(T0 + 1000)[0], T0 + 1000, "timeout", permanent=False)
    assert box.status_counts() == {"dead": 1}  # what needs attention; sent rows not counted
    rows = store.database.conn.execute(
        "SELECT status, count(*) FROM outbox GROUP BY status ORDER BY 1")
    assert rows.fetchall() == [("dead", 1), ("sent", 1)]


def test_a_second_evaluation_at_the_same_end_sends_nothing_new(store):
    """A live run evaluates several times a minute (each batch that may cross a tier, and
    the tick), and windows end on the bar: a second look at the same end whose strongest
    window is another length must not open a second episode at the same severity."""
    policy = Policy(store, SignalParams())
    (first,) = run(policy, 0, 15e6)
    again = run(policy, 0, 16e6, window_ms=4 * HOUR)  # same end, same tier, longer window
    assert again == []
    (up,) = run(policy, 0, 60e6, window_ms=4 * HOUR)  # a higher tier at that end escalates
    assert up.escalation and up.episode_ms == first.episode_ms
