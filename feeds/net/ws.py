"""A venue-agnostic websocket feed: connect, subscribe, parse, hand off, reconnect forever.

Each venue module supplies a URL, its subscribe messages and a parse function; this module
owns everything that goes wrong on the wire (RELIABILITY.md items 1, 2 and 5).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.uri import parse_uri

from feeds.clock import Clock, WallClock
from feeds.model import Liquidation, ParseError
from feeds.net.backoff import Backoff

logger = logging.getLogger(__name__)
# Sockets in an outage, per venue, and the reason last logged for it. A venue's first
# failing socket, or a new reason, is a WARNING; each further attempt, and the venue's
# other sockets (Bybit's symbol batches), DEBUG: offline, the console says it once.
_OUTAGES: dict[str, set[int]] = {}
_REASONS: dict[str, str] = {}

Frame = str | bytes
ParseFn = Callable[[Frame, int], list[Liquidation]]
Sink = Callable[[list[Liquidation]], Awaitable[None]]
GapFn = Callable[[str, int, int | None, str], Awaitable[None]]
# Runs next to the reader for the life of one connection; raising ends that connection.
Keepalive = Callable[[ClientConnection], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class FeedTiming:
    """Timers of one feed, in seconds. Tests shrink them; production keeps the defaults."""

    # The client's own pings catch a half-open socket long before the OS would.
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 5.0
    # Binance ends every connection at 24 h; recycle before it does (PROTOCOLS.md §1).
    max_lifetime_s: float = 23 * 3600.0
    # A connection that lived this long without a frame still counts as good for backoff.
    stable_after_s: float = 60.0
    # At most one bad-frame warning per this many seconds; the rest are counted.
    log_every_s: float = 60.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"FeedTiming.{name} must be > 0, got {value!r}")


@dataclass(slots=True)
class FeedStats:
    """Counters and times (epoch ms) for `liqbot status`."""

    exchange: str
    connected_since_ms: int | None = None
    last_frame_ms: int | None = None  # any frame, acks and pongs included
    last_event_ms: int | None = None  # last frame that carried a liquidation
    events: int = 0
    frames: int = 0
    parse_errors: int = 0
    sink_errors: int = 0
    connects: int = 0
    reconnects: int = 0  # connections opened after the first, recycles included
    recycles: int = 0  # proactive reconnects at max lifetime
    failures: int = 0  # failed connect attempts, all time
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Throttle:
    """Let one log line through per interval and count the ones held back."""

    def __init__(self, interval_s: float, clock: Clock) -> None:
        self.interval_s, self.clock = interval_s, clock
        self.held = 0
        self._next = float("-inf")

    def allow(self) -> bool:
        now = self.clock.monotonic()
        if now < self._next:
            self.held += 1
            return False
        self._next = now + self.interval_s
        return True

    def take_held(self) -> int:
        held, self.held = self.held, 0
        return held


class WsFeed:
    """Stream one venue websocket into `sink` until cancelled; reconnect on every failure."""

    def __init__(
        self,
        exchange: str,
        url: str,
        parse: ParseFn,
        sink: Sink,
        *,
        subscribe: Sequence[str | Mapping[str, Any]] = (),
        on_gap: GapFn | None = None,
        keepalive: Keepalive | None = None,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        timing: FeedTiming | None = None,
        connect_options: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            parse_uri(url)  # a bad URL is a config error now, not an endless retry loop later
        except InvalidURI as exc:
            raise ValueError(f"{exchange}: {exc}") from None
        self.exchange, self.url = exchange, url
        self.parse, self.sink = parse, sink
        self.subscribe = [m if isinstance(m, str) else json.dumps(m) for m in subscribe]
        self.on_gap, self.keepalive = on_gap, keepalive
        self.clock: Clock = clock or WallClock()
        self.backoff = backoff or Backoff()
        self.timing = timing or FeedTiming()
        self.connect_options = dict(connect_options or {})
        self.stats = FeedStats(exchange)
        self._bad_frames = _Throttle(self.timing.log_every_s, self.clock)
        self._bad_sinks = _Throttle(self.timing.log_every_s, self.clock)
        self._gap: tuple[int, str] | None = None
        self._session_frames = 0
        self._session_start = 0.0

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled. Never returns; a cancel closes the socket and re-raises."""
        ws: ClientConnection | None = None
        try:
            while True:
                if ws is None:
                    ws = await self._connect_until_open()
                    await self._close_gap()
                try:
                    ws = await self._read_until_recycled(ws)
                except ConnectionClosed as exc:
                    ws = None
                    await self._after_loss(exc)
        finally:
            self.stats.connected_since_ms = None
            self._outage_over()
            if ws is not None:
                await ws.close()

    async def _connect_until_open(self) -> ClientConnection:
        while True:
            try:
                ws = await self._open()
            except Exception as exc:
                self.stats.failures += 1
                await self._open_gap(f"connect failed: {_describe(exc)}")
                await self._wait_before_retry("connect failed", exc)
                continue
            return ws

    async def _open(self) -> ClientConnection:
        """Connect and subscribe; the socket is closed again if subscribing fails."""
        t = self.timing
        ws = await connect(
            self.url,
            open_timeout=t.open_timeout_s,
            ping_interval=t.ping_interval_s,
            ping_timeout=t.ping_timeout_s,
            close_timeout=t.close_timeout_s,
            **self.connect_options,
        )
        try:
            for message in self.subscribe:
                await ws.send(message)
        except BaseException:
            await ws.close()
            raise
        self._mark_connected()
        return ws

    def _mark_connected(self) -> None:
        s = self.stats
        if s.connects:
            s.reconnects += 1
        s.connects += 1
        s.connected_since_ms = self.clock.now_ms()
        self._outage_over()
        self._session_start = self.clock.monotonic()
        self._session_frames = 0
        logger.info("%s: connected to %s (connection %d)", self.exchange, self.url, s.connects)

    async def _read_until_recycled(self, ws: ClientConnection) -> ClientConnection:
        """Pump frames until the lifetime ends; return the replacement socket.

        Raises ConnectionClosed when the socket dies first.
        """
        keepalive = self._start_keepalive(ws)
        try:
            while True:
                remaining = self.timing.max_lifetime_s - self._session_age()
                if remaining <= 0:
                    successor = await self._recycle(ws)
                    if successor is not None:
                        return successor
                    continue
                frame = await _recv_within(ws, remaining)
                if frame is not None:
                    await self._handle(frame)
        finally:
            if keepalive is not None:
                keepalive.cancel()
                await asyncio.gather(keepalive, return_exceptions=True)

    def _session_age(self) -> float:
        return self.clock.monotonic() - self._session_start

    async def _recycle(self, old: ClientConnection) -> ClientConnection | None:
        """Open the next socket before closing the old one, so the swap loses nothing."""
        logger.info("%s: recycling connection after %.0fs", self.exchange, self._session_age())
        try:
            new = await self._open()
        except Exception as exc:
            self.stats.failures += 1
            delay = self.backoff.next_delay()
            # Keep reading the old socket and try again later; the venue's own cut-off is later.
            self._session_start += delay
            logger.warning("%s: recycle connect failed (%s); keeping the old connection, "
                           "retry in %.1fs", self.exchange, _describe(exc), delay)
            return None
        self.stats.recycles += 1
        self.backoff.reset()
        try:
            await old.close()
        except BaseException:
            await new.close()
            raise
        return new

    def _start_keepalive(self, ws: ClientConnection) -> asyncio.Task[None] | None:
        if self.keepalive is None:
            return None
        task = asyncio.create_task(self.keepalive(ws), name=f"{self.exchange}-keepalive")
        task.add_done_callback(lambda t: self._keepalive_done(t, ws))
        return task

    def _keepalive_done(self, task: asyncio.Task[None], ws: ClientConnection) -> None:
        if task.cancelled() or task.exception() is None:
            return
        logger.warning("%s: keepalive failed (%s); dropping the connection",
                       self.exchange, _describe(task.exception()))
        ws.transport.abort()  # recv() then raises ConnectionClosedError in the read loop

    # -- frames ------------------------------------------------------------------------------

    async def _handle(self, frame: Frame) -> None:
        recv_ms = self.clock.now_ms()
        self.stats.frames += 1
        self.stats.last_frame_ms = recv_ms
        self._session_frames += 1
        try:
            batch = self.parse(frame, recv_ms)
        except Exception as exc:  # a bad frame must never end the feed
            self._count_bad_frame(frame, exc)
            return
        if not batch:
            return
        self.stats.events += len(batch)
        self.stats.last_event_ms = recv_ms
        try:
            await self.sink(batch)
        except Exception:
            self.stats.sink_errors += 1
            if self._bad_sinks.allow():
                logger.exception("%s: sink failed on %d events (%d more failures not logged)",
                                 self.exchange, len(batch), self._bad_sinks.take_held())

    def _count_bad_frame(self, frame: Frame, exc: Exception) -> None:
        self.stats.parse_errors += 1
        if not self._bad_frames.allow():
            return
        held = self._bad_frames.take_held()
        excerpt = _excerpt(frame)
        if isinstance(exc, ParseError):
            logger.warning("%s: bad frame skipped (%s); %d more since last report: %s",
                           self.exchange, exc, held, excerpt)
        else:  # a parser bug, not bad input: keep the traceback
            logger.error("%s: parser crashed on a frame; %d more since last report: %s",
                         self.exchange, held, excerpt, exc_info=exc)

    # -- failures and gaps -------------------------------------------------------------------

    async def _after_loss(self, exc: ConnectionClosed) -> None:
        self.stats.connected_since_ms = None
        # A connection that carried data or lived a while proves the venue is healthy again.
        if self._session_frames or self._session_age() >= self.timing.stable_after_s:
            self.backoff.reset()
        await self._open_gap(f"connection lost: {_describe(exc)}")
        await self._wait_before_retry("connection lost", exc)

    async def _wait_before_retry(self, what: str, exc: BaseException) -> None:
        delay = self.backoff.next_delay()
        self.stats.last_error = reason = _describe(exc)
        down = _OUTAGES.setdefault(self.exchange, set())
        news = not down or _REASONS.get(self.exchange) != f"{what}: {reason}"
        down.add(id(self))
        _REASONS[self.exchange] = f"{what}: {reason}"
        logger.log(logging.WARNING if news else logging.DEBUG,
                   "%s: %s (%s); retry %d in %.1fs%s", self.exchange, what, reason,
                   self.backoff.attempt, delay,
                   "; further attempts are logged at DEBUG (-v)" if news else "")
        await asyncio.sleep(delay)

    def _outage_over(self) -> None:
        down = _OUTAGES.get(self.exchange)
        if down is not None:
            down.discard(id(self))
            if not down:
                _REASONS.pop(self.exchange, None)

    async def _open_gap(self, reason: str) -> None:
        if self._gap is not None:
            return
        self._gap = (self.clock.now_ms(), reason)
        await self._report_gap(self._gap[0], None, reason)

    async def _close_gap(self) -> None:
        if self._gap is None:
            return
        (start_ms, reason), self._gap = self._gap, None
        end_ms = self.clock.now_ms()
        logger.info("%s: receiving again after a %.1fs gap", self.exchange,
                    (end_ms - start_ms) / 1000)
        await self._report_gap(start_ms, end_ms, reason)

    async def _report_gap(self, start_ms: int, end_ms: int | None, reason: str) -> None:
        if self.on_gap is None:
            return
        try:
            await self.on_gap(self.exchange, start_ms, end_ms, reason)
        except Exception:
            logger.exception("%s: on_gap callback failed", self.exchange)


async def _recv_within(ws: ClientConnection, timeout_s: float) -> Frame | None:
    """Return the next frame, or None when timeout_s passes first (recv is cancel-safe)."""
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            return await ws.recv()
    except TimeoutError:
        if deadline.expired():
            return None
        raise


def _describe(exc: BaseException | None) -> str:
    """`ConnectionRefusedError: [Errno 111] ...`, kept to one short line."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())[:200]


def _excerpt(frame: Frame, limit: int = 120) -> str:
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    return repr(text[:limit]) + ("..." if len(text) > limit else "")
