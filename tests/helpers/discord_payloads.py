"""Discord's message limits (PLATFORMS.md §5) as the fake enforces them and the tests check them."""

from __future__ import annotations

from typing import Any

EMBED_LIMITS = {"title": 256, "description": 4096}


def units(text: str) -> int:
    """UTF-16 code units: at least Discord's own count, whichever way it counts an emoji."""
    return len(text.encode("utf-16-le")) // 2


def embed_problems(embed: dict[str, Any]) -> list[str]:
    """What Discord would refuse in one embed (size only; types are checked loosely)."""
    out = [f"embed.{k} over {n}" for k, n in EMBED_LIMITS.items() if units(embed.get(k, "")) > n]
    fields = embed.get("fields", [])
    if len(fields) > 25:
        out.append("more than 25 fields")
    for f in fields:
        # Discord trims before it checks: a field of spaces is as empty as "".
        if not str(f.get("name", "")).strip() or not str(f.get("value", "")).strip():
            out.append("empty field name or value")
        if units(f.get("name", "")) > 256 or units(f.get("value", "")) > 1024:
            out.append("field over its limit")
    if units(embed.get("footer", {}).get("text", "")) > 2048:
        out.append("footer over 2048")
    if units(embed.get("author", {}).get("name", "")) > 256:
        out.append("author over 256")
    colour = embed.get("color", 0)
    if not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF:
        out.append("bad colour")
    return out


def embed_total(embed: dict[str, Any]) -> int:
    return (units(embed.get("title", "")) + units(embed.get("description", ""))
            + sum(units(f.get("name", "")) + units(f.get("value", ""))
                  for f in embed.get("fields", []))
            + units(embed.get("footer", {}).get("text", ""))
            + units(embed.get("author", {}).get("name", "")))


def payload_problems(body: Any, *, allow_empty: bool = False) -> list[str]:
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    content, embeds = body.get("content") or "", body.get("embeds") or []
    out = []
    if not content and not embeds and not allow_empty:
        out.append("Cannot send an empty message")
    if units(content) > 2000:
        out.append("content over 2000")
    if len(embeds) > 10:
        out.append("more than 10 embeds")
    for e in embeds:
        out += embed_problems(e)
    if sum(embed_total(e) for e in embeds) > 6000:
        out.append("embeds over 6000 in total")
    return out


def attachment_problems(body: Any, files: dict[str, bytes]) -> list[str]:
    """An embed's `attachment://NAME` must name a file uploaded with the message."""
    if not isinstance(body, dict):
        return []
    out = []
    for embed in body.get("embeds") or []:
        for part in ("image", "thumbnail"):
            url = str((embed.get(part) or {}).get("url", ""))
            if url.startswith("attachment://") and url[len("attachment://"):] not in files:
                out.append(f"embed {part} names {url}, which was not uploaded")
    return out
