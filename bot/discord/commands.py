"""Discord slash commands: the COMMANDS table as app_commands, thin over bot/commands.py.

Each callback turns its typed options into the argument words Telegram users type and hands
them to `Answerer.command`, which runs `dispatch` on the writer thread. Changing settings needs
Manage Server, checked twice: by an app_commands check (`default_permissions` is only a hint
to the client) and again by `dispatch` / `press` through `Ctx.is_admin`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

import discord
from discord import app_commands
from discord.app_commands import Choice

from bot.commands import COMMANDS, MIN_USD_PRESETS, Reply
from bot.grammar import COIN, KIND, SIZE, WHAT, CommandError, classify
from bot.render import money
from bot.state.subscriptions import DIGESTS
from feeds.store import WINDOWS_MS
from signals.params import SEVERITY_NAMES

MANAGER_ONLY = "You need the Manage Server permission to change alert settings in this server."
SETTINGS_PREFIX = "liqbot:set:"
USD_PRESETS = tuple(money(v)[1:] for v in MIN_USD_PRESETS if v) + ("100M",)

Interaction = discord.Interaction[Any]
Complete = Callable[[Interaction, str], Coroutine[Any, Any, list[Choice[str]]]]
OnError = Callable[[Interaction, app_commands.AppCommandError], Coroutine[Any, Any, None]]


class Answerer(Protocol):
    """What the commands need from the service: run one, and suggest symbols."""

    async def command(self, interaction: Interaction, name: str,
                      args: Sequence[str | None]) -> None: ...

    async def press(self, interaction: Interaction, data: str) -> None: ...

    async def symbols(self, interaction: Interaction, current: str) -> list[Choice[str]]: ...


def is_manager(interaction: Interaction) -> bool:
    """Manage Server (or Administrator) in a server; anyone in a DM owns their own settings."""
    if interaction.guild_id is None:
        return True
    perms = interaction.permissions
    return perms.manage_guild or perms.administrator


async def _require_manager(interaction: Interaction) -> bool:
    if not is_manager(interaction):
        raise app_commands.MissingPermissions(["manage_guild"])
    return True


def manager_only() -> Callable[[Any], Any]:
    """The real check, plus the client-side hint that hides the command from non-managers."""
    def decorate(func: Any) -> Any:
        func = app_commands.check(_require_manager)(func)
        return app_commands.default_permissions(manage_guild=True)(func)
    return decorate


def _choices(values: Sequence[str], current: str) -> list[Choice[str]]:
    word = current.strip().lower()
    return [Choice(name=v, value=v) for v in values if v.lower().startswith(word)][:25]


class BadOption(app_commands.AppCommandError):
    """A typed option the command cannot use; the message is the one line of help."""


class WindowOption(app_commands.Transformer):
    """A window name: suggested while typing, refused with the choices when unknown.

    Checked here because a free word reaching `dispatch` could be read as a symbol.
    """

    @property
    def min_value(self) -> int:
        return 1

    @property
    def max_value(self) -> int:
        return 8

    async def transform(self, interaction: Interaction, value: Any, /) -> str:
        word = str(value).strip().lower()
        if word not in WINDOWS_MS:
            choices = ", ".join(WINDOWS_MS)
            raise BadOption(f"unknown window {str(value)[:8]!r}: use one of {choices}")
        return word

    async def autocomplete(self, interaction: Interaction, value: Any,  # type: ignore[override]
                           /) -> list[Choice[str]]:
        return _choices(list(WINDOWS_MS), str(value))


Window = app_commands.Transform[str, WindowOption]


class ChoiceOption(app_commands.Transformer):
    """One of a few words, offered as choices and refused when anything else arrives.

    Discord's client offers only the choices, but discord.py passes any value through, and
    `dispatch` would read an unknown word as a coin.
    """

    def __init__(self, *values: str) -> None:
        self.values = values

    @property
    def choices(self) -> list[Choice[str]]:  # type: ignore[override]
        return [Choice(name=v, value=v) for v in self.values]

    async def transform(self, interaction: Interaction, value: Any, /) -> str:
        word = str(value).strip().lower()
        if word not in self.values:
            raise BadOption(f"unknown choice {str(value)[:16]!r}: use one of "
                            f"{', '.join(self.values)}")
        return word


class WordsOption(app_commands.Transformer):
    """Free text whose every word must pass `check` (None: fine, else the reason).

    `dispatch` reads words by what they look like, so `min_usd:squeeze` would change the
    kinds and `symbol:4h` the window: each option takes only its own kind of word.
    """

    def __init__(self, check: Callable[[str], str | None], max_length: int,
                 max_words: int = 1) -> None:
        self.check, self.max_length, self.max_words = check, max_length, max_words

    @property
    def min_value(self) -> int:
        return 1

    @property
    def max_value(self) -> int:
        return self.max_length

    async def transform(self, interaction: Interaction, value: Any, /) -> str:
        words = str(value).split()
        if len(words) > 12 or any(len(w) > 64 for w in words):
            return str(value)  # too many or too long: `dispatch` refuses it in its own words
        for word in words:
            problem = self.check(word)
            if problem:
                raise BadOption(problem)
        if len(words) > self.max_words:
            raise BadOption(f"{str(value)[:24]!r}: one value only")
        return " ".join(words)


def _part(expected: str) -> Callable[[str], str | None]:
    """A check by the shared grammar (bot/grammar.py): the word must be `expected`.

    Whether a coin-shaped word is a coin the store knows, `dispatch` checks, as it does
    for Telegram's words: both platforms refuse the same words with the same line.
    """
    def problem(word: str) -> str | None:
        try:
            part = classify(word)
        except CommandError as exc:
            return str(exc)
        if part == expected:
            return None
        if part == COIN:  # a coin by its shape only: say what was wanted, as Telegram does
            return f"{word[:24]!r} is not {WHAT[expected]}"
        return f"{word[:24]!r} is {WHAT[part]}, not {WHAT[expected]}"
    return problem


_amount_problem = _part(SIZE)
_coin_problem = _part(COIN)


class KindOption(ChoiceOption):
    """squeeze / cascade (/ all): offered as choices, refused in the grammar's words."""

    async def transform(self, interaction: Interaction, value: Any, /) -> str:
        problem = _part(KIND)(str(value).strip())
        if problem:
            raise BadOption(problem)
        return await super().transform(interaction, value)


