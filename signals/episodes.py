"""Which signals become alerts: the strongest per (kind, scope), cooldown and escalation.

The one copy of the rule. The live policy (`bot.policy.Policy`) asks it with the last
alerts it keeps in SQLite, the backtest with a dict it carries from tick to tick;
`tests/backtests/test_parity.py` proves both reach the decisions of `liqbot run --replay`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from signals.base import Signal
from signals.params import HOUR_MS, SignalParams

DEFAULT_COOLDOWN_MS = 4 * HOUR_MS  # Alertmanager's repeat_interval default

Key = tuple[str, str]  # (kind, scope)
# The latest alert of a key decided strictly before a time (the candidate's window end).
LastBefore = Callable[[Key, int], "Last | None"]


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


def choose(
    signals: Sequence[Signal], params: SignalParams, last_before: LastBefore,
    cooldown_ms: int = DEFAULT_COOLDOWN_MS,
) -> list[Decision]:
    """Return the alerts for one evaluation, asking `last_before` for each key's last alert."""
    out = []
    for s in strongest(signals, params):
        key = (s.kind.value, s.scope)
        last, escalation = step(last_before(key, s.stat.end_ms), s.stat.start_ms,
                                s.stat.end_ms, s.severity, cooldown_ms)
        if escalation is None:
            continue
        assert last is not None  # a decision always leaves a last alert
        out.append(Decision(s, last.episode_ms, escalation))
    return out


def decide(
    signals: Sequence[Signal], params: SignalParams, state: Mapping[Key, Last],
    cooldown_ms: int = DEFAULT_COOLDOWN_MS,
) -> tuple[list[Decision], dict[Key, Last]]:
    """Return the alerts for one evaluation and the state after it; `state` is not changed."""
    decisions = choose(signals, params, lambda key, _: state.get(key), cooldown_ms)
    new_state = dict(state)
    for d in decisions:
        s = d.signal
        new_state[(s.kind.value, s.scope)] = Last(s.stat.end_ms, s.severity, d.episode_ms)
    return decisions, new_state
