"""Replay: recorded files through the pipeline on a simulated clock, then drain the outbox."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from bot.chat.base import ChatService, Notifier
from bot.config import Settings
from bot.ops.http import replay_check
from bot.ops.metrics import Metrics
from bot.run.assembly import Run, RunSummary, assemble
from feeds.clock import SimClock, WallClock
from feeds.model import MINUTE_MS

logger = logging.getLogger(__name__)

# Items ingested per transaction: a burst minute is split so a batch stays bounded in memory
# and in write-lock time; the evaluation still runs once, at the tick.
CHUNK_ITEMS = 20_000


class Replayable(Protocol):
    """What a replay reads: `feeds.history.stream.ReplayStream` (files read as consumed) or
    `feeds.history.replay.ReplayData` (a history in memory, as tests and backtests build)."""

    @property
    def bar_span_ms(self) -> int | None: ...

    def timeline(self) -> Iterator[tuple[int, Any]]: ...


async def run_replay(
    data: Replayable, settings: Settings, *, speed: float = 0.0,
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
    with assemble(settings, notifiers=notifiers, services=services, metrics=metrics,
                  ops_listen=ops_listen) as run:
        try:
            return await _replay(run, data, speed, eval_interval_ms, drain_timeout_s)
        finally:
            await run.stop()


async def _replay(run: Run, data: Replayable, speed: float, eval_interval_ms: int,
                  drain_timeout_s: float) -> RunSummary:
    writer, pipeline, ops, summary = run.writer, run.pipeline, run.ops, run.summary
    replayed = asyncio.Event()
    ops.bind(run.settings.db, rejected=writer.store.gate.rejected)
    await ops.serve(replay_check(lambda: not replayed.is_set()))
    await run.chats.start(writer, live=False)
    bar_ms = data.bar_span_ms or MINUTE_MS
    wall = WallClock()
    clock = SimClock()  # only moves forward: a timeline out of order fails here
    prev_tick: int | None = None
    async for tick, items in _read_ahead(_ticks(data, eval_interval_ms)):
        if speed > 0 and prev_tick is not None:
            await asyncio.sleep((tick - prev_tick) / 1000 / speed)
        prev_tick = tick
        clock.advance_to(tick)
        summary.items += len(items)
        ops.events(items)
        for i in range(0, len(items), CHUNK_ITEMS):
            summary.events_new += await writer.run(pipeline.ingest, items[i:i + CHUNK_ITEMS])
        alerts = await writer.run(pipeline.evaluate, tick, bar_ms)
        summary.evaluations += 1
        summary.alerts += len(alerts)
        ops.alerts(len(alerts))
        summary.delivered += await run.flush(wall.now_ms())
        await ops.outbox(writer, pipeline.outbox)
    replayed.set()
    summary.delivered += await _drain(run, drain_timeout_s)
    await ops.outbox(writer, pipeline.outbox)
    return summary


async def _read_ahead(ticks: Iterator[tuple[int, list[Any]]]
                      ) -> AsyncIterator[tuple[int, list[Any]]]:
    """The ticks, each next one read and parsed on a thread of its own while the writer
    stores and evaluates the current one: at most two ticks are in memory.

    SQLite releases the GIL while it works, so reading the file overlaps most of a write.
    """
    loop = asyncio.get_running_loop()
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liqbot-replay-reader")
    try:
        ahead = loop.run_in_executor(reader, next, ticks, None)
        while (tick := await ahead) is not None:
            ahead = loop.run_in_executor(reader, next, ticks, None)
            yield tick
    finally:
        reader.shutdown(wait=False, cancel_futures=True)


async def _drain(run: Run, timeout_s: float) -> int:
    """Deliver until nothing is pending for a usable notifier, or `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    for service in run.chats.services:
        await service.wait_ready(max(0.0, deadline - time.monotonic()))
    wall = WallClock()
    outbox = run.pipeline.outbox
    delivered = 0
    while True:
        delivered += await run.flush(wall.now_ms())
        next_ms = await run.writer.run(outbox.next_due_ms, run.chats.ready())
        if next_ms is None:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            pending = await run.writer.run(outbox.pending_count, run.chats.ready())
            logger.warning("replay: %d deliveries still pending after %.0fs; the next run "
                           "sends them", pending, timeout_s)
            break
        await asyncio.sleep(min(left, max(0.01, (next_ms - wall.now_ms()) / 1000)))
    return delivered


def _ticks(data: Replayable, interval_ms: int) -> Iterator[tuple[int, list[Any]]]:
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