Amount = app_commands.Transform[str, WordsOption(_amount_problem, 16)]
Coin = app_commands.Transform[str, WordsOption(_coin_problem, 20)]
Coins = app_commands.Transform[str, WordsOption(_coin_problem, 100, max_words=12)]
Kinds = app_commands.Transform[str, KindOption("squeeze", "cascade", "all")]
Kind = app_commands.Transform[str, KindOption("squeeze", "cascade")]
Severity = app_commands.Transform[str, ChoiceOption(*SEVERITY_NAMES.values())]
Digest = app_commands.Transform[str, ChoiceOption(*DIGESTS)]


async def usd_presets(interaction: Interaction, current: str) -> list[Choice[str]]:
    return _choices(USD_PRESETS, current)


def last_word(complete: Complete) -> Complete:
    """Autocomplete the last of several space-separated words (`BTC ET` -> `BTC ETH`)."""
    async def inner(interaction: Interaction, current: str) -> list[Choice[str]]:
        head, _, tail = current.rpartition(" ")
        prefix = f"{head} " if head else ""
        found = await complete(interaction, tail)
        return [Choice(name=(prefix + c.value)[:100], value=(prefix + c.value)[:100])
                for c in found]
    return inner


def _help(name: str) -> str:
    return COMMANDS[name].help[:100]


SYMBOL = "a coin, e.g. BTC (every coin when empty)"
WINDOW = "5m, 15m, 30m, 1h, 4h or 24h (default 1h)"


def slash_commands(app: Answerer) -> list[app_commands.Command[Any, Any, None]]:
    """One app command per COMMANDS entry; option names and types are the public schema."""

    @app_commands.command(name="start", description=_help("start"))
    async def start(interaction: Interaction) -> None:
        await app.command(interaction, "start", [])

    @app_commands.command(name="help", description=_help("help"))
    async def help_(interaction: Interaction) -> None:
        await app.command(interaction, "help", [])

    @app_commands.command(name="liqs", description=_help("liqs"))
    @app_commands.describe(symbol=SYMBOL, window=WINDOW)
    @app_commands.autocomplete(symbol=app.symbols)
    async def liqs(interaction: Interaction, symbol: Coin | None = None,
                   window: Window | None = None) -> None:
        await app.command(interaction, "liqs", [symbol, window])

    @app_commands.command(name="top", description=_help("top"))
    @app_commands.describe(window=WINDOW)
    async def top(interaction: Interaction, window: Window | None = None) -> None:
        await app.command(interaction, "top", [window])

    @app_commands.command(name="chart", description=_help("chart"))
    @app_commands.describe(symbol=SYMBOL, window=WINDOW)
    @app_commands.autocomplete(symbol=app.symbols)
    async def chart(interaction: Interaction, symbol: Coin | None = None,
                    window: Window | None = None) -> None:
        await app.command(interaction, "chart", [symbol, window])

    @app_commands.command(name="funding", description=_help("funding"))
    @app_commands.describe(symbol="a coin, e.g. BTC (default BTC)")
    @app_commands.autocomplete(symbol=app.symbols)
    async def funding(interaction: Interaction, symbol: Coin | None = None) -> None:
        await app.command(interaction, "funding", [symbol])

    @app_commands.command(name="subscribe", description=_help("subscribe"))
    @app_commands.describe(kinds="which alerts (default: both)",
                           min_usd="smallest alert, e.g. 10M or $500K (default: any size)",
                           symbols="coins, space-separated, e.g. BTC ETH (default: all)")
    @app_commands.autocomplete(min_usd=usd_presets, symbols=last_word(app.symbols))
    @manager_only()
    async def subscribe(interaction: Interaction,
                        kinds: Kinds | None = None,
                        min_usd: Amount | None = None,
                        symbols: Coins | None = None) -> None:
        await app.command(interaction, "subscribe", [kinds, min_usd, symbols])

    @app_commands.command(name="unsubscribe", description=_help("unsubscribe"))
    @manager_only()
    async def unsubscribe(interaction: Interaction) -> None:
        await app.command(interaction, "unsubscribe", [])

    @app_commands.command(name="settings", description=_help("settings"))
    async def settings(interaction: Interaction) -> None:
        await app.command(interaction, "settings", [])

    @app_commands.command(name="backtest", description=_help("backtest"))
    @app_commands.describe(kind="one kind of alert (default: both)")
    async def backtest(interaction: Interaction,
                       kind: Kind | None = None) -> None:
        await app.command(interaction, "backtest", [kind])

    @app_commands.command(name="status", description=_help("status"))
    async def status(interaction: Interaction) -> None:
        await app.command(interaction, "status", [])

    # /start is the same onboarding as Telegram's: three lines and buttons.
    return [start, help_, liqs, top, chart, funding, subscribe, unsubscribe, settings,
            *settings_commands(app), backtest, status]


