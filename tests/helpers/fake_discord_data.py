"""The fake Discord's vocabulary: ids, limits, the calls it logs and the answers it gives.

Apart from tests/helpers/fake_discord.py (the server) so each stays a readable size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "MTAxNDI0MjQyNDI0MjQyNDI0Mg.fake.bot-token-for-tests-0123456789"
APP_ID = "424242424242424242"
BOT_USER = {"id": APP_ID, "username": "liqbot", "discriminator": "0", "global_name": None,
            "avatar": None, "bot": True}
GUILD_ID = "700000000000000001"
CHANNEL_ID = "800000000000000001"
MANAGE_GUILD = 1 << 5
VIEW_AND_SEND = (1 << 10) | (1 << 11)

Key = tuple[str, str]


def djson(obj: Any, status: int = 200, **headers: str) -> web.Response:
    """JSON with the exact Content-Type discord.py accepts."""
    return web.Response(status=status, body=json.dumps(obj).encode(),
                        headers={"Content-Type": "application/json", **headers})


@dataclass(frozen=True)
class FakeLimits:
    """Sliding windows (count per seconds); a count of 0 switches that limit off."""

    overall: tuple[int, float] = (50, 1.0)
    webhook: tuple[int, float] = (5, 2.0)
    channel: tuple[int, float] = (5, 5.0)


@dataclass
class Canned:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One request as it arrived."""

    t: float  # time.monotonic() at arrival
    method: str
    path: str
    key: Key | None
    body: Any
    query: dict[str, str]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # X-RateLimit-* sent back
    files: dict[str, bytes] = field(default_factory=dict)  # multipart uploads, by file name


@dataclass
class Response:
    """An interaction callback: type 4 message, 5 deferred, 7 update, 8 autocomplete."""

    interaction_id: str
    type: int
    data: dict[str, Any]

    @property
    def ephemeral(self) -> bool:
        return bool(self.data.get("flags", 0) & 64)

    @property
    def content(self) -> str:
        return str(self.data.get("content", ""))

    @property
    def text(self) -> str:
        """What a user reads: the content, else the first embed's title, description, fields."""
        return shown_text(self.data)


def shown_text(message: dict[str, Any]) -> str:
    """A message's content, or its first embed's title, description and `name: value` fields,
    one under the other."""
    if message.get("content"):
        return str(message["content"])
    embed = (message.get("embeds") or [{}])[0]
    parts = [embed.get("title", ""), embed.get("description", "")]
    parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(p for p in parts if p)
