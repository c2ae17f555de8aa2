"""Sending to Telegram: pacing under the flood limits and mapping Bot API errors to outcomes.

PTB raises one exception per server answer (PLATFORMS.md §1.4); `classify` turns each into
the `DeliveryError` the outbox acts on. `BadRequest` and `TimedOut` subclass `NetworkError`,
so they are checked first: a markup error retried as a network error is how alerts vanish.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, Message, ReplyKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter

from bot.alerts import Alert
from bot.charts import PNG_NAME, ChartMaker, ChartSpec
from bot.chat.attempt import leaving
from bot.chat.base import DeliveryError
from bot.chat.quiet import QuietSource
from bot.destination import Destination
from bot.telegram.render import (
    CAPTION_LIMIT,
    caption_fits,
    render_caption,
    render_html,
    render_plain,
    reply_chunks,
)
from bot.telegram.transport import written

logger = logging.getLogger(__name__)

PLATFORM = "telegram"

# BadRequest descriptions that mean the chat will never accept a message from us.
GONE = ("chat not found", "group chat was deactivated", "peer_id_invalid", "user is deactivated",
        "bot was kicked", "not enough rights to send", "have no rights to send",
        "need administrator rights", "chat_write_forbidden", "channel_private")
# BadRequest descriptions of rejected markup: one plain-text resend follows.
MARKUP = ("can't parse entities", "can't find end tag", "unsupported start tag",
          "unclosed start tag", "unexpected end tag")


@dataclass(frozen=True, slots=True)
class TelegramLimits:
    """Telegram's flood limits (PLATFORMS.md §5) and how we stay under them."""

    messages_per_s: float = 30.0  # the whole bot
    chat_interval_s: float = 1.0  # between messages to one chat
    group_per_min: float = 20.0  # to one group or channel
    # Pace a little under each limit: arrival jitter must not trip a sliding window.
    margin: float = 0.93
    parallel: int = 16  # destinations served at once by one outbox pass
    timeout_s: float = 10.0  # connect / read / write / pool, per request


def rate_limiter(limits: TelegramLimits) -> AIORateLimiter:
    """PTB's limiter, shaped to a sliding-window limit rather than its default bursts.

    AIORateLimiter is a leaky bucket: its default (30 per 1 s) lets 30 requests out at once
    and 30 more within the same second, which a sliding window answers with 429. Here the
    overall bucket leaks at `margin` x the rate and holds a few requests, fewer than the
    margin leaves spare: any second then sees at most burst + margin x rate requests, under
    the limit, and the burst makes up for event-loop lag instead of losing that time (at
    R = 30: two). Groups get a bucket of one. `max_retries=0`: a RetryAfter would otherwise
    hold back every chat, while the outbox defers only the chat that got it.
    """
    rate = limits.messages_per_s * limits.margin
    spare = limits.messages_per_s - rate
    burst = max(1, int(spare) if spare < 6 else int(spare / 2))
    # With max_retries=0 the limiter logs every RetryAfter as an ERROR with a traceback;
    # the outbox handles it and logs one line, so that logger only adds noise.
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    return CountingLimiter(
        overall_max_rate=burst, overall_time_period=burst / rate,
        group_max_rate=1, group_time_period=60 / (limits.group_per_min * limits.margin),
        max_retries=0,
    )


def limiter_ready(limiter: object | None, chat: str) -> bool:
    """Would PTB's AIORateLimiter let a message to `chat` out now, without waiting?

    Answers to commands wait for this before they are marked "going out"
    (bot/telegram/replies.py): a wait inside the limiter after that mark is time in which
    a crash loses the answer. It reads the limiter's buckets, which PTB does not publish;
    if they move, this says yes and the limiter simply waits as before.
    """
    base = getattr(limiter, "_base_limiter", None)
    if base is not None and hasattr(base, "has_capacity") and not base.has_capacity():
        return False
    if chat.startswith(("-", "@")):
        groups = getattr(limiter, "_group_limiters", None)
        key: int | str = chat_ref(chat)
        bucket = groups.get(key) if isinstance(groups, dict) else None
        if bucket is not None and hasattr(bucket, "has_capacity") and not bucket.has_capacity():
            return False
    return True


