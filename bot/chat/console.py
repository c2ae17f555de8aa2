"""The console sink: every alert printed, for replays and for running without a chat."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.alerts import Alert
from bot.render import render_text


class ConsoleNotifier:
    """Print each alert; the headline stands alone on its own line."""

    name = "console"
    ready = True
    parallel = 1

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
