"""One argument grammar for every platform: each word is a kind, a window, a size or a coin.

Telegram users type words; Discord options arrive as words too (bot/discord/commands.py
checks each option with `classify`). A word is read by what it is, never by where it
stands, and a coin must be one the store has seen (instrument tables, liquidations,
funding or candles, bot/state/coins.py): `5x` or `2T` is refused with one line naming
the word, instead of becoming a coin that no alert will ever match.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bot.state.coins import known_coin
from feeds.model import coin_of
from feeds.store import WINDOWS_MS, Store
from signals.kinds import KIND_WORDS
from signals.params import SEVERITY_NAMES

_SYMBOL = re.compile(r"^[A-Za-z0-9]{2,20}$")
# "7d" is a window we lack, not a coin called 7D; "10m" is $10M unless a window is wanted.
_WINDOWISH = re.compile(r"^\d+(?:h|d|w|min|mins|hr|hrs|day|days)$", re.IGNORECASE)
_MINUTES = re.compile(r"^\d+m$", re.IGNORECASE)
_USD = re.compile(r"^\$?(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)([kKmMbBtT]?)$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")  # 1e400 is no coin (1INCH is)
_LEVERAGE = re.compile(r"^\d+(?:\.\d+)?x$", re.IGNORECASE)
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
ALL_WORDS = ("all", "both")
SEVERITY_WORDS = {name: name for name in SEVERITY_NAMES.values()}

# What a command may take: each part at most once, except coins (and kinds, levels).
KIND, WINDOW, SIZE, COIN, LEVEL = "kind", "window", "size", "coin", "level"


class CommandError(ValueError):
    """Bad arguments: the message is the one line of help the user sees."""


def parse_usd(token: str) -> float | None:
    """`10M`, `$500k`, `2.5b`, `1000000` -> USD; None when the token is not an amount."""
    m = _USD.match(token.replace(",", "").replace("_", ""))
    if not m:
        return None
    value = float(m.group(1)) * _SCALE[m.group(2).lower()]
    if not value <= 1e12:  # also inf, from 1e400
        raise CommandError(f"{token[:24]!r}: amounts above $1T make no sense here")
    return value


def parse_symbol(token: str) -> str:
    """The shape of a coin (letters and digits); whether it is known is `known_coin`'s."""
    if not _SYMBOL.match(token) or _NUMBER.match(token) or _LEVERAGE.match(token):
        raise CommandError(f"{token[:24]!r} is not a coin (letters and digits, e.g. BTC)")
    return coin_of(token)


def classify(word: str) -> str:
    """The part a word plays by its shape alone; CommandError when it plays none.

    Shared by Telegram's words and Discord's options, so both refuse the same words
    with the same line. Whether a coin-shaped word is a coin the store knows is checked
    by `parse_words`, which has the store.
    """
    lower = word.lower()
    if lower in KIND_WORDS or lower in ALL_WORDS:
        return KIND
    if lower in SEVERITY_WORDS:
        return LEVEL
    if lower in WINDOWS_MS:
        return WINDOW
    if _WINDOWISH.match(word):
        raise CommandError(f"unknown window {word[:12]!r}: use one of {', '.join(WINDOWS_MS)}")
    if parse_usd(word) is not None:
        return SIZE
    if _LEVERAGE.match(word):
        raise CommandError(f"{word[:12]!r} is not a coin, kind, window or size "
                           "(leverage is not something liqbot filters on)")
    parse_symbol(word)
    return COIN


@dataclass(frozen=True, slots=True)
class Args:
    """What the words said; None / empty where they said nothing."""

    kinds: tuple[str, ...] = ()
    window: str | None = None
    min_usd: float | None = None
    coins: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()


WHAT = {KIND: "a kind (squeeze, cascade)", WINDOW: "a window", SIZE: "a size (e.g. 10M)",
         COIN: "a coin", LEVEL: "a severity (notable, large, extreme)"}
_ORDER = (KIND, LEVEL, WINDOW, SIZE, COIN)


def _refuse(store: Store | None, word: str, part: str, accept: Collection[str],
            command: str) -> CommandError:
    """The one line for a word this command does not take, saying what it takes."""
    if part == COIN and not (store is not None and known_coin(store, coin_of(word))):
        wanted = " or ".join(WHAT[p] for p in _ORDER if p in accept) or "nothing"
        return CommandError(f"{word[:24]!r} is not {wanted}")
    return CommandError(f"{word[:24]!r} is {WHAT[part]}, which /{command} does not take")


def _part_for(word: str, accept: Collection[str]) -> str:
    """`classify`, settling what only the command can: 5m is a window to /liqs, $5M to
    /subscribe; 10m is an unknown window to /liqs."""
    part = classify(word)
    if part == WINDOW and part not in accept and SIZE in accept and parse_usd(word):
        return SIZE
    if part == SIZE and SIZE not in accept and WINDOW in accept and _MINUTES.match(word):
        raise CommandError(f"unknown window {word[:12]!r}: use one of {', '.join(WINDOWS_MS)}")
    return part


def parse_words(store: Store | None, words: Sequence[str], accept: Collection[str],
                command: str, max_coins: int = 1) -> Args:
    """Read `words` as the parts `accept` allows; anything else is one line naming the word.

    `store` None skips the known-coin check (shape only).
    """
    kinds: list[str] = []
    levels: list[str] = []
    coins: list[str] = []
    window: str | None = None
    min_usd: float | None = None
    for word in words:
        part = _part_for(word, accept)
        if part not in accept:
            raise _refuse(store, word, part, accept, command)
        lower = word.lower()
        if part == KIND:
            kinds.extend(("short_squeeze", "long_cascade") if lower in ALL_WORDS
                         else (KIND_WORDS[lower],))
        elif part == LEVEL:
            levels.append(lower)
        elif part == WINDOW:
            if window is not None:
                raise CommandError(f"{word[:24]!r}: /{command} takes one window")
            window = lower
        elif part == SIZE:
            if min_usd is not None:
                raise CommandError(f"{word[:24]!r}: /{command} takes one size")
            min_usd = parse_usd(word)
        else:
            coin = parse_symbol(word)
            if store is not None and not known_coin(store, coin):
                raise CommandError(f"{word[:24]!r} is not a coin liqbot has seen on any venue "
                                   "(nor a kind, window or size)")
            if coin not in coins:
                coins.append(coin)
            if len(coins) > max_coins:
                raise CommandError(f"{word[:24]!r}: /{command} takes "
                                   + ("one coin" if max_coins == 1 else f"{max_coins} coins"))
    return Args(tuple(dict.fromkeys(kinds)), window, min_usd, tuple(coins),
                tuple(dict.fromkeys(levels)))