def settings_commands(app: Answerer) -> list[app_commands.Command[Any, Any, None]]:
    """/quiet, /digest, /silent, /mute, /unmute: a chat's notification settings."""

    @app_commands.command(name="quiet", description=_help("quiet")[:100])
    @app_commands.describe(hours="e.g. 23-07 or 22:30-06:00, or off (default: show them)",
                           timezone="e.g. Europe/Berlin (default: the chat's, else UTC)")
    @manager_only()
    async def quiet(interaction: Interaction, hours: str | None = None,
                    timezone: str | None = None) -> None:
        await app.command(interaction, "quiet", [hours, timezone])

    @app_commands.command(name="digest", description=_help("digest"))
    @app_commands.describe(period="daily, 4h or off (default: show the settings)")
    @manager_only()
    async def digest(interaction: Interaction, period: Digest | None = None) -> None:
        await app.command(interaction, "digest", [period])

    def levels(name: str) -> app_commands.Command[Any, Any, None]:
        @app_commands.command(name=name, description=_help(name))
        @app_commands.describe(kind="one kind (default: both)",
                               severity="one severity (default: all three)")
        @manager_only()
        async def set_levels(interaction: Interaction, kind: Kinds | None = None,
                             severity: Severity | None = None) -> None:
            await app.command(interaction, name, [kind, severity])
        return set_levels

    return [quiet, digest, levels("silent"), levels("mute"), levels("unmute")]


def build_tree(client: discord.Client, app: Answerer,
               on_error: OnError) -> app_commands.CommandTree[Any]:
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)
    for command in slash_commands(app):
        tree.add_command(command)
    tree.error(on_error)
    return tree


def command_payload(tree: app_commands.CommandTree[Any]) -> list[dict[str, Any]]:
    """Exactly what `tree.sync()` uploads, in a stable order."""
    return sorted((cmd.to_dict(tree) for cmd in tree.get_commands()), key=lambda c: c["name"])


def command_digest(tree: app_commands.CommandTree[Any]) -> str:
    payload = json.dumps(command_payload(tree), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class SettingsButton(discord.ui.DynamicItem[discord.ui.Button[Any]],
                     template=r"liqbot:set:(?P<data>[A-Za-z0-9_:.]{1,60})"):
    """A settings button; its custom_id carries `press` data, so it works after a restart."""

    def __init__(self, label: str, data: str, row: int | None = None) -> None:
        super().__init__(discord.ui.Button(label=label[:80], custom_id=SETTINGS_PREFIX + data,
                                           style=discord.ButtonStyle.secondary), row=row)
        self.data = data

    @classmethod
    async def from_custom_id(cls, interaction: Interaction, item: discord.ui.Item[Any],
                             match: Any, /) -> SettingsButton:
        return cls(getattr(item, "label", None) or "", match["data"])

    async def callback(self, interaction: Interaction) -> None:
        await interaction.client.service.press(interaction, self.data)


def settings_view(reply: Reply) -> discord.ui.View | None:
    """Reply buttons as a view: one row per row, at most 5 rows of 5 (Discord's limit)."""
    if not reply.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for row, buttons in enumerate(reply.buttons[:5]):
        for label, data in buttons[:5]:
            view.add_item(SettingsButton(label, data, row=row))
    return view
