"""PTB's Application as liqbot builds it, and what the handlers need from Telegram's model.

The base URL, our aiohttp transport and the rate limiter are set here; admin checks for
group commands (getChatAdministrators, cached) and the inline keyboards of replies too.
"""

from __future__ import annotations

import logging
import os
import time

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder

from bot.commands import COMMANDS, Reply
from bot.config import Settings
from bot.telegram.delivery import TelegramLimits, rate_limiter
from bot.telegram.transport import AiohttpRequest

logger = logging.getLogger(__name__)

KEYBOARD_NOTE = "The common commands are on the keyboard below."
ANONYMOUS_ADMIN_ID = 1087968824  # GroupAnonymousBot: an admin posting as the group
_ADMINS = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


def file_url(base_url: str) -> str:
    """The file URL that goes with a Bot API URL: a trailing `/bot` becomes `/file/bot`."""
    if base_url.rstrip("/").endswith("/bot"):
        return base_url.rstrip("/")[:-4] + "/file/bot"
    head, sep, tail = base_url.rpartition("/bot")  # the path's, not a host named bot…
    return head + "/file/bot" + tail if sep else base_url


def use_timedelta_periods() -> None:
    """Opt in to PTB 22's timedelta time periods, so reading them never warns.

    PTB reads PTB_TIMEDELTA each time a period is read (RetryAfter does so as it is built),
    not at import: setting it before the first Bot API call is enough, and it is set by the
    code that needs it rather than by importing a module.
    """
    os.environ.setdefault("PTB_TIMEDELTA", "true")


def build_application(settings: Settings, limits: TelegramLimits) -> Application:
    """PTB on our base URL over HTTP/1.1, paced by AIORateLimiter; no JobQueue (ours runs)."""
    use_timedelta_periods()
    return (
        ApplicationBuilder().token(settings.telegram_token or "")
        .base_url(settings.telegram_api_url).base_file_url(file_url(settings.telegram_api_url))
        .request(AiohttpRequest(pool=limits.parallel + 8, timeout_s=limits.timeout_s))
        .get_updates_request(AiohttpRequest(pool=2, timeout_s=limits.timeout_s))
        .rate_limiter(rate_limiter(limits)).job_queue(None).concurrent_updates(False)
        .build()
    )


def command_menu() -> list[BotCommand]:
    """setMyCommands reads the same table as handler registration and /help."""
    return [BotCommand(c.name, c.help[:256]) for c in COMMANDS.values()]


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)
                                  for label, data in row] for row in reply.buttons])


def reply_keyboard(rows: list[list[str]]) -> ReplyKeyboardMarkup:
    """Commands that stay under the input field (is_persistent) until another keyboard."""
    return ReplyKeyboardMarkup([[KeyboardButton(text) for text in row] for row in rows],
                               resize_keyboard=True, is_persistent=True)


def is_anonymous_admin(message: Message | None, chat_id: int) -> bool:
    """An admin posting as the group: GroupAnonymousBot, or the group itself as sender_chat."""
    if message is None:
        return False
    if message.sender_chat is not None:
        return message.sender_chat.id == chat_id  # a linked channel is not an admin
    return message.from_user is not None and message.from_user.id == ANONYMOUS_ADMIN_ID


class AdminCache:
    """getChatAdministrators per group, kept `ttl_s`: one call per group, not per command.

    A miss re-reads a list older than `recheck_s`, so a newly promoted admin waits seconds,
    not the whole `ttl_s`.
    """

    def __init__(self, app: Application, ttl_s: float = 300.0, recheck_s: float = 30.0) -> None:
        self.app, self.ttl_s, self.recheck_s = app, ttl_s, recheck_s
        self._cache: dict[int, tuple[float, frozenset[int]]] = {}

    async def is_admin(self, chat_id: int, user_id: int | None) -> bool:
        if user_id is None:
            return False
        if user_id == ANONYMOUS_ADMIN_ID:
            return True
        hit = self._cache.get(chat_id)
        age = time.monotonic() - hit[0] if hit else 0.0
        if hit is None or age > self.ttl_s or (user_id not in hit[1] and age > self.recheck_s):
            try:
                members = await self.app.bot.get_chat_administrators(chat_id)
            except TelegramError as exc:
                logger.warning("telegram: cannot list admins of %s: %s", chat_id, exc.message)
                return False
            ids = frozenset(m.user.id for m in members if m.status in _ADMINS)
            hit = self._cache[chat_id] = (time.monotonic(), ids)
        return user_id in hit[1]
