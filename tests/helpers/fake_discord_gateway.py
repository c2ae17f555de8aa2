"""The gateway half of the fake Discord (tests/helpers/fake_discord.py serves it at /gateway).

A connecting bot gets HELLO, an ACK for every heartbeat, and READY once it identifies with the
right token (a wrong one closes with 4004, as Discord does). `push` then delivers one
INTERACTION_CREATE to it; `identified` is set once a bot has identified.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from aiohttp import WSMsgType, web


class FakeGateway:
    """One bot connection at a time; the newest connection is the one `push` writes to."""

    def __init__(self, *, token: str, user: dict[str, Any], app_id: str) -> None:
        self.token = token
        self.user = user
        self.app_id = app_id
        self.url = ""  # set once the server has a port: READY names it as the resume URL
        self.identified = asyncio.Event()
        self._seq = itertools.count(1)
        self._ws: web.WebSocketResponse | None = None

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame["op"] == 1:
                await ws.send_json({"op": 11})
            elif frame["op"] == 2:
                await self._ready(ws, frame["d"])
        return ws

    async def _ready(self, ws: web.WebSocketResponse, identify: dict[str, Any]) -> None:
        if identify.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        await ws.send_json({"op": 0, "t": "READY", "s": next(self._seq), "d": {
            "v": 10, "user": self.user, "guilds": [], "session_id": "fake-session",
            "resume_gateway_url": self.url, "shard": [0, 1],
            "application": {"id": self.app_id, "flags": 0}}})
        self.identified.set()

    async def push(self, interaction: dict[str, Any]) -> None:
        """Deliver one INTERACTION_CREATE to the connected bot."""
        await asyncio.wait_for(self.identified.wait(), 5)
        assert self._ws is not None
        await self._ws.send_json({"op": 0, "t": "INTERACTION_CREATE", "s": next(self._seq),
                                  "d": interaction})

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
