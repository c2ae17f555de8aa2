"""The signal kinds and everything said about them: names, colours, side and direction.

Classifiers read the dominant side here; alerts, chat commands, Discord embeds, backtest
reports and charts read their words and colours. A new kind is a SignalKind member, its
entry in `KINDS` and its classifier in `signals.registry`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from feeds.model import Side


class SignalKind(enum.StrEnum):
    """What a signal says happened."""

    SHORT_SQUEEZE = "short_squeeze"
    LONG_CASCADE = "long_cascade"


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: SignalKind
    name: str  # "Short squeeze": table cells; plural in headings
    icon: str  # leads the alert's title in chats
    colour: int  # Discord embed colour
    chart_colour: str  # matplotlib colour in the backtest charts
    dominant: Side  # the liquidated side that defines the kind
    direction: int  # +1 / -1: the way price goes if the move continues
    moved: str  # "rose" / "fell": the report's past tense of `direction`
    words: tuple[str, ...]  # what users may type for it in chat commands

    @property
    def title(self) -> str:
        """The alert title: "SHORT SQUEEZE"."""
        return self.name.upper()

    @property
    def plural(self) -> str:
        return self.name + "s"

    @property
    def way(self) -> str:
        return "up" if self.direction > 0 else "down"


# In SignalKind order: reports and charts list kinds in this order.
KINDS: dict[SignalKind, KindInfo] = {
    SignalKind.SHORT_SQUEEZE: KindInfo(
        SignalKind.SHORT_SQUEEZE, "Short squeeze", "🚨", 0x2ECC71, "tab:green", Side.SHORT, 1,
        "rose", ("squeeze", "squeezes", "short_squeeze")),
    SignalKind.LONG_CASCADE: KindInfo(
        SignalKind.LONG_CASCADE, "Long cascade", "🩸", 0xE74C3C, "tab:red", Side.LONG, -1,
        "fell", ("cascade", "cascades", "long_cascade")),
}

_BY_VALUE: dict[str, KindInfo] = {k.value: i for k, i in KINDS.items()}

# A word a user typed -> the kind's value.
KIND_WORDS: dict[str, str] = {w: k.value for k, i in KINDS.items() for w in i.words}


def kind_info(kind: str) -> KindInfo:
    """The KindInfo of a kind value (alerts and results files carry values); KeyError if unknown."""
    return _BY_VALUE[kind]


def find_kind(kind: str) -> KindInfo | None:
    """As `kind_info`, None for a kind this version does not know (an old stored alert)."""
    return _BY_VALUE.get(kind)
