"""liqbot's own series: what an operator watches on a bot that runs for months.

Push-style calls (`observe_*`) come from the runner where things happen; pull-style
families (`bind_*`) copy state that already exists (FeedStats, file sizes, /proc) at
scrape time, so the hot paths carry no extra bookkeeping. Nothing here touches SQLite:
the outbox gauge is pushed from the writer thread (`set_outbox`). Each `Metrics` has its
own prometheus_client registry, so two runs (or two tests) never share a series.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from bot import version
from bot.alerts import Alert
from bot.chat.attempt import counts_departure
from bot.chat.base import Notifier
from feeds.model import Liquidation
from feeds.venues.parsing import ITEM_FAULTS

# The text format generate_latest writes when the scraper asks for nothing else.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Seconds: from sub-millisecond loop hiccups to a chat API that takes half a minute.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
# Receive minus exchange time: normally well under a second; minutes means a stuck feed
# or a skewed clock (RELIABILITY.md item 6).
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# The 10 ms loop probe: item 7 wants p99 < 100 ms and max < 500 ms.
LOOP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
OUTBOX_STATUSES = ("pending", "dead")  # sent ones: liqbot_alerts_sent_total

Rows = Iterable[tuple[Sequence[str], float]]  # (label values, value)



class _Copied(Collector):
    """A family rebuilt on each scrape from `read()`: values kept elsewhere, not stored twice.

    prometheus_client's own Counter only adds up; the reconnects a FeedStats already counts,
    or a file's size, are copied whole instead.
    """

    def __init__(self, family: type[CounterMetricFamily | GaugeMetricFamily], name: str,
                 help_text: str, labels: Sequence[str], read: Callable[[], Rows]) -> None:
        self.family, self.name, self.help, self.labels = family, name, help_text, labels
        self.read = read

    def collect(self) -> Iterable[Metric]:
        out = self.family(self.name, self.help, labels=self.labels)
        for values, value in self.read():
            out.add_metric(list(values), value)
        return [out]


class Metrics:
    """Every liqbot series, registered once; `render()` is the body of `/metrics`."""

    def __init__(self) -> None:
        # Prometheus' 0.0.4 text has no use for the `*_created` series the client adds to
        # every counter and histogram; they would double the series a dashboard sees.
        prometheus_client.disable_created_metrics()
        r = self.registry = CollectorRegistry()
        self._feeds: Sequence[Any] = ()
        self._db_path: str | None = None
        self._outbox: dict[str, float] | None = None  # None until the first count
        self._newest: dict[str, float] = {}
        self._rejected: Mapping[str, int] = {}
        self._writes: Any = None  # bot.run.writes.WriteGuard of a live run
        self.events = Counter("liqbot_events_total",
                              "Liquidation events received per venue, before de-duplication.",
                              ["venue"], registry=r)
        self.events_usd = Counter("liqbot_events_usd_total",
                                  "USD notional of the liquidation events received per venue.",
                                  ["venue"], registry=r)
        self.feed_lag = Histogram("liqbot_feed_lag_seconds",
                                  "Receive time minus exchange time of each event, per venue.",
                                  ["venue"], registry=r, buckets=LAG_BUCKETS)
        self.last_event = Gauge("liqbot_feed_last_event_timestamp_seconds",
                                "Exchange time of the newest event received, per venue.",
                                ["venue"], registry=r)
        self.gaps = Counter("liqbot_feed_gaps_total", "Feed outages that began, per venue.",
                            ["venue"], registry=r)
        self.gap_seconds = Counter("liqbot_feed_gap_seconds_total",
                                   "Length of the feed outages that ended, per venue.",
                                   ["venue"], registry=r)
        r.register(_Copied(GaugeMetricFamily, "liqbot_feed_connected",
                           "Open sockets per venue; 0 means the venue is down.",
                           ["venue"], lambda: self._per_venue(_connected)))
        r.register(_Copied(CounterMetricFamily, "liqbot_feed_reconnects_total",
                           "Connections opened after the first, per venue.",
                           ["venue"], lambda: self._per_venue(_stat("reconnects"))))
        r.register(_Copied(CounterMetricFamily, "liqbot_feed_parse_errors_total",
                           "Frames rejected by the parser, per venue.",
                           ["venue"], lambda: self._per_venue(_stat("parse_errors"))))
        r.register(_Copied(CounterMetricFamily, "liqbot_feed_item_faults_total",
                           "Items skipped from frames that kept good ones, per venue (the "
                           "first of each kind is logged).", ["venue"], self._item_faults))
        r.register(_Copied(CounterMetricFamily, "liqbot_events_rejected_total",
                           "Events the plausibility gate kept out of the store, per fault.",
                           ["reason"], lambda: [((k,), v) for k, v in self._rejected.items()]))
        r.register(_Copied(GaugeMetricFamily, "liqbot_store_writable",
                           "0 while writes to the database fail (full disk, read-only).",
                           [], lambda: self._from_writes(lambda w: float(w.fault is None))))
        r.register(_Copied(GaugeMetricFamily, "liqbot_events_held",
                           "Items kept in memory because the database cannot be written.",
                           [], lambda: self._from_writes(lambda w: float(len(w.held)))))
        r.register(_Copied(CounterMetricFamily, "liqbot_events_dropped",
                           "Held items dropped past the memory bound while writes failed.",
                           [], lambda: self._from_writes(lambda w: float(w.dropped))))
        self.alerts = Counter("liqbot_alerts_total", "Alerts decided by the policy.",
                              registry=r)
        self.sent = Counter("liqbot_alerts_sent_total",
                            "Deliveries the destination acknowledged, per platform.",
                            ["platform"], registry=r)
        self.failed = Counter("liqbot_alerts_failed_total",
                              "Delivery attempts that failed, per platform (most are retried).",
                              ["platform"], registry=r)
        r.register(_Copied(GaugeMetricFamily, "liqbot_outbox_items",
                           "Outbox rows per status (pending, sent, dead), as of the last check.",
                           ["status"], self._outbox_rows))
        self.delivery = Histogram("liqbot_delivery_latency_seconds",
                                  "Seconds from a send's start to the platform's answer.",
                                  ["platform", "outcome"], registry=r, buckets=LATENCY_BUCKETS)
        self.loop_lag = Histogram("liqbot_event_loop_lag_seconds",
                                  "How late the 10 ms event-loop probe woke up.",
                                  registry=r, buckets=LOOP_BUCKETS)
        self.loop_lag_max = Gauge("liqbot_event_loop_lag_max_seconds",
                                  "Worst event-loop probe lateness in the last minute.",
                                  registry=r)
        self.tasks = Gauge("liqbot_asyncio_tasks", "Live asyncio tasks at scrape time.",
                           registry=r)
        self.healthy = Gauge("liqbot_healthy", "1 when /healthz answers ok, else 0.", registry=r)
        r.register(_Copied(GaugeMetricFamily, "liqbot_db_bytes",
                           "Size of the SQLite files (db, wal).", ["file"], self._db_sizes))
        r.register(_Copied(GaugeMetricFamily, "process_resident_memory_bytes",
                           "Resident memory of the process.", [], lambda: _proc()[:1]))
        r.register(_Copied(GaugeMetricFamily, "process_open_fds",
                           "Open file descriptors of the process.", [], lambda: _proc()[1:]))
        Gauge("process_start_time_seconds", "Start of the process, Unix time.",
              registry=r).set(time.time())
        Gauge("liqbot_build_info", "Always 1; the version is a label.", ["version"],
              registry=r).labels(version=version()).set(1)

    def render(self) -> str:
        return generate_latest(self.registry).decode()

    def value(self, name: str, **labels: str) -> float | None:
        """One sample as a scrape would show it (None when absent): for tests and tools."""
        return self.registry.get_sample_value(name, labels)

    # -- pushed by the runner -------------------------------------------------------------

    def observe_events(self, items: Iterable[Any]) -> None:
        """Count a batch from a feed or a replay; non-liquidation items are ignored."""
        usd: dict[str, list[float]] = {}
        lags: dict[str, list[float]] = {}
        newest: dict[str, int] = {}
        for e in items:
            if not isinstance(e, Liquidation):
                continue
            usd.setdefault(e.exchange, []).append(float(e.notional_usd))
            if e.ts_exchange_ms is not None:
                lags.setdefault(e.exchange, []).append((e.ts_recv_ms - e.ts_exchange_ms) / 1000)
                newest[e.exchange] = max(newest.get(e.exchange, 0), e.ts_exchange_ms)
        # One update per venue and batch: a cascade can bring thousands of events a second.
        for venue, amounts in usd.items():
            self.events.labels(venue=venue).inc(len(amounts))
            self.events_usd.labels(venue=venue).inc(sum(amounts))
        for venue, values in lags.items():
            lag = self.feed_lag.labels(venue=venue)
            for value in values:
                if not math.isnan(value):  # NaN would poison _sum for good
                    lag.observe(value)
        for venue, ts_ms in newest.items():
            if ts_ms / 1000 > self._newest.get(venue, 0.0):
                self._newest[venue] = ts_ms / 1000
                self.last_event.labels(venue=venue).set(ts_ms / 1000)

    def observe_gap(self, venue: str, start_ms: int, end_ms: int | None) -> None:
        """The connector reports a gap twice: when it opens (end None) and when it closes."""
        if end_ms is None:
            self.gaps.labels(venue=venue).inc()
        else:
            self.gap_seconds.labels(venue=venue).inc(max(0, end_ms - start_ms) / 1000)

    def observe_alerts(self, n: int) -> None:
        self.alerts.inc(n)

    def observe_delivery(self, platform: str, ok: bool, seconds: float) -> None:
        (self.sent if ok else self.failed).labels(platform=platform).inc()
        self.delivery.labels(platform=platform, outcome="sent" if ok else "failed").observe(
            seconds)

    def set_outbox(self, counts: Mapping[str, int]) -> None:
        """`Outbox.status_counts()`, read on the writer thread by the health job."""
        rows = {s: 0 for s in OUTBOX_STATUSES} | dict(counts)
        self._outbox = {s: float(n) for s, n in rows.items()}  # one swap: scrapes see all or none

    def observe_loop_lag(self, seconds: float) -> None:
        self.loop_lag.observe(seconds)

    # -- read at scrape time --------------------------------------------------------------

    def bind_feeds(self, feeds: Sequence[Any], started_s: float | None = None) -> None:
        """Report each venue's FeedStats (sockets, reconnects, parse errors) at scrape time.

        Every venue's series exist from start, at 0, so a rule on them works for a venue
        that has never sent anything. Its last-event time starts at `started_s` (the run's
        start), as the health monitor counts silence: "no event for 30 min" then fires 30
        min after start for a venue that stays quiet, not at once and not never.
        """
        self._feeds = feeds
        started = time.time() if started_s is None else started_s
        for venue in dict.fromkeys(f.stats.exchange for f in feeds):
            for family in (self.events, self.events_usd, self.gaps, self.gap_seconds):
                family.labels(venue=venue)
            self.feed_lag.labels(venue=venue)
            if venue not in self._newest:
                self._newest[venue] = started
                self.last_event.labels(venue=venue).set(started)

    def bind_writes(self, writes: Any) -> None:
        """A live run's write guard: writable, held and dropped items, from start."""
        self._writes = writes

    def _from_writes(self, read: Callable[[Any], float]) -> Rows:
        return [] if self._writes is None else [((), read(self._writes))]

    def bind_rejections(self, counts: Mapping[str, int]) -> None:
        """The store's plausibility gate counts (feeds/plausible.py): every fault from start."""
        self._rejected = counts

    def bind_db(self, db_path: str) -> None:
        """Report the database and WAL sizes: a WAL that only grows means starved checkpoints."""
        if db_path != ":memory:":
            self._db_path = db_path

    def _per_venue(self, read: Callable[[Any], float]) -> Rows:
        totals: dict[str, float] = {}
        for f in self._feeds:
            totals[f.stats.exchange] = totals.get(f.stats.exchange, 0.0) + read(f.stats)
        return [((venue,), value) for venue, value in totals.items()]

    def _item_faults(self) -> Rows:
        # 0 from start for every bound venue, so a rate() has a series before the first fault.
        totals = dict.fromkeys((f.stats.exchange for f in self._feeds), 0.0)
        for (venue, _kind), n in list(ITEM_FAULTS.items()):
            totals[venue] = totals.get(venue, 0.0) + n
        return [((venue,), n) for venue, n in totals.items()]

    def _outbox_rows(self) -> Rows:
        return [((status,), n) for status, n in (self._outbox or {}).items()]

    def _db_sizes(self) -> Rows:
        if self._db_path is None:
            return []
        rows = []
        for label, suffix in (("db", ""), ("wal", "-wal")):
            try:
                size = Path(self._db_path + suffix).stat().st_size
            except OSError:
                size = 0  # no WAL right after a clean checkpoint
            rows.append(((label,), float(size)))
        return rows


