"""What Discord's answers mean: when a bucket may send again, and each reply's outbox outcome."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import discord

from bot.chat.base import DeliveryError
from bot.destination import Destination

logger = logging.getLogger(__name__)

WEBHOOK_PLATFORM = "discord-webhook"
CHANNEL_PLATFORM = "discord"
GLOBAL = "*global*"
# Transport errors raised before anything was written: the message certainly did not go.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


class Pacer:
    """Start requests at most `per_s` a second, in the order they asked."""

    def __init__(self, per_s: float) -> None:
        self.interval_s = 1.0 / per_s
        self._next = 0.0

    async def turn(self) -> None:
        now = time.monotonic()
        at = max(now, self._next)
        self._next = at + self.interval_s  # reserved before sleeping: no lock needed
        if at > now:
            await asyncio.sleep(at - now)


class RateGate:
    """When each bucket may send again, learnt from Discord's headers, never from constants."""

    def __init__(self) -> None:
        self._free_at: dict[str, float] = {}

    def wait_s(self, key: str) -> float:
        now = time.monotonic()
        return max(0.0, self._free_at.get(key, 0.0) - now, self._free_at.get(GLOBAL, 0.0) - now)

    def hold(self, key: str, seconds: float) -> None:
        until = time.monotonic() + max(0.0, seconds)
        self._free_at[key] = max(self._free_at.get(key, 0.0), until)

    def learn(self, key: str, headers: Mapping[str, str]) -> None:
        """An exhausted bucket (`Remaining: 0`) stays shut for `Reset-After` seconds."""
        if headers.get("X-RateLimit-Remaining") == "0":
            self.hold(key, number(headers.get("X-RateLimit-Reset-After")) or 0.0)


def number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out >= 0 and out == out and out != float("inf") else None


def retry_after_s(body: Any, headers: Mapping[str, str]) -> float:
    """A 429's wait: the body's `retry_after`, else `Retry-After`, else `Reset-After`."""
    candidates = [body.get("retry_after") if isinstance(body, dict) else None,
                  headers.get("Retry-After"), headers.get("X-RateLimit-Reset-After")]
    for value in candidates:
        if (seconds := number(value)) is not None:
            return seconds
    return 1.0


def from_edge(body: Any, headers: Mapping[str, str]) -> bool:
    """A 429 without `Via` (or with a non-JSON body) comes from Cloudflare, not Discord's API.

    It bans the whole IP, and every request made during it counts toward a longer ban, so
    it is never retried in place (discord.py raises at once for the same reason).
    """
    return "Via" not in headers or not isinstance(body, dict)


def is_global(body: Any, headers: Mapping[str, str]) -> bool:
    return bool(isinstance(body, dict) and body.get("global")) or \
        headers.get("X-RateLimit-Global", "").lower() == "true"


class Refused(Exception):
    """Discord refused the payload itself (400 / 413): worth one plain-content resend."""

    def __init__(self, error: DeliveryError) -> None:
        super().__init__(str(error))
        self.error = error


def describe(status: int, body: Any) -> str:
    if isinstance(body, dict):
        return f"HTTP {status}, code {body.get('code', 0)}: {str(body.get('message', ''))[:200]}"
    return f"HTTP {status}"


_FIX = {WEBHOOK_PLATFORM: "remove or replace its URL in LIQBOT_DISCORD_WEBHOOK_URLS",
        CHANNEL_PLATFORM: "give the bot access again, then /subscribe in that channel"}


def classify(destination: str, status: int, body: Any) -> DeliveryError | Refused:
    """The outbox outcome of a final non-2xx, non-429 answer."""
    text = f"{destination}: Discord answered {describe(status, body)}"
    if status in (401, 403, 404):
        fix = _FIX.get(Destination.parse(destination).platform, "check the configuration")
        logger.error("%s disabled: Discord answered %s; nothing more is sent there (%s)",
                     destination, describe(status, body), fix)
        return DeliveryError(text, gone=True)
    if status in (400, 413):
        return Refused(DeliveryError(text, permanent=True))
    if status >= 500:
        return DeliveryError(text)
    return DeliveryError(text, permanent=True)


def transport_error(destination: str, exc: BaseException) -> DeliveryError:
    """A send that got no answer; only a failure before the write is certainly unsent."""
    sent = not isinstance(exc, _NOT_SENT)
    return DeliveryError(f"{destination}: {type(exc).__name__} talking to Discord",
                         maybe_sent=sent)


def classify_http(destination: str, exc: discord.HTTPException) -> DeliveryError | Refused:
    """discord.py's exception for a bot-channel send, as an outbox outcome."""
    headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
    body = {"code": exc.code, "message": exc.text}
    if exc.status == 429:  # no `Via` header: discord.py raised instead of sleeping
        wait = retry_after_s(None, headers)
        return DeliveryError(f"{destination}: rate limited", retry_after_s=wait)
    if exc.status == 401:  # the token, not the channel: nothing to disable
        logger.error("%s: Discord rejected the bot token (HTTP 401)", destination)
        return DeliveryError(f"{destination}: Discord answered {describe(401, body)}")
    return classify(destination, exc.status, body)
