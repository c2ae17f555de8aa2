"""Telegram: python-telegram-bot inside liqbot's own loop, thin over bot/commands.py.

Updates are stored as they are polled and handled from the store (bot/telegram/inbox.py).
Commands and buttons run `dispatch` / `press` on the writer thread, in the transaction that
marks the update handled and commits its answer; answers go out through per-chat queues
(bot/telegram/replies.py), so no handler waits on a chat's rate limit. A restart handles
what was received and not handled, and sends what was answered and not sent
(docs/RELIABILITY.md, "Commands"). Alerts go out through the outbox and `TelegramNotifier`;
this module owns the lifecycle: connect, menu, polling, stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.charts import ChartSpec, chart_maker
from bot.chat.lifecycle import ConnectedService, keep_trying
from bot.commands import COMMANDS, Ctx, Reply, dispatch, press
from bot.config import Settings
from bot.ops import redact
from bot.state.subscriptions import Subscriptions
from bot.state.updates import UpdateQueue
from bot.state.writer import Writer
from bot.telegram.app import (
    KEYBOARD_NOTE,
    AdminCache,
    build_application,
    command_menu,
    is_anonymous_admin,
    keyboard,
    reply_keyboard,
)
from bot.telegram.delivery import PLATFORM, TelegramLimits, TelegramNotifier, limiter_ready
from bot.telegram.inbox import Inbox, InboxLimits, command_name
from bot.telegram.render import reply_chunks
from bot.telegram.replies import ReplySender
from feeds.clock import Clock, WallClock
from feeds.store import Store

logger = logging.getLogger(__name__)

OFFSET_KEY = "telegram:last_update_id"  # the last update stored (received), not handled
REPLY_KEY = "telegram:pending_reply"  # before issue 15: one committed answer, sent on restart
UPDATES = ["message", "callback_query", "my_chat_member"]
_GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)


class TelegramService(ConnectedService):
    """The Telegram side of a run: notifier for the outbox, commands in live mode."""

    name = PLATFORM

    def __init__(self, settings: Settings, *, limits: TelegramLimits | None = None,
                 clock: Clock | None = None, poll_timeout_s: float = 10.0,
                 startup_wait_s: float = 5.0, retry_cap_s: float = 30.0,
                 inbox: InboxLimits | None = None) -> None:
        self.settings = settings
        self.limits = limits or TelegramLimits()
        self.clock = clock or WallClock()
        self.poll_timeout_s = poll_timeout_s
        self.retry_cap_s = retry_cap_s
        self.redact = redact.install([settings.telegram_token])
        self.app = build_application(settings, self.limits)
        super().__init__(PLATFORM, lambda: self.notifier.ready, startup_wait_s=startup_wait_s,
                         now_ms=self.clock.now_ms)
        self.notifier = TelegramNotifier(self.app.bot, self.limits, self.redact, self.quiet,
                                         admin_chats=settings.telegram_admin_chat_ids)
        self.admins = AdminCache(self.app)
        self.inbox_limits = inbox or InboxLimits()
        self.inbox: Inbox | None = None
        self.replies: ReplySender | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._install_handlers()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, writer: Writer, *, live: bool) -> None:
        """Register static chats, then connect in the background."""
        await writer.run(Subscriptions(writer.store).ensure_static, PLATFORM,
                         self.settings.telegram_chat_ids, self.clock.now_ms(), reenable=True)
        self.notifier.charts = chart_maker(writer)
        self.notifier.charts.warm_up()
        await self.launch(writer, self._connect(live), live=live)

    async def stop(self, grace_s: float = 2.0) -> None:
        """Prompt: the update and the answer in hand finish; the rest stays stored."""
        await self.lifecycle.cancel()
        if self.inbox is not None:
            self.inbox.stop()
        if self.replies is not None:
            self.replies.stop()
        if self._tasks:
            polling, *workers = self._tasks
            polling.cancel()  # a poll in flight confirms nothing: it was not answered yet
            _, late = await asyncio.wait(self._tasks, timeout=grace_s)
            for task in late:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._tasks = []
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
        await self._resend_pending_reply()
        await bot.delete_webhook()
        queue = UpdateQueue(self.store, PLATFORM, OFFSET_KEY)
        await self.writer.run(queue.prune, self.clock.now_ms())
        limits = self.limits
        self.replies = ReplySender(
            self._send_reply, self.notifier.pacer, self.writer, queue, redact=self.redact,
            group_interval_s=60 / (limits.group_per_min * limits.margin),
            ready=lambda chat: limiter_ready(self.app.bot.rate_limiter, chat))
        await self.replies.load()
        self.inbox = Inbox(bot, self.writer, queue, self.clock, process=self.app.process_update,
                           answer=self._answer, is_command=_is_command,
                           limits=self.inbox_limits, poll_timeout_s=self.poll_timeout_s,
                           read_timeout_s=limits.timeout_s, allowed=UPDATES)
        self._tasks = [asyncio.create_task(self.inbox.poll(self._polling_error),
                                           name="telegram-poll"),
                       asyncio.create_task(self.inbox.handle(), name="telegram-handle"),
                       asyncio.create_task(self.replies.run(), name="telegram-replies")]

    def _polling_error(self, exc: Exception) -> None:
        logger.warning("telegram: polling failed: %s", self.redact(str(exc)))

    # -- handlers --------------------------------------------------------------------------

    def _install_handlers(self) -> None:
        app = self.app
        for name in COMMANDS:
            app.add_handler(CommandHandler(name, self._on_command))
        # Unknown commands get a hint in private chats; in groups they may be another bot's.
        app.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE,
                                       self._on_command))
        app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self._on_migrate))
        app.add_handler(CallbackQueryHandler(self._on_button))
        app.add_handler(ChatMemberHandler(self._on_membership, ChatMemberHandler.MY_CHAT_MEMBER))
        app.add_error_handler(self._on_error)

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
        ctx = Ctx(PLATFORM, str(chat.id), self.clock.now_ms(), group, admin,
                  operator=self._operator(chat.id))
        args = list(context.args or message.text.split()[1:])
        await self._run(update.update_id, ctx, lambda store: dispatch(store, ctx, name, args))

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
        ctx = Ctx(PLATFORM, str(chat.id), self.clock.now_ms(), group, admin,
                  operator=self._operator(chat.id))
        data = query.data
        reply = await self._run(update.update_id, ctx, lambda store: press(store, ctx, data),
                                message.message_id)
        try:  # one quick call, not paced per chat: the spinner on the button stops
            await query.answer(reply["text"][:200] if reply["error"] else None)
        except TelegramError as exc:  # the query expired: the edit still tells them
            logger.info("telegram: answerCallbackQuery failed: %s", exc.message)

    def _operator(self, chat_id: int) -> bool:
        """An operators' chat (LIQBOT_TELEGRAM_ADMIN_CHAT_IDS): /status shows error detail."""
        return str(chat_id) in self.settings.telegram_admin_chat_ids

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

    async def _run(self, update_id: int, ctx: Ctx, action: Callable[[Store], Reply],
                   edit_message_id: int | None = None) -> dict[str, Any]:
        """Run a command or a press; its answer, once committed, joins the chat's queue."""
        pending, keep = await self.writer.run(self._apply, update_id, ctx, action,
                                              edit_message_id)
        if keep:
            self._queue_answer(update_id, pending)
        return pending

    def _apply(self, update_id: int, ctx: Ctx, action: Callable[[Store], Reply],
               edit_message_id: int | None) -> tuple[dict[str, Any], bool]:
        """Writer thread: the command's effect, 'handled' and its answer commit together."""
        store, queue = self.store, self._queue()
        with store.transaction():
            reply: Reply = action(store)
            edit = edit_message_id if reply.edit else None
            pending = {"chat": ctx.chat_id, "text": reply.text, "error": reply.error,
                       "buttons": [list(map(list, row)) for row in reply.buttons],
                       "keyboard": [list(row) for row in reply.keyboard], "edit": edit,
                       "chart": reply.chart}
            # A refused button press is answered on the button (answerCallbackQuery) only.
            keep = not (reply.error and edit_message_id is not None)
            queue.finish(update_id, json.dumps(pending) if keep else None)
        return pending, keep

    def _queue(self) -> UpdateQueue:
        assert self.replies is not None, "commands are handled only while polling"
        return self.replies.queue

    def _queue_answer(self, update_id: int, pending: dict[str, Any], first: bool = False) -> None:
        if self.replies is not None:
            self.replies.add(update_id, pending, first=first)

    async def _answer(self, update_id: int, chat: str, text: str) -> None:
        """A reply the inbox gives instead of running a command (stale, flooding): it goes
        before the chat's other answers, so a flooding chat hears at once."""
        pending = {"chat": chat, "text": text, "error": True, "buttons": [], "edit": None}
        queue = self._queue()
        await self.writer.run(queue.finish, update_id, json.dumps(pending))
        self._queue_answer(update_id, pending, first=True)

    async def _send_reply(self, pending: dict[str, Any]) -> None:
        """One committed answer to Telegram; errors go to the ReplySender that called."""
        reply = Reply(pending["text"], tuple(tuple(tuple(b) for b in row)
                                             for row in pending["buttons"]), pending["error"])
        chat, markup = pending["chat"], keyboard(reply)
        if pending.get("edit") is not None:
            await self._edit(chat, pending["edit"], reply.text, markup)
            return
        if pending.get("chart"):
            await self.notifier.send_chart_reply(chat, ChartSpec.parse(pending["chart"]),
                                                 reply.text, markup)
        else:
            await self.notifier.send_texts(chat, reply_chunks(reply.text), None, markup=markup)
        if pending.get("keyboard"):  # a message has one markup: the inline one went above
            try:  # a nicety: its failure must not send the answer above again
                await self.notifier.send_one(chat, KEYBOARD_NOTE, None,
                                             markup=reply_keyboard(pending["keyboard"]))
            except TelegramError as exc:
                logger.info("telegram: the keyboard for %s was not sent: %s", chat,
                            self.redact(exc.message))

    async def _edit(self, chat: str, message_id: int, text: str,
                    markup: InlineKeyboardMarkup | None) -> None:
        try:
            await self.notifier.send_one(chat, reply_chunks(text)[0], None, markup=markup,
                                         edit_message_id=int(message_id))
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise

    async def _resend_pending_reply(self) -> None:
        """A file from before the update queue may hold one committed answer: send it once."""
        raw = await self.writer.run(_get, self.store, REPLY_KEY)
        if raw:
            logger.info("telegram: resending the reply that a restart interrupted")
            try:
                await self._send_reply(json.loads(raw))
            except TelegramError as exc:
                logger.warning("telegram: that reply failed: %s", self.redact(exc.message))
            await self.writer.run(self.store.set_meta, REPLY_KEY, "")


def _is_command(update: Update, username: str | None) -> bool:
    """Does the inbox's stale / flood guard apply? The commands the handlers would answer."""
    name = command_name(update, username)
    if name is None or update.effective_chat is None:
        return False
    return name in COMMANDS or update.effective_chat.type == ChatType.PRIVATE


def _get(store: Store, key: str) -> str | None:
    return store.get_meta(key)

