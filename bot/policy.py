"""Which signals become alerts (dedup, cooldown, escalation) and the durable outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bot.alerts import Alert
from feeds.store import Store
from signals import Signal, SignalParams

logger = logging.getLogger(__name__)


Destinations = Sequence[str] | Callable[[Alert], Sequence[str]]


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    cooldown_ms: int = 4 * 3_600_000  # Alertmanager's repeat_interval default
    max_attempts: int = 8
    retry_base_ms: int = 2_000
    retry_cap_ms: int = 300_000


@dataclass(frozen=True, slots=True)
class OutboxItem:
    alert: Alert
    destination: str
    attempts: int


def strongest(signals: Iterable[Signal], params: SignalParams) -> list[Signal]:
    """Keep one signal per (kind, scope): highest severity, then the largest scaled size.

    Windows overlap (a big hour is also inside the 4h window), so choosing here is
    what makes one episode one alert instead of one per window.
    """
    best: dict[tuple[str, str], Signal] = {}
    for s in signals:
        k = (s.kind.value, s.scope)
        rank = (s.severity, s.stat.total_usd / params.scale(s.stat.window_ms))
        cur = best.get(k)
        if cur is None or rank > (cur.severity, cur.stat.total_usd / params.scale(cur.stat.window_ms)):
            best[k] = s
    return sorted(best.values(), key=lambda s: (s.kind.value, s.scope))


class Policy:
    """Decide alerts from signals and record them, with their outbox rows, in one transaction."""

    def __init__(self, store: Store, params: SignalParams, config: PolicyConfig | None = None):
        self.store = store
        self.params = params
        self.config = config or PolicyConfig()

    def _last_alert(self, kind: str, scope: str, before_ms: int) -> tuple[int, int, int] | None:
        # Only alerts decided strictly before this signal count: a rerun over the same data
        # then reaches the same decisions and the same keys (and so sends nothing twice).
        row = self.store.conn.execute(
            "SELECT signal_ms, severity, episode_ms FROM alerts "
            "WHERE kind = ? AND scope = ? AND signal_ms < ? ORDER BY signal_ms DESC LIMIT 1",
            (kind, scope, before_ms),
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def decide(self, signals: Sequence[Signal]) -> list[Alert]:
        """Return the alerts to send for these signals (already deduplicated)."""
        out = []
        for s in strongest(signals, self.params):
            end = s.stat.end_ms
            last = self._last_alert(s.kind.value, s.scope, end)
            if last is None or end - last[0] >= self.config.cooldown_ms:
                out.append(Alert.from_signal(s, episode_ms=s.stat.start_ms, escalation=False))
            elif s.severity > last[1]:
                out.append(Alert.from_signal(s, episode_ms=last[2], escalation=True))
        return out

    def record(self, alerts: Sequence[Alert], destinations: Destinations, now_ms: int) -> int:
        """Store alerts and their pending deliveries; return how many alerts were new.

        `destinations` is a list, or a function giving each alert its own (subscriptions).
        """
        new = 0
        with self.store.transaction():
            for a in alerts:
                targets = destinations(a) if callable(destinations) else destinations
                cur = self.store.conn.execute(
                    "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (a.key, a.kind, a.scope, str(a.window_ms), a.severity, a.episode_ms,
                     a.end_ms, now_ms, a.to_json()),
                )
                new += cur.rowcount
                self.store.conn.executemany(
                    "INSERT OR IGNORE INTO outbox (alert_key, destination, status, next_ms) "
                    "VALUES (?, ?, 'pending', 0)",
                    [(a.key, d) for d in targets],
                )
        return new


class Outbox:
    """Durable delivery state: pending -> sent (acknowledged) or dead (permanent failure)."""

    def __init__(self, store: Store, config: PolicyConfig | None = None) -> None:
        self.store = store
        self.config = config or PolicyConfig()

    def due(self, now_ms: int, limit: int = 500) -> list[OutboxItem]:
        rows = self.store.conn.execute(
            "SELECT a.payload, o.destination, o.attempts FROM outbox o "
            "JOIN alerts a ON a.key = o.alert_key "
            "WHERE o.status = 'pending' AND o.next_ms <= ? "
            "ORDER BY a.signal_ms, a.key, o.destination LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [OutboxItem(Alert.from_json(p), d, n) for p, d, n in rows]

    def mark_sent(self, key: str, destination: str, now_ms: int) -> None:
        self.store.conn.execute(
            "UPDATE outbox SET status = 'sent', sent_ms = ?, attempts = attempts + 1, error = NULL "
            "WHERE alert_key = ? AND destination = ?",
            (now_ms, key, destination),
        )

    def mark_failed(self, item: OutboxItem, now_ms: int, error: str, *, permanent: bool) -> None:
        attempts = item.attempts + 1
        dead = permanent or attempts >= self.config.max_attempts
        delay = min(self.config.retry_cap_ms, self.config.retry_base_ms * 2 ** (attempts - 1))
        self.store.conn.execute(
            "UPDATE outbox SET status = ?, attempts = ?, next_ms = ?, error = ? "
            "WHERE alert_key = ? AND destination = ?",
            ("dead" if dead else "pending", attempts, now_ms + delay, error[:500],
             item.alert.key, item.destination),
        )
        if dead:
            logger.error("outbox: giving up on %s -> %s: %s", item.alert.key, item.destination, error)

    def pending_count(self) -> int:
        row = self.store.conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'")
        return int(row.fetchone()[0])

    def status_counts(self) -> dict[str, int]:
        rows = self.store.conn.execute("SELECT status, count(*) FROM outbox GROUP BY status")
        return {s: int(n) for s, n in rows}