def _connected(stats: Any) -> float:
    return float(getattr(stats, "connected_since_ms", None) is not None)


def _stat(name: str) -> Callable[[Any], float]:
    return lambda stats: float(getattr(stats, name, 0))


def _proc() -> list[tuple[Sequence[str], float]]:
    """[(resident bytes), (open fds)]; empty off Linux, where both series stay absent."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return [((), float(pages * os.sysconf("SC_PAGE_SIZE"))),
                ((), float(len(os.listdir("/proc/self/fd"))))]
    except (OSError, ValueError, IndexError):
        return []


class MeteredNotifier:
    """Wrap a notifier so each send is timed and counted; the rest is the inner notifier's.

    The runner wraps its notifiers once, so delivery code stays free of metric calls.
    """

    def __init__(self, inner: Notifier, metrics: Metrics, platform: str) -> None:
        self._inner, self._metrics, self._platform = inner, metrics, platform

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def ready(self) -> bool:  # read live: a service flips it when it connects or drops
        return self._inner.ready

    @property
    def parallel(self) -> int:
        return self._inner.parallel

    @property
    def counts_departure(self) -> bool:  # the inner transport counts the attempt as it leaves
        return counts_departure(self._inner)

    async def send(self, alert: Alert, destination: str) -> None:
        start = time.monotonic()
        try:
            await self._inner.send(alert, destination)
        except Exception:  # a cancelled send (shutdown) is neither sent nor failed
            self._metrics.observe_delivery(self._platform, False, time.monotonic() - start)
            raise
        self._metrics.observe_delivery(self._platform, True, time.monotonic() - start)

    async def notice(self, text: str) -> None:
        await self._inner.notice(text)

    async def close(self) -> None:
        await self._inner.close()


def metered(notifiers: Mapping[str, Notifier], metrics: Metrics | None) -> dict[str, Notifier]:
    """The same mapping with every notifier wrapped; unchanged when metrics are off."""
    if metrics is None:
        return dict(notifiers)
    return {name: MeteredNotifier(n, metrics, name) for name, n in notifiers.items()}
