"""The life of a chat service around its notifier, the same for every platform.

A service connects in the background (a chat platform being down must never stop the
feeds), retries with capped, jittered backoff until it is in or refused for good, says when
it has settled, and stops its task cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.chat.quiet import QuietChats
from bot.state.writer import Writer
from feeds.store.core import Store

logger = logging.getLogger(__name__)

Errors = tuple[type[BaseException], ...]


def retry_delay(attempt: int, cap_s: float) -> float:
    """1, 2, 4 … seconds up to `cap_s`, minus up to a fifth: restarted bots do not retry in step."""
    return min(cap_s, 2 ** min(attempt, 10) / 2) * random.uniform(0.8, 1)


async def keep_trying(attempt: Callable[[], Awaitable[None]], *, platform: str, what: str,
                      cap_s: float, transient: Errors, fatal: Errors = (),
                      describe: Callable[[BaseException], str] = repr,
                      between: Callable[[], Awaitable[None]] | None = None) -> None:
    """Await `attempt()` until it returns.

    `transient` errors are logged as "<platform>: <what> (<error>); retry N in Xs" and tried
    again after `retry_delay`; `fatal` ones (a refused token) and anything else propagate.
    `between` runs after each failure, before the pause (to drop a half-open session).
    """
    failures = 0
    while True:
        try:
            await attempt()
            return
        except fatal:
            raise
        except transient as exc:
            failures += 1
            delay = retry_delay(failures, cap_s)
            logger.warning("%s: %s (%s); retry %d in %.1fs", platform, what, describe(exc),
                           failures, delay)
            if between is not None:
                await between()
            await asyncio.sleep(delay)


class Lifecycle:
    """One background task that connects a service, and the moment it settled.

    Settled means connected, or given up for good; `ready` says which, read from the
    notifier, which may also drop back to not ready later (a revoked token).
    """

    def __init__(self, name: str, ready: Callable[[], bool]) -> None:
        self.name = name
        self._ready = ready
        self._settled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def begin(self, work: Coroutine[Any, Any, None], *, live: bool, wait_s: float) -> None:
        """Run `work` in the background; a replay waits up to `wait_s` for it to settle.

        A replay sends at its first tick; a live run carries on regardless.
        """
        self._task = asyncio.create_task(work, name=f"{self.name}-connect")
        if not live:
            await self.wait_ready(wait_s)

    def settle(self) -> None:
        self._settled.set()

    async def wait_ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._settled.wait(), timeout_s)
        except TimeoutError:
            pass
        return self._ready()

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class ConnectedService:
    """What a chat service that logs in shares with the others, whatever its platform.

    The writer it was started with (its SQL runs there), the quiet-chat cache its notifier
    reads, and the background connect. Subclasses define `name`, `notifier` and the work
    that connects; `start` registers their static chats, then calls `launch`.
    """

    def __init__(self, platform: str, ready: Callable[[], bool], *, startup_wait_s: float,
                 now_ms: Callable[[], int] | None = None) -> None:
        self.startup_wait_s = startup_wait_s
        self.quiet = QuietChats(platform, now_ms=now_ms)
        self.lifecycle = Lifecycle(platform, ready)
        self._writer: Writer | None = None

    @property
    def writer(self) -> Writer:
        if self._writer is None:
            raise RuntimeError(f"{self.lifecycle.name}: the service has not started")
        return self._writer

    @property
    def store(self) -> Store:
        return self.writer.store

    async def launch(self, writer: Writer, work: Coroutine[Any, Any, None], *,
                     live: bool) -> None:
        """Remember the writer, then connect in the background (see Lifecycle.begin)."""
        self._writer = self.quiet.writer = writer
        await self.lifecycle.begin(work, live=live, wait_s=self.startup_wait_s)

    async def wait_ready(self, timeout_s: float) -> bool:
        return await self.lifecycle.wait_ready(timeout_s)
