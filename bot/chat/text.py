"""Long text as chat messages: lines joined into messages under a platform's limit."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bot.render import utf16_len


def pack(pieces: Iterable[str], limit: int,
         measure: Callable[[str], int] = utf16_len) -> list[str]:
    """Join pieces with newlines into messages of at most `limit`, cutting only between pieces.

    Each piece must already fit (the platform formats, escapes and cuts it). Blank messages
    are left out: both platforms refuse an empty one.
    """
    messages: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        extra = measure(piece) + (1 if current else 0)
        if current and size + extra > limit:
            messages.append("\n".join(current))
            current, size, extra = [], 0, measure(piece)
        current.append(piece)
        size += extra
    if current:
        messages.append("\n".join(current))
    return [m for m in messages if m.strip()]


def reply_chunks(text: str, split: Callable[[list[str]], list[str]]) -> list[str]:
    """A command reply as messages (never none: an empty reply says so)."""
    return split(text.splitlines() or [text]) or ["(empty)"]
