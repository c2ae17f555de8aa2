"""Who gets which alert: per-chat subscriptions with filters, and static destinations."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from bot.alerts import Alert
from bot.destination import Destination
from bot.state.schema import migrate_store
from feeds.model import MARKET
from feeds.store import Store
from signals import SignalKind

logger = logging.getLogger(__name__)

ALL_KINDS = tuple(k.value for k in SignalKind)


@dataclass(frozen=True, slots=True)
class Subscription:
    platform: str
    chat_id: str
    kinds: tuple[str, ...] = ALL_KINDS
    min_usd: float = 0.0
    symbols: tuple[str, ...] = ()  # empty: every coin and the market-wide alerts
    quiet: bool = False
    active: bool = True
    static: bool = False

    @property
    def destination(self) -> str:
        return str(Destination(self.platform, self.chat_id))

    def wants(self, alert: Alert) -> bool:
        """Apply the chat's filters to one alert."""
        if not self.active or alert.kind not in self.kinds or alert.total_usd < self.min_usd:
            return False
        if self.symbols and alert.scope != MARKET and alert.scope not in self.symbols:
            return False
        return True


def _row(s: Subscription, now_ms: int) -> tuple[object, ...]:
    return (s.platform, s.chat_id, ",".join(s.kinds), s.min_usd, ",".join(s.symbols),
            int(s.quiet), int(s.active), int(s.static), now_ms)


def _from_row(r: Sequence[object]) -> Subscription:
    return Subscription(
        platform=str(r[0]), chat_id=str(r[1]),
        kinds=tuple(k for k in str(r[2]).split(",") if k), min_usd=float(r[3]),  # type: ignore[arg-type]
        symbols=tuple(x for x in str(r[4]).split(",") if x), quiet=bool(r[5]),
        active=bool(r[6]), static=bool(r[7]),
    )


_COLUMNS = "platform, chat_id, kinds, min_usd, symbols, quiet, active, static"


class Subscriptions:
    """Subscriptions in SQLite (parameterised SQL only).

    Built on the Store's `database` (the file's one connection); the chat tables are
    migrated on first use, so any Store will do.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        migrate_store(store)
        self.conn = store.database.conn

    def get(self, platform: str, chat_id: str) -> Subscription | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM subscriptions WHERE platform = ? AND chat_id = ?",
            (platform, str(chat_id)),
        ).fetchone()
        return None if row is None else _from_row(row)

    def put(self, sub: Subscription, now_ms: int) -> None:
        self.conn.execute(
            f"INSERT OR REPLACE INTO subscriptions ({_COLUMNS}, updated_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(sub, now_ms),
        )

    def deactivate(self, platform: str, chat_id: str, now_ms: int, note: str) -> None:
        """Stop sending to a chat (blocked, kicked, deleted); the row stays for operators."""
        self.conn.execute(
            "UPDATE subscriptions SET active = 0, note = ?, updated_ms = ? "
            "WHERE platform = ? AND chat_id = ?", (note[:300], now_ms, platform, str(chat_id)),
        )
        logger.warning("%s chat %s disabled: %s", platform, chat_id, note)

    def migrate(self, platform: str, old_id: str, new_id: str, now_ms: int) -> None:
        """A Telegram group became a supergroup: move its subscription to the new id."""
        with self.store.transaction():
            self.conn.execute(
                "UPDATE OR REPLACE subscriptions SET chat_id = ?, updated_ms = ? "
                "WHERE platform = ? AND chat_id = ?", (str(new_id), now_ms, platform, str(old_id)),
            )
            old, new = str(Destination(platform, old_id)), str(Destination(platform, new_id))
            self.conn.execute(
                "UPDATE OR IGNORE outbox SET destination = ? WHERE destination = ? "
                "AND status = 'pending'", (new, old))
            # What could not move is already queued for the new id (it was configured or
            # subscribed there too): sending it from here as well would be a third copy.
            self.conn.execute(
                "DELETE FROM outbox WHERE destination = ? AND status = 'pending'", (old,))

    def note(self, platform: str, chat_id: str) -> str:
        """Why a destination was disabled ("" when it never was, or is unknown)."""
        row = self.conn.execute(
            "SELECT note FROM subscriptions WHERE platform = ? AND chat_id = ?",
            (platform, str(chat_id))).fetchone()
        return str(row[0] or "") if row else ""

    def quiet_chats(self, platform: str) -> set[str]:
        """Active chats of `platform` that asked for silent notifications."""
        # Only the few quiet chats: a fan-out must not re-read every subscription.
        rows = self.conn.execute("SELECT chat_id FROM subscriptions WHERE platform = ? "
                                 "AND active = 1 AND quiet = 1", (platform,))
        return {str(r[0]) for r in rows}

    def active(self, platform: str | None = None) -> list[Subscription]:
        sql = f"SELECT {_COLUMNS} FROM subscriptions WHERE active = 1"
        args: tuple[object, ...] = ()
        if platform:
            sql += " AND platform = ?"
            args = (platform,)
        return [_from_row(r) for r in self.conn.execute(sql, args)]

    def ensure_static(self, platform: str, chat_ids: Iterable[str], now_ms: int, *,
                      reenable: bool = False) -> None:
        """Configured destinations (a channel) need no command; keep their filters if set.

        `reenable`: one that was disabled (a rights error, a removal since undone) is enabled
        again, for platforms where a configured chat has no other way back (a Telegram
        channel takes no /subscribe); it costs at most one refused request a start.
        """
        for chat_id in chat_ids:
            current = self.get(platform, chat_id)
            if current is None:
                self.put(Subscription(platform, str(chat_id), static=True), now_ms)
            elif reenable and not current.active:
                logger.info("%s chat %s is configured: enabled again", platform, chat_id)
                self.put(replace(current, active=True, static=True), now_ms)


class Router:
    """Destinations for an alert: always-on sinks (console) plus matching subscriptions."""

    def __init__(self, store: Store, fixed: Sequence[str], platforms: Sequence[str]) -> None:
        self.subs = Subscriptions(store)
        self.fixed = list(fixed)
        self.platforms = set(platforms)

    def destinations(self, alert: Alert) -> list[str]:
        chats = [s.destination for s in self.subs.active()
                 if s.platform in self.platforms and s.wants(alert)]
        return self.fixed + sorted(chats)
