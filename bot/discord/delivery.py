"""Sending to Discord: webhooks on our own HTTP client, bot channels through discord.py.

Each answer becomes one outbox outcome (RELIABILITY.md items 14-17, 22):

| answer                         | outcome                                                  |
|--------------------------------|----------------------------------------------------------|
| 2xx                            | sent                                                     |
| 429 with `Via`                 | wait `retry_after` here when short, else defer it        |
| 429 without `Via` (Cloudflare) | defer it; every destination holds for `Retry-After`      |
| `X-RateLimit-Remaining: 0`     | the next request to that bucket waits `Reset-After`      |
| 5xx, connection refused        | a few quick retries (honouring `Retry-After`), then retry |
| timeout after the write        | retry, counted as maybe delivered                        |
| 400 / 413 (embed refused)      | one plain-content resend, then dead                      |
| 401 / 403 / 404 (10015, 10003) | destination disabled, one log line, no retry             |
| 401 on a bot channel           | the token, not the channel: logged, retried              |

Webhooks do not go through discord.py: its adapter sleeps through any `retry_after` and ~25 s
of 5xx backoff inside one send, and logs the webhook URL (token included) at DEBUG. Every
payload carries `allowed_mentions={"parse": []}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import discord

from bot.alerts import Alert
from bot.chat.base import DeliveryError
from bot.discord.render import render_content, render_embed

logger = logging.getLogger(__name__)

NO_MENTIONS: dict[str, list[str]] = {"parse": []}
SUPPRESS_NOTIFICATIONS = 1 << 12  # message flag: delivered without a push notification
WEBHOOK_PLATFORM = "discord-webhook"
CHANNEL_PLATFORM = "discord"
GLOBAL = "*global*"
UNCONFIGURED = "not in LIQBOT_DISCORD_WEBHOOK_URLS"
# Configured URLs are split by our own pattern: discord.py's accepts only discord.com hosts.
_WEBHOOK_URL = re.compile(r"^(?P<base>https?://[^/?#]+(?:/[^?#]*?)?)/webhooks/(?P<id>\d+)/"
                          r"(?P<token>[^/?#]+)/?(?:\?(?P<query>[^#]*))?$")
API_VERSION = "v10"  # what discord.py 2.7 speaks; an unversioned path gets a retired default
# Transport errors raised before anything was written: the message certainly did not go.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
QuietChats = Callable[[], Awaitable[set[str]]]


@dataclass(frozen=True, slots=True)
class DiscordLimits:
    """How long a send may wait in place before the outbox takes over."""

    inline_wait_s: float = 2.0  # rate-limit waits up to this are slept through; longer: deferred
    rate_limit_retries: int = 3  # 429s answered within one send before deferring
    server_retries: int = 2  # extra attempts after a 5xx or refused connection in one send
    backoff_s: float = 0.5  # first pause after a 5xx; doubles
    timeout_s: float = 10.0
    # A bot send includes discord.py's own waits (429 up to 30 s, 5xx about 25 s); past this
    # it is cut and counted as maybe delivered, rather than aiohttp's 300 s default.
    channel_timeout_s: float = 75.0
    parallel: int = 8  # destinations served at once (each webhook has its own bucket)
    # Discord allows 50 requests/s in all (PLATFORMS.md §5) and says so only with a 429;
    # webhook posts start no closer together than this, so a burst never meets it.
    global_per_s: float = 45.0


@dataclass(frozen=True, slots=True)
class Webhook:
    """One configured webhook; `url` holds the token and is never logged or stored."""

    id: str
    url: str = field(repr=False)
    token: str = field(repr=False)

    @property
    def destination(self) -> str:
        return f"{WEBHOOK_PLATFORM}:{self.id}"


def parse_webhook_url(url: str, index: int = 0) -> Webhook:
    """Split `.../webhooks/ID/TOKEN`; the error names the entry, never the URL.

    The URL Discord shows (`/api/webhooks/...`) is posted to as `/api/v10/webhooks/...`; a
    query such as `?thread_id=` is kept.
    """
    m = _WEBHOOK_URL.match(url.strip())
    if m is None:
        raise ValueError(f"discord.webhook_urls entry {index + 1} is not a webhook URL "
                         "(expected https://discord.com/api/webhooks/ID/TOKEN)")
    base, hook_id, token = m.group("base"), m.group("id"), m.group("token")
    if base.endswith("/api"):
        base += "/" + API_VERSION
    # `wait` is ours to set: without it a failed save raises nothing (PLATFORMS.md §2.2).
    kept = [(k, v) for k, v in parse_qsl(m.group("query") or "") if k != "wait"]
    query = f"?{urlencode(kept)}" if kept else ""
    return Webhook(hook_id, f"{base}/webhooks/{hook_id}/{token}{query}", token)


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
            self.hold(key, _number(headers.get("X-RateLimit-Reset-After")) or 0.0)


def _number(value: Any) -> float | None:
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
        if (seconds := _number(value)) is not None:
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


class _NoticeLog:
    """Operator notices go to the log: Discord has no operator channel here. Webhooks and the
    bot both receive every notice, so a repeat within 2 s is logged once."""

    def __init__(self) -> None:
        self.last: tuple[str, float] = ("", 0.0)

    def __call__(self, text: str) -> None:
        if self.last[0] == text and time.monotonic() - self.last[1] < 2.0:
            return
        self.last = (text, time.monotonic())
        logger.warning("discord notice: %s", text)


log_notice = _NoticeLog()


class _Refused(Exception):
    """Discord refused the payload itself (400 / 413): worth one plain-content resend."""

    def __init__(self, error: DeliveryError) -> None:
        super().__init__(str(error))
        self.error = error


def _describe(status: int, body: Any) -> str:
    if isinstance(body, dict):
        return f"HTTP {status}, code {body.get('code', 0)}: {str(body.get('message', ''))[:200]}"
    return f"HTTP {status}"


_FIX = {WEBHOOK_PLATFORM: "remove or replace its URL in LIQBOT_DISCORD_WEBHOOK_URLS",
        CHANNEL_PLATFORM: "give the bot access again, then /subscribe in that channel"}


def classify(destination: str, status: int, body: Any) -> DeliveryError | _Refused:
    """The outbox outcome of a final non-2xx, non-429 answer."""
    text = f"{destination}: Discord answered {_describe(status, body)}"
    if status in (401, 403, 404):
        fix = _FIX.get(destination.partition(":")[0], "check the configuration")
        logger.error("%s disabled: Discord answered %s; nothing more is sent there (%s)",
                     destination, _describe(status, body), fix)
        return DeliveryError(text, gone=True)
    if status in (400, 413):
        return _Refused(DeliveryError(text, permanent=True))
    if status >= 500:
        return DeliveryError(text)
    return DeliveryError(text, permanent=True)


def transport_error(destination: str, exc: BaseException) -> DeliveryError:
    """A send that got no answer; only a failure before the write is certainly unsent."""
    sent = not isinstance(exc, _NOT_SENT)
    return DeliveryError(f"{destination}: {type(exc).__name__} talking to Discord",
                         maybe_sent=sent)


class WebhookNotifier:
    """Alerts to configured webhooks, `discord-webhook:<id>`, with `?wait=true` on each post."""

    name = WEBHOOK_PLATFORM

    def __init__(self, webhooks: Mapping[str, Webhook], limits: DiscordLimits | None = None,
                 quiet_chats: QuietChats | None = None) -> None:
        self.webhooks = dict(webhooks)
        self.limits = limits or DiscordLimits()
        self.parallel = self.limits.parallel
        self.quiet_chats = quiet_chats
        self.gate = RateGate()
        self.pacer = Pacer(self.limits.global_per_s)
        self.disabled: set[str] = set()
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # A separate connect timeout tells "never written" from "maybe delivered".
            timeout = aiohttp.ClientTimeout(total=self.limits.timeout_s,
                                            connect=self.limits.timeout_s / 2)
            self._session = aiohttp.ClientSession(timeout=timeout,
                                                  cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def send(self, alert: Alert, destination: str) -> None:
        hook_id = destination.partition(":")[2]
        hook = self.webhooks.get(hook_id)
        if hook is None:  # left over from a run that had it; its subscription is already off
            raise DeliveryError(f"{destination}: {UNCONFIGURED}", permanent=True)
        if hook_id in self.disabled:
            raise DeliveryError(f"{destination}: disabled after Discord refused it", gone=True)
        flags = SUPPRESS_NOTIFICATIONS if await self._quiet(hook_id) else 0
        try:
            try:
                await self.post(hook, {"embeds": [render_embed(alert)], "flags": flags})
            except _Refused as refused:
                logger.warning("%s refused the embed of %s (%s); resending as plain content",
                               destination, alert.key, refused)
                await self.post(hook, {"content": render_content(alert), "flags": flags})
        except _Refused as again:
            raise again.error from None
        except DeliveryError as exc:
            if exc.gone:
                self.disabled.add(hook_id)
            raise

    async def post(self, hook: Webhook, payload: dict[str, Any]) -> Any:
        """Execute the webhook, waiting out short rate limits and retrying brief 5xx."""
        payload = {**payload, "allowed_mentions": NO_MENTIONS}
        limited = failed = 0
        while True:
            await self._wait_turn(hook)
            status, body, headers = await self._request(hook, payload, failed)
            self.gate.learn(hook.id, headers)
            if status < 300:
                return body
            if status == 429:
                limited += 1
                wait = retry_after_s(body, headers)
                edge = from_edge(body, headers)
                self.gate.hold(GLOBAL if edge or is_global(body, headers) else hook.id, wait)
                logger.warning("%s rate limited for %.2fs%s", hook.destination, wait,
                               " by Discord's edge (no Via header); every webhook waits"
                               if edge else "")
                if edge or limited > self.limits.rate_limit_retries:
                    raise DeliveryError(f"{hook.destination}: rate limited", retry_after_s=wait)
                continue
            if status >= 500 and failed < self.limits.server_retries:
                pause = _number(headers.get("Retry-After")) or self.limits.backoff_s * 2 ** failed
                if pause > self.limits.inline_wait_s:
                    raise DeliveryError(f"{hook.destination}: Discord answered HTTP {status}",
                                        retry_after_s=pause)
                failed += 1
                await asyncio.sleep(pause)
                continue
            raise classify(hook.destination, status, body)

    async def _wait_turn(self, hook: Webhook) -> None:
        wait = self.gate.wait_s(hook.id)
        if wait > self.limits.inline_wait_s:  # nothing was sent: the outbox defers it
            raise DeliveryError(f"{hook.destination}: rate limited for {wait:.1f}s",
                                retry_after_s=wait)
        if wait > 0:
            await asyncio.sleep(wait)

    async def _request(self, hook: Webhook, payload: dict[str, Any],
                       failed: int) -> tuple[int, Any, Mapping[str, str]]:
        await self.pacer.turn()
        try:
            async with self.session.post(hook.url, params={"wait": "true"},
                                         json=payload) as resp:
                raw = await resp.read()
                return resp.status, _json(raw), resp.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = transport_error(hook.destination, exc)
            if error.maybe_sent or failed >= self.limits.server_retries:
                raise error from None
            # Refused before anything was written: one more quick try costs nothing.
            await asyncio.sleep(self.limits.backoff_s * 2 ** failed)
            return await self._request(hook, payload, failed + 1)

    async def _quiet(self, hook_id: str) -> bool:
        return hook_id in await self.quiet_chats() if self.quiet_chats else False

    async def notice(self, text: str) -> None:
        log_notice(text)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw[:200].decode("utf-8", "replace")


def classify_http(destination: str, exc: discord.HTTPException) -> DeliveryError | _Refused:
    """discord.py's exception for a bot-channel send, as an outbox outcome."""
    headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
    body = {"code": exc.code, "message": exc.text}
    if exc.status == 429:  # no `Via` header: discord.py raised instead of sleeping
        wait = retry_after_s(None, headers)
        return DeliveryError(f"{destination}: rate limited", retry_after_s=wait)
    if exc.status == 401:  # the token, not the channel: nothing to disable
        logger.error("%s: Discord rejected the bot token (HTTP 401)", destination)
        return DeliveryError(f"{destination}: Discord answered {_describe(401, body)}")
    return classify(destination, exc.status, body)


