"""The Notifier port, the console adapter, and outbox delivery."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TextIO

from bot.alerts import Alert
from bot.policy import Outbox, OutboxItem
from bot.render import render_text

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send that did not go through; `permanent` stops retries for that destination."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Notifier(Protocol):
    """Somewhere alerts can be posted."""

    name: str

    async def send(self, alert: Alert, destination: str) -> None:
        """Deliver one alert to one destination; raise DeliveryError when it did not go."""
        ...

    async def notice(self, text: str) -> None:
        """An operator notice (feed health); not deduplicated, not stored."""
        ...

    async def close(self) -> None: ...


class ConsoleNotifier:
    """Print each alert; the headline stands alone on its own line."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    async def send(self, alert: Alert, destination: str = "console") -> None:
        self.stream.write(render_text(alert) + "\n\n")
        self.stream.flush()

    async def notice(self, text: str) -> None:
        self.stream.write(text + "\n\n")
        self.stream.flush()

    async def close(self) -> None:
        self.stream.flush()


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

    `run(fn, *args)` executes store calls on the writer thread.
    """
    items: list[OutboxItem] = await run(outbox.due, now_ms)
    sent = 0
    for item in items:
        # "telegram:-100123" is served by the "telegram" notifier; "console" by itself.
        notifier = notifiers.get(item.destination.split(":", 1)[0])
        if notifier is None:
            continue  # destination not configured in this run: keep it pending
        try:
            await notifier.send(item.alert, item.destination)
        except DeliveryError as exc:
            logger.warning("delivery to %s failed: %s", item.destination, exc)
            await run(outbox.mark_failed, item, now_ms, str(exc), permanent=exc.permanent)
            continue
        crash_point("after_send")
        await run(outbox.mark_sent, item.alert.key, item.destination, now_ms)
        sent += 1
    return sent
