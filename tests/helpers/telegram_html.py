"""Telegram's HTML subset as the Bot API checks it: the fake answers 400 where Telegram would."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a",
         "tg-spoiler", "span", "blockquote", "tg-emoji"}
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class _StrictHtml(HTMLParser):
    """Telegram's HTML subset: known tags, balanced, `&` only in the four entities."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            raise ValueError(f"unsupported start tag \"{tag}\"")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            raise ValueError(f"unexpected end tag \"{tag}\"")

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            raise ValueError("unescaped < or >")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            raise ValueError(f"unsupported entity &{name};")
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))


def parse_html(text: str) -> str:
    """The plain text of a Telegram HTML message; ValueError where Telegram would answer 400."""
    stray = re.sub(_ENTITY, "", text)
    if "&" in stray:
        raise ValueError("unescaped &")
    parser = _StrictHtml()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise ValueError(f"can't find end tag corresponding to start tag \"{parser.stack[-1]}\"")
    if parser.rawdata:
        raise ValueError("unterminated markup")
    return "".join(parser.text)
