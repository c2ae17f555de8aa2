"""signals.episodes decides exactly what bot.policy.Policy decides."""

from __future__ import annotations

import random

import pytest

from bot.policy import Policy, PolicyConfig
from bot.state.schema import migrate_store
from feeds.store import Store
from signals import Signal, SignalKind, SignalParams, WindowStat
from signals.episodes import Last, decide, step, strongest

HOUR = 3_600_000
P = SignalParams()


def _signal(rng: random.Random, end: int) -> Signal:
    window = rng.choice([HOUR, 4 * HOUR])
    total = rng.choice([12e6, 30e6, 60e6, 24e6, 49e6])
    stat = WindowStat(rng.choice(["*", "BTC", "ETH"]), end - window, end, total * 0.1,
                      total * 0.9, 1e6)
    return Signal(rng.choice(list(SignalKind)), rng.randint(1, 3), stat, 0.9, 5.0)


@pytest.mark.parametrize("seed", range(5))
def test_pure_decisions_equal_the_policy_over_its_database(seed):
    rng = random.Random(seed)
    store = Store(":memory:")
    migrate_store(store)  # the chat tables, as the bot opens the file
    policy = Policy(store, P, PolicyConfig(cooldown_ms=4 * HOUR))
    state: dict = {}
    for tick in range(1, 400):
        end = tick * HOUR
        signals = [_signal(rng, end) for _ in range(rng.choice([0, 0, 1, 2, 4]))]
        alerts = policy.decide(signals)
        policy.record(alerts, [], end)
        ours, state = decide(signals, P, state, 4 * HOUR)
        assert [(a.kind, a.scope, a.window_ms, a.start_ms, a.severity, a.escalation,
                 a.episode_ms) for a in alerts] == \
               [(d.signal.kind.value, d.signal.scope, d.signal.stat.window_ms,
                 d.signal.stat.start_ms, d.signal.severity, d.escalation, d.episode_ms)
                for d in ours]


def test_cooldown_runs_from_the_last_alert_including_escalations():
    last, esc = step(None, 0, HOUR, 1, 4 * HOUR)
    assert esc is False and last == Last(HOUR, 1, 0)
    last, esc = step(last, 2 * HOUR, 3 * HOUR, 2, 4 * HOUR)
    assert esc is True and last == Last(3 * HOUR, 2, 0)
    same, esc = step(last, 5 * HOUR, 6 * HOUR, 2, 4 * HOUR)  # 3h after the escalation
    assert esc is None and same is last
    last, esc = step(last, 6 * HOUR, 7 * HOUR, 1, 4 * HOUR)  # 4h after: a new episode
    assert esc is False and last.episode_ms == 6 * HOUR


def test_strongest_keeps_the_first_of_equal_rank():
    a = Signal(SignalKind.SHORT_SQUEEZE, 2, WindowStat("BTC", 0, HOUR, 0.0, 20e6), 1.0, None)
    b = Signal(SignalKind.SHORT_SQUEEZE, 2, WindowStat("BTC", -3 * HOUR, HOUR, 0.0, 40e6), 1.0,
               None)  # 4h window: 40M / sqrt(4) = 20M, an exact tie
    assert strongest([a, b], P) == [a]
    assert strongest([b, a], P) == [b]
