"""The durable update queue: chat updates stored as they arrive and handled from here.

A polled platform (Telegram) confirms updates by asking for the next ones; anything only in
memory at that point is lost to a crash. So each batch is stored here first, and the next
poll goes out only after that commit. A row then moves

    queued  -> reply   (handled: the command's effect and its answer commit together)
            -> done    (handled, nothing to answer; or dropped)
    reply   -> sending (the answer is going out) -> done

After a crash, `queued` rows are handled again (commands at least once) and `reply` rows
are sent; a `sending` row is not sent again (answers at most once): the crash may have
come after the platform took it. Only one answer is `sending` at a time
(bot/telegram/replies.py), so a crash can cut short at most one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.state.schema import migrate_store
from feeds.store import Store

logger = logging.getLogger(__name__)

QUEUED, REPLY, SENDING, DONE = "queued", "reply", "sending", "done"
KEEP_DONE_MS = 86_400_000  # handled rows are kept a day, for an operator to look at


@dataclass(frozen=True, slots=True)
class Received:
    """One update as it came off the wire."""

    update_id: int
    chat_id: str
    sent_ms: int  # when the user sent it, by the platform's clock
    payload: str  # JSON


@dataclass(frozen=True, slots=True)
class QueuedUpdate:
    update_id: int
    chat_id: str
    received_ms: int
    sent_ms: int
    payload: str


@dataclass(frozen=True, slots=True)
class PendingReply:
    update_id: int
    chat_id: str
    reply: str  # JSON, as the handler committed it


class UpdateQueue:
    """The `updates` rows of one platform. Every method runs on the writer thread."""

    def __init__(self, store: Store, platform: str, offset_key: str) -> None:
        migrate_store(store)
        self.store, self.platform, self.offset_key = store, platform, offset_key
        self._conn = store.database.conn

    def next_offset(self) -> int:
        """The offset to poll with: one past the last update ever stored (0: none yet)."""
        last = int(self.store.get_meta(self.offset_key) or 0)
        row = self._conn.execute("SELECT max(update_id) FROM updates WHERE platform = ?",
                                 (self.platform,)).fetchone()
        last = max(last, int(row[0] or 0))
        return last + 1 if last else 0

    def receive(self, updates: Sequence[Received], now_ms: int) -> int:
        """Store a polled batch in one transaction; return how many were new."""
        if not updates:
            return 0
        with self.store.transaction():
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO updates (platform, update_id, chat_id, received_ms, "
                "sent_ms, payload, status) VALUES (?, ?, ?, ?, ?, ?, 'queued')",
                [(self.platform, u.update_id, u.chat_id, now_ms, u.sent_ms, u.payload)
                 for u in updates])
            new = self._conn.total_changes - before
            last = max(u.update_id for u in updates)
            if last > int(self.store.get_meta(self.offset_key) or 0):
                self.store.set_meta(self.offset_key, str(last))
        return new

    def queued(self, limit: int = 100) -> list[QueuedUpdate]:
        rows = self._conn.execute(
            "SELECT update_id, chat_id, received_ms, sent_ms, payload FROM updates "
            "WHERE platform = ? AND status = 'queued' ORDER BY update_id LIMIT ?",
            (self.platform, limit)).fetchall()
        return [QueuedUpdate(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4])) for r in rows]

    def finish(self, update_id: int, reply: str | None) -> None:
        """Handled: with an answer to send, or none. Call it in the handler's transaction."""
        self._conn.execute(
            "UPDATE updates SET status = ?, reply = ? WHERE platform = ? AND update_id = ?",
            (REPLY if reply is not None else DONE, reply, self.platform, update_id))

    def close_unhandled(self, update_ids: Iterable[int]) -> None:
        """Mark done whatever of these is still queued: dropped, or its handler failed."""
        with self.store.transaction():
            self._conn.executemany(
                "UPDATE updates SET status = 'done' WHERE platform = ? AND update_id = ? "
                "AND status = 'queued'", [(self.platform, uid) for uid in update_ids])

    def replies(self) -> list[PendingReply]:
        """Committed answers not yet sent, oldest first."""
        rows = self._conn.execute(
            "SELECT update_id, chat_id, reply FROM updates WHERE platform = ? "
            "AND status = 'reply' ORDER BY update_id", (self.platform,)).fetchall()
        return [PendingReply(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def begin_send(self, update_id: int) -> None:
        self._set(update_id, SENDING)

    def not_sent(self, update_id: int) -> None:
        """The platform refused before taking it (a flood wait, a 5xx): send it again later."""
        self._set(update_id, REPLY)

    def sent(self, update_id: int) -> None:
        self._conn.execute("UPDATE updates SET status = 'done', reply = NULL "
                           "WHERE platform = ? AND update_id = ?", (self.platform, update_id))

    def interrupted(self) -> int:
        """Close the answer a crash caught going out (at most once); return how many."""
        with self.store.transaction():
            cur = self._conn.execute("UPDATE updates SET status = 'done' WHERE platform = ? "
                                     "AND status = 'sending'", (self.platform,))
        return cur.rowcount

    def prune(self, now_ms: int, keep_ms: int = KEEP_DONE_MS) -> int:
        """Forget handled rows older than `keep_ms` (the offset lives on in meta)."""
        cur = self._conn.execute("DELETE FROM updates WHERE platform = ? AND status = 'done' "
                                 "AND received_ms < ?", (self.platform, now_ms - keep_ms))
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT status, count(*) FROM updates WHERE platform = ? "
                                  "GROUP BY status", (self.platform,)).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def _set(self, update_id: int, status: str) -> None:
        self._conn.execute("UPDATE updates SET status = ? WHERE platform = ? AND update_id = ?",
                           (status, self.platform, update_id))
