"""`liqbot decode`: one raw frame (a JSON line) -> normalized events, per venue."""

from __future__ import annotations

import time
from collections.abc import Callable

from feeds import binance
from feeds.model import Liquidation

Decoder = Callable[[str], list[Liquidation]]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _binance(instruments: str | None) -> Decoder:
    return lambda line: binance.parse_message(line, _now_ms())


# Venue name -> factory taking the optional instruments file.
DECODERS: dict[str, Callable[[str | None], Decoder]] = {
    "binance": _binance,
}


def decoder_for(exchange: str, instruments: str | None = None) -> Decoder:
    """Return the line decoder for a venue; ValueError lists the venues there are."""
    try:
        factory = DECODERS[exchange.lower()]
    except KeyError:
        raise ValueError(
            f"unknown exchange {exchange!r}: choose one of {', '.join(DECODERS)}"
        ) from None
    return factory(instruments)
