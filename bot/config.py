"""Settings: one TOML file plus LIQBOT_* environment variables, which win.

Secrets appear in files only as references — `"$env:NAME"` or `"$file:/path"` —
resolved here against the environment. Config is shown only masked: `repr(settings)` (the
`-v` start-up line) and `sanitize()` replace every secret with `***`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config_checks import check_file_secrets, check_settings
from feeds.venues.names import DEFAULT_LIVE, FUNDING_VENUES
from feeds.venues.names import VENUE_NAMES as VENUES
from signals import SignalParams

DEFAULT_TELEGRAM_API = "https://api.telegram.org/bot"
# Prometheus' exporter port range is fully allocated (9108 is also graphite_exporter's):
# on a host that runs one, set [ops] listen to another port.
DEFAULT_OPS_LISTEN = "127.0.0.1:9108"
SECRET_FIELDS = {"telegram_token", "discord_token", "coinglass_api_key", "discord_webhook_urls"}


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and the problem."""


@dataclass(frozen=True)
class Settings:
    db: str = "./liqbot.db"
    venues: tuple[str, ...] = DEFAULT_LIVE
    ws_urls: dict[str, str] = field(default_factory=dict)  # venue -> websocket URL override
    rest_urls: dict[str, str] = field(default_factory=dict)  # venue -> REST base URL override
    eval_interval_s: float = 15.0
    # Also evaluate the moment a stored batch may have crossed a tier (bot/run/trigger.py);
    # false: only every eval_interval_s, as before (the latency bench's baseline).
    eval_on_events: bool = True
    deliver_interval_s: float = 2.0
    health_interval_s: float = 15.0
    down_after_s: float = 60.0
    silent_after_s: float = 1800.0
    cooldown_s: float = 4 * 3600.0
    retention_days: float = 30.0
    backoff_cap_s: float = 60.0
    console: bool = True
    log_level: str = "INFO"
    log_json: bool = False
    ops_listen: str = DEFAULT_OPS_LISTEN  # /healthz and /metrics; "off" disables them
    summary_interval_s: float = 300.0  # a live run's one-line console summary
    telegram_token: str | None = None
    telegram_api_url: str = DEFAULT_TELEGRAM_API
    telegram_chat_ids: tuple[str, ...] = ()
    telegram_admin_chat_ids: tuple[str, ...] = ()  # operator notices: feed health, disabled chats
    discord_token: str | None = None
    discord_webhook_urls: tuple[str, ...] = ()
    discord_channel_ids: tuple[str, ...] = ()
    # How webhook posts are signed (Discord shows these instead of the webhook's own).
    discord_webhook_username: str = "liqbot"
    discord_webhook_avatar_url: str | None = None
    coinglass_api_key: str | None = None
    coinglass_symbols: tuple[str, ...] = ("BTC", "ETH", "SOL")
    coinglass_plan: str | None = None  # hobbyist, startup, ...: its rate and history limits
    coinglass_url: str | None = None  # REST base URL override (a proxy, tests)
    funding_venues: tuple[str, ...] = FUNDING_VENUES
    funding_interval_s: float = 300.0
    funding_urls: dict[str, str] = field(default_factory=dict)  # venue -> REST base override
    signals: SignalParams = field(default_factory=SignalParams)

    def __repr__(self) -> str:
        # Not the dataclass repr: that one prints the bot token into any log or traceback.
        shown = ", ".join(f"{k}={v!r}" for k, v in self.sanitize().items())
        return f"Settings({shown})"

    __str__ = __repr__

    def sanitize(self) -> dict[str, Any]:
        """Settings as a dict with every secret replaced by `***`."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "signals":
                value = value.as_dict()
            elif f.name in SECRET_FIELDS and value:
                value = ["***"] * len(value) if isinstance(value, tuple) else "***"
            out[f.name] = value
        return out


# Top-level keys and [section] keys of the TOML file, mapped to Settings fields.
_FILE_KEYS: dict[str, dict[str, str]] = {
    "": {"db": "db", "log_level": "log_level", "log_json": "log_json", "console": "console"},
    "feeds": {"venues": "venues", "ws_urls": "ws_urls", "rest_urls": "rest_urls",
              "backoff_cap_s": "backoff_cap_s"},
    "scheduler": {"eval_interval_s": "eval_interval_s", "deliver_interval_s": "deliver_interval_s",
                  "health_interval_s": "health_interval_s", "eval_on_events": "eval_on_events"},
    "policy": {"cooldown_s": "cooldown_s"},
    "health": {"down_after_s": "down_after_s", "silent_after_s": "silent_after_s"},
    "retention": {"days": "retention_days"},
    "telegram": {"token": "telegram_token", "api_url": "telegram_api_url",
                 "chat_ids": "telegram_chat_ids", "admin_chat_ids": "telegram_admin_chat_ids"},
    "discord": {"token": "discord_token", "webhook_urls": "discord_webhook_urls",
                "channel_ids": "discord_channel_ids",
                "webhook_username": "discord_webhook_username",
                "webhook_avatar_url": "discord_webhook_avatar_url"},
    "coinglass": {"api_key": "coinglass_api_key", "symbols": "coinglass_symbols",
                  "plan": "coinglass_plan", "url": "coinglass_url"},
    "funding": {"venues": "funding_venues", "interval_s": "funding_interval_s",
                "urls": "funding_urls"},
    "ops": {"listen": "ops_listen", "summary_s": "summary_interval_s"},
}

_ENV_KEYS = {
    "LIQBOT_DB": "db",
    "LIQBOT_TELEGRAM_TOKEN": "telegram_token",
    "LIQBOT_TELEGRAM_API_URL": "telegram_api_url",
    "LIQBOT_TELEGRAM_CHAT_IDS": "telegram_chat_ids",
    "LIQBOT_TELEGRAM_ADMIN_CHAT_IDS": "telegram_admin_chat_ids",
    "LIQBOT_DISCORD_TOKEN": "discord_token",
    "LIQBOT_DISCORD_WEBHOOK_URLS": "discord_webhook_urls",
    "LIQBOT_DISCORD_CHANNEL_IDS": "discord_channel_ids",
    "LIQBOT_DISCORD_WEBHOOK_USERNAME": "discord_webhook_username",
    "LIQBOT_DISCORD_WEBHOOK_AVATAR_URL": "discord_webhook_avatar_url",
    "LIQBOT_COINGLASS_API_KEY": "coinglass_api_key",
    "LIQBOT_LOG_LEVEL": "log_level",
    "LIQBOT_LOG_JSON": "log_json",
    "LIQBOT_OPS_LISTEN": "ops_listen",
}
_ENV_OTHER = {"LIQBOT_CONFIG", "LIQBOT_CRASH_AT"}


def parse_listen(text: str | None) -> tuple[str, int] | None:
    """`host:port` (IPv6 as `[::1]:9108`) -> (host, port); empty or "off" -> None (disabled)."""
    if text is None or text.strip().lower() in ("", "off", "none", "false"):
        return None
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 <= number <= 65535:
        raise ConfigError(f"ops.listen: expected an IP address and port such as "
                          f"{DEFAULT_OPS_LISTEN}, got {text!r}")
    return host, number


def _env_bool(var: str, text: str) -> bool:
    # The environment has only strings; a typo must not read as false.
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{var}: expected true or false, got {text!r}")


def resolve_secret(value: str, environ: Mapping[str, str], key: str) -> str:
    """Resolve `$env:NAME` / `$file:PATH` references; other strings pass through."""
    if value.startswith("$env:"):
        name = value[5:]
        if name not in environ:
            raise ConfigError(f"{key}: environment variable {name} is not set")
        return environ[name]
    if value.startswith("$file:"):
        path = Path(value[6:]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read secret file {path}: {exc.strerror}") from None
    return value


def _flatten(data: dict[str, Any], source: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == "signals":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [signals] must be a table")
            flat["signals"] = value
        elif isinstance(value, dict):
            known = _FILE_KEYS.get(key)
            if known is None or key == "":
                raise ConfigError(f"{source}: unknown section [{key}]")
            for sub, sub_value in value.items():
                if sub not in known:
                    raise ConfigError(f"{source}: unknown key {key}.{sub}")
                flat[known[sub]] = sub_value
        elif key in _FILE_KEYS[""]:
            flat[_FILE_KEYS[""][key]] = value
        else:
            raise ConfigError(f"{source}: unknown key {key!r}")
    return flat


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{name}: expected a table of venue = \"URL\" strings")
        unknown = sorted(set(value) - set(FUNDING_VENUES if name == "funding_urls" else VENUES))
        if unknown:
            raise ConfigError(f"{name}: unknown venue(s) {', '.join(unknown)}")
        return dict(value)
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{name}: expected a list or a comma-separated string")
        return tuple(str(v) for v in value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if isinstance(default, float):
        # NaN and inf are floats too: bot.config_checks bounds every number.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"{name}: expected a positive number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    return value


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the TOML file (if any), overlay the environment, then explicit overrides."""
    env = os.environ if environ is None else environ
    path = path or env.get("LIQBOT_CONFIG")
    flat: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from None
        flat = _flatten(data, str(path))
        try:
            check_file_secrets(flat, str(path))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    for var in env:
        if var.startswith("LIQBOT_") and var not in _ENV_KEYS and var not in _ENV_OTHER:
            raise ConfigError(f"unknown environment variable {var}")
    flat.update({field_: env[var] for var, field_ in _ENV_KEYS.items() if env.get(var)})
    if env.get("LIQBOT_LOG_JSON"):
        flat["log_json"] = _env_bool("LIQBOT_LOG_JSON", env["LIQBOT_LOG_JSON"])
    flat.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return _build(flat, env)


def _build(flat: dict[str, Any], env: Mapping[str, str]) -> Settings:
    defaults = Settings()
    values: dict[str, Any] = {}
    for name, value in flat.items():
        if name == "signals":
            try:
                values[name] = SignalParams.from_dict(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"[signals]: {exc}") from None
            continue
        value = _coerce(name, value, getattr(defaults, name))
        if name in SECRET_FIELDS:
            if isinstance(value, tuple):
                value = tuple(resolve_secret(v, env, name) for v in value)
            else:
                value = resolve_secret(value, env, name)
        values[name] = value
    settings = dataclasses.replace(defaults, **values)
    unknown = set(settings.venues) - set(VENUES)
    if unknown:
        raise ConfigError(f"feeds.venues.registry: unknown venue(s) {', '.join(sorted(unknown))}; "
                          f"choose from {', '.join(VENUES)}")
    unknown = set(settings.funding_venues) - set(FUNDING_VENUES)
    if unknown:
        raise ConfigError(f"funding.venues: unknown venue(s) {', '.join(sorted(unknown))}; "
                          f"choose from {', '.join(FUNDING_VENUES)}")
    parse_listen(settings.ops_listen)  # a bad address fails at start-up, naming the key
    try:
        check_settings(settings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return settings
