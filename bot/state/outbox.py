"""The durable outbox: one row per (alert, destination), pending until sent or dead."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.alerts import Alert
from bot.state.schema import migrate_store
from feeds.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """How hard the outbox tries: retries with backoff, a deadline, the at-most-twice cap."""

    max_attempts: int = 8
    retry_base_ms: int = 2_000
    retry_cap_ms: int = 300_000
    deadline_ms: int = 3_600_000  # from the first attempt; later an alert is stale, not late
    # Requests that left without an acknowledgement (kills in flight, timeouts after the
    # write) before an item is given up: at most this many copies reach one chat.
    max_maybe_sent: int = 5


@dataclass(frozen=True, slots=True)
class OutboxItem:
    alert: Alert
    destination: str
    attempts: int
    maybe_sent: int = 0  # earlier requests that left unacknowledged (see Outbox.begin)
    first_ms: int | None = None


PENDING, SENT, DEAD = "pending", "sent", "dead"


class Outbox:
    """Durable delivery state: pending -> sent (acknowledged) or dead (permanent failure).

    At least once: an item stays pending until the platform acknowledges it or it provably
    cannot be delivered (refused, gone, past its deadline, out of attempts). `begin` counts
    an attempt as maybe delivered when its request leaves (after the rate limiters, see
    bot/chat/attempt.py), and the outcome takes that back when the platform said no. A
    crash in flight or a timeout after the write leaves it counted: each such request is
    one possible duplicate, and `maybe_sent` on the row says how many there were. After
    `max_maybe_sent` unacknowledged requests an item is given up (dead, with an operator
    notice) rather than sent again: that bounds duplicates per alert and chat.
    """

    def __init__(self, store: Store, config: DeliveryConfig | None = None) -> None:
        self.store = store
        self.config = config or DeliveryConfig()
        migrate_store(store)
        self._conn = store.database.conn

    def enqueue(self, alert_key: str, destinations: Iterable[str]) -> None:
        """Add a pending delivery of one recorded alert per destination (once each)."""
        self._conn.executemany(
            "INSERT OR IGNORE INTO outbox (alert_key, destination, status, next_ms) "
            "VALUES (?, ?, 'pending', 0)",
            [(alert_key, d) for d in destinations],
        )

    def due(self, now_ms: int, names: Sequence[str] | None = None,
            limit: int = 2000) -> list[OutboxItem]:
        """Pending items whose time has come, oldest alert first, for notifiers `names`.

        An item waits while an older one for the same destination is backing off, so a
        chat never sees an escalation before the alert it escalates.
        """
        served, served_args = _served_by(names, column="o.destination")
        rows = self._conn.execute(
            "SELECT a.payload, o.destination, o.attempts, o.maybe_sent, o.first_ms FROM outbox o "
            "JOIN alerts a ON a.key = o.alert_key "
            f"WHERE o.status = 'pending' AND o.next_ms <= ?{served} AND NOT EXISTS ("
            "  SELECT 1 FROM outbox h JOIN alerts ha ON ha.key = h.alert_key "
            "  WHERE h.destination = o.destination AND h.status = 'pending' AND h.next_ms > ? "
            "  AND (ha.signal_ms, ha.key) < (a.signal_ms, a.key)"
            ") ORDER BY a.signal_ms, a.key, o.destination LIMIT ?",
            [now_ms, *served_args, now_ms, limit],
        ).fetchall()
        alerts: dict[str, Alert] = {}  # one alert fans out to many rows: decode it once
        return [OutboxItem(alerts.get(p) or alerts.setdefault(p, Alert.from_json(p)), d, n, m, f)
                for p, d, n, m, f in rows]

    def begin(self, item: OutboxItem, now_ms: int) -> None:
        """Record an attempt as maybe delivered: its request is about to be written."""
        self._conn.execute(
            "UPDATE outbox SET maybe_sent = ?, first_ms = coalesce(first_ms, ?) "
            "WHERE alert_key = ? AND destination = ?",
            (item.maybe_sent + 1, now_ms, item.alert.key, item.destination),
        )

    def mark_sent(self, key: str, destination: str, now_ms: int) -> None:
        self._conn.execute(
            "UPDATE outbox SET status = 'sent', sent_ms = ?, attempts = attempts + 1, error = NULL "
            "WHERE alert_key = ? AND destination = ?",
            (now_ms, key, destination),
        )

    def mark_failed(self, item: OutboxItem, now_ms: int, error: str, *, permanent: bool,
                    maybe_sent: bool = False) -> str:
        """Count a failed attempt; back off, or give up. Return the new status.

        `maybe_sent`: the request may have reached the chat (a timeout after it was written).
        """
        attempts = item.attempts + 1
        maybe = item.maybe_sent + int(maybe_sent)
        status = PENDING
        if maybe >= self.config.max_maybe_sent:
            status, error = DEAD, (f"sent {maybe} times without an acknowledgement, "
                                   f"not sent again: {error}")
        elif permanent or attempts >= self.config.max_attempts or self._expired(item, now_ms):
            status = DEAD
        delay = min(self.config.retry_cap_ms, self.config.retry_base_ms * 2 ** (attempts - 1))
        self._conn.execute(
            "UPDATE outbox SET status = ?, attempts = ?, maybe_sent = ?, next_ms = ?, error = ?, "
            "sent_ms = ?, first_ms = coalesce(first_ms, ?) WHERE alert_key = ? AND destination = ?",
            (status, attempts, maybe, now_ms + delay, error[:500],
             None, now_ms, item.alert.key, item.destination),
        )
        if status == DEAD:
            logger.error("outbox: giving up on %s -> %s: %s", item.alert.key, item.destination,
                         error)
        return status

    def defer(self, item: OutboxItem, until_ms: int, now_ms: int, error: str) -> str:
        """Flood control: wait until `until_ms` without counting an attempt (nothing went out).

        Every pending item of the same destination waits too. Past the deadline: dead.
        """
        if self._expired(item, until_ms):
            return self.mark_failed(item, now_ms, f"deadline passed: {error}", permanent=True)
        with self.store.transaction():
            self._conn.execute(
                "UPDATE outbox SET maybe_sent = ?, first_ms = coalesce(first_ms, ?), error = ? "
                "WHERE alert_key = ? AND destination = ?",
                (item.maybe_sent, now_ms, error[:500], item.alert.key, item.destination),
            )
            self._conn.execute(
                "UPDATE outbox SET next_ms = max(next_ms, ?) "
                "WHERE destination = ? AND status = 'pending'", (until_ms, item.destination),
            )
        return PENDING

    def give_up_unacknowledged(self, item: OutboxItem, now_ms: int) -> None:
        """Close an item whose requests left `maybe_sent` times and were never acknowledged
        (crashes in flight): dead, not sent again, so one chat gets it at most that often."""
        error = (f"sent {item.maybe_sent} times without an acknowledgement (crashes in "
                 "flight), not sent again")
        self._conn.execute(
            "UPDATE outbox SET status = 'dead', error = ? WHERE alert_key = ? AND destination = ?",
            (error, item.alert.key, item.destination),
        )
        logger.error("outbox: giving up on %s -> %s: %s", item.alert.key, item.destination,
                     error)

    def drop_destination(self, destination: str, error: str) -> int:
        """The destination is gone (blocked, kicked): its pending items die unsent."""
        cur = self._conn.execute(
            "UPDATE outbox SET status = 'dead', error = ? WHERE destination = ? "
            "AND status = 'pending'", (error[:500], destination),
        )
        return cur.rowcount

    def _expired(self, item: OutboxItem, at_ms: int) -> bool:
        return item.first_ms is not None and at_ms - item.first_ms >= self.config.deadline_ms

    def pending_count(self, names: Sequence[str] | None = None) -> int:
        where, args = _served_by(names)
        row = self._conn.execute(
            f"SELECT count(*) FROM outbox WHERE status = 'pending'{where}", args)
        return int(row.fetchone()[0])

    def next_due_ms(self, names: Sequence[str] | None = None) -> int | None:
        """When the next pending item (for these notifiers) may go out; None: nothing pending."""
        where, args = _served_by(names)
        row = self._conn.execute(
            f"SELECT min(next_ms) FROM outbox WHERE status = 'pending'{where}", args).fetchone()
        return None if row[0] is None else int(row[0])

    def status_counts(self) -> dict[str, int]:
        """Pending and dead items: what needs attention (sent rows pile up; they are counted
        as they happen by the metrics). Served by the outbox_pending index, not a scan."""
        rows = self._conn.execute(
            "SELECT status, count(*) FROM outbox WHERE status IN ('pending', 'dead') "
            "GROUP BY status")
        return {s: int(n) for s, n in rows}


def _served_by(names: Sequence[str] | None,
               column: str = "destination") -> tuple[str, list[object]]:
    """SQL filter for destinations served by notifiers `names` ("telegram" serves "telegram:1")."""
    if names is None:
        return "", []
    if not names:
        return " AND 0", []
    clauses = " OR ".join(f"{column} = ? OR substr({column}, 1, ?) = ?" for _ in names)
    args: list[object] = []
    for n in names:
        args += [n, len(n) + 1, n + ":"]
    return f" AND ({clauses})", args
