"""Which chats get an alert without a notification sound, as every notifier asks before a send.

A chat silences alerts in three ways (bot/state/subscriptions.py): all of them (the
"silent" toggle), per kind and severity (`/silent squeeze notable`), and during its quiet
hours in its own time zone (`/quiet 23-07 Europe/Berlin`). The hours are checked when the
alert goes out, not when it was decided: a retry that lands after 07:00 rings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from bot.alerts import Alert
from bot.state.subscriptions import Subscription, Subscriptions
from bot.state.writer import Writer
from feeds.store.core import Store


class QuietSource(Protocol):
    """What a notifier is given: whether `chat` gets `alert` without a notification sound."""

    async def __call__(self, chat: str, alert: Alert) -> bool: ...


class QuietChats:
    """The chats of one platform that silence some alerts, re-read at most every `ttl_s`.

    A fan-out sends one alert to every chat: it must not re-read subscriptions per chat.
    Empty until the service started (`writer` set).
    """

    def __init__(self, platform: str,
                 read: Callable[[Store], dict[str, Subscription]] | None = None,
                 ttl_s: float = 5.0, now_ms: Callable[[], int] | None = None) -> None:
        self.platform, self.ttl_s = platform, ttl_s
        self.read = read or (lambda store: Subscriptions(store).silencing(platform))
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.writer: Writer | None = None
        self._cache: tuple[float, dict[str, Subscription]] = (0.0, {})

    async def __call__(self, chat: str, alert: Alert) -> bool:
        # One chat's settings, not the whole set: a fan-out asks once per chat.
        at, chats = self._cache
        if time.monotonic() - at > self.ttl_s and self.writer is not None:
            chats = await self.writer.run(self.read, self.writer.store)
            self._cache = (time.monotonic(), chats)
        sub = chats.get(chat)
        return sub is not None and sub.silent(alert, self.now_ms())