class ChannelNotifier:
    """Alerts to channels through the logged-in bot: `discord:<channel id>`."""

    name = CHANNEL_PLATFORM

    def __init__(self, client: discord.Client, limits: DiscordLimits | None = None,
                 quiet_chats: QuietChats | None = None) -> None:
        self.client = client
        self.limits = limits or DiscordLimits()
        self.parallel = self.limits.parallel
        self.quiet_chats = quiet_chats
        self.gate = RateGate()
        self.ready = False  # set by the service once the bot has logged in

    async def send(self, alert: Alert, destination: str) -> None:
        chat = destination.partition(":")[2]
        if not chat.isdigit():
            raise DeliveryError(f"{destination}: not a channel id", permanent=True)
        if (wait := self.gate.wait_s(GLOBAL)) > 0:  # nothing is sent: no invalid request
            raise DeliveryError(f"{destination}: rate limited for {wait:.1f}s",
                                retry_after_s=wait)
        quiet = chat in await self.quiet_chats() if self.quiet_chats else False
        channel = self.client.get_partial_messageable(int(chat))
        try:
            await self._send(destination, channel.send(
                embed=discord.Embed.from_dict(render_embed(alert)), silent=quiet,
                allowed_mentions=discord.AllowedMentions.none()))
        except _Refused as refused:
            logger.warning("%s refused the embed of %s (%s); resending as plain content",
                           destination, alert.key, refused)
            try:
                await self._send(destination, channel.send(
                    render_content(alert), silent=quiet,
                    allowed_mentions=discord.AllowedMentions.none()))
            except _Refused as again:
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
