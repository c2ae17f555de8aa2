"""One outbox pass: every due item sent, and each outcome written back to the outbox."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from bot.chat.attempt import Departure, counts_departure, departing
from bot.chat.base import DeliveryError, Notifier
from bot.destination import Destination
from bot.state.outbox import DEAD, SENT, Outbox, OutboxItem
from bot.state.subscriptions import Subscriptions
from feeds.store import StoreError
from feeds.store.core import Store

logger = logging.getLogger(__name__)


_crash_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Kill the process with SIGKILL at a named point when LIQBOT_CRASH_AT=name:N says so.

    Only for the crash harness (RELIABILITY.md): the N-th time `name` is reached.
    """
    spec = os.environ.get("LIQBOT_CRASH_AT", "")
    if not spec.startswith(name + ":"):
        return
    _crash_hits[name] = _crash_hits.get(name, 0) + 1
    if _crash_hits[name] >= int(spec.split(":", 1)[1]):
        os.kill(os.getpid(), signal.SIGKILL)


Runner = Callable[..., Awaitable[Any]]


async def deliver_due(
    outbox: Outbox, notifiers: Mapping[str, Notifier], now_ms: int, run: Runner,
) -> int:
    """Send every due outbox item; return how many were acknowledged.

    `run(fn, *args)` executes store calls on the writer thread. Each destination's items go
    out in order; a notifier with `parallel` > 1 serves that many destinations at once.
    """
    # Only what a connected notifier of this run serves: a backlog for a platform that is
    # down (or not configured) must not crowd the others out of the batch.
    ready = [name for name, n in notifiers.items() if n.ready]
    items: list[OutboxItem] = await run(outbox.due, now_ms, ready)
    queues: dict[str, list[OutboxItem]] = {}
    for item in items:  # "telegram:-100123" is served by "telegram"; "console" by itself
        queues.setdefault(item.destination, []).append(item)
    gates = {name: asyncio.Semaphore(max(1, n.parallel))
             for name, n in notifiers.items()}
    delivery = _Delivery(outbox, notifiers, run, now_ms)
    counts = await asyncio.gather(*(
        delivery.destination(queue, gates[platform_of(dest)]) for dest, queue in queues.items()))
    if delivery.notices:  # after the pass: a paced admin chat must not hold a send slot
        await notice_all(notifiers, _summary(delivery.notices))
    return sum(counts)


def _summary(notices: Sequence[str], limit: int = 20) -> str:
    more = len(notices) - limit
    return "\n".join([*notices[:limit], *([f"… and {more} more"] if more > 0 else [])])


def platform_of(destination: str) -> str:
    return Destination.parse(destination).platform


class _Delivery:
    """One pass over due items: the outcome of each send decides the outbox state."""

    def __init__(self, outbox: Outbox, notifiers: Mapping[str, Notifier], run: Runner,
                 now_ms: int) -> None:
        self.outbox, self.notifiers, self.run = outbox, notifiers, run
        self.start_ms, self.started = now_ms, time.monotonic()
        self.notices: list[str] = []  # operator notices, sent once the pass is over

    def now(self) -> int:
        # A fan-out pass can last minutes: backoffs and flood waits count from the outcome.
        return self.start_ms + int((time.monotonic() - self.started) * 1000)

    async def destination(self, queue: Sequence[OutboxItem], gate: asyncio.Semaphore) -> int:
        sent = 0
        async with gate:
            for item in queue:
                outcome = await self.one(item)
                sent += outcome == SENT
                if outcome == "stop":
                    break  # flood control, a dead or moved chat, a network error: the rest waits
        return sent

    async def one(self, item: OutboxItem) -> str:
        """Send one item; return its outcome."""
        cap = self.outbox.config.max_maybe_sent
        if item.maybe_sent >= cap:
            await self.run(self.outbox.give_up_unacknowledged, item, self.now())
            self.notices.append(f"⚠️ {item.alert.key} to {item.destination}: sent {cap} times "
                                "without an acknowledgement (crashes or timeouts in flight); "
                                "not sent again")
            return "dead"
        notifier = self.notifiers[platform_of(item.destination)]
        # The attempt counts as maybe delivered when its request leaves (bot/chat/attempt.py).
        departure = Departure(lambda: self.run(self.outbox.begin, item, self.now()))
        if not counts_departure(notifier):
            await departure()
        try:
            with departing(departure):
                await notifier.send(item.alert, item.destination)
        except DeliveryError as exc:
            return await self.failed(item, exc)
        except StoreError:
            raise  # the attempt could not be recorded: nothing was written, nothing to undo
        except Exception as exc:  # a broken adapter must not stop the others
            logger.exception("delivery: %s failed on %s", notifier.name, item.alert.key)
            return await self.failed(item, DeliveryError(f"{type(exc).__name__}: {exc}"))
        crash_point("after_send")
        await self.run(self.outbox.mark_sent, item.alert.key, item.destination, self.now())
        if item.maybe_sent:  # earlier requests left and were never acknowledged
            logger.warning("delivery: %s -> %s acknowledged after %d unacknowledged send(s): "
                           "the chat may have it %d times", item.alert.key, item.destination,
                           item.maybe_sent, item.maybe_sent + 1)
        return SENT

    async def failed(self, item: OutboxItem, exc: DeliveryError) -> str:
        dest, now = item.destination, self.now()
        logger.warning("delivery to %s failed: %s", dest, exc)
        if exc.moved_to:
            # Nothing went out (the platform said where to); the items move with the chat
            # and the next pass sends them there.
            await self.run(self.outbox.defer, item, now, now, str(exc))
            await self.run(_move, self.outbox.store, dest, exc.moved_to, now)
            logger.warning("delivery: %s moved to %s; its alerts go there", dest, exc.moved_to)
            return "stop"
        if exc.gone:
            dropped = await self.run(_disable, self.outbox, dest, now, str(exc))
            self.notices.append(f"⚠️ {dest} disabled: {exc}. {dropped} pending alert(s) dropped.")
            return "stop"
        if exc.retry_after_s is not None:
            until = now + int(exc.retry_after_s * 1000) + 1
            status = await self.run(self.outbox.defer, item, until, now, str(exc))
        else:
            status = await self.run(self.outbox.mark_failed, item, now, str(exc),
                                    permanent=exc.permanent, maybe_sent=exc.maybe_sent)
        if status == DEAD:
            self.notices.append(f"⚠️ gave up delivering {item.alert.key} to {dest}: {exc}")
        return "dead" if exc.permanent else "stop"


def _disable(outbox: Outbox, destination: str, now_ms: int, error: str) -> int:
    dest = Destination.parse(destination)
    with outbox.store.transaction():
        if dest.chat_id:
            Subscriptions(outbox.store).deactivate(dest.platform, dest.chat_id, now_ms, error)
        return outbox.drop_destination(destination, error)


def _move(store: Store, old: str, new: str, now_ms: int) -> None:
    src, dst = Destination.parse(old), Destination.parse(new)
    Subscriptions(store).migrate(src.platform, src.chat_id, dst.chat_id, now_ms)


async def notice_all(notifiers: Mapping[str, Notifier], text: str) -> None:
    """An operator notice to every notifier; one failing never silences the others."""
    for notifier in notifiers.values():
        try:
            await notifier.notice(text)
        except Exception:
            logger.exception("notice via %s failed", notifier.name)
