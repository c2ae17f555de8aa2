"""Which chats asked for silent notifications, as every notifier reads it before a send."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from bot.state.subscriptions import Subscriptions
from bot.state.writer import Writer
from feeds.store.core import Store

QuietSource = Callable[[], Awaitable[set[str]]]  # what a notifier is given: chat ids


def quiet_chat_ids(store: Store, platform: str) -> set[str]:
    return {s.chat_id for s in Subscriptions(store).active(platform) if s.quiet}


class QuietChats:
    """The quiet chat ids of one platform, re-read at most every `ttl_s`.

    A fan-out sends one alert to every chat: it must not re-read subscriptions per chat.
    Empty until the service started (`writer` set).
    """

    def __init__(self, platform: str, read: Callable[[Store], set[str]] | None = None,
                 ttl_s: float = 5.0) -> None:
        self.platform, self.ttl_s = platform, ttl_s
        self.read = read or (lambda store: quiet_chat_ids(store, platform))
        self.writer: Writer | None = None
        self._cache: tuple[float, set[str]] = (0.0, set())

    async def __call__(self) -> set[str]:
        at, chats = self._cache
        if time.monotonic() - at > self.ttl_s and self.writer is not None:
            chats = await self.writer.run(self.read, self.writer.store)
            self._cache = (time.monotonic(), chats)
        return chats
