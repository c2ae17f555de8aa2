"""Alerts and replies for Discord: an embed within Discord's limits, and plain-content fallbacks.

Pure functions. Every dynamic string goes through `discord.utils.escape_markdown` before it is
measured, so a symbol such as `BTC_USDT` or `*` can neither break the layout nor push a message
over a limit (PLATFORMS.md §5). Mentions are not escaped here: every send passes
`allowed_mentions={"parse": []}`, so `@everyone` in a symbol stays inert text.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from discord.utils import escape_markdown

from bot.alerts import Alert
from bot.chat.text import pack
from bot.chat.text import reply_chunks as chunk_reply
from bot.render import (
    UNRENDERABLE,
    alert_lines,
    fallback_lines,
    hashtags,
    headline,
    largest_text,
    money_exact,
    safe_alert_lines,
    signed_pct,
    span,
    thin_note,
    top,
    utf16_len,
)
from feeds.model import MARKET
from feeds.store import window_name
from signals.kinds import find_kind

logger = logging.getLogger(__name__)

# Discord's limits (PLATFORMS.md §5), in characters.
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000

# Kinds have their colour (signals.kinds); one this version does not know is grey.
OTHER_COLOUR = 0x95A5A6
ELLIPSIS = "…"
_CONTENT_LINE_LIMIT = 200  # 9 lines at most: 2000 with room for escapes
# What a value the text rules refuse raises: NaN/inf amounts, timestamps out of range.

Embed = dict[str, Any]


dlen = utf16_len  # Discord's count against its limits


def escape(text: str) -> str:
    return escape_markdown(text)


def fit(text: str, limit: int, transform: Callable[[str], str] = escape) -> str:
    """`transform(text)` cut to at most `limit` characters, ending in `…` when cut.

    The plain text is cut before it is transformed: cutting escaped text can strand a
    backslash that would then escape the ellipsis.
    """
    out = transform(text)
    if dlen(out) <= limit:
        return out
    lo, hi = 0, len(text)
    while lo < hi:  # the longest plain prefix whose escaped form still fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if dlen(transform(text[:mid])) + len(ELLIPSIS) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return transform(text[:lo]) + ELLIPSIS


def embed_size(embed: Embed) -> int:
    """What counts toward Discord's 6000 per message (as `len(discord.Embed)`, in UTF-16 units)."""
    size = dlen(embed.get("title", "")) + dlen(embed.get("description", ""))
    size += sum(dlen(f["name"]) + dlen(f["value"]) for f in embed.get("fields", []))
    size += dlen(embed.get("footer", {}).get("text", ""))
    size += dlen(embed.get("author", {}).get("name", ""))
    return size


def _span(a: Alert) -> str:
    text = f"{span(a.start_ms, a.end_ms)} ({window_name(a.window_ms)})"
    if a.ratio is not None and math.isfinite(a.ratio):
        text += f" · {a.ratio:.1f}× the trailing average"
    return text + thin_note(a)


def _fields(a: Alert) -> list[tuple[str, str, bool]]:
    """(name, plain value, inline) for every part of the alert below the headline."""
    fields = [("Split", f"Shorts {money_exact(a.short_usd)} · Longs {money_exact(a.long_usd)}",
               False), ("Window", _span(a), False)]
    if a.scope == MARKET and len(a.top_coins) > 1:
        fields.append(("Top symbols", top(a.top_coins, 3, a.total_usd), True))
    if a.top_exchanges and a.top_exchanges[0][0] != MARKET:
        fields.append(("Venues", top(a.top_exchanges, 4, a.total_usd), True))
    if a.largest:
        fields.append(("Largest", largest_text(a.largest), False))
    if a.price_change is not None:
        fields.append(("Price", signed_pct(a.price_change), True))
    if a.funding_8h is not None:
        fields.append(("Funding", f"{a.funding_8h * 100:+.4f}%/8h", True))
    if a.track_record:
        fields.append(("Track record", a.track_record, False))
    if a.lower_bound:
        fields.append(("Note", "Lower bound: sampled venue feeds (Binance/OKX) omit some "
                               "liquidations.", False))
    return fields


