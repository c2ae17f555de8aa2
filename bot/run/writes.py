"""A live run's writes when the disk is full or the database read-only: held, retried, said.

A feed batch that cannot be stored is kept in memory, in order, up to `max_held` items
(beyond that the oldest are dropped, counted and said); `/healthz` turns 503 with SQLite's
reason; the operator gets one notice (console, Telegram admin chats); the held items are
retried every `retry_s`, and when a write goes through they are stored in order and a
second notice says how many. A full disk used to cost 637 of 650 events while the health
page stayed 200: the feed counted "sink errors" and dropped each batch.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from bot.render import duration
from feeds.store import StoreError

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_HELD = 100_000  # about 70 MB of events: hours of a normal market, minutes of a cascade
RETRY_S = 2.0
CHUNK = 5_000  # items per retried transaction: a long backlog must not hold the writer

Notify = Callable[[str], Awaitable[None]]
Store = Callable[[list[Any]], Awaitable[Any]]  # one transaction
Run = Callable[..., Awaitable[Any]]  # `fn(*args)` on the writer thread


class Deferred:
    """A write that is not a batch of items (a feed gap), held in line with the items."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args


class WriteGuard:
    """Every write of a live run reports here; what fails is held and retried, not lost."""

    def __init__(self, store: Store, notify: Notify, *, run: Run | None = None,
                 max_held: int = MAX_HELD, retry_s: float = RETRY_S,
                 now_ms: Callable[[], int] | None = None) -> None:
        self._store, self._notify, self._run = store, notify, run
        self.max_held, self.retry_s = max_held, retry_s
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.held: collections.deque[Any] = collections.deque()
        self.fault: str | None = None  # SQLite's reason while writes fail
        self.since_ms: int | None = None
        self.dropped = 0  # items beyond `max_held`, over the whole run
        self._dropped_in_fault = 0
        self._next_try = 0.0
        self._flushing = asyncio.Lock()
        self._notices: set[asyncio.Future[None]] = set()

    # -- the feeds' sink ---------------------------------------------------------------------

    async def put(self, items: Sequence[Any]) -> None:
        """Store a batch now, or hold it behind what is already held."""
        if self.fault is None and not self.held:
            try:
                await self._store(list(items))
                return
            except StoreError as exc:
                self.failed(exc)
        self._hold(items)
        if time.monotonic() >= self._next_try:
            await self.retry()

    async def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run one other write on the writer thread now, or hold it in line (needs `run`)."""
        if self._run is None:
            raise RuntimeError("WriteGuard.call needs run=")
        if self.fault is None and not self.held:
            try:
                await self._run(fn, *args)
                return
            except StoreError as exc:
                self.failed(exc)
        self._hold([Deferred(fn, args)])

    def _hold(self, items: Sequence[Any]) -> None:
        self.held.extend(items)
        over = len(self.held) - self.max_held
        if over > 0:
            for _ in range(over):
                self.held.popleft()
            self.dropped += over
            if not self._dropped_in_fault:
                self._say(f"⚠️ liqbot: more than {self.max_held:,} events held while the "
                          "database cannot be written: the oldest are being dropped "
                          "(liqbot_events_dropped_total counts them)")
            self._dropped_in_fault += over

    async def retry(self) -> None:
        """Store what is held, oldest first; clear the fault once it is all in."""
        if self.fault is None and not self.held:
            return
        async with self._flushing:
            self._next_try = time.monotonic() + self.retry_s
            stored = 0
            while self.held:
                head = self.held[0]
                chunk = [head] if isinstance(head, Deferred) else list(itertools.takewhile(
                    lambda x: not isinstance(x, Deferred), itertools.islice(self.held, CHUNK)))
                try:
                    if isinstance(head, Deferred):
                        await self._run_deferred(head)
                    else:
                        await self._store(chunk)
                except StoreError as exc:
                    self.failed(exc)
                    return
                for _ in chunk:
                    self.held.popleft()
                stored += len(chunk)
            if stored or self.fault is not None:
                self._recovered(stored)

    async def _run_deferred(self, d: Deferred) -> None:
        if self._run is not None:
            await self._run(d.fn, *d.args)

    # -- every other write (jobs) ------------------------------------------------------------

    def failed(self, exc: BaseException) -> None:
        """A write failed: the first failure of a fault is logged and said; later ones not."""
        reason = str(exc).rsplit(": ", 1)[-1] or type(exc).__name__  # SQLite's words, no path
        if self.fault is not None:
            self.fault = reason
            return
        self.fault, self.since_ms, self._dropped_in_fault = reason, self._now_ms(), 0
        logger.error("store: writes fail (%s); events are held in memory (up to %d) and "
                     "retried every %gs; /healthz says 503", exc, self.max_held, self.retry_s)
        self._say(f"⚠️ liqbot cannot write its database ({reason}): events are held in memory "
                  f"(up to {self.max_held:,}) and retried every {self.retry_s:g}s; no alert can "
                  "be recorded until then")

    def wrote(self) -> None:
        """A job's write went through: the fault is over unless events still wait."""
        if self.fault is not None and not self.held:
            self._recovered(0)

    async def guarded(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T | None:
        """Run a job's step; a failing write is reported (no traceback), the rest raises."""
        try:
            result = await fn(*args)
        except StoreError as exc:
            self.failed(exc)
            return None
        return result

    def _recovered(self, stored: int) -> None:
        if self.fault is None:
            return
        lasted = self._now_ms() - (self.since_ms or self._now_ms())
        dropped = self._dropped_in_fault
        logger.warning("store: writes work again after %s; %d held items stored, %d dropped",
                       duration(lasted), stored, dropped)
        self._say(f"✅ liqbot writes its database again after {duration(lasted)}: {stored:,} "
                  f"held items stored" + (f", {dropped:,} dropped" if dropped else ""))
        self.fault, self.since_ms, self._dropped_in_fault = None, None, 0

    # -- the operator's view -----------------------------------------------------------------

    def report(self) -> str | dict[str, Any]:
        """What /healthz shows under "store": "ok", or the fault and what waits."""
        if self.fault is None:
            return "ok"
        return {"error": self.fault, "since_ms": self.since_ms, "held": len(self.held),
                "dropped": self._dropped_in_fault}

    def _say(self, text: str) -> None:
        """A notice, sent in the background: a paced admin chat must not stall a feed."""
        task = asyncio.ensure_future(self._notify(text))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def settle(self) -> None:
        """Wait for notices still being sent (at stop)."""
        if self._notices:
            await asyncio.gather(*self._notices, return_exceptions=True)
