"""Logging for the service: readable lines by default, JSON lines on request, secrets masked.

Masking happens at the source and again at the end, on purpose. Every record is cleaned
(message, arguments, traceback) by `bot.ops.redact`'s filter as it is created, so no handler,
not even one added later (pytest's caplog), ever holds a secret; the formatter then masks
the finished line again, which also covers `extra=` fields (RELIABILITY.md item 23: httpx
and PTB put the Bot API token in URLs they log).
"""

from __future__ import annotations

import json as _json
import logging
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

from bot.config import SECRET_FIELDS, Settings
from bot.ops import redact

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loud libraries: httpx logs every request URL (token included) at INFO.
QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "apscheduler": logging.WARNING,
         "aiohttp.access": logging.WARNING, "websockets": logging.INFO}
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_MARK = "_liqbot_handler"


def secret_variants(secrets: Iterable[str | None]) -> list[str]:
    """Each secret plus the forms it takes inside logged URLs.

    A webhook URL's token is its last path segment, logged alone by some clients; a
    Telegram token's colon is percent-encoded in query strings.
    """
    out: set[str] = set()
    for s in secrets:
        if not s:
            continue
        out |= {s, quote(s, safe=""), quote(s)}
        if "://" in s:
            out |= {part for part in urlsplit(s).path.split("/") if len(part) >= 16}
        if ":" in s and "://" not in s:
            out.add(s.split(":", 1)[1])  # bot id:secret -> the secret half alone
    return sorted(x for x in out if len(x) >= 8)


def settings_secrets(settings: Settings) -> list[str]:
    """The secrets a Settings object holds: the very fields its repr and `sanitize` mask."""
    out: list[str] = []
    for name in sorted(SECRET_FIELDS):
        value = getattr(settings, name)
        out += list(value) if isinstance(value, tuple) else [value]
    return out


class _SafeRedactor(logging.Filter):
    """bot.ops.redact's filter, except that a malformed %-format never raises into the caller."""

    def __init__(self, redactor: redact.Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return self.redactor.filter(record)
        except Exception:  # logging itself reports bad format strings; keep that behaviour
            record.msg, record.args = self.redactor(f"{record.msg!s} {record.args!r}"), None
            return True


class _StderrHandler(logging.StreamHandler):
    """Write to whatever `sys.stderr` is at the time, not the one seen at set-up.

    An in-process caller (pytest's capture, a daemon wrapper) may swap stderr and close the
    old one later; a handler holding the old object would then fail on every record.
    """

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class TextFormatter(logging.Formatter):
    """`2026-04-17T13:00:00.123Z INFO bot.run.live: message`, masked."""

    def __init__(self, redactor: redact.Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self.redactor = redactor

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _iso(record.created)

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then exc, stack and extras."""

    def __init__(self, redactor: redact.Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _iso(record.created), "level": record.levelname,
                               "logger": record.name, "msg": record.getMessage()}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        return self.redactor(_json.dumps(out, default=str, ensure_ascii=False))


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def setup_logging(level: str | int = "INFO", json: bool = False, *,
                  secrets: Iterable[str | None] = (), stream: TextIO | None = None,
                  redactor: redact.Redactor = redact.REDACTOR,
                  capture_uncaught: bool = True) -> logging.Handler:
    """Send every log record to `stream` (stderr), masked; call again to reconfigure.

    `secrets` are added to the process-wide redactor, so secrets registered elsewhere
    (a chat service adding its token as it starts) are masked here too.
    """
    redact.install(secret_variants(secrets), redactor=redactor)  # third-party loggers too
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    setattr(handler, _MARK, True)
    handler.setFormatter(JsonFormatter(redactor) if json else TextFormatter(redactor))
    safe = _SafeRedactor(redactor)
    handler.addFilter(safe)
    _mask_at_source(safe)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name, floor in QUIET.items():
        logging.getLogger(name).setLevel(floor)
    logging.captureWarnings(True)  # warnings go through the same masked handler
    if capture_uncaught:
        _log_uncaught()
    return handler


def _mask_at_source(safe: _SafeRedactor) -> None:
    """Wrap the LogRecord factory: records are masked when made, before any handler runs."""
    current = logging.getLogRecordFactory()
    inner = getattr(current, "__wrapped__", current) if getattr(current, _MARK, False) else current

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = inner(*args, **kwargs)
        safe.filter(record)
        return record

    factory.__wrapped__ = inner  # type: ignore[attr-defined]
    setattr(factory, _MARK, True)
    logging.setLogRecordFactory(factory)


def _log_uncaught() -> None:
    """A crash's traceback goes through logging (masked), not straight to stderr."""
    log = logging.getLogger("liqbot")

    def hook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        log.critical("uncaught exception", exc_info=(kind, exc, tb))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit and args.exc_value is not None:
            log.critical("uncaught exception in thread %s", getattr(args.thread, "name", "?"),
                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = hook
    threading.excepthook = thread_hook
