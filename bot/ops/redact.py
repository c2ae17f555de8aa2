"""Keep secrets out of logs: one filter that masks given strings in every record it sees.

The Bot API token sits in every request URL, in PTB's DEBUG line `Set Bot API URL: ...` and
in the message of the InvalidToken it raises at startup (RELIABILITY.md item 23).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "***"
# Third-party loggers that see request URLs; their records are masked where they are made,
# so every handler (pytest's caplog included) gets clean text.
NOISY = ("telegram", "httpx", "httpcore", "aiohttp", "discord")


class Redactor(logging.Filter):
    """Replace each secret by `***` in a record's message, arguments and traceback."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        # Short strings would mask innocent text; real tokens are long.
        found = {*self.secrets, *(s for s in secrets if s and len(s) >= 8)}
        self.secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        record.msg, record.args = self(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self(record.exc_text)
        if record.stack_info:
            record.stack_info = self(record.stack_info)
        return True


REDACTOR = Redactor()  # one per process: secrets are added as services start


def install(secrets: Iterable[str | None], handlers: Iterable[logging.Handler] = (),
            redactor: Redactor = REDACTOR) -> Redactor:
    """Mask `secrets` from now on: on the given handlers and every third-party logger in NOISY."""
    redactor.add(secrets)
    for handler in handlers:
        if redactor not in handler.filters:
            handler.addFilter(redactor)
    names = [n for n in list(logging.Logger.manager.loggerDict)
             if n.split(".", 1)[0] in NOISY]
    for name in {*NOISY, *names}:
        logger = logging.getLogger(name)
        if redactor not in logger.filters:
            logger.addFilter(redactor)
    return redactor
