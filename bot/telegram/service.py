"""Telegram: python-telegram-bot inside liqbot's own loop, thin over bot/commands.py.

Commands and buttons run `dispatch` / `press` on the writer thread, inside the same
transaction that records the update offset and the pending reply, so a restart neither
repeats nor loses a command (PLATFORMS.md §1.5). Alerts go out through the outbox and
`TelegramNotifier`; this module owns the lifecycle: connect, menu, polling, stop.
"""

from __future__ import annotations

import os

# PTB is moving RetryAfter.retry_after to timedelta; opt in so reading it never warns.
os.environ.setdefault("PTB_TIMEDELTA", "true")

import asyncio  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from telegram import (  # noqa: E402
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType  # noqa: E402
from telegram.error import (  # noqa: E402
    BadRequest,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (  # noqa: E402
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.commands import COMMANDS, Ctx, Reply, dispatch, press  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.ops import redact  # noqa: E402
from bot.state.subscriptions import Subscriptions  # noqa: E402
from bot.telegram.delivery import (  # noqa: E402
    TelegramLimits,
    TelegramNotifier,
    rate_limiter,
    seconds,
)
from bot.telegram.render import reply_chunks  # noqa: E402
from bot.telegram.transport import AiohttpRequest  # noqa: E402
from feeds.clock import Clock, WallClock  # noqa: E402
from feeds.store import Store  # noqa: E402

logger = logging.getLogger(__name__)

PLATFORM = "telegram"
ANONYMOUS_ADMIN_ID = 1087968824  # GroupAnonymousBot: an admin posting as the group
OFFSET_KEY = "telegram:last_update_id"
REPLY_KEY = "telegram:pending_reply"
UPDATES = ["message", "callback_query", "my_chat_member"]
_GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)
_ADMINS = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


def file_url(base_url: str) -> str:
    """The file URL that goes with a Bot API URL: a trailing `/bot` becomes `/file/bot`."""
    if base_url.rstrip("/").endswith("/bot"):
        return base_url.rstrip("/")[:-4] + "/file/bot"
    head, sep, tail = base_url.rpartition("/bot")  # the path's, not a host named bot…
    return head + "/file/bot" + tail if sep else base_url


def build_application(settings: Settings, limits: TelegramLimits) -> Application:
    """PTB on our base URL over HTTP/1.1, paced by AIORateLimiter; no JobQueue (ours runs)."""
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


class TelegramService:
    """The Telegram side of a run: notifier for the outbox, commands in live mode."""

    name = PLATFORM

    def __init__(self, settings: Settings, *, limits: TelegramLimits | None = None,
                 clock: Clock | None = None, poll_timeout_s: float = 10.0,
                 startup_wait_s: float = 5.0, retry_cap_s: float = 30.0) -> None:
        self.settings = settings
        self.limits = limits or TelegramLimits()
        self.clock = clock or WallClock()
        self.poll_timeout_s, self.startup_wait_s = poll_timeout_s, startup_wait_s
        self.retry_cap_s = retry_cap_s
        self.redact = redact.install([settings.telegram_token])
        self.app = build_application(settings, self.limits)
        self.notifier = TelegramNotifier(self.app.bot, self.limits, self.redact, self._quiet_chats,
                                         admin_chats=settings.telegram_admin_chat_ids)
        self.admins = AdminCache(self.app)
        self.writer: Any = None
        self.last_update_id = 0
        self._settled = asyncio.Event()  # connected, or given up for good
        self._task: asyncio.Task[None] | None = None
        self._quiet: tuple[float, set[str]] = (0.0, set())
        self._install_handlers()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, writer: Any, *, live: bool) -> None:
        """Register static chats, then connect in the background."""
        self.writer = writer
        await writer.run(Subscriptions(writer.store).ensure_static, PLATFORM,
                         self.settings.telegram_chat_ids, self.clock.now_ms(), reenable=True)
        self._task = asyncio.create_task(self._connect(live), name="telegram-connect")
        if not live:  # a replay sends at its first tick; a live run carries on regardless
            await self.wait_ready(self.startup_wait_s)

    async def wait_ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._settled.wait(), timeout_s)
        except TimeoutError:
            pass
        return self.notifier.ready

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()  # one last getUpdates confirms what was fetched
        if self.app.running:
            await self.app.stop()
        self.notifier.ready = False
        await self.app.shutdown()
        await self.app.bot.shutdown()  # closes the HTTP pools even if getMe never answered

    async def _connect(self, live: bool) -> None:
        """getMe (and in live mode the menu and polling) with capped, jittered retries."""
        attempt = 0
        while True:
            try:
                await self.app.initialize()
                self.notifier.ready = True
                if live:
                    await self._start_polling()
                logger.info("telegram: connected as @%s%s", self.app.bot.username,
                            " and polling for commands" if live else "")
                break
            except InvalidToken as exc:
                logger.error("telegram: the Bot API rejected the token (%s); Telegram is off "
                             "for this run", self.redact(exc.message))
                self.notifier.ready = False
                break
            except Exception as exc:  # network down, Bot API 5xx: keep trying, never crash
                attempt += 1
                delay = min(self.retry_cap_s, 2 ** min(attempt, 10) / 2) * random.uniform(0.8, 1)
                logger.warning("telegram: cannot reach the Bot API (%s); retry %d in %.1fs",
                               self.redact(str(exc)), attempt, delay)
                await asyncio.sleep(delay)
        self._settled.set()

    async def _start_polling(self) -> None:
        bot = self.app.bot
        await bot.set_my_commands(command_menu())
        self.last_update_id = int(await self.writer.run(_get, self.store, OFFSET_KEY) or 0)
        await self._resend_pending_reply()
        await bot.delete_webhook()
        if self.last_update_id:
            # Confirm what we handled before the restart: PTB's updater starts from offset 0.
            await bot.get_updates(offset=self.last_update_id + 1, limit=1,
                                  timeout=dt.timedelta(0))
        if not self.app.running:
            await self.app.start()
        await self.app.updater.start_polling(  # type: ignore[union-attr]
            timeout=dt.timedelta(seconds=self.poll_timeout_s), allowed_updates=UPDATES,
            drop_pending_updates=False, bootstrap_retries=-1,
            error_callback=self._polling_error)

    def _polling_error(self, exc: TelegramError) -> None:
        logger.warning("telegram: polling failed: %s", self.redact(str(exc)))

    @property
    def store(self) -> Store:
        return self.writer.store  # type: ignore[no-any-return]

    # -- handlers --------------------------------------------------------------------------

    def _install_handlers(self) -> None:
        app = self.app
        app.add_handler(TypeHandler(Update, self._skip_seen), group=-1)
        for name in COMMANDS:
            app.add_handler(CommandHandler(name, self._on_command))
        # Unknown commands get a hint in private chats; in groups they may be another bot's.
        app.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE,
                                       self._on_command))
        app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self._on_migrate))
        app.add_handler(CallbackQueryHandler(self._on_button))
        app.add_handler(ChatMemberHandler(self._on_membership, ChatMemberHandler.MY_CHAT_MEMBER))
        app.add_handler(TypeHandler(Update, self._mark_done), group=1000)
        app.add_error_handler(self._on_error)

    async def _skip_seen(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        if update.update_id <= self.last_update_id:
            logger.info("telegram: update %d was handled before a restart; skipped",
                        update.update_id)
            raise ApplicationHandlerStop

    async def _mark_done(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        # Runs after every other group, also after a handler raised: no poison replays.
        if update.update_id > self.last_update_id:
            await self.writer.run(self.store.set_meta, OFFSET_KEY, str(update.update_id))
            self.last_update_id = update.update_id

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        name = message.text.split(maxsplit=1)[0][1:].split("@", 1)[0].lower()
        group = chat.type in _GROUPS
        admin = True
        command = COMMANDS.get(name)
        if group and command is not None and command.admin:
            admin = is_anonymous_admin(message, chat.id) or await self.admins.is_admin(
                chat.id, message.from_user.id if message.from_user else None)
        ctx = Ctx(PLATFORM, str(chat.id), self.clock.now_ms(), group, admin)
        args = list(context.args or message.text.split()[1:])
        pending = await self.writer.run(self._apply, update.update_id, ctx,
                                        lambda store: dispatch(store, ctx, name, args))
        self.last_update_id = max(self.last_update_id, update.update_id)
        await self._reply(pending)

    async def _on_button(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        message = query.message if isinstance(query.message, Message) else None
        if message is None or not query.data:
            await query.answer()
            return
        chat = message.chat
        group = chat.type in _GROUPS
        admin = not group or await self.admins.is_admin(chat.id, query.from_user.id)
        ctx = Ctx(PLATFORM, str(chat.id), self.clock.now_ms(), group, admin)
        data = query.data
        reply = await self.writer.run(self._apply, update.update_id, ctx,
                                      lambda store: press(store, ctx, data), message.message_id)
        self.last_update_id = max(self.last_update_id, update.update_id)
        try:
            await query.answer(reply["text"][:200] if reply["error"] else None)
        except TelegramError as exc:  # the query expired: the edit below still tells them
            logger.info("telegram: answerCallbackQuery failed: %s", exc.message)
        if reply["error"]:
            await self.writer.run(self.store.set_meta, REPLY_KEY, "")
        else:
            await self._reply(reply)

    async def _on_migrate(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None and message.migrate_to_chat_id:
            await self.writer.run(Subscriptions(self.store).migrate, PLATFORM,
                                  str(message.chat.id), str(message.migrate_to_chat_id),
                                  self.clock.now_ms())
            logger.info("telegram: chat %s became %s", message.chat.id,
                        message.migrate_to_chat_id)

    async def _on_membership(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if change is not None and change.new_chat_member.status in (
                ChatMemberStatus.LEFT, ChatMemberStatus.BANNED):
            await self.writer.run(Subscriptions(self.store).deactivate, PLATFORM,
                                  str(change.chat.id), self.clock.now_ms(),
                                  f"bot removed from the chat ({change.new_chat_member.status})")

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        uid = update.update_id if isinstance(update, Update) else None
        logger.error("telegram: update %s failed: %s", uid,
                     self.redact(repr(context.error)), exc_info=context.error)

    # -- replies ---------------------------------------------------------------------------

    def _apply(self, update_id: int, ctx: Ctx, action: Any,
               edit_message_id: int | None = None) -> dict[str, Any]:
        """Writer thread: the command's effect, the offset and the reply commit together."""
        store = self.store
        with store.transaction():
            reply: Reply = action(store)
            pending = {"chat": ctx.chat_id, "text": reply.text, "error": reply.error,
                       "buttons": [list(map(list, row)) for row in reply.buttons],
                       "edit": edit_message_id}
            store.set_meta(REPLY_KEY, json.dumps(pending))
            store.set_meta(OFFSET_KEY, str(update_id))  # ids only grow; _skip_seen saw to it
        return pending

    async def _reply(self, pending: dict[str, Any]) -> None:
        """Send a committed reply, then forget it; a crash in between resends it once."""
        reply = Reply(pending["text"], tuple(tuple(tuple(b) for b in row)
                                             for row in pending["buttons"]), pending["error"])
        chat, markup = pending["chat"], keyboard(reply)
        for attempt in range(3):
            try:
                if pending.get("edit") is not None:
                    await self._edit(chat, pending["edit"], reply.text, markup)
                else:
                    await self.notifier.send_texts(chat, reply_chunks(reply.text), None,
                                                   markup=markup)
                break
            except RetryAfter as exc:
                wait = seconds(exc.retry_after)
                if wait > 10 or attempt == 2:
                    logger.warning("telegram: reply to %s dropped: flood wait %.0fs", chat, wait)
                    break
                await asyncio.sleep(wait)
            except (BadRequest, Forbidden) as exc:  # retrying changes nothing
                logger.warning("telegram: reply to %s refused: %s", chat, exc.message)
                break
            except TelegramError as exc:
                logger.warning("telegram: reply to %s failed (%s); attempt %d", chat,
                               self.redact(exc.message), attempt + 1)
                await asyncio.sleep(0.5 * 2 ** attempt)
        await self.writer.run(self.store.set_meta, REPLY_KEY, "")

    async def _edit(self, chat: str, message_id: int, text: str,
                    markup: InlineKeyboardMarkup | None) -> None:
        try:
            await self.notifier.send_one(chat, reply_chunks(text)[0], None, markup=markup,
                                         edit_message_id=int(message_id))
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise

    async def _resend_pending_reply(self) -> None:
        raw = await self.writer.run(_get, self.store, REPLY_KEY)
        if raw:
            logger.info("telegram: resending the reply that a restart interrupted")
            await self._reply(json.loads(raw))

    async def _quiet_chats(self) -> set[str]:
        """Chats that asked for silent notifications; re-read at most every few seconds."""
        at, chats = self._quiet
        if time.monotonic() - at > 5.0 and self.writer is not None:
            chats = await self.writer.run(_quiet, self.store)
            self._quiet = (time.monotonic(), chats)
        return chats


def _get(store: Store, key: str) -> str | None:
    return store.get_meta(key)


def _quiet(store: Store) -> set[str]:
    return Subscriptions(store).quiet_chats(PLATFORM)

