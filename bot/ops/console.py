"""What the operator's console says besides state changes: where alerts go and what history
the relative tiers still need (once, at start), and a summary every few minutes.

An offline first run used to print 129 lines in 90 s and never say either (issue 14). The
feeds now log one line when a venue's state changes (feeds.net.ws, feeds.pollers, the
health monitor's down/silent/back notices); these lines are the rest of the picture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from bot.config import Settings
from bot.ops.health import merge_stats
from bot.render import duration, money
from bot.state.subscriptions import Subscriptions
from feeds.model import HOUR_MS
from feeds.net.ws import FeedStats
from feeds.store import Store

# Platform names as the subscriptions table stores them (bot/telegram, bot/discord); spelled
# here so that saying where alerts go never imports a chat library.
TELEGRAM, DISCORD = "telegram", "discord"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def destinations_line(settings: Settings, subscribed: dict[str, set[str]]) -> str:
    """`alerts go to: the console; 3 Telegram chats (...); 1 Discord webhook` and the like.

    `subscribed`: chat ids with an active subscription, per platform, as the database holds
    them (fixed chats from the settings are counted once whether stored yet or not).
    """
    parts = ["the console"] if settings.console else []
    if settings.telegram_token:
        fixed = set(settings.telegram_chat_ids)
        others = subscribed.get(TELEGRAM, set()) - fixed
        chats = _count(len(fixed | others), "Telegram chat")
        detail = [f"{len(fixed)} from the settings"] if fixed else []
        detail += [f"{len(others)} subscribed"] if others else []
        if not fixed and not others:
            detail = ["until a chat sends /subscribe"]
        admins = len(settings.telegram_admin_chat_ids)
        detail += [f"operator notices to {_count(admins, 'admin chat')}"] if admins else []
        parts.append(f"{chats} ({', '.join(detail)})")
    if settings.discord_webhook_urls:
        parts.append(_count(len(settings.discord_webhook_urls), "Discord webhook"))
    if settings.discord_token or settings.discord_channel_ids:
        channels = set(settings.discord_channel_ids) | subscribed.get(DISCORD, set())
        parts.append(_count(len(channels), "Discord channel"))
    if not parts:
        return ("alerts go nowhere: the console is off ([console] = false) and no Telegram or "
                "Discord destination is set")
    line = "alerts go to: " + "; ".join(parts)
    if parts == ["the console"]:
        line += (" (LIQBOT_TELEGRAM_TOKEN or LIQBOT_DISCORD_WEBHOOK_URLS add chats; "
                 "README: Telegram, Discord)")
    return line


def history_line(held_ms: int, whole_ms: int, settings: Settings) -> str:
    """How much of the trailing baseline the store holds, and what that means for alerts."""
    p = settings.signals
    ratios = "/".join(f"{r:g}×" for r in p.tiers_ratio)
    need_h = math.ceil(p.min_coverage * p.baseline_hours)
    held_h = held_ms / HOUR_MS
    share = held_ms / whole_ms if whole_ms else 0.0
    head = (f"history: relative tiers ({ratios} the trailing {p.baseline_hours} h average) "
            f"need {p.min_coverage:.0%} of those hours; the database holds {held_h:.0f} h "
            f"({share:.0%})")
    if share >= p.min_coverage:
        return head + ": relative tiers are on"
    short_ms = max(0, need_h * HOUR_MS - held_ms)
    tiers = "/".join(money(t) for t in p.tiers_usd_1h)
    return (f"{head}: until about {duration(short_ms)} more are stored, alerts fire on "
            f"absolute size only ({tiers} per hour)")


def start_lines(settings: Settings, store: Store, now_ms: int) -> list[str]:
    """The start-up lines about destinations and history (runs in the writer thread)."""
    subs = Subscriptions(store)
    subscribed = {platform: {s.chat_id for s in subs.active(platform)}
                  for platform in (TELEGRAM, DISCORD)}
    held, whole = store.coverage(now_ms, settings.signals.baseline_hours * HOUR_MS)
    return [destinations_line(settings, subscribed), history_line(held, whole, settings)]


def summary_line(stats: Iterable[FeedStats], states: dict[str, str],
                 pollers: Sequence[Any], totals: Any, now_ms: int, started_ms: int) -> str:
    """One line on the whole run: each venue, the REST pollers, events, alerts.

    `pollers` carry `.stats` (feeds.pollers.PollStats); `totals` is the run's RunSummary.
    """
    venues = []
    for name, row in sorted(merge_stats(stats).items()):
        state = states.get(name, "up")
        if not row["connected"]:
            state = "down" if state == "down" else "connecting"
        elif state == "up":
            state = "live"
        since = row["connected_since_ms"]
        text = f"{name} {state}"
        if row["connected"] and since is not None:
            text += f" {duration(now_ms - since)}, {row['events']:,} events"
        elif row["last_error"]:
            text += f" ({_short(row['last_error'])})"
        venues.append(text)
    ok = sum(1 for p in pollers if p.stats.consecutive_failures == 0 and p.stats.polls)
    parts = ["summary after " + duration(now_ms - started_ms), " · ".join(venues) or "no feeds"]
    if pollers:
        parts.append(f"REST pollers {ok} of {len(pollers)} ok")
    parts.append(f"{totals.events_new:,} new events stored, {_count(totals.alerts, 'alert')}, "
                 f"{totals.delivered:,} delivered")
    return "; ".join(parts)


def _short(error: str, limit: int = 60) -> str:
    """An error's gist for a summary: its first clause, cut at `limit` characters."""
    gist = error.split("; ", 1)[0]
    return gist if len(gist) <= limit else gist[: limit - 1] + "…"
