"""Venue dialects on top of FakeExchange: text ping/pong (BitMEX, CoinGlass) and Deribit RPC.

    async with TextPingFake(frames, path="/realtime?subscribe=liquidation") as fake:
        fake.mute_pongs.add(0)       # the first connection never answers `ping`
    async with DeribitFake(test_every_s=0.05, answer_within_s=0.1) as fake:
        ...                          # sends test_request heartbeats, closes on no public/test

Each fake answers the client's text messages through `reply()` and may run a `behave()`
task per connection; both are hooks over FakeExchange's script, plans and faults.

The client side the venue tests share: `FAST` timing, `fast_backoff()`, `discard` and
`Recorder` sinks, and
`running_to_cancel(feed)`, which insists the feed ends by cancellation and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from feeds.model import Liquidation
from feeds.net.backoff import Backoff
from feeds.net.ws import FeedTiming, WsFeed
from tests.helpers.fake_ws import Conn, FakeExchange, Frame, running

# Protocol pings slow enough that only the venue's own keepalive is exercised.
FAST = FeedTiming(ping_interval_s=5, ping_timeout_s=5, open_timeout_s=1, close_timeout_s=0.2)


def fast_backoff() -> Backoff:
    return Backoff(base_s=0.01, cap_s=0.04, rng=random.Random(1))


async def discard(batch: list[Liquidation]) -> None:
    """A sink for feeds that are built but never run."""


class Recorder:
    """A sink that keeps every event it is given."""

    def __init__(self) -> None:
        self.events: list[Liquidation] = []

    async def sink(self, batch: list[Liquidation]) -> None:
        self.events.extend(batch)


@contextlib.asynccontextmanager
async def running_to_cancel(feed: WsFeed) -> AsyncIterator[None]:
    """Run the feed for the block; on leaving it, the feed must end by its cancellation."""
    async with running(feed) as task:
        yield
    assert task.cancelled(), "the feed ended before it was cancelled"


class VenueFake(FakeExchange):
    """FakeExchange that answers client messages and can police each connection."""

    def __init__(self, frames: Any = (), **kwargs: Any) -> None:
        super().__init__(frames, **kwargs)
        self.enforced: list[tuple[int, str]] = []  # (connection index, why the fake closed it)

    def reply(self, conn: Conn, message: str) -> list[Frame]:
        """Frames to send back for one text message from the client."""
        return []

    async def behave(self, ws: web.WebSocketResponse, conn: Conn) -> None:
        """Runs next to the reader for the life of one connection."""

    async def enforce(self, ws: web.WebSocketResponse, conn: Conn, why: str) -> None:
        self.enforced.append((conn.index, why))
        await ws.close(code=4000, message=why.encode()[:100])

    async def _read(self, ws: web.WebSocketResponse, conn: Conn) -> None:
        behaviour = asyncio.create_task(self.behave(ws, conn))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    conn.received.append(msg.data)
                    for frame in self.reply(conn, msg.data):
                        await send(ws, frame)
                elif msg.type is WSMsgType.PING:
                    conn.pings_ignored += 1
        finally:
            behaviour.cancel()
            await asyncio.gather(behaviour, return_exceptions=True)


class TextPingFake(VenueFake):
    """Answers the text `ping` with `pong`, except on connections listed in `mute_pongs`."""

    def __init__(self, frames: Any = (), **kwargs: Any) -> None:
        super().__init__(frames, **kwargs)
        self.mute_pongs: set[int] = set()
        self.pings: dict[int, list[float]] = defaultdict(list)  # arrival times per connection

    def reply(self, conn: Conn, message: str) -> list[Frame]:
        if message != "ping":
            return []
        self.pings[conn.index].append(time.monotonic())
        return [] if conn.index in self.mute_pongs else ["pong"]


class DeribitFake(VenueFake):
    """JSON-RPC answers; once `public/set_heartbeat` arrives, a `test_request` every
    `test_every_s`, and the connection is closed when `public/test` does not follow within
    `answer_within_s` (Deribit's rule on a compressed clock)."""

    def __init__(self, frames: Any = (), *, test_every_s: float = 0.05,
                 answer_within_s: float = 0.1, **kwargs: Any) -> None:
        kwargs.setdefault("path", "/ws/api/v2")
        super().__init__(frames, **kwargs)
        self.test_every_s, self.answer_within_s = test_every_s, answer_within_s
        self.tests_sent: dict[int, int] = defaultdict(int)
        self.tests_answered: dict[int, int] = defaultdict(int)
        self._heartbeat_on: dict[int, asyncio.Event] = defaultdict(asyncio.Event)

    def reply(self, conn: Conn, message: str) -> list[Frame]:
        request = json.loads(message)
        method, rid = request.get("method"), request.get("id")
        if method == "public/set_heartbeat":
            self._heartbeat_on[conn.index].set()
            return [_result(rid, "ok")]
        if method == "public/subscribe":
            return [_result(rid, request["params"]["channels"])]
        if method == "public/test":
            self.tests_answered[conn.index] += 1
            return [_result(rid, {"version": "1.2.26"})]
        return [{"jsonrpc": "2.0", "id": rid, "error": {"code": -32601,
                                                        "message": "Method not found"}}]

    async def behave(self, ws: web.WebSocketResponse, conn: Conn) -> None:
        await self._heartbeat_on[conn.index].wait()
        while not ws.closed:
            await asyncio.sleep(self.test_every_s)
            before = self.tests_answered[conn.index]
            await send(ws, {"jsonrpc": "2.0", "method": "heartbeat",
                            "params": {"type": "test_request"}})
            self.tests_sent[conn.index] += 1
            deadline = time.monotonic() + self.answer_within_s
            while self.tests_answered[conn.index] == before:
                if time.monotonic() >= deadline:
                    await self.enforce(ws, conn, "no public/test answer")
                    return
                await asyncio.sleep(0.005)


def _result(rid: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result, "usIn": 1, "usOut": 2, "usDiff": 1,
            "testnet": True}


async def send(ws: web.WebSocketResponse, frame: Frame) -> None:
    if isinstance(frame, bytes):
        await ws.send_bytes(frame)
    elif isinstance(frame, str):
        await ws.send_str(frame)
    else:
        await ws.send_str(json.dumps(frame))
