"""What the runner and the outbox know of a chat platform: the ports and the error type."""

from __future__ import annotations

from typing import Protocol

from bot.alerts import Alert
from bot.state.writer import Writer


class DeliveryError(Exception):
    """A send that did not go through, and what the outbox should do about it.

    permanent: this item can never be delivered (dead). gone: the destination no longer
    accepts anything (blocked, kicked): its subscription is disabled. retry_after_s: flood
    control; wait that long without counting an attempt. moved_to: the chat has a new
    destination (a Telegram group became a supergroup); resend there. maybe_sent: the
    request may have reached the chat (a timeout after it was written).
    """

    def __init__(self, message: str, *, permanent: bool = False, gone: bool = False,
                 retry_after_s: float | None = None, moved_to: str | None = None,
                 maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.gone = gone
        self.retry_after_s = retry_after_s
        self.moved_to = moved_to
        self.maybe_sent = maybe_sent


class Notifier(Protocol):
    """Somewhere alerts can be posted."""

    @property
    def name(self) -> str: ...

    @property
    def ready(self) -> bool:
        """False: its items wait in the outbox and no attempt is counted (not connected)."""
        ...

    @property
    def parallel(self) -> int:
        """How many destinations one outbox pass serves at once (1: one after another)."""
        ...

    async def send(self, alert: Alert, destination: str) -> None:
        """Deliver one alert to one destination; raise DeliveryError when it did not go."""
        ...

    async def notice(self, text: str) -> None:
        """An operator notice (feed health); not deduplicated, not stored."""
        ...

    async def close(self) -> None: ...


class ChatService(Protocol):
    """A chat platform: its notifier plus the lifecycle around it (connect, poll, stop)."""

    @property
    def name(self) -> str: ...

    @property
    def notifier(self) -> Notifier: ...

    async def start(self, writer: Writer, *, live: bool) -> None:
        """Begin on our loop; never blocks on the network. `live`: also answer commands."""
        ...

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the notifier can send (or has given up); return whether it can."""
        ...

    async def stop(self) -> None: ...
