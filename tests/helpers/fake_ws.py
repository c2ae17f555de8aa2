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

Venue modes: a `responder` answers the client's app-level messages (`bybit_replies`: op ping
and subscribe acks; `okx_replies`: text `ping` -> `pong`), which `Plan(respond=False)` turns
off for one connection; `idle_close_s` closes a connection after that long with no traffic
either way, as OKX does after 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web

Frame = str | bytes | dict[str, Any] | list[Any]
Responder = Callable[[str], list[Frame]]  # one client text message -> the replies to send
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
    respond: bool = True  # False: the responder stays silent (app-level pongs, acks)


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
    last_traffic: float = field(default_factory=time.monotonic)  # either direction
    idle_closed: bool = False  # closed by the idle_close_s rule

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
        responder: Responder | None = None,
        idle_close_s: float | None = None,
    ) -> None:
        self.script: list[Frame] = list(frames)
        self.resend = resend  # True: every connection starts the script again (OKX-style replay)
        self.interval_s = interval_s
        self.path = path
        self.responder = responder
        self.idle_close_s = idle_close_s
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

    async def wait_connections(self, n: int, within_s: float = 2.0) -> list[Conn]:
        """Wait until at least n websocket upgrades have happened."""
        await wait_until(lambda: sum(c.upgraded for c in self.connections) >= n, within_s)
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
        helpers = [reader]
        if self.idle_close_s is not None:
            helpers.append(asyncio.create_task(self._close_when_idle(ws, conn, self.idle_close_s)))
        try:
            await self._play(ws, request, conn)
            await reader  # hold the connection until the peer or a fault ends it
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
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
            conn.last_traffic = time.monotonic()
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
                conn.last_traffic = time.monotonic()
                if self.responder is not None and conn.plan.respond:
                    for reply in self.responder(msg.data):
                        await _send(ws, reply)
            elif msg.type is WSMsgType.PING:  # only seen with autoping off: stay silent
                conn.pings_ignored += 1

    async def _close_when_idle(self, ws: web.WebSocketResponse, conn: Conn, idle_s: float) -> None:
        while not ws.closed:
            left = conn.last_traffic + idle_s - time.monotonic()
            if left <= 0:
                conn.idle_closed = True
                await ws.close(code=4004, message=b"idle")
                return
            await asyncio.sleep(left)


def bybit_replies(reject: Iterable[str] = ()) -> Responder:
    """Bybit v5 public replies: pong for op ping, an ack per subscribe (failed for `reject`)."""
    rejected = frozenset(reject)

    def reply(text: str) -> list[Frame]:
        try:
            msg = json.loads(text)
        except ValueError:
            return []
        op, req_id = msg.get("op"), msg.get("req_id", "")
        base = {"conn_id": "fake-conn", "req_id": req_id, "op": op}
        if op == "ping":
            return [{"success": True, "ret_msg": "pong", **base}]
        if op == "subscribe":
            bad = [t for t in msg.get("args", []) if t in rejected]
            if bad:
                return [{"success": False, "ret_msg": f"error:handler not found,topic:{bad[0]}",
                         **base}]
            return [{"success": True, "ret_msg": "", **base}]
        return []

    return reply


def okx_replies(text: str) -> list[Frame]:
    """OKX v5 public replies: `pong` for the text `ping`, one event per subscribed arg."""
    if text == "ping":
        return ["pong"]
    try:
        msg = json.loads(text)
    except ValueError:
        return [{"event": "error", "code": "60012", "msg": f"Invalid request: {text[:40]}"}]
    if msg.get("op") != "subscribe":
        return []
    return [{"event": "subscribe", "arg": arg, "connId": "fake"} for arg in msg.get("args", [])]


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
    predicate: Callable[[], bool | Awaitable[bool]], within_s: float = 2.0, step: float = 0.005
) -> None:
    """Poll until predicate() is true; TimeoutError (with the predicate's repr) otherwise."""
    try:
        async with asyncio.timeout(within_s):
            while True:
                result = predicate()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await asyncio.sleep(step)
    except TimeoutError:
        raise TimeoutError(f"condition not met within {within_s}s: {predicate!r}") from None


@contextlib.asynccontextmanager
async def running(feed: Any, stop_timeout: float = 1.0) -> AsyncIterator[asyncio.Task[None]]:
    """Run `feed.run()` for the block, then cancel it; it must stop within `stop_timeout`."""
    task = asyncio.create_task(feed.run())
    try:
        yield task
    finally:
        task.cancel()
        async with asyncio.timeout(stop_timeout):
            with contextlib.suppress(asyncio.CancelledError):
                await task
