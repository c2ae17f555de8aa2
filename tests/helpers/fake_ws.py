"""A fake exchange websocket server on 127.0.0.1 with switchable faults (RELIABILITY.md test rig).

The server plays a script of frames. Each incoming connection takes the next queued `Plan`
(or the default one), which says how many frames to send and what to do afterwards:

    async with FakeExchange(frames, resend=True) as fake:
        fake.plan(Plan(after=2, then="drop"), Plan(answer_pings=False, after=0))
        feed = binance_feed(sink, url=fake.url, ...)

Faults: drop the TCP connection without a close frame, close cleanly after N frames, refuse
(stop listening on the port, `refuse()` / `accept()`), answer the upgrade with an HTTP error,
delay the handshake, stall (send nothing), stop answering pings, resend the script on every
connect, and send malformed frames (any str/bytes in the script goes out verbatim).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web

Frame = str | bytes | dict[str, Any] | list[Any]
DEFAULT_PATH = "/market/ws/!forceOrder@arr"


@dataclass(frozen=True)
class Plan:
    """What the server does on one connection."""

    after: int | None = None  # frames to send on this connection; None: the rest of the script
    then: Literal["hold", "drop", "close"] = "hold"  # once those frames are sent
    answer_pings: bool = True  # False: pings are read and ignored, as a dead peer would
    reject_status: int | None = None  # answer the upgrade with this HTTP status instead
    handshake_delay_s: float = 0.0  # sleep before answering the upgrade
    wait_for: int = 0  # client messages (subscribes) to receive before playing any frame
    close_code: int = 1000


@dataclass
class Conn:
    """What happened on one accepted connection."""

    index: int
    path: str
    plan: Plan
    opened_at: float = field(default_factory=time.monotonic)
    closed_at: float | None = None
    upgraded: bool = False
    sent: int = 0
    pings_ignored: int = 0
    received: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.upgraded and self.closed_at is None


class FakeExchange:
    """An aiohttp websocket server that replays frames and misbehaves on request."""

    def __init__(
        self,
        frames: Iterable[Frame] = (),
        *,
        resend: bool = False,
        interval_s: float = 0.0,
        path: str = DEFAULT_PATH,
    ) -> None:
        self.script: list[Frame] = list(frames)
        self.resend = resend  # True: every connection starts the script again (OKX-style replay)
        self.interval_s = interval_s
        self.path = path
        self.connections: list[Conn] = []
        self._cursor = 0
        self._plans: deque[Plan] = deque()
        self._live: dict[int, tuple[web.WebSocketResponse, web.Request]] = {}
        self._runner: web.AppRunner | None = None
        self._site: web.SockSite | None = None
        self._stopping = asyncio.Event()
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeExchange:
        await self.start()
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await self.accept()

    async def stop(self) -> None:
        self._stopping.set()  # releases handlers still sleeping in a handshake delay
        for ws, request in list(self._live.values()):
            _abort(request)
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"

    # -- faults ------------------------------------------------------------------------------

    def plan(self, *plans: Plan) -> None:
        """Queue plans for the next connections, in order; later ones get the default Plan()."""
        self._plans.extend(plans)

    async def refuse(self) -> None:
        """Stop listening: new connects get ConnectionRefusedError, open ones stay up."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def accept(self) -> None:
        """Listen (again) on the same port."""
        assert self._runner is not None, "start() first"
        if self._site is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock)
        await self._site.start()

    def drop_all(self) -> None:
        """Abort every open connection at the TCP level, without a close frame."""
        for _, request in list(self._live.values()):
            _abort(request)

    async def push(self, frame: Frame) -> None:
        """Send one frame to every open connection now."""
        for ws, _ in list(self._live.values()):
            await _send(ws, frame)

    # -- waiting -----------------------------------------------------------------------------

    def open_connections(self) -> list[Conn]:
        return [c for c in self.connections if c.open]

    async def wait_connections(self, n: int, timeout: float = 2.0) -> list[Conn]:
        """Wait until at least n websocket upgrades have happened."""
        await wait_until(lambda: sum(c.upgraded for c in self.connections) >= n, timeout)
        return [c for c in self.connections if c.upgraded]

    # -- serving -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        plan = self._plans.popleft() if self._plans else Plan()
        conn = Conn(index=len(self.connections), path=request.path_qs, plan=plan)
        self.connections.append(conn)
        if plan.handshake_delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), plan.handshake_delay_s)
        if plan.reject_status is not None or self._stopping.is_set():
            conn.closed_at = time.monotonic()
            return web.Response(status=plan.reject_status or 503, text="go away")
        ws = web.WebSocketResponse(autoping=plan.answer_pings)
        await ws.prepare(request)
        conn.upgraded = True
        self._live[conn.index] = (ws, request)
        reader = asyncio.create_task(self._read(ws, conn))
        try:
            await self._play(ws, request, conn)
            await reader  # hold the connection until the peer or a fault ends it
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self._live.pop(conn.index, None)
            conn.closed_at = time.monotonic()
        return ws

    async def _play(self, ws: web.WebSocketResponse, request: web.Request, conn: Conn) -> None:
        if conn.plan.wait_for:
            await wait_until(lambda: len(conn.received) >= conn.plan.wait_for or ws.closed, 5.0)
        for frame in self._frames_for(conn.plan):
            if ws.closed:
                return
            await _send(ws, frame)
            conn.sent += 1
            if self.interval_s:
                await asyncio.sleep(self.interval_s)
        if conn.plan.then == "drop":
            _abort(request)
        elif conn.plan.then == "close":
            await ws.close(code=conn.plan.close_code)

    def _frames_for(self, plan: Plan) -> list[Frame]:
        start = 0 if self.resend else self._cursor
        stop = len(self.script) if plan.after is None else min(len(self.script), start + plan.after)
        if not self.resend:
            self._cursor = stop
        return self.script[start:stop]

    async def _read(self, ws: web.WebSocketResponse, conn: Conn) -> None:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                conn.received.append(msg.data)
            elif msg.type is WSMsgType.PING:  # only seen with autoping off: stay silent
                conn.pings_ignored += 1


async def _send(ws: web.WebSocketResponse, frame: Frame) -> None:
    if isinstance(frame, bytes):
        await ws.send_bytes(frame)
    elif isinstance(frame, str):
        await ws.send_str(frame)
    else:
        await ws.send_str(json.dumps(frame))


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 2.0, step: float = 0.005
) -> None:
    """Poll until predicate() is true; TimeoutError (with the predicate's repr) otherwise."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = predicate()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await asyncio.sleep(step)
    except TimeoutError:
        raise TimeoutError(f"condition not met within {timeout}s: {predicate!r}") from None
