"""Alerts to channels through the logged-in bot (discord.py): `discord:<channel id>`."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
import discord

from bot.alerts import Alert
from bot.charts import PNG_NAME, ChartMaker, alert_chart
from bot.chat.attempt import leaving
from bot.chat.base import DeliveryError
from bot.chat.quiet import QuietSource
from bot.destination import Destination
from bot.discord.answers import (
    CHANNEL_PLATFORM,
    GLOBAL,
    RateGate,
    Refused,
    classify_http,
    transport_error,
)
from bot.discord.delivery import DiscordLimits, log_notice
from bot.discord.render import render_content, render_embed

logger = logging.getLogger(__name__)


def departure_trace() -> aiohttp.TraceConfig:
    """An aiohttp trace whose request start is `leaving()` (bot/chat/attempt.py)."""

    async def on_start(*_: Any) -> None:
        await leaving()

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return trace


class ChannelNotifier:
    """Alerts to channels through the logged-in bot: `discord:<channel id>`."""

    name = CHANNEL_PLATFORM

    def __init__(self, client: discord.Client, limits: DiscordLimits | None = None,
                 quiet_chats: QuietSource | None = None) -> None:
        self.client = client
        self.limits = limits or DiscordLimits()
        self.parallel = self.limits.parallel
        self.quiet_chats = quiet_chats
        self.gate = RateGate()
        self.ready = False  # set by the service once the bot has logged in
        self.charts: ChartMaker | None = None  # set by the service once the store is open
        # discord.py waits out its rate limits inside `channel.send`; aiohttp's request-start
        # trace runs after them, in the sending task, so the attempt counts as it leaves.
        # Set before login, when discord.py builds its session with the trace.
        self.counts_departure = client.http.http_trace is None
        if self.counts_departure:
            client.http.http_trace = departure_trace()

    async def send(self, alert: Alert, destination: str) -> None:
        chat = Destination.parse(destination).chat_id
        if not chat.isdigit():
            raise DeliveryError(f"{destination}: not a channel id", permanent=True)
        if (wait := self.gate.wait_s(GLOBAL)) > 0:  # nothing is sent: no invalid request
            raise DeliveryError(f"{destination}: rate limited for {wait:.1f}s",
                                retry_after_s=wait)
        quiet = await self.quiet_chats(chat, alert) if self.quiet_chats else False
        channel = self.client.get_partial_messageable(int(chat))
        png = await alert_chart(self.charts, alert)
        # A chart rides in the embed as an attachment; discord.py uploads it multipart.
        extra: dict[str, Any] = {"file": discord.File(io.BytesIO(png), PNG_NAME)} if png else {}
        try:
            await self._send(destination, channel.send(
                embed=discord.Embed.from_dict(render_embed(alert, PNG_NAME if png else None)),
                silent=quiet, allowed_mentions=discord.AllowedMentions.none(), **extra))
        except Refused as refused:
            logger.warning("%s refused the embed of %s (%s); resending as plain content",
                           destination, alert.key, refused)
            try:
                await self._send(destination, channel.send(
                    render_content(alert), silent=quiet,
                    allowed_mentions=discord.AllowedMentions.none()))
            except Refused as again:
                raise again.error from None

    async def _send(self, destination: str, request: Awaitable[Any]) -> Any:
        try:
            return await asyncio.wait_for(request, self.limits.channel_timeout_s)
        except discord.RateLimited as exc:  # longer than max_ratelimit_timeout: defer
            raise DeliveryError(f"{destination}: rate limited", retry_after_s=exc.retry_after) \
                from None
        except discord.HTTPException as exc:
            error = classify_http(destination, exc)
            headers = getattr(exc.response, "headers", None) or {}
            if exc.status == 429 and isinstance(error, DeliveryError) and "Via" not in headers:
                # Without `Via` the 429 came from the edge: the whole IP waits. With it,
                # discord.py gave up on one route after its own retries: that chat waits.
                self.gate.hold(GLOBAL, error.retry_after_s or 0.0)
            if exc.status == 401:
                # The token, not the channel: items wait unsent (no attempt counted, no
                # more invalid requests) until the service logs in again.
                self.ready = False
            raise error from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise transport_error(destination, exc) from None

    async def notice(self, text: str) -> None:
        log_notice(text)

    async def close(self) -> None:
        return None
