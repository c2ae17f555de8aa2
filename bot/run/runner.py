"""The two ways liqbot runs: over recorded files on a simulated clock, or live."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import inspect
import logging
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.chat.base import ChatService, Notifier
from bot.chat.console import ConsoleNotifier
from bot.config import ConfigError, Settings
from bot.ops.health import HealthConfig, HealthMonitor, save_status
from bot.ops.http import live_check, replay_check
from bot.ops.metrics import Metrics
from bot.ops.telemetry import Telemetry
from bot.policy import PolicyConfig
from bot.run.pipeline import Pipeline, flush
from bot.run.sources import Sources
from bot.state.writer import Writer
from feeds.clock import Clock, SimClock, WallClock
from feeds.history.replay import ReplayData
from feeds.model import MINUTE_MS, Liquidation
from feeds.net.ws import Backoff
from feeds.venues.registry import venue_module

logger = logging.getLogger(__name__)


class AlreadyRunning(RuntimeError):
    """Another liqbot process holds the database lock."""


@dataclass
class RunSummary:
    events_new: int = 0
    items: int = 0
    evaluations: int = 0
    alerts: int = 0
    delivered: int = 0


def acquire_lock(db_path: str) -> int | None:
    """Hold an exclusive lock beside the DB for the life of the process (one instance only).

    The kernel drops the lock when the process dies, even by kill -9.
    """
    if db_path == ":memory:":
        return None
    lock_path = Path(db_path).with_name(Path(db_path).name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(
            f"another liqbot is already using {db_path} ({lock_path} is locked)") from None
    return fd


def build_notifiers(settings: Settings, stream: TextIO | None = None) -> dict[str, Notifier]:
    """Always-on sinks: each is its own destination (the console)."""
    notifiers: dict[str, Notifier] = {}
    if settings.console:
        notifiers["console"] = ConsoleNotifier(stream)
    return notifiers


def chat_services(settings: Settings) -> list[ChatService]:
    """Chat platforms configured in `settings`: a notifier each, plus its lifecycle."""
    services: list[ChatService] = []
    if settings.telegram_token:
        from bot.telegram.service import (
            TelegramService,  # PTB loads only when Telegram is configured
        )

        services.append(TelegramService(settings))
    if settings.discord_webhook_urls or settings.discord_token or settings.discord_channel_ids:
        from bot.discord.service import discord_services  # discord.py loads only when configured

        services += discord_services(settings)
    return services


class _Chats:
    """Sinks plus chat services of one run: who is a destination, who routes by subscription."""

    def __init__(self, sinks: Mapping[str, Notifier], services: Sequence[ChatService],
                 ops: Telemetry) -> None:
        self.services = list(services)
        self.fixed = list(sinks)
        self.platforms = [s.name for s in self.services]
        self.notifiers: dict[str, Notifier] = ops.wrap(
            {**sinks, **{s.name: s.notifier for s in self.services}})

    def pipeline(self, writer: Writer, settings: Settings) -> Pipeline:
        return Pipeline(writer.store, settings.signals, self.fixed, _policy_config(settings),
                        platforms=self.platforms)

    async def start(self, writer: Writer, *, live: bool) -> None:
        for service in self.services:
            await service.start(writer, live=live)

    async def stop(self) -> None:
        for service in self.services:
            try:
                await service.stop()
            except Exception:
                logger.exception("%s: stop failed", service.name)

    def ready(self) -> list[str]:
        return [name for name, n in self.notifiers.items() if getattr(n, "ready", True)]


def _policy_config(settings: Settings) -> PolicyConfig:
    return PolicyConfig(cooldown_ms=int(settings.cooldown_s * 1000))


async def run_replay(
    data: ReplayData, settings: Settings, *, speed: float = 0.0,
    notifiers: Mapping[str, Notifier] | None = None, eval_interval_ms: int = MINUTE_MS,
    services: Sequence[ChatService] | None = None, drain_timeout_s: float = 300.0,
    metrics: Metrics | None = None, ops_listen: str | None = None,
) -> RunSummary:
    """Drive the pipeline over recorded data on a simulated clock; flush the outbox; return.

    Items are ingested when they become known (a bar at its close) and the registry is
    evaluated at each `eval_interval_ms` boundary that new data reached, as the live
    scheduler would have. `speed` 0 runs flat out; X > 0 runs X times real time. Delivery
    runs on the wall clock (retries and flood waits are real time); at the end the run
    waits up to `drain_timeout_s` for every configured destination to be served.
    `metrics` are pushed as the replay goes; `ops_listen` also serves them (off by default).
    """
    ops = Telemetry(metrics, ops_listen)
    chats = _Chats(notifiers if notifiers is not None else build_notifiers(settings),
                   services if services is not None else chat_services(settings), ops)
    lock = acquire_lock(settings.db)
    writer = Writer(settings.db)
    wall = WallClock()
    replayed = asyncio.Event()
    try:
        ops.bind(settings.db)
        await ops.serve(replay_check(lambda: not replayed.is_set()))
        pipeline = chats.pipeline(writer, settings)
        await chats.start(writer, live=False)
        bar_ms = data.bar_span_ms or MINUTE_MS
        summary = RunSummary()
        clock = SimClock()
        prev_tick: int | None = None
        for tick, items in _ticks(data, eval_interval_ms):
            if speed > 0 and prev_tick is not None:
                await asyncio.sleep((tick - prev_tick) / 1000 / speed)
            prev_tick = tick
            clock.advance_to(tick)
            summary.items += len(items)
            ops.events(items)
            summary.events_new += await writer.run(pipeline.ingest, items)
            alerts = await writer.run(pipeline.evaluate, tick, bar_ms)
            summary.evaluations += 1
            summary.alerts += len(alerts)
            ops.alerts(len(alerts))
            summary.delivered += await flush(writer, pipeline, chats.notifiers, wall.now_ms())
            await ops.outbox(writer, pipeline.outbox)
        replayed.set()
        summary.delivered += await _drain(writer, pipeline, chats, drain_timeout_s)
        await ops.outbox(writer, pipeline.outbox)
        return summary
    finally:
        await chats.stop()
        await ops.stop()
        _release(writer, lock)


def _release(writer: Writer, lock: int | None) -> None:
    writer.close()
    if lock is not None:
        os.close(lock)


async def _drain(writer: Writer, pipeline: Pipeline, chats: _Chats, timeout_s: float) -> int:
    """Deliver until nothing is pending for a usable notifier, or `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    for service in chats.services:
        await service.wait_ready(max(0.0, deadline - time.monotonic()))
    wall = WallClock()
    delivered = 0
    while True:
        delivered += await flush(writer, pipeline, chats.notifiers, wall.now_ms())
        next_ms = await writer.run(pipeline.outbox.next_due_ms, chats.ready())
        if next_ms is None:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            pending = await writer.run(pipeline.outbox.pending_count, chats.ready())
            logger.warning("replay: %d deliveries still pending after %.0fs; the next run "
                           "sends them", pending, timeout_s)
            break
        await asyncio.sleep(min(left, max(0.01, (next_ms - wall.now_ms()) / 1000)))
    return delivered


def _ticks(data: ReplayData, interval_ms: int) -> Any:
    """Group the timeline into (evaluation time, items known by then)."""
    batch: list[Any] = []
    tick: int | None = None
    for available_ms, item in data.timeline():
        due = -(-available_ms // interval_ms) * interval_ms
        if tick is not None and due != tick:
            yield tick, batch
            batch = []
        tick = due
        batch.append(item)
    if tick is not None:
        yield tick, batch


async def run_live(
    settings: Settings, *, stop: asyncio.Event | None = None, clock: Clock | None = None,
    notifiers: Mapping[str, Notifier] | None = None, feeds: Sequence[Any] | None = None,
    health: HealthConfig | None = None, services: Sequence[ChatService] | None = None,
    metrics: Metrics | None = None, ops_listen: str | None = None,
) -> RunSummary:
    """Stream the configured venues, evaluate on a schedule, deliver alerts, until stopped.

    `metrics` are pushed as things happen; `ops_listen` also serves /healthz and /metrics.
    """
    clock = clock or WallClock()
    stop = stop or _stop_on_signals()
    ops = Telemetry(metrics, ops_listen)
    chats = _Chats(notifiers if notifiers is not None else build_notifiers(settings),
                   services if services is not None else chat_services(settings), ops)
    lock = acquire_lock(settings.db)
    writer = Writer(settings.db)
    try:  # whatever fails from here on, the writer and the lock are let go
        return await _serve_live(settings, writer, chats, ops, stop, clock, feeds, health)
    finally:
        _release(writer, lock)


async def _serve_live(settings: Settings, writer: Writer, chats: _Chats, ops: Telemetry,
                      stop: asyncio.Event, clock: Clock, feeds: Sequence[Any] | None,
                      health: HealthConfig | None) -> RunSummary:
    pipeline = chats.pipeline(writer, settings)
    summary = RunSummary()

    async def sink(events: list[Liquidation]) -> None:
        ops.events(events)
        summary.events_new += await writer.run(pipeline.ingest, events)

    async def absorb(items: list[Any]) -> None:  # funding, OI, aggregate bars
        await writer.run(pipeline.ingest, items)

    # Injected `feeds` (tests) stand for every market-data source: no REST pollers then.
    sources = Sources(settings, absorb, writer, clock) if feeds is None else None
    if feeds is None:
        feeds = build_feeds(settings, sink, clock, _gap_recorder(writer, ops))
    ops.bind(settings.db, feeds)
    health = health or HealthConfig(down_after_ms=int(settings.down_after_s * 1000),
                                    silent_after_ms=int(settings.silent_after_s * 1000))
    monitor = HealthMonitor(health, started_ms=clock.now_ms())
    jobs = _Jobs(settings, writer, pipeline, chats.notifiers, clock, summary, feeds, monitor,
                 ops, sources)
    scheduler = jobs.schedule(AsyncIOScheduler(timezone="UTC"))
    await ops.serve(live_check(  # a busy port stops the start here
        scheduler, feeds, states=monitor.states, heartbeat=lambda: jobs.beat,
        stale_after_s=max(60.0, 4 * settings.health_interval_s)))
    tasks: list[asyncio.Task[Any]] = []
    try:
        await chats.start(writer, live=True)  # connects in the background; never blocks
        tasks = [asyncio.create_task(f.run(), name=f"feed-{f.stats.exchange}") for f in feeds]
        tasks += sources.start() if sources else []
        scheduler.start()
        logger.info("liqbot running: venues %s, db %s; Ctrl-C stops", ",".join(settings.venues),
                    settings.db)
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
        await chats.stop()
        await ops.stop()
    return summary


def build_feeds(settings: Settings, sink: Any, clock: Clock, on_gap: Any) -> list[Any]:
    """Every configured venue's live sockets, from the venue registry."""
    feeds: list[Any] = []
    cap = settings.backoff_cap_s
    for name in settings.venues:
        options: dict[str, Any] = {"store_path": settings.db}
        if name in settings.ws_urls:
            options["url"] = settings.ws_urls[name]
        if name in settings.rest_urls:
            options["rest_url"] = settings.rest_urls[name]
        if name == "coinglass":
            options["api_key"] = settings.coinglass_api_key
        module = venue_module(name)
        accepted = inspect.signature(module.make_feeds).parameters
        if "rest_url" in options and "rest_url" not in accepted:
            raise ConfigError(f"feeds.rest_urls.{name}: {name} takes no REST URL")
        feeds += module.make_feeds(
            sink, clock=clock, on_gap=on_gap, backoff=Backoff(base_s=min(1.0, cap), cap_s=cap),
            **options)
    return feeds


class _Jobs:
    """The scheduler's jobs: evaluate, deliver, watch feed health, prune."""

    def __init__(self, settings: Settings, writer: Writer, pipeline: Pipeline,
                 notifiers: Mapping[str, Notifier], clock: Clock, summary: RunSummary,
                 feeds: Sequence[Any], monitor: HealthMonitor, ops: Telemetry,
                 sources: Sources | None = None) -> None:
        self.settings, self.writer, self.pipeline = settings, writer, pipeline
        self.notifiers, self.clock, self.summary = notifiers, clock, summary
        self.feeds, self.monitor, self.ops = feeds, monitor, ops
        self.sources = sources  # REST pollers whose status the health job saves
        self.beat = time.monotonic()  # when the health job last finished (for /healthz)
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # One outbox pass at a time: two passes would fetch and send the same items.
        self._delivering = asyncio.Lock()
        self._kicks: set[asyncio.Task[None]] = set()

    def schedule(self, scheduler: AsyncIOScheduler) -> AsyncIOScheduler:
        # coalesce: a late loop runs a job once, not once per missed tick; max_instances=1:
        # a slow evaluation is never overlapped by the next (PLATFORMS.md §3).
        common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30,
                  "replace_existing": True, "trigger": "interval"}
        s = self.settings
        scheduler.add_job(self._track(self.evaluate), seconds=s.eval_interval_s, id="evaluate",
                          **common)
        scheduler.add_job(self._track(self.deliver), seconds=s.deliver_interval_s, id="deliver",
                          **common)
        scheduler.add_job(self._track(self.health), seconds=s.health_interval_s, id="health",
                          **common)
        # Also once at start: a box that restarts more often than every 6 h must still prune.
        scheduler.add_job(self._track(self.prune), hours=6, id="prune",
                          next_run_time=datetime.now(UTC), **common)
        return scheduler

    def _track(self, job: Any) -> Any:
        async def tracked() -> None:
            self._busy += 1
            self._idle.clear()
            try:
                await job()
            finally:
                self._busy -= 1
                if not self._busy:
                    self._idle.set()

        tracked.__name__ = tracked.__qualname__ = job.__name__
        return tracked

    async def quiesce(self, timeout_s: float) -> None:
        """Wait until no job is running (the scheduler is paused first), at most `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)

    async def evaluate(self) -> None:
        alerts = await self.writer.run(self.pipeline.evaluate, self.clock.now_ms(), MINUTE_MS)
        self.summary.evaluations += 1
        self.summary.alerts += len(alerts)
        self.ops.alerts(len(alerts))
        if alerts:
            # Send now rather than at the next deliver tick; a task, so a long fan-out
            # never holds up the next evaluation.
            task = asyncio.create_task(self._track(self.deliver)())
            self._kicks.add(task)
            task.add_done_callback(self._kicks.discard)

    async def deliver(self) -> None:
        async with self._delivering:
            self.summary.delivered += await flush(self.writer, self.pipeline, self.notifiers,
                                                  self.clock.now_ms())

    async def health(self) -> None:
        now = self.clock.now_ms()
        stats = [f.stats for f in self.feeds]
        for text in self.monitor.check(stats, now):
            for notifier in self.notifiers.values():
                with contextlib.suppress(Exception):
                    await notifier.notice(text)
        await self.writer.run(save_status, self.writer.store, stats, self.monitor.states(), now)
        if self.sources is not None:
            await self.writer.run(self.sources.save_status, self.writer.store, now)
        await self.ops.outbox(self.writer, self.pipeline.outbox)
        self.beat = time.monotonic()

    async def prune(self) -> None:
        await self.writer.run(self.pipeline.prune, self.clock.now_ms(),
                              self.settings.retention_days)


def _gap_recorder(writer: Writer, ops: Telemetry) -> Any:
    async def on_gap(exchange: str, start_ms: int, end_ms: int | None, reason: str) -> None:
        ops.gap(exchange, start_ms, end_ms)
        await writer.run(writer.store.record_gap, exchange, start_ms, end_ms, reason)

    return on_gap


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
