"""Undo what `bot.ops.logs.setup_logging` does to the process (in-process CLI tests)."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator

from bot.ops import redact
from bot.ops.logs import QUIET


@contextlib.contextmanager
def preserved_logging() -> Iterator[None]:
    """Put back the root handlers and level, the quiet loggers' levels and filters, the record
    factory and the except hooks, as they were on entry."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    named = {n: logging.getLogger(n) for n in {*QUIET, *redact.NOISY}}
    levels = {n: lg.level for n, lg in named.items()}
    filters = {n: lg.filters[:] for n, lg in named.items()}
    factory = logging.getLogRecordFactory()
    hooks = sys.excepthook, threading.excepthook
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lg in named.items():
            lg.setLevel(levels[name])
            lg.filters[:] = filters[name]
        logging.setLogRecordFactory(factory)
        sys.excepthook, threading.excepthook = hooks
