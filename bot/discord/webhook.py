"""Alerts to configured webhooks, on our own HTTP client rather than discord.py's adapter.

discord.py's webhook adapter sleeps through any `retry_after` and ~25 s of 5xx backoff inside
one send, and logs the webhook URL (token included) at DEBUG; here each answer becomes one
outbox outcome at once (bot/discord/delivery.py has the table).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp

from bot.alerts import Alert
from bot.charts import PNG_NAME, ChartMaker, alert_chart
from bot.chat.attempt import leaving
from bot.chat.base import DeliveryError
from bot.chat.quiet import QuietSource
from bot.destination import Destination
from bot.discord.answers import (
    GLOBAL,
    WEBHOOK_PLATFORM,
    Pacer,
    RateGate,
    Refused,
    classify,
    from_edge,
    is_global,
    number,
    retry_after_s,
    transport_error,
)
from bot.discord.delivery import NO_MENTIONS, SUPPRESS_NOTIFICATIONS, DiscordLimits, log_notice
from bot.discord.render import render_content, render_embed

logger = logging.getLogger(__name__)

UNCONFIGURED = "not in LIQBOT_DISCORD_WEBHOOK_URLS"
# Configured URLs are split by our own pattern: discord.py's accepts only discord.com hosts.
_WEBHOOK_URL = re.compile(r"^(?P<base>https?://[^/?#]+(?:/[^?#]*?)?)/webhooks/(?P<id>\d+)/"
                          r"(?P<token>[^/?#]+)/?(?:\?(?P<query>[^#]*))?$")
API_VERSION = "v10"  # what discord.py 2.7 speaks; an unversioned path gets a retired default


@dataclass(frozen=True, slots=True)
class Webhook:
    """One configured webhook; `url` holds the token and is never logged or stored."""

    id: str
    url: str = field(repr=False)
    token: str = field(repr=False)

    @property
    def destination(self) -> str:
        return str(Destination(WEBHOOK_PLATFORM, self.id))


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


class WebhookNotifier:
    """Alerts to configured webhooks, `discord-webhook:<id>`, with `?wait=true` on each post."""

    name = WEBHOOK_PLATFORM
    ready = True  # no login: a configured URL is all it needs
    counts_departure = True  # `_request` calls leaving() after the pacer (bot/chat/attempt.py)

    def __init__(self, webhooks: Mapping[str, Webhook], limits: DiscordLimits | None = None,
                 quiet_chats: QuietSource | None = None, *, username: str | None = None,
                 avatar_url: str | None = None) -> None:
        self.webhooks = dict(webhooks)
        # Every post signs as this name and picture, not the webhook's own (Execute Webhook's
        # `username` and `avatar_url`).
        self.identity = {k: v for k, v in (("username", username),
                                           ("avatar_url", avatar_url)) if v}
        self.charts: ChartMaker | None = None  # set by the service once the store is open
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
        hook_id = Destination.parse(destination).chat_id
        hook = self.webhooks.get(hook_id)
        if hook is None:  # left over from a run that had it; its subscription is already off
            raise DeliveryError(f"{destination}: {UNCONFIGURED}", permanent=True)
        if hook_id in self.disabled:
            raise DeliveryError(f"{destination}: disabled after Discord refused it", gone=True)
        flags = SUPPRESS_NOTIFICATIONS if await self._quiet(hook_id, alert) else 0
        png = await alert_chart(self.charts, alert)
        try:
            try:
                await self.post(hook, {"embeds": [render_embed(alert, PNG_NAME if png else None)],
                                       "flags": flags}, {PNG_NAME: png} if png else None)
            except Refused as refused:
                logger.warning("%s refused the embed of %s (%s); resending as plain content",
                               destination, alert.key, refused)
                await self.post(hook, {"content": render_content(alert), "flags": flags})
        except Refused as again:
            raise again.error from None
        except DeliveryError as exc:
            if exc.gone:
                self.disabled.add(hook_id)
            raise

    async def post(self, hook: Webhook, payload: dict[str, Any],
                   files: Mapping[str, bytes] | None = None) -> Any:
        """Execute the webhook, waiting out short rate limits and retrying brief 5xx.

        `files` (name -> bytes) go up as a multipart message, which an embed shows by
        `attachment://name`."""
        payload = {**self.identity, **payload, "allowed_mentions": NO_MENTIONS}
        if files:
            payload["attachments"] = [{"id": i, "filename": n} for i, n in enumerate(files)]
        limited = failed = 0
        while True:
            await self._wait_turn(hook)
            status, body, headers = await self._request(hook, payload, failed, files)
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
                pause = number(headers.get("Retry-After")) or self.limits.backoff_s * 2 ** failed
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

    async def _request(self, hook: Webhook, payload: dict[str, Any], failed: int,
                       files: Mapping[str, bytes] | None = None,
                       ) -> tuple[int, Any, Mapping[str, str]]:
        await self.pacer.turn()
        await leaving()
        # A form is consumed by one request: each attempt builds its own.
        body: dict[str, Any] = {"data": _form(payload, files)} if files else {"json": payload}
        try:
            async with self.session.post(hook.url, params={"wait": "true"}, **body) as resp:
                raw = await resp.read()
                return resp.status, _json(raw), resp.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = transport_error(hook.destination, exc)
            if error.maybe_sent or failed >= self.limits.server_retries:
                raise error from None
            # Refused before anything was written: one more quick try costs nothing.
            await asyncio.sleep(self.limits.backoff_s * 2 ** failed)
            return await self._request(hook, payload, failed + 1, files)

    async def _quiet(self, hook_id: str, alert: Alert) -> bool:
        return await self.quiet_chats(hook_id, alert) if self.quiet_chats else False

    async def notice(self, text: str) -> None:
        log_notice(text)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _form(payload: dict[str, Any], files: Mapping[str, bytes]) -> aiohttp.FormData:
    """A message with files as Discord takes it: `payload_json`, then `files[i]` parts."""
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    for i, (name, data) in enumerate(files.items()):
        form.add_field(f"files[{i}]", data, filename=name, content_type="image/png")
    return form


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
