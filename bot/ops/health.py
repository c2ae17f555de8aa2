"""Feed health: down and silent venues become one notice each, and so does their recovery.

A quiet market is not a dead feed: silence only counts while the socket is alive and
answering pings (the connector's own ping timeout handles a dead socket), and only
after a long threshold. In April 2026 Binance acknowledged `!forceOrder@arr` and then
sent nothing for 14 h; this is the monitor that would have said so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.render import duration
from bot.run.lock import held
from feeds.store import Store
from feeds.store.status import feed_activity
from feeds.venues.names import SAMPLED_VENUES

if TYPE_CHECKING:  # the websocket client is not needed to read a status (`liqbot status`)
    from feeds.net.ws import FeedStats

logger = logging.getLogger(__name__)
# Meta keys a live run writes for `liqbot status`: REST pollers, the CoinGlass cross-check.
POLLERS_KEY, CHECK_KEY = "pollers", "coinglass_check"


@dataclass(frozen=True, slots=True)
class HealthConfig:
    down_after_ms: int = 60_000
    silent_after_ms: int = 30 * 60_000


@dataclass(slots=True)
class _Venue:
    state: str = "up"
    since_ms: int = 0  # when the current state began


def merge_stats(stats: Iterable[FeedStats]) -> dict[str, dict[str, Any]]:
    """One row per venue from its sockets: connected if any is, newest times, summed counts."""
    venues: dict[str, dict[str, Any]] = {}
    for s in stats:
        v = venues.setdefault(s.exchange, {"exchange": s.exchange, "sockets": 0, "connected": 0,
                                           "connected_since_ms": None, "last_event_ms": None,
                                           "events": 0, "parse_errors": 0, "reconnects": 0,
                                           "last_error": None})
        v["sockets"] += 1
        if s.connected_since_ms is not None:
            v["connected"] += 1
            v["connected_since_ms"] = _pick(min, v["connected_since_ms"], s.connected_since_ms)
        v["last_event_ms"] = _pick(max, v["last_event_ms"], s.last_event_ms)
        v["events"] += s.events
        v["parse_errors"] += s.parse_errors
        v["reconnects"] += s.reconnects
        v["last_error"] = s.last_error or v["last_error"]
    return venues


def _pick(fn: Any, a: int | None, b: int | None) -> int | None:
    """min/max of two optional times, None only when both are."""
    if a is None or b is None:
        return a if b is None else b
    return int(fn(a, b))


class HealthMonitor:
    """Track each venue's state across checks and say what changed."""

    def __init__(self, config: HealthConfig | None = None, started_ms: int = 0) -> None:
        self.config = config or HealthConfig()
        self.started_ms = started_ms
        self._venues: dict[str, _Venue] = {}
        self._down_since: dict[str, int] = {}

    def _observed(self, row: dict[str, Any], now_ms: int) -> str:
        name = row["exchange"]
        if not row["connected"]:
            since = self._down_since.setdefault(name, now_ms)
            return "down" if now_ms - since >= self.config.down_after_ms else "up"
        self._down_since.pop(name, None)
        last = row["last_event_ms"]
        if last is None:
            last = row["connected_since_ms"]
        last = max(last if last is not None else self.started_ms, self.started_ms)
        return "silent" if now_ms - last >= self.config.silent_after_ms else "up"

    def check(self, stats: Iterable[FeedStats], now_ms: int) -> list[str]:
        """Return the notices for venues whose state changed since the last check."""
        notices = []
        for name, row in merge_stats(stats).items():
            venue = self._venues.setdefault(name, _Venue(since_ms=now_ms))
            state = self._observed(row, now_ms)
            if state == venue.state:
                continue
            notices.append(_notice(name, venue, state, row, now_ms))
            venue.state, venue.since_ms = state, now_ms
        for text in notices:
            logger.warning("health: %s", text)
        return notices

    def states(self) -> dict[str, str]:
        return {name: v.state for name, v in self._venues.items()}


def _notice(name: str, venue: _Venue, state: str, row: dict[str, Any], now_ms: int) -> str:
    if state == "up":
        return f"✅ {name}: back after {duration(now_ms - venue.since_ms)} {venue.state}"
    if state == "down":
        why = f" ({row['last_error']})" if row["last_error"] else ""
        return f"⚠️ {name}: feed down{why}; totals are incomplete until it is back"
    last = row["last_event_ms"] if row["last_event_ms"] is not None else row["connected_since_ms"]
    silent_for = now_ms - (last if last is not None else now_ms)
    return (f"⚠️ {name}: no liquidation data for {duration(silent_for)} although the socket is "
            "alive; its alerts may be missing")


def save_status(store: Store, stats: Iterable[FeedStats], states: dict[str, str],
                now_ms: int) -> None:
    """Write a snapshot the separate `liqbot status` process reads from the database."""
    rows = merge_stats(stats)
    for name, row in rows.items():
        row["state"] = states.get(name, "up")
        if row["state"] == "up" and not row["connected"]:
            # Not connected yet, or again, inside the down_after grace: "up · disconnected"
            # read as a contradiction (issue 14).
            row["state"] = "connecting"
    store.set_meta("status", json.dumps({"at_ms": now_ms, "venues": list(rows.values())}))


def _meta_json(store: Store, key: str) -> dict[str, Any] | None:
    raw = store.get_meta(key)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        logger.warning("status: meta %s is not JSON; ignored", key)
        return None
    return doc if isinstance(doc, dict) else None


def status_report(store: Store, now_ms: int) -> dict[str, Any]:
    """Per venue: state, connected since, last event, events/min, gaps, completeness.

    Also the REST pollers' counters and the latest CoinGlass cross-check, when a live run
    saved them (bot.run.sources).
    """
    snap = _meta_json(store, "status") or {"at_ms": None, "venues": []}
    # The snapshot is the last one a run saved: whether a run is still there, its lock says
    # (the kernel lets go of it when the process dies, kill -9 included).
    running = store.path == ":memory:" or held(store.path)
    day = now_ms - 86_400_000
    activity = feed_activity(store, now_ms, since_ms=day)
    gaps, open_gaps, per_min = activity.gaps, activity.open_gaps, activity.events_per_min
    venues = []
    for row in snap["venues"]:
        name = row["exchange"]
        if not running:
            row = {**row, "state": "stopped", "connected": 0, "connected_since_ms": None}
        complete = name not in SAMPLED_VENUES and not gaps.get(name) and row["state"] == "up"
        venues.append({**row, "events_per_min": per_min.get(name, 0.0),
                       "gaps_24h": gaps.get(name, 0), "gap_open": name in open_gaps,
                       "totals": "complete" if complete else "lower bound"})
    return {"snapshot_at_ms": snap["at_ms"], "running": running, "venues": venues,
            "pollers": (_meta_json(store, POLLERS_KEY) or {}).get("pollers", []),
            "coinglass_check": _meta_json(store, CHECK_KEY)}
