"""Updates in: polled, stored, then handled from the store (bot/state/updates.py).

PTB's Updater asks for the next batch, which confirms the last one to Telegram, before the
handlers have run: a crash then loses every update it fetched. Here `poll` stores each
batch before it asks again, and `handle` works from what was stored, so a restart finishes
what was received. Two guards sit before the handlers: a command older than `stale_after_s`
(the bot was down) gets a short apology instead of a stale answer, and a chat sending more
than `per_minute` commands a minute gets one "slow down" and its further commands dropped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from telegram import Bot, Update

from bot.state.updates import QueuedUpdate, Received, UpdateQueue
from bot.state.writer import Writer
from feeds.clock import Clock

logger = logging.getLogger(__name__)

SLOW_DOWN = ("Slow down: at most {n} commands a minute. I'm ignoring this chat's commands "
             "until the minute is over.")
RESTARTED = ("Sorry, I was restarting and your {command} ({age} old) was not run. "
             "Send it again if you still need it.")


@dataclass(frozen=True, slots=True)
class InboxLimits:
    per_minute: int = 20  # commands (and button presses) per chat per minute
    stale_after_s: float = 180.0  # older commands get RESTARTED instead of an answer
    backlog_s: float = 30.0  # received this soon after a start: waited while the bot was down
    batch: int = 100  # getUpdates limit


class FloodGate:
    """Per chat, a sliding minute of admitted commands: 'ok', then one 'warn', then 'drop'."""

    def __init__(self, per_minute: int, span_s: float = 60.0) -> None:
        self.per_minute, self.span_s = per_minute, span_s
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._warned: set[str] = set()

    def admit(self, chat: str, now: float) -> str:
        seen = self._seen[chat]
        while seen and seen[0] <= now - self.span_s:
            seen.popleft()
        if len(seen) < self.per_minute:
            seen.append(now)
            self._warned.discard(chat)
            return "ok"
        if chat in self._warned:
            return "drop"
        self._warned.add(chat)
        return "warn"

    def prune(self, now: float) -> None:
        if len(self._seen) > 4096:
            for chat in [c for c, s in self._seen.items() if not s or s[-1] <= now - self.span_s]:
                del self._seen[chat]
                self._warned.discard(chat)


def received(update: Update) -> Received:
    """What is stored of a polled update: its id, chat, date and the update itself."""
    chat = update.effective_chat
    message = update.effective_message
    date = message.date if message is not None and update.callback_query is None else None
    sent_ms = int(date.timestamp() * 1000) if date is not None else int(time.time() * 1000)
    return Received(update.update_id, str(chat.id) if chat is not None else "", sent_ms,
                    json.dumps(update.to_dict(), separators=(",", ":")))


def command_name(update: Update, username: str | None) -> str | None:
    """The command a message gives this bot (`/liqs@liq_bot 1h` -> 'liqs'), else None."""
    message = update.message
    if message is None or not message.text or not message.text.startswith("/"):
        return None
    name, _, target = message.text.split(maxsplit=1)[0][1:].partition("@")
    if target and (username is None or target.lower() != username.lower()):
        return None
    return name.lower()


class Inbox:
    """Poll into the store; handle from it. Handlers run one at a time, in update order."""

    def __init__(self, bot: Bot, writer: Writer, queue: UpdateQueue, clock: Clock, *,
                 process: Callable[[Update], Awaitable[None]],
                 answer: Callable[[int, str, str], Awaitable[None]],
                 is_command: Callable[[Update, str | None], bool],
                 limits: InboxLimits | None = None, poll_timeout_s: float = 10.0,
                 read_timeout_s: float = 10.0, allowed: Sequence[str] = ()) -> None:
        self.bot, self.writer, self.queue, self.clock = bot, writer, queue, clock
        self.process, self.answer, self.is_command = process, answer, is_command
        self.limits = limits or InboxLimits()
        self.gate = FloodGate(self.limits.per_minute)
        self.poll_timeout_s, self.read_timeout_s = poll_timeout_s, read_timeout_s
        self.allowed = list(allowed)
        self.offset = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self.handled = self.dropped = self.stale = 0
        self.started_ms = clock.now_ms()

    async def poll(self, on_error: Callable[[Exception], None]) -> None:
        """getUpdates forever; each batch is committed before the next call confirms it."""
        self.offset = await self.writer.run(self.queue.next_offset)
        failures = 0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=self.offset or None, limit=self.limits.batch,
                    timeout=dt.timedelta(seconds=self.poll_timeout_s),
                    allowed_updates=self.allowed,
                    read_timeout=self.poll_timeout_s + self.read_timeout_s)
                if updates:  # a failed commit polls the same offset again: nothing confirmed
                    await self.writer.run(self.queue.receive, [received(u) for u in updates],
                                          self.clock.now_ms())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # network down, 5xx, a conflict, a full disk: retry
                failures += 1
                on_error(exc)
                await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
                continue
            failures = 0
            if updates:
                self.offset = max(u.update_id for u in updates) + 1
                self._wake.set()

    def stop(self) -> None:
        """Finish the update in hand, then return: what is stored waits for the restart."""
        self._stopping = True
        self._wake.set()

    async def handle(self) -> None:
        self.started_ms = self.clock.now_ms()
        pruned = time.monotonic()
        while not self._stopping:
            try:
                if time.monotonic() - pruned > 3600:
                    pruned = time.monotonic()
                    await self.writer.run(self.queue.prune, self.clock.now_ms())
                await self._handle_batch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database failing (a full disk): stay, retry
                logger.error("telegram: handling updates failed: %s; retrying in 5 s", exc)
                await asyncio.sleep(5.0)

    async def _handle_batch(self) -> None:
        self._wake.clear()
        batch = await self.writer.run(self.queue.queued, self.limits.batch)
        if not batch:
            await self._wake.wait()
            return
        dropped: list[int] = []
        try:
            for row in batch:
                if self._stopping:
                    break
                try:
                    update = Update.de_json(json.loads(row.payload), self.bot)
                except (ValueError, TypeError, KeyError) as exc:
                    logger.error("telegram: stored update %d cannot be read (%s); skipped",
                                 row.update_id, exc)
                    dropped.append(row.update_id)
                    continue
                if not await self._admit(row, update):
                    dropped.append(row.update_id)
                    continue
                try:
                    await self.process(update)  # PTB reports a handler's error itself
                finally:  # handled or failed: never replayed (no poison loops)
                    await self.writer.run(self.queue.close_unhandled, [row.update_id])
                self.handled += 1
        finally:
            if dropped:
                await self.writer.run(self.queue.close_unhandled, dropped)

    def _waited(self, row: QueuedUpdate) -> bool:
        """Did it wait on us: stored before this start, or the backlog found at the start?

        Only then is the user's date trusted for its age: a host clock minutes off
        Telegram's would otherwise turn every command into an apology.
        """
        return row.received_ms < self.started_ms + self.limits.backlog_s * 1000

    async def _admit(self, row: QueuedUpdate, update: Update) -> bool:
        """Run it? Stale commands get an apology, a flood one warning; both are not run."""
        if not (self.is_command(update, self.bot.username) or update.callback_query):
            return True  # membership, migration: state, whatever its age
        age_s = (self.clock.now_ms() - row.sent_ms) / 1000
        if age_s > self.limits.stale_after_s and self._waited(row):
            self.stale += 1
            if update.message is not None:
                command = (update.message.text or "").split(maxsplit=1)[0]
                await self.answer(row.update_id, row.chat_id,
                                  RESTARTED.format(command=command, age=_age(age_s)))
            return False
        verdict = self.gate.admit(row.chat_id, time.monotonic())
        if verdict == "ok":
            return True
        self.dropped += 1
        if verdict == "warn":
            logger.warning("telegram: chat %s sent over %d commands in a minute; the rest "
                           "are dropped for now", row.chat_id, self.limits.per_minute)
            await self.answer(row.update_id, row.chat_id,
                              SLOW_DOWN.format(n=self.limits.per_minute))
        self.gate.prune(time.monotonic())
        return False


def _age(seconds: float) -> str:
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
