"""Which signals become alerts: the strongest per (kind, scope), cooldown and escalation.

A pure twin of `bot.policy.Policy.decide` (which reads the last alert from SQLite): the
backtest replays years of bars without a database and must reach the same decisions, and
`tests/backtests/test_parity.py` proves that it does against `liqbot run --replay`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from signals.base import Signal
from signals.params import HOUR_MS, SignalParams

DEFAULT_COOLDOWN_MS = 4 * HOUR_MS  # bot.policy.PolicyConfig.cooldown_ms

Key = tuple[str, str]  # (kind, scope)


@dataclass(frozen=True, slots=True)
class Last:
    """The latest alert of one (kind, scope): its window end, severity and episode start."""

    end_ms: int
    severity: int
    episode_ms: int


@dataclass(frozen=True, slots=True)
class Decision:
    """A signal the policy turned into an alert."""

    signal: Signal
    episode_ms: int
    escalation: bool


def rank(s: Signal, params: SignalParams) -> tuple[int, float]:
    """Order signals of one (kind, scope): severity first, then size scaled to a 1h window."""
    return s.severity, s.stat.total_usd / params.scale(s.stat.window_ms)


def strongest(signals: Iterable[Signal], params: SignalParams) -> list[Signal]:
    """Keep one signal per (kind, scope): highest rank, the first one on ties.

    Windows overlap (a big hour is also inside the 4h window), so choosing here is what
    makes one episode one alert instead of one per window.
    """
    best: dict[Key, Signal] = {}
    for s in signals:
        key = (s.kind.value, s.scope)
        cur = best.get(key)
        if cur is None or rank(s, params) > rank(cur, params):
            best[key] = s
    return sorted(best.values(), key=lambda s: (s.kind.value, s.scope))


def step(
    last: Last | None, start_ms: int, end_ms: int, severity: int, cooldown_ms: int
) -> tuple[Last | None, bool | None]:
    """Apply the rule to one candidate: return (the new last alert, escalation flag).

    The flag is None when the candidate stays silent (inside the cooldown, no escalation).
    The cooldown runs from the last alert's window end, escalations included.
    """
    if last is None or end_ms - last.end_ms >= cooldown_ms:
        return Last(end_ms, severity, start_ms), False
    if severity > last.severity:
        return Last(end_ms, severity, last.episode_ms), True
    return last, None


def decide(
    signals: Sequence[Signal], params: SignalParams, state: Mapping[Key, Last],
    cooldown_ms: int = DEFAULT_COOLDOWN_MS,
) -> tuple[list[Decision], dict[Key, Last]]:
    """Return the alerts for one evaluation and the state after it; `state` is not changed."""
    new_state = dict(state)
    out = []
    for s in strongest(signals, params):
        key = (s.kind.value, s.scope)
        last, escalation = step(new_state.get(key), s.stat.start_ms, s.stat.end_ms,
                                s.severity, cooldown_ms)
        if escalation is None:
            continue
        assert last is not None  # a decision always leaves a last alert
        new_state[key] = last
        out.append(Decision(s, last.episode_ms, escalation))
    return out, new_state
