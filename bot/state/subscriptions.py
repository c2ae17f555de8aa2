"""Who gets which alert: per-chat subscriptions with filters, and static destinations."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.alerts import Alert
from bot.destination import Destination
from bot.state.schema import migrate_store
from feeds.model import MARKET
from feeds.store import Store
from signals import SignalKind

logger = logging.getLogger(__name__)

ALL_KINDS = tuple(k.value for k in SignalKind)
ON, SILENT, OFF = "on", "silent", "off"
MODES = (ON, SILENT, OFF)
DIGESTS = ("off", "daily", "4h")


def parse_hours(text: str) -> tuple[int, int] | None:
    """`23:00-07:00` (or `23-7`) -> (1380, 420) minutes of the day; None when malformed."""
    start, sep, end = text.partition("-")
    if not sep:
        return None
    out = []
    for part in (start, end):
        h, _, m = part.strip().partition(":")
        if not (h.isdigit() and (m.isdigit() or not m)) or len(h) > 2 or len(m) > 2:
            return None
        hours, minutes = int(h), int(m or 0)
        if hours > 24 or minutes > 59 or (hours == 24 and minutes):
            return None
        out.append(hours * 60 + minutes)
    return None if out[0] == out[1] else (out[0], out[1] % 1440)


def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Subscription:
    platform: str
    chat_id: str
    kinds: tuple[str, ...] = ALL_KINDS
    min_usd: float = 0.0
    symbols: tuple[str, ...] = ()  # empty: every coin and the market-wide alerts
    quiet: bool = False  # every alert silent (no notification sound)
    active: bool = True
    static: bool = False
    # Per kind.severity: SILENT or OFF (absent: ON), sorted so equal settings compare equal.
    levels: tuple[tuple[str, str], ...] = ()
    quiet_hours: str = ""  # "23:00-07:00" in `tz`: alerts arrive silently then
    tz: str = "UTC"
    digest: str = "off"  # off | daily | 4h
    digest_ms: int = 0  # end of the last digest period queued

    @property
    def destination(self) -> str:
        return str(Destination(self.platform, self.chat_id))

    def mode(self, kind: str, severity_name: str) -> str:
        return dict(self.levels).get(f"{kind}.{severity_name}", ON)

    def with_mode(self, kind: str, severity_name: str, mode: str) -> Subscription:
        levels = dict(self.levels)
        levels.pop(f"{kind}.{severity_name}", None)
        if mode != ON:
            levels[f"{kind}.{severity_name}"] = mode
        return replace(self, levels=tuple(sorted(levels.items())))

    def in_quiet_hours(self, now_ms: int) -> bool:
        hours = parse_hours(self.quiet_hours) if self.quiet_hours else None
        tz = zone(self.tz)
        if hours is None or tz is None:
            return False
        local = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(tz)
        minute = local.hour * 60 + local.minute
        start, end = hours
        return start <= minute < end if start < end else minute >= start or minute < end

    def silent(self, alert: Alert, now_ms: int) -> bool:
        """Sent without a notification sound: always, for its kind and severity, or now."""
        return (self.quiet or self.mode(alert.kind, alert.severity_name) == SILENT
                or self.in_quiet_hours(now_ms))

    def wants(self, alert: Alert) -> bool:
        """Apply the chat's filters to one alert."""
        if not self.active or alert.kind not in self.kinds or alert.total_usd < self.min_usd:
            return False
        if self.mode(alert.kind, alert.severity_name) == OFF:
            return False
        if self.symbols and alert.scope != MARKET and alert.scope not in self.symbols:
            return False
        return True


def _row(s: Subscription, now_ms: int) -> tuple[object, ...]:
    levels = ",".join(f"{k}={m}" for k, m in s.levels)
    return (s.platform, s.chat_id, ",".join(s.kinds), s.min_usd, ",".join(s.symbols),
            int(s.quiet), int(s.active), int(s.static), levels, s.quiet_hours, s.tz, s.digest,
            s.digest_ms, now_ms)


def _levels(text: str) -> tuple[tuple[str, str], ...]:
    pairs = (item.partition("=") for item in text.split(",") if item)
    return tuple(sorted((k, m) for k, _, m in pairs if m in (SILENT, OFF)))


def _from_row(r: Sequence[object]) -> Subscription:
    return Subscription(
        platform=str(r[0]), chat_id=str(r[1]),
        kinds=tuple(k for k in str(r[2]).split(",") if k), min_usd=float(r[3]),  # type: ignore[arg-type]
        symbols=tuple(x for x in str(r[4]).split(",") if x), quiet=bool(r[5]),
        active=bool(r[6]), static=bool(r[7]), levels=_levels(str(r[8])),
        quiet_hours=str(r[9]), tz=str(r[10]), digest=str(r[11]), digest_ms=int(r[12]),  # type: ignore[call-overload]
    )


_COLUMNS = ("platform, chat_id, kinds, min_usd, symbols, quiet, active, static, levels, "
            "quiet_hours, tz, digest, digest_ms")


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
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(sub, now_ms),
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

    def silencing(self, platform: str) -> dict[str, Subscription]:
        """Active chats of `platform` where some alerts go out silently, by chat id."""
        # Only those few: a fan-out must not re-read every subscription.
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM subscriptions WHERE platform = ? AND active = 1 "
            "AND (quiet = 1 OR quiet_hours != '' OR levels LIKE '%=silent%')", (platform,))
        return {s.chat_id: s for s in map(_from_row, rows)}

    def digest_due(self) -> list[Subscription]:
        """Active chats that asked for a digest."""
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM subscriptions WHERE active = 1 "
                                 "AND digest != 'off'")
        return [_from_row(r) for r in rows]

    def set_digest_ms(self, platform: str, chat_id: str, digest_ms: int) -> None:
        self.conn.execute("UPDATE subscriptions SET digest_ms = ? WHERE platform = ? "
                          "AND chat_id = ?", (digest_ms, platform, str(chat_id)))

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
