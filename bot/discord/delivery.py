"""Sending to Discord: webhooks on our own HTTP client (webhook.py), bot channels through
discord.py (channel.py); here the limits and notices both share.

Each answer becomes one outbox outcome (RELIABILITY.md items 14-17, 22):

| answer                         | outcome                                                  |
|--------------------------------|----------------------------------------------------------|
| 2xx                            | sent                                                     |
| 429 with `Via`                 | wait `retry_after` here when short, else defer it        |
| 429 without `Via` (Cloudflare) | defer it; every destination holds for `Retry-After`      |
| `X-RateLimit-Remaining: 0`     | the next request to that bucket waits `Reset-After`      |
| 5xx, connection refused        | a few quick retries (honouring `Retry-After`), then retry |
| timeout after the write        | retry, counted as maybe delivered                        |
| 400 / 413 (embed refused)      | one plain-content resend, then dead                      |
| 401 / 403 / 404 (10015, 10003) | destination disabled, one log line, no retry             |
| 401 on a bot channel           | the token, not the channel: logged, retried              |

Webhooks do not go through discord.py: its adapter sleeps through any `retry_after` and ~25 s
of 5xx backoff inside one send, and logs the webhook URL (token included) at DEBUG. Every
payload carries `allowed_mentions={"parse": []}`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)

NO_MENTIONS: dict[str, list[str]] = {"parse": []}
SUPPRESS_NOTIFICATIONS = 1 << 12  # message flag: delivered without a push notification


@dataclass(frozen=True, slots=True)
class DiscordLimits:
    """How long a send may wait in place before the outbox takes over."""

    inline_wait_s: float = 2.0  # rate-limit waits up to this are slept through; longer: deferred
    rate_limit_retries: int = 3  # 429s answered within one send before deferring
    server_retries: int = 2  # extra attempts after a 5xx or refused connection in one send
    backoff_s: float = 0.5  # first pause after a 5xx; doubles
    timeout_s: float = 10.0
    # A bot send includes discord.py's own waits (429 up to 30 s, 5xx about 25 s); past this
    # it is cut and counted as maybe delivered, rather than aiohttp's 300 s default.
    channel_timeout_s: float = 75.0
    parallel: int = 8  # destinations served at once (each webhook has its own bucket)
    # Discord allows 50 requests/s in all (PLATFORMS.md §5) and says so only with a 429;
    # webhook posts start no closer together than this, so a burst never meets it.
    global_per_s: float = 45.0


class _NoticeLog:
    """Operator notices go to the log: Discord has no operator channel here. Webhooks and the
    bot both receive every notice, so a repeat within 2 s is logged once."""

    def __init__(self) -> None:
        self.last: tuple[str, float] = ("", 0.0)

    def __call__(self, text: str) -> None:
        if self.last[0] == text and time.monotonic() - self.last[1] < 2.0:
            return
        self.last = (text, time.monotonic())
        logger.warning("discord notice: %s", text)


log_notice = _NoticeLog()
