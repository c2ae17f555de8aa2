"""The live run's jobs: evaluate (on a schedule and when woken), deliver, watch health, prune."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.digest import queue_due
from bot.ops.health import HealthMonitor, save_status
from bot.run.assembly import Feed, Run
from bot.run.sources import Sources
from bot.run.writes import WriteGuard
from feeds.clock import Clock
from feeds.model import MINUTE_MS
from feeds.store import StoreError

Job = Callable[[], Coroutine[Any, Any, None]]
logger = logging.getLogger(__name__)


class Jobs:
    """What the scheduler runs for one live run; `beat` is when the health job last finished."""

    def __init__(self, run: Run, clock: Clock, feeds: Sequence[Feed], monitor: HealthMonitor,
                 sources: Sources | None = None, writes: WriteGuard | None = None) -> None:
        self.run, self.clock, self.feeds, self.monitor = run, clock, feeds, monitor
        self.sources = sources  # REST pollers whose status the health job saves
        self.writes = writes  # a failing write is reported there (503, a notice), not raised
        self.beat = time.monotonic()  # read by /healthz: a stuck scheduler is not healthy
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # One outbox pass at a time: two passes would fetch and send the same items.
        self._delivering = asyncio.Lock()
        self._kicks: set[asyncio.Task[None]] = set()
        # Set when a stored batch may have crossed a tier (bot/run/trigger.py): an event, so
        # an idle run sleeps in `evaluator` instead of polling.
        self._wake = asyncio.Event()

    def schedule(self, scheduler: AsyncIOScheduler) -> AsyncIOScheduler:
        # coalesce: a late loop runs a job once, not once per missed tick; max_instances=1:
        # a slow evaluation is never overlapped by the next (PLATFORMS.md §3).
        common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30,
                  "replace_existing": True, "trigger": "interval"}
        s = self.run.settings
        scheduler.add_job(self._track(self.evaluate), seconds=s.eval_interval_s, id="evaluate",
                          **common)
        scheduler.add_job(self._track(self.deliver), seconds=s.deliver_interval_s, id="deliver",
                          **common)
        scheduler.add_job(self._track(self.health), seconds=s.health_interval_s, id="health",
                          **common)
        # Chats' digests: a period's end is noticed within a minute (and once at start).
        scheduler.add_job(self._track(self.digest), seconds=60, id="digest",
                          next_run_time=datetime.now(UTC), **common)
        if self.writes is not None:
            scheduler.add_job(self._track(self.writes.retry), seconds=self.writes.retry_s,
                              id="writes", **common)
        # Also once at start: a box that restarts more often than every 6 h must still prune.
        scheduler.add_job(self._track(self.prune), hours=6, id="prune",
                          next_run_time=datetime.now(UTC), **common)
        return scheduler

    def _track(self, job: Job) -> Job:
        async def tracked() -> None:
            self._busy += 1
            self._idle.clear()
            try:
                await job()
            except StoreError as exc:
                if self.writes is None:
                    raise
                self.writes.failed(exc)  # one notice and 503, not a traceback per tick
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

    def wake(self) -> None:
        """Ask for an evaluation now; wakes that come while one runs make one more after it."""
        self._wake.set()

    async def evaluator(self) -> None:
        """Evaluate whenever woken, for as long as the run lasts (a task; cancelled at stop).

        The wake comes after the batch's write returned, and the evaluation queues behind it
        on the writer thread, so it always sees that batch.
        """
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._track(self.evaluate)()
                self.run.summary.triggered += 1
            except Exception:  # the scheduled evaluation stays; this task must not die
                logger.exception("event-driven evaluation failed")

    async def evaluate(self) -> None:
        run = self.run
        alerts = await run.writer.run(run.pipeline.evaluate, self.clock.now_ms(), MINUTE_MS)
        run.summary.evaluations += 1
        run.summary.alerts += len(alerts)
        run.ops.alerts(len(alerts))
        if alerts:
            # Send now rather than at the next deliver tick; a task, so a long fan-out
            # never holds up the next evaluation.
            task = asyncio.create_task(self._track(self.deliver)())
            self._kicks.add(task)
            task.add_done_callback(self._kicks.discard)

    async def digest(self) -> None:
        run = self.run
        platforms = frozenset(run.pipeline.router.platforms)
        queued = await run.writer.run(queue_due, run.writer.store, self.clock.now_ms(),
                                      platforms)
        if queued:
            await self.deliver()

    async def deliver(self) -> None:
        async with self._delivering:
            self.run.summary.delivered += await self.run.flush(self.clock.now_ms())

    async def health(self) -> None:
        run = self.run
        now = self.clock.now_ms()
        stats = [f.stats for f in self.feeds]
        for text in self.monitor.check(stats, now):
            for notifier in run.chats.notifiers.values():
                with contextlib.suppress(Exception):
                    await notifier.notice(text)
        await run.ops.outbox(run.writer, run.pipeline.outbox)  # a read: works on a full disk
        # The job has run: a write that hangs below stops the next beats (max_instances=1),
        # one that fails is a store fault (_track), not a stuck scheduler.
        self.beat = time.monotonic()
        await run.writer.run(save_status, run.writer.store, stats, self.monitor.states(), now)
        if self.sources is not None:
            await run.writer.run(self.sources.save_status, run.writer.store, now)
        if self.writes is not None:
            self.writes.wrote()  # writes go through: a fault with nothing held is over

    async def prune(self) -> None:
        await self.run.writer.run(self.run.pipeline.prune, self.clock.now_ms(),
                                  self.run.settings.retention_days)
