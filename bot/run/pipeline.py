"""The path one batch takes, the same live and replayed: store it, evaluate, queue alerts.

`Pipeline` is the synchronous part, called on the writer thread: ingest model items into
the store, evaluate the signal windows, let the policy decide and record the alerts in the
outbox. `flush` is the asynchronous rest: deliver what the outbox has due to the notifiers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from backtests.track import track_record
from bot.alerts import Alert
from bot.chat.base import Notifier
from bot.chat.delivery import deliver_due
from bot.policy import Policy, PolicyConfig
from bot.run.trigger import windows_of
from bot.state.outbox import Outbox
from bot.state.subscriptions import Router
from bot.state.writer import Writer
from feeds.model import DAY_MS, MARKET, Bucket, Candle, Funding, Liquidation, OpenInterest
from feeds.store import Store, Totals
from feeds.store.scoped import ScopedCoverage, ScopedTotals, SpanCache
from feeds.venues.registry import SAMPLED_VENUES
from signals import SignalParams, evaluate
from signals.stats import build_stats

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Pipeline:
    """Synchronous core, called on the writer thread: ingest, evaluate, record alerts."""

    def __init__(
        self, store: Store, params: SignalParams, destinations: Sequence[str],
        policy_config: PolicyConfig | None = None, platforms: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.params = params
        # Always-on sinks (console, static webhooks) plus chats whose filters match.
        self.router = Router(store, destinations, platforms)
        self.policy = Policy(store, params, policy_config)
        self.outbox = Outbox(store, policy_config)
        self._spans = store.span_cache()

    def ingest(self, items: Iterable[Any]) -> int:
        """Store a mixed batch of model objects; return how many liquidations were new."""
        groups: dict[type, list[Any]] = {}
        for item in items:
            groups.setdefault(type(item), []).append(item)
        with self.store.transaction():
            new = self.store.insert_liquidations(groups.get(Liquidation, []))
            self.store.insert_buckets(groups.get(Bucket, []))
            self.store.insert_funding(groups.get(Funding, []))
            self.store.insert_candles(groups.get(Candle, []))
            self.store.insert_open_interest(groups.get(OpenInterest, []))
        return new

    def evaluate(self, now_ms: int, bar_ms: int = 60_000) -> list[Alert]:
        """Classify the windows ending at `now_ms`; record and return the new alerts."""
        windows = windows_of(self.params, bar_ms)
        with self.store.snapshot():  # one read transaction for the whole tick
            # What was written since the last tick may lie inside a kept span: forget it.
            self._spans.forget_from(self.store.take_write_floor())
            stats = build_stats(_LiveTotals(self.store, self._spans), now_ms, self.params,
                                windows)
        alerts = self.policy.decide(evaluate(stats, self.params))
        if alerts:
            alerts = [self._quote(a) for a in alerts]
            self.policy.record(alerts, self.router.destinations, now_ms)
        return alerts

    def _quote(self, alert: Alert) -> Alert:
        """Attach what the latest backtest knew before this alert: same kind, cohort, severity
        and scope family, episodes closed by the alert's decision time."""
        record = track_record(self.store, alert.kind, alert.severity, alert.scope,
                              at_ms=alert.end_ms, escalation=alert.escalation)
        if record:
            alert = dataclasses.replace(alert, track_record=record)
        # The window's biggest single event, from our own events (aggregates have none).
        biggest = self.store.largest_liquidation(None if alert.scope == MARKET else alert.scope,
                                                 alert.start_ms, alert.end_ms)
        return dataclasses.replace(alert, largest=dataclasses.asdict(biggest)) if biggest \
            else alert

    def prune(self, now_ms: int, retention_days: float) -> int:
        return self.store.prune_events(now_ms - int(retention_days * DAY_MS))


class _LiveTotals:
    """The store as signals.stats reads it, for one tick, with the venues that make totals a
    lower bound (the store does not know venues: they import it; the registry does).

    build_stats asks per scope; each (end, span) is read once market-wide and every coin's
    answer derived from those rows (feeds/store/scoped.py). `spans` lives across ticks:
    a window or baseline of the same length as last tick's is that one slid forward (the
    minutes gained added, those lost taken off), held hours likewise; without it every
    span is read whole.
    """

    def __init__(self, store: Store, spans: SpanCache | None = None) -> None:
        self.price_change = store.price_change
        self.latest_funding = store.latest_funding
        self._store = store
        self._spans = spans
        self._totals: dict[tuple[int, int], ScopedTotals] = {}
        self._coverage: dict[tuple[int, int], ScopedCoverage] = {}

    def totals(self, end_ms: int, window_ms: int, *, coin: str | None = None) -> Totals:
        read = self._totals.get((end_ms, window_ms))
        if read is None:
            read = self._store.scoped_totals(end_ms, window_ms, sampled_venues=SAMPLED_VENUES,
                                             cache=self._spans)
            self._totals[end_ms, window_ms] = read
        return read.of(coin)

    def coverage(self, end_ms: int, span_ms: int, *, coin: str | None = None
                 ) -> tuple[int, int]:
        read = self._coverage.get((end_ms, span_ms))
        if read is None:
            read = self._store.scoped_coverage(end_ms, span_ms, cache=self._spans)
            self._coverage[end_ms, span_ms] = read
        return read.of(coin)


async def flush(writer: Writer, pipeline: Pipeline, notifiers: Mapping[str, Notifier],
                now_ms: int) -> int:
    """Deliver the outbox items due at `now_ms`; how many were delivered."""
    return await deliver_due(pipeline.outbox, notifiers, now_ms, writer.run)
