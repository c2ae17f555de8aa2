"""The digest's reads and its one write: what a chat was sent, and the digest queued.

A digest is stored like an alert (kind `digest`, its text in the payload) with one outbox
row for its chat, so it is delivered, retried and deduplicated like any alert; the
chat's `digest_ms` moves on in the same transaction, so a period is queued once.
"""

from __future__ import annotations

from bot.alerts import Alert
from bot.state.alerts import AlertLog
from bot.state.outbox import Outbox
from bot.state.schema import migrate_store
from bot.state.subscriptions import Subscription, Subscriptions
from feeds.store import Store

DIGEST_KIND = "digest"


def sent_alerts(store: Store, destination: str, start_ms: int, end_ms: int) -> list[Alert]:
    """Alerts acknowledged by `destination` whose window ended in [start, end), in order."""
    migrate_store(store)
    rows = store.database.conn.execute(
        "SELECT a.payload FROM outbox o JOIN alerts a ON a.key = o.alert_key "
        "WHERE o.destination = ? AND o.status = 'sent' AND a.kind != ? "
        "AND a.signal_ms >= ? AND a.signal_ms < ? ORDER BY a.signal_ms, a.key",
        (destination, DIGEST_KIND, start_ms, end_ms))
    return [Alert.from_json(str(r[0])) for r in rows]


def queue_digest(store: Store, sub: Subscription, digest: Alert | None, period_end_ms: int,
                 now_ms: int) -> None:
    """Record the digest (None: nothing to send, the period is only marked done)."""
    with store.transaction():
        if digest is not None and AlertLog(store).add(digest, now_ms):
            Outbox(store).enqueue(digest.key, [sub.destination])
        Subscriptions(store).set_digest_ms(sub.platform, sub.chat_id, period_end_ms)