class CountingLimiter(AIORateLimiter):
    """PTB's limiter; a request it lets through counts as leaving (bot/chat/attempt.py).

    Its waits come before the callback that writes the request, so a kill while an alert
    waits here costs no attempt: only requests that left can have reached a chat.
    """

    async def process_request(self, callback: Callable[..., Any], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        async def leave(*a: Any, **kw: Any) -> Any:
            await leaving()
            return await callback(*a, **kw)

        return await super().process_request(leave, args, kwargs, endpoint, data,
                                             rate_limit_args)


class ChatPacer:
    """One request at a time per chat, and `interval_s` from the end of one to the next."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._free_at: dict[str, float] = {}
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # lock, [users]

    @contextlib.asynccontextmanager
    async def slot(self, chat: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(chat, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                wait = self._free_at.get(chat, 0.0) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    yield
                finally:
                    self.hold(chat, self.interval_s)
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[chat]
            self._prune()

    def free_in(self, chat: str) -> float:
        """Seconds until `chat` may be sent to again (0: now, unless a send holds its lock)."""
        wait = self._free_at.get(chat, 0.0) - time.monotonic()
        return wait if wait > 0 or chat not in self._locks else 0.05

    def hold(self, chat: str, seconds: float) -> None:
        """Keep the chat quiet for `seconds` from now (after a send, or a RetryAfter)."""
        until = time.monotonic() + seconds
        self._free_at[chat] = max(self._free_at.get(chat, 0.0), until)

    def _prune(self) -> None:
        if len(self._free_at) > 4096:
            now = time.monotonic()
            self._free_at = {c: t for c, t in self._free_at.items() if t > now}


def retry_after_s(exc: RetryAfter) -> float:
    """The wait a RetryAfter asks for, in seconds: a timedelta with PTB_TIMEDELTA, else int."""
    value: int | float | dt.timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def maybe_sent(exc: TelegramError) -> bool:
    """Did the request possibly reach Telegram? Only transport errors after the write."""
    return written(exc.__cause__)  # the transport is ours (bot/telegram/transport.py), not httpx


def is_markup_error(exc: TelegramError) -> bool:
    return isinstance(exc, BadRequest) and any(m in exc.message.lower() for m in MARKUP)


def classify(exc: TelegramError, redact: Callable[[str], str]) -> DeliveryError:
    """The outbox outcome of one Bot API error (RELIABILITY.md items 15-18)."""
    if isinstance(exc, RetryAfter):
        wait = retry_after_s(exc)
        return DeliveryError(f"RetryAfter: flood control, retry after {wait:g}s",
                             retry_after_s=wait)
    text = redact(f"{type(exc).__name__}: {exc.message}")
    if isinstance(exc, ChatMigrated):
        return DeliveryError(text, moved_to=str(Destination(PLATFORM, str(exc.new_chat_id))))
    if isinstance(exc, Forbidden):
        return DeliveryError(text, gone=True)
    if isinstance(exc, BadRequest):  # before NetworkError, its base class
        gone = any(g in exc.message.lower() for g in GONE)
        return DeliveryError(text, gone=gone, permanent=not gone)
    if isinstance(exc, NetworkError):  # TimedOut included
        return DeliveryError(text, maybe_sent=maybe_sent(exc))
    if isinstance(exc, InvalidToken):
        logger.error("telegram: the Bot API rejected the token or the method: %s", text)
    return DeliveryError(text)


# One alert goes to every subscribed chat: render it once, not once per chat. The outbox
# stores one payload per alert key, so the key (with its end) names the text.
_RENDERED: dict[tuple[str, str, int], list[str]] = {}


def _rendered(alert: Alert, style: str, render: Callable[[Alert], list[str]]) -> list[str]:
    key = (style, alert.key, alert.end_ms)
    if key not in _RENDERED:
        if len(_RENDERED) > 256:
            _RENDERED.clear()
        _RENDERED[key] = render(alert)
    return _RENDERED[key]


def _caption(alert: Alert) -> list[str]:
    caption = render_caption(alert)
    return list(caption) if caption else []


def _html(alert: Alert) -> list[str]:
    return _rendered(alert, "html", render_html)


def _plain(alert: Alert) -> list[str]:
    return _rendered(alert, "plain", render_plain)


def chat_ref(chat: str) -> int | str:
    """A destination's chat part as the Bot API wants it: an integer id or an @username."""
    try:
        return int(chat)
    except ValueError:
        return chat


class TelegramNotifier:
    """Alerts to Telegram chats through PTB's bot; errors become DeliveryError outcomes."""

    name = PLATFORM

    def __init__(self, bot: Bot, limits: TelegramLimits, redact: Callable[[str], str],
                 quiet_chats: QuietSource | None = None,
                 admin_chats: Sequence[str] = ()) -> None:
        self.bot = bot
        self.admin_chats = tuple(admin_chats)
        self.pacer = ChatPacer(limits.chat_interval_s / limits.margin)
        self.parallel = limits.parallel
        self.redact = redact
        self.quiet_chats = quiet_chats
        self.ready = False  # set by the service once getMe has answered
        # The attempt counts as its request leaves: in our limiter when the bot has it,
        # else right after the chat pacer.
        self._limiter_counts = isinstance(getattr(bot, "rate_limiter", None), CountingLimiter)
        self.counts_departure = True
        self.charts: ChartMaker | None = None  # set by the service once the store is open

    async def send(self, alert: Alert, destination: str) -> None:
        chat = Destination.parse(destination).chat_id
        quiet = await self.quiet_chats(chat, alert) if self.quiet_chats else False
        if await self._send_with_chart(alert, chat, quiet):
            return
        try:
            await self.send_texts(chat, _html(alert), ParseMode.HTML, quiet=quiet)
        except TelegramError as exc:
            if not is_markup_error(exc):
                raise classify(exc, self.redact) from None
            logger.warning("telegram: %s rejected the HTML of %s (%s); resending as plain text",
                           chat, alert.key, self.redact(exc.message))
            try:
                await self.send_texts(chat, _plain(alert), None, quiet=quiet)
            except TelegramError as again:
                raise classify(again, self.redact) from None

    async def _send_with_chart(self, alert: Alert, chat: str, quiet: bool) -> bool:
        """An extreme alert or a digest as one photo with its text as the caption; False when
        it goes as text instead (no chart maker, nothing to draw, or past the caption limit).

        The chart is drawn again from the store on a retry (the outbox keeps the alert, and
        the alert names its window), from the cache when the same run drew it already.
        """
        if not alert.charted or self.charts is None:
            return False
        caption = _rendered(alert, "caption", _caption)
        if not caption:
            logger.info("telegram: %s is past the %d-character caption limit; sent as text",
                        alert.key, CAPTION_LIMIT)
            return False
        png = await self.charts.png(ChartSpec.of(alert))
        if png is None:
            return False
        html_caption, plain_caption = caption
        try:
            await self.send_photo(chat, png, html_caption, ParseMode.HTML, quiet=quiet)
        except TelegramError as exc:
            if not is_markup_error(exc):
                raise classify(exc, self.redact) from None
            logger.warning("telegram: %s rejected the HTML caption of %s (%s); resending plain",
                           chat, alert.key, self.redact(exc.message))
            try:
                await self.send_photo(chat, png, plain_caption, None, quiet=quiet)
            except TelegramError as again:
                raise classify(again, self.redact) from None
        return True

    async def send_chart_reply(self, chat: str, spec: ChartSpec, text: str,
                               markup: InlineKeyboardMarkup | None) -> None:
        """A `/chart` answer: the picture with the text as its caption; text alone when there
        is nothing to draw, and the text after a caption-less picture when it is too long."""
        png = await self.charts.png(spec) if self.charts is not None else None
        if png is None:
            await self.send_texts(chat, reply_chunks(text), None, markup=markup)
        elif caption_fits(text):
            await self.send_photo(chat, png, text, None, markup=markup)
        else:
            await self.send_photo(chat, png, "", None)
            await self.send_texts(chat, reply_chunks(text), None, markup=markup)

    async def send_photo(self, chat: str, png: bytes, caption: str, parse_mode: str | None, *,
                         quiet: bool = False, markup: InlineKeyboardMarkup | None = None) -> Any:
        """One sendPhoto (multipart upload), paced and counted like a text message."""
        async with self.pacer.slot(chat):
            if not self._limiter_counts:
                await leaving()
            try:
                return await self.bot.send_photo(
                    chat_ref(chat), photo=png, filename=PNG_NAME, caption=caption or None,
                    parse_mode=parse_mode, disable_notification=quiet, reply_markup=markup)
            except RetryAfter as exc:
                self.pacer.hold(chat, retry_after_s(exc))
                raise

    async def send_texts(self, chat: str, texts: list[str], parse_mode: str | None, *,
                         quiet: bool = False, markup: InlineKeyboardMarkup | None = None,
                         ) -> Message | None:
        """Send message chunks in order; the keyboard goes on the last one."""
        last = None
        for i, text in enumerate(texts):
            last = await self.send_one(chat, text, parse_mode, quiet=quiet,
                                       markup=markup if i == len(texts) - 1 else None)
        return last

    async def send_one(self, chat: str, text: str, parse_mode: str | None, *,
                       quiet: bool = False,
                       markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None,
                       edit_message_id: int | None = None) -> Any:
        async with self.pacer.slot(chat):
            if not self._limiter_counts:
                await leaving()
            try:
                if edit_message_id is not None:
                    return await self.bot.edit_message_text(
                        text, chat_id=chat_ref(chat), message_id=edit_message_id,
                        parse_mode=parse_mode,
                        reply_markup=markup if isinstance(markup, InlineKeyboardMarkup) else None)
                return await self.bot.send_message(
                    chat_ref(chat), text, parse_mode=parse_mode, disable_notification=quiet,
                    link_preview_options=LinkPreviewOptions(is_disabled=True), reply_markup=markup)
            except RetryAfter as exc:
                self.pacer.hold(chat, retry_after_s(exc))
                raise

    async def notice(self, text: str) -> None:
        """An operator notice (feed health, a disabled chat) to every admin chat.

        Best effort and unstored: a notice that cannot be sent is logged, never retried, so
        a dead admin chat cannot hold up alerts.
        """
        logger.warning("telegram notice: %s", self.redact(text))
        if not self.ready:
            return
        for chat in self.admin_chats:
            try:
                await self.send_one(chat, text, None)
            except TelegramError as exc:
                logger.warning("telegram: notice to admin chat %s failed: %s", chat,
                               self.redact(f"{type(exc).__name__}: {exc.message}"))

    async def close(self) -> None:
        return None
