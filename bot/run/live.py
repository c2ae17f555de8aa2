"""Live: stream the venues, poll the REST sources, run the jobs, until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import version
from bot.chat.base import ChatService, Notifier
from bot.chat.delivery import notice_all
from bot.config import Settings
from bot.ops import console
from bot.ops.health import HealthConfig, HealthMonitor
from bot.ops.http import live_check
from bot.ops.metrics import Metrics
from bot.run.assembly import Feed, Run, RunSummary, assemble, build_feeds, gap_recorder
from bot.run.jobs import Jobs
from bot.run.sources import Sources
from bot.run.trigger import Trigger, windows_of
from bot.run.writes import WriteGuard
from feeds.clock import Clock, WallClock
from feeds.model import Liquidation
from feeds.store import StoreError

logger = logging.getLogger(__name__)


async def run_live(
    settings: Settings, *, stop: asyncio.Event | None = None, clock: Clock | None = None,
    notifiers: Mapping[str, Notifier] | None = None, feeds: Sequence[Feed] | None = None,
    health: HealthConfig | None = None, services: Sequence[ChatService] | None = None,
    metrics: Metrics | None = None, ops_listen: str | None = None,
) -> RunSummary:
    """Stream the configured venues, evaluate as batches cross tiers and on a schedule,
    deliver alerts, until stopped.

    Injected `feeds` (tests) stand for every market-data source: no REST pollers then.
    `metrics` are pushed as things happen; `ops_listen` also serves /healthz and /metrics.
    """
    clock = clock or WallClock()
    stop = stop or _stop_on_signals()
    with assemble(settings, notifiers=notifiers, services=services, metrics=metrics,
                  ops_listen=ops_listen) as run:
        return await _serve(run, stop, clock, feeds, health)


async def _serve(run: Run, stop: asyncio.Event, clock: Clock, feeds: Sequence[Feed] | None,
                 health: HealthConfig | None) -> RunSummary:
    settings, writer, pipeline, ops = run.settings, run.writer, run.pipeline, run.ops
    # Event-driven evaluation (bot/run/trigger.py); the scheduled one stays as the backstop.
    trigger = Trigger(writer.store, settings.signals, windows_of(settings.signals)) \
        if settings.eval_on_events else None
    jobs: Jobs | None = None

    def ingest(items: list[Any], now_ms: int) -> tuple[int, bool]:
        new = pipeline.ingest(items)  # the writer thread: the trigger reads what went in
        return new, trigger is not None and trigger.check(items, now_ms, new)

    async def store(items: list[Any]) -> None:
        new, hot = await writer.run(ingest, items, clock.now_ms())
        run.summary.events_new += new
        if hot and jobs is not None:
            jobs.wake()

    async def notify(text: str) -> None:
        await notice_all(run.chats.notifiers, text)

    # A write that fails (full disk, read-only database) holds the batch and says so.
    writes = WriteGuard(store, notify, run=writer.run, now_ms=clock.now_ms)

    async def sink(events: list[Liquidation]) -> None:
        ops.events(events)
        await writes.put(events)

    absorb = writes.put  # funding, OI, aggregate bars

    sources = Sources(settings, absorb, writer, clock) if feeds is None else None
    if feeds is None:
        feeds = build_feeds(settings, sink, clock, gap_recorder(run, writes))
    ops.bind(settings.db, feeds, rejected=writer.store.gate.rejected, writes=writes)
    health = health or HealthConfig(down_after_ms=int(settings.down_after_s * 1000),
                                    silent_after_ms=int(settings.silent_after_s * 1000))
    monitor = HealthMonitor(health, started_ms=clock.now_ms())
    jobs = Jobs(run, clock, feeds, monitor, sources, writes)
    if trigger is not None:
        await writer.run(trigger.seed, clock.now_ms())
    scheduler = jobs.schedule(AsyncIOScheduler(timezone="UTC"))
    await ops.serve(live_check(  # a busy port stops the start here
        scheduler, feeds, states=monitor.states, heartbeat=lambda: jobs.beat,
        stale_after_s=max(60.0, 4 * settings.health_interval_s), store=writes.report))
    tasks: list[asyncio.Task[Any]] = []
    try:
        await run.chats.start(writer, live=True)  # connects in the background; never blocks
        tasks = [asyncio.create_task(f.run(), name=f"feed-{f.stats.exchange}") for f in feeds]
        tasks += sources.start() if sources else []
        _summarise(scheduler, run, clock, feeds, monitor, sources)
        if trigger is not None:
            tasks.append(asyncio.create_task(jobs.evaluator(), name="evaluate-on-events"))
        scheduler.start()
        await _announce(run, clock)
        await stop.wait()
    finally:
        logger.info("stopping")
        if scheduler.running:
            scheduler.pause()
            await jobs.quiesce(10.0)  # let a running job finish rather than cancel it mid-send
            scheduler.shutdown(wait=False)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await jobs.deliver()
        await writes.retry()
        if writes.held:
            logger.error("store: %d held items could not be stored before exit (%s); they are "
                         "lost", len(writes.held), writes.fault)
        await writes.settle()
        await run.stop()
    return run.summary


async def _announce(run: Run, clock: Clock) -> None:
    """The start lines: version, venues, where alerts go, the history the tiers still need."""
    settings, writer = run.settings, run.writer
    logger.info("liqbot %s running: venues %s, db %s; Ctrl-C stops", version(),
                ", ".join(settings.venues), settings.db)
    try:
        lines = await writer.run(console.start_lines, settings, writer.store, clock.now_ms())
    except StoreError as exc:  # a read that fails here is the write guard's to report
        lines = [f"history and destinations unknown: {exc}"]
    for line in lines:
        logger.info("%s", line)


def _summarise(scheduler: AsyncIOScheduler, run: Run, clock: Clock, feeds: Sequence[Feed],
               monitor: HealthMonitor, sources: Sources | None) -> None:
    """Every `[ops] summary_s`: one console line on the venues, pollers, events and alerts."""
    started = clock.now_ms()

    async def summary() -> None:
        logger.info("%s", console.summary_line(
            [f.stats for f in feeds], monitor.states(), sources.pollers if sources else [],
            run.summary, clock.now_ms(), started))

    scheduler.add_job(summary, "interval", seconds=run.settings.summary_interval_s,
                      id="summary", coalesce=True, max_instances=1, replace_existing=True)



def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
