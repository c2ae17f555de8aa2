"""Which signals become alerts, recorded with their pending deliveries in one transaction.

The rule itself (strongest per kind and scope, cooldown, escalation) is
`signals.episodes`, shared with the backtest; this module gives it the last alerts kept
in SQLite and stores what it decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.alerts import Alert
from bot.state.alerts import AlertLog
from bot.state.outbox import DeliveryConfig, Outbox
from feeds.store.core import Store
from signals import Signal, SignalParams
from signals.episodes import DEFAULT_COOLDOWN_MS, choose

Destinations = Sequence[str] | Callable[[Alert], Sequence[str]]


@dataclass(frozen=True, slots=True)
class PolicyConfig(DeliveryConfig):
    """The cooldown between alerts of one (kind, scope), and how their deliveries retry."""

    cooldown_ms: int = DEFAULT_COOLDOWN_MS


class Policy:
    """Decide alerts from signals and record them, with their outbox rows, in one transaction."""

    def __init__(self, store: Store, params: SignalParams, config: PolicyConfig | None = None):
        self.store = store
        self.params = params
        self.config = config or PolicyConfig()
        self._log = AlertLog(store)
        self._outbox = Outbox(store, self.config)

    def decide(self, signals: Sequence[Signal]) -> list[Alert]:
        """Return the alerts to send for these signals (already deduplicated)."""
        return [Alert.from_signal(d.signal, episode_ms=d.episode_ms, escalation=d.escalation)
                for d in choose(signals, self.params, self._log.last_before,
                                self.config.cooldown_ms)]

    def record(self, alerts: Sequence[Alert], destinations: Destinations, now_ms: int) -> int:
        """Store alerts and their pending deliveries; return how many alerts were new.

        `destinations` is a list, or a function giving each alert its own (subscriptions).
        """
        new = 0
        with self.store.transaction():
            for a in alerts:
                new += self._log.add(a, now_ms)
                self._outbox.enqueue(a.key, destinations(a) if callable(destinations)
                                     else destinations)
        return new
