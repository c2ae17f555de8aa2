"""The two ways liqbot runs: over recorded files on a simulated clock, or live."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import Pipeline, Writer, flush
from bot.config import Settings
from bot.notify import ConsoleNotifier, Notifier
from bot.policy import PolicyConfig
from feeds.clock import Clock, SimClock, WallClock
from feeds.model import MINUTE_MS, Liquidation
from feeds.replay import ReplayData

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
        raise AlreadyRunning(f"another liqbot is already using {db_path} ({lock_path} is locked)")
    return fd


def build_notifiers(settings: Settings, stream: TextIO | None = None) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    if settings.console:
        notifiers["console"] = ConsoleNotifier(stream)
    return notifiers


def _policy_config(settings: Settings) -> PolicyConfig:
    return PolicyConfig(cooldown_ms=int(settings.cooldown_s * 1000))


async def run_replay(
    data: ReplayData, settings: Settings, *, speed: float = 0.0,
    notifiers: Mapping[str, Notifier] | None = None, eval_interval_ms: int = MINUTE_MS,
) -> RunSummary:
    """Drive the pipeline over recorded data on a simulated clock; flush the outbox; return.

    Items are ingested when they become known (a bar at its close) and the registry is
    evaluated at each `eval_interval_ms` boundary that new data reached, as the live
    scheduler would have. `speed` 0 runs flat out; X > 0 runs X times real time.
    """
    notifiers = dict(notifiers if notifiers is not None else build_notifiers(settings))
    lock = acquire_lock(settings.db)
    writer = Writer(settings.db)
    try:
        pipeline = Pipeline(writer.store, settings.signals, list(notifiers),
                            _policy_config(settings))
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
            summary.events_new += await writer.run(pipeline.ingest, items)
            alerts = await writer.run(pipeline.evaluate, tick, bar_ms)
            summary.evaluations += 1
            summary.alerts += len(alerts)
            summary.delivered += await flush(writer, pipeline, notifiers, tick)
        summary.delivered += await flush(writer, pipeline, notifiers, clock.now_ms())
        return summary
    finally:
        writer.close()
        if lock is not None:
            os.close(lock)


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
) -> RunSummary:
    """Stream the configured venues, evaluate on a schedule, deliver alerts, until stopped."""
    from feeds.binance import binance_feed
    from feeds.connector import Backoff

    clock = clock or WallClock()
    stop = stop or _stop_on_signals()
    notifiers = dict(notifiers if notifiers is not None else build_notifiers(settings))
    lock = acquire_lock(settings.db)
    writer = Writer(settings.db)
    pipeline = Pipeline(writer.store, settings.signals, list(notifiers), _policy_config(settings))
    summary = RunSummary()

    async def sink(events: list[Liquidation]) -> None:
        summary.events_new += await writer.run(pipeline.ingest, events)

    async def evaluate_job() -> None:
        alerts = await writer.run(pipeline.evaluate, clock.now_ms(), MINUTE_MS)
        summary.evaluations += 1
        summary.alerts += len(alerts)

    async def deliver_job() -> None:
        summary.delivered += await flush(writer, pipeline, notifiers, clock.now_ms())

    async def prune_job() -> None:
        await writer.run(pipeline.prune, clock.now_ms(), settings.retention_days)

    scheduler = AsyncIOScheduler(timezone="UTC")
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30, "replace_existing": True}
    scheduler.add_job(evaluate_job, "interval", seconds=settings.eval_interval_s, id="evaluate", **common)
    scheduler.add_job(deliver_job, "interval", seconds=settings.deliver_interval_s, id="deliver", **common)
    scheduler.add_job(prune_job, "interval", hours=6, id="prune", **common)
    if feeds is None:
        cap = settings.backoff_cap_s
        feeds = [binance_feed(sink, url=settings.binance_url, clock=clock,
                              backoff=Backoff(base_s=min(1.0, cap), cap_s=cap),
                              on_gap=_gap_recorder(writer))]
    tasks = [asyncio.create_task(f.run(), name=f"feed-{getattr(f, 'exchange', i)}")
             for i, f in enumerate(feeds)]
    scheduler.start()
    logger.info("liqbot running: venues %s, db %s; Ctrl-C stops", ",".join(settings.venues), settings.db)
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        scheduler.shutdown(wait=False)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            summary.delivered += await flush(writer, pipeline, notifiers, clock.now_ms())
        writer.close()
        if lock is not None:
            os.close(lock)
    return summary


def _gap_recorder(writer: Writer) -> Any:
    async def on_gap(exchange: str, start_ms: int, end_ms: int | None, reason: str) -> None:
        await writer.run(writer.store.record_gap, exchange, start_ms, end_ms, reason)

    return on_gap


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
