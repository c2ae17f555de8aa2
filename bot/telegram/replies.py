"""Answers to commands: a queue per chat, sent by one task, so no handler waits on a limit.

Handlers commit an answer (bot/state/updates.py) and hand it here; they never sleep on a
chat's 1 msg/s. This task takes the chats in turn, each only when its pace allows, so a
chat with a hundred answers queued delays another chat by one send, not a hundred seconds.

One answer is in flight at a time, marked `sending` before it goes out: a crash can then
cut short at most one answer, and that one is not repeated (answered at most once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.state.updates import PendingReply, UpdateQueue
from bot.state.writer import Writer
from bot.telegram.delivery import ChatPacer, maybe_sent, retry_after_s

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class _Answer:
    update_id: int
    pending: dict[str, Any]
    attempts: int = 0


class ReplySender:
    """Per-chat answer queues, served in turn under the pacer's per-chat spacing."""

    def __init__(self, send: Send, pacer: ChatPacer, writer: Writer, queue: UpdateQueue, *,
                 redact: Callable[[str], str] = str, group_interval_s: float = 3.3,
                 ready: Callable[[str], bool] = lambda chat: True,
                 max_flood_wait_s: float = 10.0, max_attempts: int = 3) -> None:
        self._send, self.pacer, self.writer, self.queue = send, pacer, writer, queue
        self.redact = redact
        self.ready = ready  # the overall limiter has room now (delivery.limiter_ready)
        self.group_interval_s = group_interval_s  # the per-group limit (20/min) with margin
        self.max_flood_wait_s, self.max_attempts = max_flood_wait_s, max_attempts
        self._chats: OrderedDict[str, deque[_Answer]] = OrderedDict()  # least recently served first
        self._wake = asyncio.Event()
        self._stopping = False
        self.sent = 0

    def add(self, update_id: int, pending: dict[str, Any], *, first: bool = False) -> None:
        """Queue an answer; `first` puts it before the chat's others (a "slow down")."""
        chat = str(pending["chat"])
        answers = self._chats.setdefault(chat, deque())
        if first:
            answers.appendleft(_Answer(update_id, pending))
        else:
            answers.append(_Answer(update_id, pending))
        self._wake.set()

    def queued(self) -> int:
        return sum(len(q) for q in self._chats.values())

    async def load(self) -> None:
        """After a restart: drop the answer a crash caught in flight, queue the rest."""
        cut = await self.writer.run(self.queue.interrupted)
        if cut:
            logger.warning("telegram: %d answer(s) were going out when the bot stopped; not "
                           "sent again (at most once)", cut)
        pending: list[PendingReply] = await self.writer.run(self.queue.replies)
        for p in pending:
            self.add(p.update_id, json.loads(p.reply))
        if pending:
            logger.info("telegram: %d answer(s) committed before a restart are going out",
                        len(pending))

    def stop(self) -> None:
        """Finish the answer in flight, then return; the rest stay queued for the restart."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database failing (a full disk): stay, retry
                logger.error("telegram: sending answers failed: %s; retrying in 5 s", exc)
                await asyncio.sleep(5.0)

    async def _step(self) -> None:
        chat, wait = self._next()
        if chat is None:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            return
        answers = self._chats[chat]
        answer = answers.popleft()
        self._chats.move_to_end(chat)
        again = True  # also when the database failed: kept in memory, tried again
        try:
            again = await self._deliver(chat, answer)
        finally:
            if again:
                answers.appendleft(answer)  # first again: a chat's answers stay in order
            if not answers and self._chats.get(chat) is answers:
                del self._chats[chat]

    def _next(self) -> tuple[str | None, float | None]:
        """The least recently served chat that may be sent to now, or how long until one.

        "Now" includes the bot-wide limiter: an answer marked going out must go out at
        once, not wait there (a crash in that wait would lose it).
        """
        soonest: float | None = None
        for chat in self._chats:
            wait = self.pacer.free_in(chat)
            if wait <= 0:
                if self.ready(chat):
                    return chat, None
                wait = 0.005
            soonest = wait if soonest is None else min(soonest, wait)
        return None, soonest

    async def _deliver(self, chat: str, answer: _Answer) -> bool:
        """Send one answer; True when it should be tried again later."""
        uid = answer.update_id
        await self.writer.run(self.queue.begin_send, uid)
        answer.attempts += 1
        try:
            await self._send(answer.pending)
        except RetryAfter as exc:  # the pacer holds the chat for the wait already
            wait = retry_after_s(exc)
            if wait <= self.max_flood_wait_s and answer.attempts < self.max_attempts:
                await self.writer.run(self.queue.not_sent, uid)
                return True
            logger.warning("telegram: answer to %s dropped: flood wait %.0fs", chat, wait)
        except (BadRequest, Forbidden) as exc:  # retrying changes nothing
            logger.warning("telegram: answer to %s refused: %s", chat, exc.message)
        except TelegramError as exc:
            if maybe_sent(exc):
                logger.warning("telegram: answer to %s may not have arrived (%s); not sent "
                               "again", chat, self.redact(exc.message))
            elif answer.attempts < self.max_attempts:
                logger.warning("telegram: answer to %s failed (%s); attempt %d", chat,
                               self.redact(exc.message), answer.attempts)
                self.pacer.hold(chat, 0.5 * 2 ** answer.attempts)
                await self.writer.run(self.queue.not_sent, uid)
                return True
            else:
                logger.warning("telegram: answer to %s dropped after %d attempts: %s", chat,
                               answer.attempts, self.redact(exc.message))
        else:
            self.sent += 1
            if chat.startswith(("-", "@")):
                self.pacer.hold(chat, self.group_interval_s)
        try:
            await self.writer.run(self.queue.sent, uid)
        except Exception as exc:  # still 'sending': a restart closes it, never resends it
            logger.error("telegram: cannot record the answer to %s as sent: %s", chat, exc)
        return False
