"""What every venue module exposes, checked by mypy rather than at run time.

The registry holds the venue modules typed as these protocols, so a module that lacks a name,
or whose `make_feeds` takes other arguments, fails `make lint`, not a live start:

    EXCHANGE: str              # the venue id, e.g. "bybit"
    SAMPLED: bool              # the venue publishes at most one liquidation per symbol and
                               # interval: totals that include it are lower bounds
    DEFAULT_REST_URL: str | None   # where make_feeds fetches instruments; None: no REST at all
    def decoder(instruments_path=None) -> Decoder      # `liqbot decode`: one frame -> events
    def make_feeds(sink, options: FeedOptions) -> list[WsFeed]   # each venue reads what it uses

A venue with funding and open interest over REST also exposes `FUNDING: FundingPoll`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from feeds.clock import Clock
from feeds.model import HOUR_MS, Funding, Liquidation, OpenInterest
from feeds.net.backoff import Backoff
from feeds.net.http import DEFAULT_TIMEOUT_S, JsonClient, Params, describe
from feeds.net.ws import FeedTiming, Frame, GapFn, ParseFn, Sink, WsFeed
from feeds.venues.instruments import InstrumentTable

logger = logging.getLogger(__name__)

Decoder = Callable[[str], list[Liquidation]]
Item = Funding | OpenInterest
# Published interval tables change rarely; refetch them hourly, not on every poll.
TABLE_TTL_MS = HOUR_MS


class SocketOptions(TypedDict):
    """The WsFeed keywords every venue socket takes from its FeedOptions."""

    on_gap: GapFn | None
    clock: Clock | None
    backoff: Backoff | None
    timing: FeedTiming | None
    connect_options: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """What the caller of `make_feeds` may set for any venue; a venue reads what it uses.

    None means the venue's own default (its URL, its REST host, its refresh period).
    Tuning only one venue has (ping timers, channels) stays on that venue's own constructor.
    """

    clock: Clock | None = None
    on_gap: GapFn | None = None
    backoff: Backoff | None = None
    store_path: str | None = None  # where instrument tables are cached
    url: str | None = None
    rest_url: str | None = None
    instruments_path: str | None = None
    api_key: str | None = field(default=None, repr=False)  # a secret: kept out of logs
    timing: FeedTiming | None = None
    connect_options: Mapping[str, Any] | None = None
    refresh_s: float | None = None  # instrument table refresh period
    rest_timeout_s: float = DEFAULT_TIMEOUT_S

    def socket(self) -> SocketOptions:
        """The keywords passed on to each WsFeed."""
        return SocketOptions(on_gap=self.on_gap, clock=self.clock, backoff=self.backoff,
                             timing=self.timing, connect_options=self.connect_options)


class Venue(Protocol):
    """A liquidation venue module (feeds/venues/<venue>.py)."""

    @property
    def EXCHANGE(self) -> str: ...  # noqa: N802 - a module constant seen through a protocol

    @property
    def SAMPLED(self) -> bool: ...  # noqa: N802

    @property
    def DEFAULT_REST_URL(self) -> str | None: ...  # noqa: N802

    def decoder(self, instruments_path: str | None = None) -> Decoder: ...

    def make_feeds(self, sink: Sink, options: FeedOptions) -> list[WsFeed]: ...


class FundingVenue(Protocol):
    """A venue module whose current funding and open interest are polled over REST."""

    @property
    def EXCHANGE(self) -> str: ...  # noqa: N802

    @property
    def FUNDING(self) -> FundingPoll: ...  # noqa: N802


@dataclass
class PollContext:
    """What one venue's funding fetch needs: the client, the time, a cache across polls."""

    name: str
    http: JsonClient
    clock: Clock
    cache: dict[str, tuple[int, Any]] = field(default_factory=dict)

    async def cached(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """`await load()`, reused for TABLE_TTL_MS."""
        now = self.clock.now_ms()
        hit = self.cache.get(key)
        if hit is not None and now - hit[0] < TABLE_TTL_MS:
            return hit[1]
        value = await load()
        self.cache[key] = (now, value)
        return value

    async def get(self, path: str, params: Params, parse: Callable[[Any], Any]) -> Any:
        return parse(await self.http.get(path, params))

    async def each_symbol(
        self, symbols: Sequence[str], one: Callable[[str], Awaitable[list[Item]]]
    ) -> list[Item]:
        """Fetch symbol by symbol, so one delisted symbol cannot blank out the others."""
        items: list[Item] = []
        failed: list[tuple[str, Exception]] = []
        for symbol in symbols:
            try:
                items.extend(await one(symbol))
            except Exception as exc:
                failed.append((symbol, exc))
        if failed and not items:
            raise failed[0][1]
        if failed:
            logger.warning("%s: %d of %d symbols failed (%s: %s)", self.name, len(failed),
                           len(symbols), failed[0][0], describe(failed[0][1]))
        return items


@dataclass(frozen=True, slots=True)
class FundingPoll:
    """A venue's REST host, default symbols and the fetch one poll runs."""

    base_url: str
    symbols: tuple[str, ...]
    fetch: Callable[[PollContext, Sequence[str]], Awaitable[list[Item]]]


class VenueFeed(WsFeed):
    """A WsFeed with an optional instrument table and a note of when frames arrive.

    The table is loaded before the first connect and refreshed next to the stream; the
    frame count lets app-level keepalives (Bybit, OKX) wait for a pong or any data.
    """

    def __init__(self, exchange: str, url: str, parse: ParseFn, *args: Any,
                 table: InstrumentTable | None = None, **kwargs: Any) -> None:
        super().__init__(exchange, url, self._note_frame, *args, **kwargs)
        self._venue_parse = parse
        self.table = table
        self.frames_heard = 0
        self.heard_at = time.monotonic()
        self._heard: asyncio.Event | None = None

    async def run(self) -> None:
        if self.table is None:
            await super().run()
            return
        await self.table.load()
        refresher = asyncio.create_task(self.table.refresh_forever(),
                                        name=f"{self.exchange}-instruments")
        try:
            await super().run()
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)

    async def wait_frame(self, after: int, timeout_s: float) -> bool:
        """Wait until more than `after` frames were heard; False when `timeout_s` passes."""
        try:
            async with asyncio.timeout(timeout_s):
                while self.frames_heard <= after:
                    if self._heard is None:
                        self._heard = asyncio.Event()
                    await self._heard.wait()
        except TimeoutError:
            return False
        return True

    def _note_frame(self, frame: Frame, recv_ms: int) -> list[Liquidation]:
        self.frames_heard += 1
        self.heard_at = time.monotonic()
        heard, self._heard = self._heard, None
        if heard is not None:
            heard.set()
        return self._venue_parse(frame, recv_ms)


def refuse_rest_url(exchange: str, rest_url: str | None) -> None:
    """make_feeds of a venue without REST: a REST URL given anyway is a config mistake."""
    if rest_url is not None:
        raise ValueError(f"{exchange} takes no REST URL")
