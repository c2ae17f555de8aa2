"""A fake REST server on 127.0.0.1 (port 0): routes paths to canned JSON or errors, logs requests.

    async with FakeHttp() as fake:
        fake.route("/fapi/v1/openInterest", Reply(json=sample))        # every call
        fake.route("/x", Reply(status=500), Reply(json={"ok": 1}))      # 500 once, then ok forever
        fake.route("/info", Reply(json=ctxs), method="POST")
        fake.handler("/page", lambda req: Reply(json=page_for(req.query)))
        client = JsonClient(fake.url, name="test")
        ...
        fake.requests  # every request: method, path, query, headers, body

Replies queue per route; the last one repeats. Unrouted paths answer 404 and are logged too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.helpers.shared import FIXTURES


def fixture_text(name: str) -> str:
    """The raw text of a shared exchange fixture, served byte for byte."""
    return (FIXTURES / name).read_text()


@dataclass(frozen=True)
class Reply:
    """One canned answer: JSON (`json`) or raw text (`body`), a status, headers, a delay."""

    status: int = 200
    json: Any = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    def text(self) -> str:
        if self.body is not None:
            return self.body
        return json.dumps(self.json if self.json is not None else {})


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


Handler = Callable[[Seen], Reply]


class FakeHttp:
    """An aiohttp server that answers by route and records every request."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._routes: dict[tuple[str, str], deque[Reply] | Handler] = {}
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.port = 0

    async def __aenter__(self) -> FakeHttp:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No access log: tests capture logs at DEBUG and only want the code under test.
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *_: Any) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, path: str, *replies: Reply, method: str = "GET") -> None:
        """Answer `path` with these replies in order; the last one repeats forever."""
        if not replies:
            raise ValueError("route needs at least one Reply")
        self._routes[(method.upper(), path)] = deque(replies)

    def handler(self, path: str, fn: Handler, method: str = "GET") -> None:
        """Answer `path` by calling fn(request) each time."""
        self._routes[(method.upper(), path)] = fn

    def calls(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        seen = Seen(request.method, request.path, dict(request.query), dict(request.headers),
                    body)
        self.requests.append(seen)
        reply = self._reply_for(seen)
        if reply.delay_s:
            # Cut short at shutdown, so a test never waits for a slow reply nobody reads.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), reply.delay_s)
        return web.Response(status=reply.status, text=reply.text(),
                            content_type="application/json", headers=reply.headers)

    def _reply_for(self, seen: Seen) -> Reply:
        route = self._routes.get((seen.method, seen.path))
        if route is None:
            return Reply(status=404, json={"error": f"no route for {seen.method} {seen.path}"})
        if callable(route):
            return route(seen)
        return route.popleft() if len(route) > 1 else route[0]
