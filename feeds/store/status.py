"""What the store knows about each feed's health: gaps and recent event rates.

The operator's status report (bot/ops/health.py) combines these with the live run's
snapshot; the SQL stays here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from feeds.store.core import Store

RATE_SPAN_MS = 600_000  # events per minute are averaged over the last ten minutes


@dataclass(frozen=True, slots=True)
class FeedActivity:
    """Per exchange: gaps touching the span, whether one is still open, events a minute."""

    gaps: dict[str, int] = field(default_factory=dict)
    open_gaps: frozenset[str] = frozenset()
    events_per_min: dict[str, float] = field(default_factory=dict)


def feed_activity(store: Store, now_ms: int, since_ms: int) -> FeedActivity:
    """Gaps that ended after `since_ms` (or are open), and each venue's recent event rate."""
    conn = store.database.conn
    gaps = {str(e): int(n) for e, n in conn.execute(
        "SELECT exchange, count(*) FROM gaps WHERE coalesce(end_ms, ?) >= ? GROUP BY exchange",
        (now_ms, since_ms))}
    open_gaps = frozenset(str(r[0]) for r in conn.execute(
        "SELECT exchange FROM gaps WHERE end_ms IS NULL"))
    per_min = {str(e): float(n) for e, n in conn.execute(
        "SELECT exchange, (sum(long_n) + sum(short_n)) / ? FROM buckets_1m "
        "WHERE start_ms >= ? GROUP BY exchange",
        (RATE_SPAN_MS / 60_000, now_ms - RATE_SPAN_MS))}
    return FeedActivity(gaps, open_gaps, per_min)
