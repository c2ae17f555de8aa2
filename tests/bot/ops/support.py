"""Small pieces the ops tests share: an HTTP getter and a feed that only has stats."""

from __future__ import annotations

import aiohttp

LISTEN = "127.0.0.1:0"  # loopback, any free port


async def get(url: str) -> tuple[int, str, str]:
    """(status, Content-Type, body) of one GET."""
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


class StubStats:
    def __init__(self, exchange: str, connected: bool) -> None:
        self.exchange = exchange
        self.connected_since_ms = 1 if connected else None
        self.reconnects, self.parse_errors = 2, 3


class StubFeed:
    """What health and metrics read from a feed: `.stats` and nothing else."""

    def __init__(self, exchange: str, connected: bool) -> None:
        self.stats = StubStats(exchange, connected)