def _timestamp(end_ms: int) -> str | None:
    try:
        return datetime.fromtimestamp(end_ms / 1000, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def _title(a: Alert) -> str:
    return alert_lines(a)[0]


def render_embed(alert: Alert, image: str | None = None) -> Embed:
    """The alert as one embed dict, within every per-field limit and the 6000 total.

    `image`: the file name of a chart uploaded with the message (`attachment://` it)."""
    tags = ""
    try:
        title, head, fields = _title(alert), headline(alert.long_usd, alert.short_usd,
                                                      alert.window_ms), _fields(alert)
        tags = hashtags(alert)
    except UNRENDERABLE as exc:
        (title, head), fields = fallback_lines(alert, exc), []
    embed: Embed = {
        "title": fit(title, TITLE_LIMIT),
        "description": "**" + fit(head, DESCRIPTION_LIMIT - 4) + "**",
        "color": info.colour if (info := find_kind(alert.kind)) else OTHER_COLOUR,
        # Discord trims a field before checking it: a blank one would refuse the whole embed.
        "fields": [{"name": fit(name, FIELD_NAME_LIMIT), "value": fit(value, FIELD_VALUE_LIMIT),
                    "inline": inline} for name, value, inline in fields if value.strip()
                   ][:FIELDS_LIMIT],
        "footer": {"text": fit(f"liqbot · {tags}" if tags else "liqbot", FOOTER_LIMIT, str)},
    }
    if (stamp := _timestamp(alert.end_ms)) is not None:
        embed["timestamp"] = stamp
    if image:
        embed["image"] = {"url": f"attachment://{image}"}
    if alert.text is not None:  # a digest: its own lines below the title
        embed["description"] = fit("\n".join(alert.text.splitlines()[1:]), DESCRIPTION_LIMIT)
        embed["fields"] = []
    return _within_total(embed)


def _within_total(embed: Embed) -> Embed:
    """Drop trailing fields until the embed fits 6000 in total.

    Title, description and footer together stay under 4400, so this always ends.
    """
    while embed_size(embed) > EMBED_TOTAL_LIMIT and embed["fields"]:
        embed["fields"].pop()
    return embed


def render_content(alert: Alert) -> str:
    """The alert as message content (no embed), at most 2000 characters.

    The fallback when Discord refuses an embed. Each line is capped so that the title and
    the headline (always short) are in the message whatever the symbol names look like.
    """
    lines = [fit(line, _CONTENT_LINE_LIMIT, str) for line in safe_alert_lines(alert)]
    return split_text(lines, CONTENT_LIMIT)[0]


def split_text(lines: Sequence[str], limit: int = CONTENT_LIMIT) -> list[str]:
    """Escape lines and join them into messages of at most `limit`, cutting between lines."""
    return pack((fit(line, limit) for line in lines), limit, dlen)


def reply_chunks(text: str) -> list[str]:
    """A command reply as escaped messages of at most 2000 characters (never empty)."""
    return chunk_reply(text, split_text)


REPLY_COLOUR = 0x5865F2  # command answers: Discord's own blurple, apart from the kinds' colours


# "Top: BTC $4M · ETH $500K": a labelled line of an answer, shown as an embed field.
_LABELLED = re.compile(r"^(Top|Venues|Largest|Lower bound|Not in the sums): (.+)$")


def reply_embed(text: str, image: str | None = None) -> Embed | None:
    """A command's answer as one embed: its first line the title, labelled lines (`Top:`,
    `Venues:`, `Largest:` …) fields, the rest the description, every part escaped. None when
    it does not fit one embed: it then goes as text."""
    title, *rest = text.split("\n")
    lines: list[str] = []
    fields: list[dict[str, Any]] = []
    for line in rest:
        m = _LABELLED.match(line)
        if m and len(fields) < FIELDS_LIMIT and dlen(escape(m[2])) <= FIELD_VALUE_LIMIT:
            fields.append({"name": m[1], "value": escape(m[2]), "inline": m[1] != "Largest"})
        else:
            lines.append(escape(line))
    body = "\n".join(lines)
    if dlen(escape(title)) > TITLE_LIMIT or dlen(body) > DESCRIPTION_LIMIT:
        return None
    embed: Embed = {"title": escape(title), "color": REPLY_COLOUR, "footer": {"text": "liqbot"}}
    if body.strip():
        embed["description"] = body
    if fields:
        embed["fields"] = fields
    if image:
        embed["image"] = {"url": f"attachment://{image}"}
    return embed if embed_size(embed) <= EMBED_TOTAL_LIMIT else None


HELP_EXAMPLES = ("/liqs symbol:BTC window:4h", "/chart symbol:ETH window:1h",
                 "/subscribe kinds:squeeze min_usd:10M symbols:BTC ETH")


def help_text(tree: Any) -> str:
    """`/help` on Discord: each slash command with its options as Discord shows them
    (`[symbol]` optional), from the command tree itself, so it cannot drift from it."""
    lines = ["liqbot watches crypto liquidations and alerts on short squeezes and long "
             "cascades.", ""]
    for command in tree.get_commands():
        options = " ".join(p.name if p.required else f"[{p.name}]"
                           for p in getattr(command, "parameters", []))
        # The shared descriptions carry Telegram examples ("e.g. /liqs BTC 4h"): cut them.
        about = command.description.split(", e.g.")[0].split(" e.g.")[0]
        lines.append(f"/{command.name}{' ' + options if options else ''} — {about}")
    lines += ["", "e.g. " + " · ".join(HELP_EXAMPLES)]
    return "\n".join(lines)
