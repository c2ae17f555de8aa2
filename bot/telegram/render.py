"""Alerts and replies as Telegram messages: HTML with every dynamic string escaped, split < 4096.

Pure functions. Lines are split first and escaped after (cutting formatted text breaks
entities), and each message is measured in UTF-16 code units, as Telegram counts.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence

from bot.alerts import Alert
from bot.chat.text import pack
from bot.chat.text import reply_chunks as chunk_reply
from bot.render import safe_alert_lines, utf16_len

logger = logging.getLogger(__name__)

TEXT_LIMIT = 4096  # characters after entity parsing (PLATFORMS.md §5)
# A photo's caption: 0-1024 characters after entity parsing (Bot API, sendPhoto).
CAPTION_LIMIT = 1024

Format = Callable[[int, str], str]  # (line number, plain line) -> message line


tg_len = utf16_len  # Telegram's count of a message's length


def _html_line(index: int, line: str) -> str:
    # Title and headline in bold; everything else plain. Only <, > and & need escaping.
    text = html.escape(line, quote=False)
    return f"<b>{text}</b>" if index < 2 and text else text


def _plain_line(index: int, line: str) -> str:
    return line


def _cut(line: str, fmt: Format, index: int, limit: int) -> list[str]:
    """Cut one overlong plain line into pieces whose formatted form fits `limit`."""
    pieces: list[str] = []
    rest = line
    while rest:
        lo, hi = 1, len(rest)
        while lo < hi:  # the longest prefix that still fits once formatted
            mid = (lo + hi + 1) // 2
            if tg_len(fmt(index, rest[:mid])) <= limit:
                lo = mid
            else:
                hi = mid - 1
        pieces.append(fmt(index, rest[:lo]))
        rest = rest[lo:]
    return pieces


def split_lines(lines: Sequence[str], fmt: Format = _plain_line,
                limit: int = TEXT_LIMIT) -> list[str]:
    """Format plain lines and join them into messages under `limit`, cutting between lines."""
    pieces: list[str] = []
    for index, line in enumerate(lines):
        formatted = fmt(index, line)
        pieces += [formatted] if tg_len(formatted) <= limit else _cut(line, fmt, index, limit)
    # Blank padding at a chunk's edge carries nothing.
    return [m.strip("\n") for m in pack(pieces, limit, tg_len)]


def render_html(alert: Alert) -> list[str]:
    """The alert as one or more HTML messages (parse_mode=HTML)."""
    return split_lines(safe_alert_lines(alert), _html_line)


def render_plain(alert: Alert) -> list[str]:
    """The same alert without markup: the fallback when Telegram rejects the HTML."""
    return split_lines(safe_alert_lines(alert), _plain_line)


def caption_fits(plain: str) -> bool:
    """Does this text (as Telegram counts it, markup parsed away) fit a photo's caption?"""
    return 0 < tg_len(plain) <= CAPTION_LIMIT


def render_caption(alert: Alert) -> tuple[str, str] | None:
    """The alert as one photo caption, (HTML, plain); None when it is past the caption limit
    (the alert then goes as text messages)."""
    plain = render_plain(alert)
    if len(plain) != 1 or not caption_fits(plain[0]):
        return None
    html_parts = render_html(alert)
    return (html_parts[0], plain[0]) if len(html_parts) == 1 else None


def reply_chunks(text: str) -> list[str]:
    """A command reply (plain text, no parse mode) as messages under the limit."""
    return chunk_reply(text, split_lines)
