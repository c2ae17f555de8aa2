"""The generic REST poll loop, and the funding/OI poller built on it, that never give up.

    poller = FundingPoller("bybit", ["BTCUSDT", "ETHUSDT"], writer)   # writer: async, list in
    task = asyncio.create_task(poller.run())                          # cancel to stop
    poller.stats.as_dict()                                            # for `liqbot status`

Each poll fetches every symbol, hands one mixed list of Funding and OpenInterest to the writer,
and sleeps `interval_s`. A failed poll logs one WARNING line and retries sooner, with capped,
jittered backoff. What to fetch and how to parse it is the venue's: its module's `FUNDING`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from feeds.clock import Clock, WallClock
from feeds.model import ParseError
from feeds.net.backoff import Backoff
from feeds.net.http import HttpError, JsonClient, Sleep, describe
from feeds.venues.base import Item, PollContext
from feeds.venues.registry import funding_venue

logger = logging.getLogger(__name__)

Writer = Callable[[list[Item]], Awaitable[Any]]
DEFAULT_INTERVAL_S = 300.0


@dataclass(slots=True)
class PollStats:
    """Counters and times (epoch ms) for `liqbot status`."""

    name: str
    last_ok_ms: int | None = None
    polls: int = 0
    items: int = 0
    failures: int = 0  # failed polls, all time
    consecutive_failures: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Poller:
    """Call `poll_once` every `interval_s` until cancelled; a failure never ends the loop.

    Failures retry sooner than the regular poll, with capped, jittered backoff; the first of
    a run of failures (or a new kind) logs a WARNING, the others DEBUG, and the poll that
    works again says so. Subclasses implement `poll_once` (return items written) and `close`.
    """

    def __init__(self, name: str, interval_s: float, clock: Clock | None,
                 backoff: Backoff | None, sleep: Sleep) -> None:
        if interval_s <= 0:
            raise ValueError(f"{name}: interval_s must be > 0, got {interval_s}")
        self.name, self.interval_s, self.sleep = name, interval_s, sleep
        self.clock: Clock = clock or WallClock()
        self.backoff = backoff or Backoff(base_s=min(5.0, interval_s), cap_s=interval_s,
                                          rng=random.Random())
        self.stats = PollStats(name)
        self._failing: str | None = None  # the kind of failure last logged, while failing

    async def poll_once(self) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        """Release the HTTP session; called when `run` ends."""

    async def run(self) -> None:
        """Poll until cancelled; `close` runs on the way out."""
        try:
            while True:
                await self.sleep(await self._attempt())
        finally:
            await self.close()

    async def _attempt(self) -> float:
        """Poll once; return how long to sleep before the next poll."""
        s = self.stats
        try:
            n = await self.poll_once()
        except Exception as exc:  # CancelledError is a BaseException and passes through
            s.failures += 1
            s.consecutive_failures += 1
            s.last_error = describe(exc)
            delay = self.backoff.next_delay()
            # The first failure of a run of them, or a new kind of failure, is a WARNING;
            # the rest DEBUG (an offline start said each twice a minute per venue).
            kind = type(exc).__name__
            news = s.consecutive_failures == 1 or kind != self._failing
            self._failing = kind
            logger.log(logging.WARNING if news else logging.DEBUG,
                       "%s: poll failed (%s); retry %d in %.1fs%s", self.name, s.last_error,
                       self.backoff.attempt, delay,
                       "; further failures are logged at DEBUG (-v)" if news else "")
            if not isinstance(exc, HttpError | ParseError):  # likely our bug: keep the trace
                logger.debug("%s: poll failure traceback", self.name, exc_info=exc)
            return delay
        s.polls += 1
        s.items += n
        if s.consecutive_failures:
            logger.info("%s: polling works again after %d failed attempt(s)", self.name,
                        s.consecutive_failures)
        self._failing = None
        s.consecutive_failures = 0
        s.last_ok_ms = self.clock.now_ms()
        self.backoff.reset()
        return self.interval_s


class FundingPoller(Poller):
    """Poll one venue's current funding and open interest into `store_writer` until cancelled."""

    def __init__(
        self,
        venue: str,
        symbols: Sequence[str] | None,
        store_writer: Writer,
        base_url: str | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Clock | None = None,
        *,
        timeout_s: float = 10.0,
        retries: int = 1,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.spec = funding_venue(venue).FUNDING
        super().__init__(venue.lower(), interval_s, clock, backoff, sleep)
        self.venue = self.name
        self.symbols = tuple(symbols) if symbols else self.spec.symbols
        self.store_writer = store_writer
        http = JsonClient(base_url or self.spec.base_url, name=self.venue, timeout_s=timeout_s,
                          retries=retries, sleep=sleep)
        self._ctx = PollContext(self.venue, http, self.clock)

    async def poll_once(self) -> int:
        """Fetch every symbol once and write the batch; return how many items were written."""
        items = await self.spec.fetch(self._ctx, self.symbols)
        if items:
            await self.store_writer(items)
        return len(items)

    async def run(self) -> None:
        logger.debug("%s: polling funding and OI for %s every %.0fs",
                     self.venue, ", ".join(self.symbols), self.interval_s)
        await super().run()

    async def close(self) -> None:
        await self._ctx.http.close()
