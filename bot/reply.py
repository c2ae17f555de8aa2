"""What a chat command is given and what it answers, on every platform.

Adapters (Telegram, Discord) build the `Ctx`, call bot.commands' `dispatch` / `press` on
the writer thread, and translate the `Reply` into their own message format.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.grammar import CommandError

__all__ = ["Buttons", "CommandError", "Ctx", "Reply"]

# Rows of (label, data) buttons; adapters map them to inline keyboards / components.
Buttons = tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True, slots=True)
class Ctx:
    platform: str
    chat_id: str
    now_ms: int
    is_group: bool = False
    is_admin: bool = True  # private chats: the user owns their settings
    operator: bool = False  # an operators' chat: /status shows the raw error detail


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: Buttons = ()
    error: bool = False
    # Rows of commands for a persistent reply keyboard (Telegram private chats).
    keyboard: tuple[tuple[str, ...], ...] = ()
    # An answer to a button press replaces the message with the button (a Refresh, a
    # setting) unless it is something new to read (`False`: sent as a new message).
    edit: bool = True
    # A chart to send with the text as its caption (bot.charts.ChartSpec.key): the spec, not
    # the picture, so a committed answer stays small and a restart draws it again.
    chart: str | None = None
