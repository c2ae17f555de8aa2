"""Every loaded setting checked before anything starts: one ConfigError naming the key.

A setting that loads but cannot work (a window no store answers, an interval of NaN, a
chat id that is not one) would otherwise start a bot that looks healthy and never alerts,
or retries a hopeless connection for minutes. Values of secret settings are never echoed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from feeds.store.totals import parse_window

if TYPE_CHECKING:
    from bot.config import Settings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DAY_S = 86_400.0
# Seconds (days for retention): above zero, and below what would mean "never".
RANGES: dict[str, tuple[str, float]] = {
    "eval_interval_s": ("scheduler.eval_interval_s", 3600.0),
    "deliver_interval_s": ("scheduler.deliver_interval_s", 3600.0),
    "health_interval_s": ("scheduler.health_interval_s", 3600.0),
    "down_after_s": ("health.down_after_s", 7 * DAY_S),
    "silent_after_s": ("health.silent_after_s", 30 * DAY_S),
    "cooldown_s": ("policy.cooldown_s", 30 * DAY_S),
    "retention_days": ("retention.days", 36_500.0),
    "backoff_cap_s": ("feeds.backoff_cap_s", DAY_S),
    "funding_interval_s": ("funding.interval_s", DAY_S),
    "summary_interval_s": ("ops.summary_s", DAY_S),
}
_TELEGRAM_CHAT = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
_SNOWFLAKE = re.compile(r"\d{1,20}")
COIN = re.compile(r"[A-Z0-9]{1,20}")
# Keys the environment can set too: the error names both, whichever the operator used.
ENV_NAMES = {
    "db": "LIQBOT_DB", "log_level": "LIQBOT_LOG_LEVEL", "telegram.token": "LIQBOT_TELEGRAM_TOKEN",
    "telegram.api_url": "LIQBOT_TELEGRAM_API_URL", "telegram.chat_ids": "LIQBOT_TELEGRAM_CHAT_IDS",
    "telegram.admin_chat_ids": "LIQBOT_TELEGRAM_ADMIN_CHAT_IDS",
    "discord.token": "LIQBOT_DISCORD_TOKEN", "discord.webhook_urls": "LIQBOT_DISCORD_WEBHOOK_URLS",
    "discord.channel_ids": "LIQBOT_DISCORD_CHANNEL_IDS",
    "discord.webhook_username": "LIQBOT_DISCORD_WEBHOOK_USERNAME",
    "discord.webhook_avatar_url": "LIQBOT_DISCORD_WEBHOOK_AVATAR_URL",
    "coinglass.api_key": "LIQBOT_COINGLASS_API_KEY",
}


# Secret settings by their file key; the file may hold only references to them.
FILE_SECRETS = {"telegram_token": "telegram.token", "discord_token": "discord.token",
                "coinglass_api_key": "coinglass.api_key",
                "discord_webhook_urls": "discord.webhook_urls"}
SECRET_REFS = ("$env:", "$file:")


def check_file_secrets(flat: Mapping[str, Any], source: str) -> None:
    """Refuse a secret written into the TOML file in plain text.

    A config file is copied, committed and pasted into bug reports; the token inside would
    go with it. The environment, or a file only the service reads, keeps it out. The value
    is never echoed, only the key and the way out.
    """
    for name, key in FILE_SECRETS.items():
        value = flat.get(name)
        values = value.split(",") if isinstance(value, str) else value
        if not isinstance(values, list | tuple):
            continue
        for v in values:
            if isinstance(v, str) and v.strip() and not v.strip().startswith(SECRET_REFS):
                env = ENV_NAMES[key]
                raise ValueError(
                    f"{source}: {key}: a secret in plain text is refused; set {env} in the "
                    f'environment, or write "$env:{env}" or "$file:/path/to/secret" here')


def check_number(key: str, value: float, high: float, low: float = 0.0) -> None:
    """Finite, above `low` and at most `high`: NaN passes every `<=` test, so say it."""
    if not math.isfinite(value) or not low < value <= high:
        raise _error(key, f"expected a number above {low:g} and at most {high:,.0f}, "
                          f"got {value!r}")


def check_url(key: str, url: str, schemes: Iterable[str], *, secret: bool = False) -> None:
    """A URL with one of `schemes`, a host and a port in range; secret ones are not echoed."""
    shown = "the value" if secret else repr(url)
    allowed = tuple(schemes)
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError when out of range or not a number)
    except ValueError:
        raise _error(key, f"{shown} is not a URL") from None
    if parts.scheme not in allowed or not parts.hostname:
        raise _error(key, f"expected a {' or '.join(allowed)} URL with a host, got {shown}")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise _error(key, f"{shown} holds spaces or control characters")


def check_settings(s: Settings) -> None:
    """Raise ValueError, naming the key, for the first setting that cannot work."""
    for name, (key, high) in RANGES.items():
        check_number(key, getattr(s, name), high)
    if not s.db.strip():
        raise _error("db", "must name a database file")
    if s.log_level.upper() not in LOG_LEVELS:
        raise _error("log_level", f"expected one of {', '.join(LOG_LEVELS)}, "
                                  f"got {s.log_level!r}")
    for key, value in (("telegram.token", s.telegram_token), ("discord.token", s.discord_token),
                       ("coinglass.api_key", s.coinglass_api_key)):
        if value is not None and (not value.strip() or not value.isprintable()
                                  or any(c.isspace() for c in value)):
            raise _error(key, "is blank or holds spaces or control characters")
    _check_urls(s)
    _check_ids("telegram.chat_ids", s.telegram_chat_ids, _TELEGRAM_CHAT,
               "a numeric chat id or @channel")
    _check_ids("telegram.admin_chat_ids", s.telegram_admin_chat_ids, _TELEGRAM_CHAT,
               "a numeric chat id or @channel")
    _check_ids("discord.channel_ids", s.discord_channel_ids, _SNOWFLAKE, "a numeric channel id")
    _check_ids("coinglass.symbols", tuple(c.upper() for c in s.coinglass_symbols), COIN,
               "a coin such as BTC")
    if s.coinglass_plan is not None:
        _check_plan(s.coinglass_plan)
    _check_windows(s.signals.windows)


def _check_plan(plan: str) -> None:
    # Imported here: the CoinGlass client brings aiohttp, which most commands never need.
    from feeds.venues.coinglass_api import PLANS

    if plan.lower() not in PLANS:
        raise _error("coinglass.plan", f"expected one of {', '.join(PLANS)}, "
                                       f"got {plan[:20]!r}")


def _check_urls(s: Settings) -> None:
    check_url("telegram.api_url", s.telegram_api_url, ("http", "https"))
    if s.coinglass_url is not None:
        check_url("coinglass.url", s.coinglass_url, ("http", "https"))
    for venue, url in s.ws_urls.items():
        check_url(f"feeds.ws_urls.{venue}", url, ("ws", "wss"))
    for table, urls in (("feeds.rest_urls", s.rest_urls), ("funding.urls", s.funding_urls)):
        for venue, url in urls.items():
            check_url(f"{table}.{venue}", url, ("http", "https"))
    for url in s.discord_webhook_urls:
        check_url("discord.webhook_urls", url, ("http", "https"), secret=True)
    if s.discord_webhook_avatar_url is not None:
        check_url("discord.webhook_avatar_url", s.discord_webhook_avatar_url, ("http", "https"))
    _check_webhook_name(s.discord_webhook_username)


def _check_webhook_name(name: str) -> None:
    """Discord refuses (400) a webhook name over 80 characters, or one naming Discord or its
    old system bot Clyde: caught here rather than on the first alert."""
    if not 1 <= len(name.strip()) <= 80 or not name.isprintable():
        raise _error("discord.webhook_username", f"expected 1-80 printable characters, got "
                                                 f"{name[:40]!r}")
    if any(word in name.lower() for word in ("discord", "clyde")):
        raise _error("discord.webhook_username", f"Discord refuses names containing "
                                                 f"'discord' or 'clyde', got {name[:40]!r}")


def _check_windows(windows: tuple[str, ...]) -> None:
    """Every window one the store answers: an unknown one fails every live evaluation."""
    for name in windows:
        try:
            parse_window(name)
        except ValueError as exc:
            raise _error("signals.windows", str(exc)) from None
    if len({parse_window(name) for name in windows}) != len(windows):
        raise _error("signals.windows", f"lists a window twice: {list(windows)}")


def _check_ids(key: str, ids: tuple[str, ...], pattern: re.Pattern[str], what: str) -> None:
    for value in ids:
        if not pattern.fullmatch(value.strip()):
            raise _error(key, f"expected {what}, got {value[:40]!r}")


def _error(key: str, problem: str) -> ValueError:
    env = f" ({ENV_NAMES[key]})" if key in ENV_NAMES else ""
    return ValueError(f"{key}{env}: {problem}")  # bot.config raises it as a ConfigError
