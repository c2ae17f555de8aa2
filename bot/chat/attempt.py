"""When a send attempt counts: the moment its first request leaves, after every rate limiter.

The outbox counts each attempt that may have reached the chat (`maybe_sent`): that count is
what bounds and measures duplicates after a crash. Counted when the send *starts*, a kill
while the send waits in a rate limiter (a fan-out to 60 chats waits seconds there) would
count an attempt that never left, and a crash loop would close rows that no chat received.
So the count is taken by the transport, right before it writes the request: it calls
`leaving()`, which runs the `Departure` the outbox pass set for this send (once per send,
whatever the number of requests: chunks, a plain-text resend, a retry after a 5xx).

A notifier whose transport calls `leaving()` says so with `counts_departure = True`; for
any other the attempt counts when the send starts, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

_CURRENT: ContextVar[Departure | None] = ContextVar("liqbot_departure", default=None)


class Departure:
    """The record of one send attempt leaving; `record()` runs the first time only."""

    def __init__(self, record: Callable[[], Awaitable[Any]]) -> None:
        self._record = record
        self.left = False

    async def __call__(self) -> None:
        if self.left:
            return
        self.left = True  # set first: a second request of the same send must not count
        await self._record()


@contextlib.contextmanager
def departing(departure: Departure) -> Iterator[Departure]:
    """Within this block (this task), a transport's `leaving()` runs `departure`."""
    token = _CURRENT.set(departure)
    try:
        yield departure
    finally:
        _CURRENT.reset(token)


async def leaving() -> None:
    """A request is about to be written: count the attempt it belongs to, if any.

    Called by transports after their rate limiters; outside an outbox send (command
    answers, notices, polling) it does nothing. A failing record (the disk is full)
    propagates, and the request is not written: an uncounted send could be repeated.
    """
    departure = _CURRENT.get()
    if departure is not None:
        await departure()


def counts_departure(notifier: object) -> bool:
    """Does this notifier's transport call `leaving()` (else the send start counts)?"""
    return bool(getattr(notifier, "counts_departure", False))
