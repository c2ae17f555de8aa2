"""The alerts table: every alert the policy decided, and the last one per (kind, scope)."""

from __future__ import annotations

from bot.alerts import Alert
from bot.state.schema import migrate_store
from feeds.store import Store
from signals.episodes import Key, Last


class AlertLog:
    """Recorded alerts: what the policy's cooldown and escalation rule looks back on."""

    def __init__(self, store: Store) -> None:
        migrate_store(store)
        self._conn = store.database.conn

    def last_before(self, key: Key, before_ms: int) -> Last | None:
        """The latest alert of (kind, scope) whose window ended by `before_ms`.

        Windows end on the bar, and a live run evaluates several times a bar (every batch
        that may cross a tier, and the scheduled tick): an alert at this very end counts,
        or a second evaluation in the same minute would open a new episode and send the
        same severity again for another window length. A rerun of a recorded evaluation
        then finds its own alert and decides nothing: the alert and its deliveries were
        stored in one transaction, so nothing is lost and nothing is sent twice.
        """
        row = self._conn.execute(
            "SELECT signal_ms, severity, episode_ms FROM alerts "
            "WHERE kind = ? AND scope = ? AND signal_ms <= ? ORDER BY signal_ms DESC LIMIT 1",
            (*key, before_ms),
        ).fetchone()
        return None if row is None else Last(int(row[0]), int(row[1]), int(row[2]))

    def add(self, alert: Alert, now_ms: int) -> bool:
        """Store one alert; False when its key was already there."""
        a = alert
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (a.key, a.kind, a.scope, str(a.window_ms), a.severity, a.episode_ms, a.end_ms,
             now_ms, a.to_json()),
        )
        return cur.rowcount > 0

    def find(self, key: str | None = None, *, min_severity: int = 1) -> Alert | None:
        """One recorded alert: the one with `key`, else the latest of at least `min_severity`."""
        if key is not None:
            row = self._conn.execute("SELECT payload FROM alerts WHERE key = ?",
                                     (key,)).fetchone()
        else:
            row = self._conn.execute(
                "SELECT payload FROM alerts WHERE severity >= ? "
                "ORDER BY signal_ms DESC, key LIMIT 1", (min_severity,)).fetchone()
        return None if row is None else Alert.from_json(row[0])
