"""Telegram: python-telegram-bot inside liqbot's own loop, thin over bot/commands.py.

Commands and buttons run `dispatch` / `press` on the writer thread, inside the same
transaction that records the update offset and the pending reply, so a restart neither
repeats nor loses a command (PLATFORMS.md §1.5). Alerts go out through the outbox and
`TelegramNotifier`; this module owns the lifecycle: connect, menu, polling, stop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.chat.lifecycle import ConnectedService, keep_trying
from bot.commands import COMMANDS, Ctx, Reply, dispatch, press
from bot.config import Settings
from bot.ops import redact
from bot.state.subscriptions import Subscriptions
from bot.state.writer import Writer
from bot.telegram.app import (
    AdminCache,
    build_application,
    command_menu,
    is_anonymous_admin,
    keyboard,
)
from bot.telegram.delivery import PLATFORM, TelegramLimits, TelegramNotifier, retry_after_s
from bot.telegram.render import reply_chunks
from feeds.clock import Clock, WallClock
from feeds.store import Store

logger = logging.getLogger(__name__)

OFFSET_KEY = "telegram:last_update_id"
REPLY_KEY = "telegram:pending_reply"
UPDATES = ["message", "callback_query", "my_chat_member"]
_GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)


class TelegramService(ConnectedService):
    """The Telegram side of a run: notifier for the outbox, commands in live mode."""

    name = PLATFORM

    def __init__(self, settings: Settings, *, limits: TelegramLimits | None = None,
                 clock: Clock | None = None, poll_timeout_s: float = 10.0,
                 startup_wait_s: float = 5.0, retry_cap_s: float = 30.0) -> None:
        self.settings = settings
        self.limits = limits or TelegramLimits()
        self.clock = clock or WallClock()
        self.poll_timeout_s = poll_timeout_s
        self.retry_cap_s = retry_cap_s
        self.redact = redact.install([settings.telegram_token])
        self.app = build_application(settings, self.limits)
        super().__init__(PLATFORM, lambda: self.notifier.ready, startup_wait_s=startup_wait_s,
                         read_quiet=_quiet)
        self.notifier = TelegramNotifier(self.app.bot, self.limits, self.redact, self.quiet,
                                         admin_chats=settings.telegram_admin_chat_ids)
        self.admins = AdminCache(self.app)
        self.last_update_id = 0
        self._install_handlers()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, writer: Writer, *, live: bool) -> None:
        """Register static chats, then connect in the background."""
        await writer.run(Subscriptions(writer.store).ensure_static, PLATFORM,
                         self.settings.telegram_chat_ids, self.clock.now_ms(), reenable=True)
        await self.launch(writer, self._connect(live), live=live)

    async def stop(self) -> None:
        await self.lifecycle.cancel()
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()  # one last getUpdates confirms what was fetched
        if self.app.running:
            await self.app.stop()
        self.notifier.ready = False
        await self.app.shutdown()
        await self.app.bot.shutdown()  # closes the HTTP pools even if getMe never answered

    async def _connect(self, live: bool) -> None:
        """getMe (and in live mode the menu and polling), retried until in or refused."""
        async def attempt() -> None:
            await self.app.initialize()
            self.notifier.ready = True
            if live:
                await self._start_polling()

        try:  # network down, Bot API 5xx: keep trying, never crash
            await keep_trying(attempt, platform=PLATFORM, what="cannot reach the Bot API",
                              cap_s=self.retry_cap_s, transient=(Exception,),
                              fatal=(InvalidToken,), describe=lambda e: self.redact(str(e)))
            logger.info("telegram: connected as @%s%s", self.app.bot.username,
                        " and polling for commands" if live else "")
        except InvalidToken as exc:
            logger.error("telegram: the Bot API rejected the token (%s); Telegram is off "
                         "for this run", self.redact(exc.message))
            self.notifier.ready = False
        self.lifecycle.settle()

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

    def _apply(self, update_id: int, ctx: Ctx, action: Callable[[Store], Reply],
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
                wait = retry_after_s(exc)
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


def _get(store: Store, key: str) -> str | None:
    return store.get_meta(key)


def _quiet(store: Store) -> set[str]:
    return Subscriptions(store).quiet_chats(PLATFORM)

