"""liqbot's own series: what an operator watches on a bot that runs for months.

Push-style calls (`observe_*`) come from the runner where things happen; pull-style
collectors (`bind_*`) copy state that already exists (FeedStats, file sizes, /proc) at
scrape time, so the hot paths carry no extra bookkeeping. Nothing here touches SQLite:
the outbox gauge is pushed from the writer thread (`set_outbox`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.alerts import Alert
from bot.chat.base import Notifier
from bot.ops.prom import Registry, label_map
from feeds.model import Liquidation

# Receive minus exchange time: normally well under a second; minutes means a stuck feed
# or a skewed clock (RELIABILITY.md item 6).
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# The 10 ms loop probe: item 7 wants p99 < 100 ms and max < 500 ms.
LOOP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
OUTBOX_STATUSES = ("pending", "dead")  # sent ones: liqbot_alerts_sent_total


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("liqbot")
    except Exception:  # running from a checkout that was never installed
        return "unknown"


class Metrics:
    """Every liqbot series, registered once; `render()` is the body of `/metrics`."""

    def __init__(self, registry: Registry | None = None) -> None:
        r = self.registry = registry or Registry()
        self.events = r.counter("liqbot_events_total",
                                "Liquidation events received per venue, before de-duplication.")
        self.events_usd = r.counter("liqbot_events_usd_total",
                                    "USD notional of the liquidation events received per venue.")
        self.feed_lag = r.histogram("liqbot_feed_lag_seconds",
                                    "Receive time minus exchange time of each event, per venue.",
                                    LAG_BUCKETS)
        self.last_event = r.gauge("liqbot_feed_last_event_timestamp_seconds",
                                  "Exchange time of the newest event received, per venue.")
        self.gaps = r.counter("liqbot_feed_gaps_total", "Feed outages that began, per venue.")
        self.gap_seconds = r.counter("liqbot_feed_gap_seconds_total",
                                     "Length of the feed outages that ended, per venue.")
        self.connected = r.gauge("liqbot_feed_connected",
                                 "Open sockets per venue; 0 means the venue is down.")
        self.reconnects = r.counter("liqbot_feed_reconnects_total",
                                    "Connections opened after the first, per venue.")
        self.parse_errors = r.counter("liqbot_feed_parse_errors_total",
                                      "Frames rejected by the parser, per venue.")
        self.alerts = r.counter("liqbot_alerts_total", "Alerts decided by the policy.")
        self.sent = r.counter("liqbot_alerts_sent_total",
                              "Deliveries the destination acknowledged, per platform.")
        self.failed = r.counter("liqbot_alerts_failed_total",
                                "Delivery attempts that failed, per platform (most are retried).")
        self.outbox = r.gauge("liqbot_outbox_items",
                              "Outbox rows per status (pending, sent, dead), as of the last check.")
        self.delivery = r.histogram("liqbot_delivery_latency_seconds",
                                    "Seconds from a send's start to the platform's answer.")
        self.loop_lag = r.histogram("liqbot_event_loop_lag_seconds",
                                    "How late the 10 ms event-loop probe woke up.", LOOP_BUCKETS)
        self.loop_lag_max = r.gauge("liqbot_event_loop_lag_max_seconds",
                                    "Worst event-loop probe lateness in the last minute.")
        self.tasks = r.gauge("liqbot_asyncio_tasks", "Live asyncio tasks at scrape time.")
        self.healthy = r.gauge("liqbot_healthy", "1 when /healthz answers ok, else 0.")
        self.db_bytes = r.gauge("liqbot_db_bytes", "Size of the SQLite files (db, wal).")
        self.rss = r.gauge("process_resident_memory_bytes", "Resident memory of the process.")
        self.fds = r.gauge("process_open_fds", "Open file descriptors of the process.")
        r.gauge("process_start_time_seconds", "Start of the process, Unix time.").set(time.time())
        r.gauge("liqbot_build_info", "Always 1; the version is a label.").set(1, version=_version())
        self.alerts.inc(0)  # present from the first scrape, so rate() has a starting point
        r.add_collector(self._collect_process)

    def render(self) -> str:
        return self.registry.render()

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
            self.events.inc(len(amounts), venue=venue)
            self.events_usd.inc(sum(amounts), venue=venue)
        for venue, values in lags.items():
            self.feed_lag.observe_many(values, venue=venue)
        for venue, ts_ms in newest.items():
            if ts_ms / 1000 > self.last_event.get(venue=venue):
                self.last_event.set(ts_ms / 1000, venue=venue)

    def observe_gap(self, venue: str, start_ms: int, end_ms: int | None) -> None:
        """The connector reports a gap twice: when it opens (end None) and when it closes."""
        if end_ms is None:
            self.gaps.inc(venue=venue)
        else:
            self.gap_seconds.inc(max(0, end_ms - start_ms) / 1000, venue=venue)

    def observe_alerts(self, n: int) -> None:
        self.alerts.inc(n)

    def observe_delivery(self, platform: str, ok: bool, seconds: float) -> None:
        (self.sent if ok else self.failed).inc(platform=platform)
        self.delivery.observe(seconds, platform=platform, outcome="sent" if ok else "failed")

    def set_outbox(self, counts: Mapping[str, int]) -> None:
        """`Outbox.status_counts()`, read on the writer thread by the health job."""
        rows = {s: 0 for s in OUTBOX_STATUSES} | dict(counts)
        self.outbox.replace(label_map(({"status": s}, float(n)) for s, n in rows.items()))

    def observe_loop_lag(self, seconds: float) -> None:
        self.loop_lag.observe(seconds)

    # -- read at scrape time --------------------------------------------------------------

    def bind_feeds(self, feeds: Sequence[Any]) -> None:
        """Copy each venue's FeedStats (sockets, reconnects, parse errors) into gauges."""
        def collect() -> None:
            up: dict[str, float] = {}
            again: dict[str, float] = {}
            bad: dict[str, float] = {}
            for f in feeds:
                s = f.stats
                name = s.exchange
                up[name] = up.get(name, 0) + (getattr(s, "connected_since_ms", None) is not None)
                again[name] = again.get(name, 0) + getattr(s, "reconnects", 0)
                bad[name] = bad.get(name, 0) + getattr(s, "parse_errors", 0)
            self.connected.replace(label_map(({"venue": k}, v) for k, v in up.items()))
            self.reconnects.replace(label_map(({"venue": k}, v) for k, v in again.items()))
            self.parse_errors.replace(label_map(({"venue": k}, v) for k, v in bad.items()))

        self.registry.add_collector(collect)

    def bind_db(self, db_path: str) -> None:
        """Report the database and WAL sizes: a WAL that only grows means starved checkpoints."""
        if db_path == ":memory:":
            return

        def collect() -> None:
            for label, suffix in (("db", ""), ("wal", "-wal")):
                try:
                    size = Path(db_path + suffix).stat().st_size
                except OSError:
                    size = 0  # no WAL right after a clean checkpoint
                self.db_bytes.set(size, file=label)

        self.registry.add_collector(collect)

    def _collect_process(self) -> None:
        # Linux only; elsewhere these two series simply stay absent.
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
            self.rss.set(pages * os.sysconf("SC_PAGE_SIZE"))
            self.fds.set(len(os.listdir("/proc/self/fd")))
        except (OSError, ValueError, IndexError):
            pass


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
