"""`liqbot decode`: one raw frame (a JSON line) -> normalized events, per venue."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from feeds.model import Liquidation, ParseError
from feeds.venues.registry import venue_module

Decoder = Callable[[str], list[Liquidation]]

# CoinGlass' parser passes any object without a "channel" as a control reply (acks carry
# one of these keys); on a decode line an object with none of them is bad input, counted
# like every other venue's.
_COINGLASS_CONTROL = frozenset({"channel", "method", "code", "success", "error", "msg", "event"})


def decoder_for(exchange: str, instruments: str | None = None) -> Decoder:
    """Return the line decoder for a venue; ValueError lists the venues there are."""
    decoder: Decoder = venue_module(exchange).decoder(instruments)
    if exchange == "coinglass":
        return lambda line: _coinglass_known(line) or decoder(line)
    return decoder


def _coinglass_known(line: str) -> list[Liquidation]:
    """[] for a line the parser may judge; ParseError for an object it would pass silently."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return []  # the parser says what is wrong with it
    if isinstance(obj, dict) and not _COINGLASS_CONTROL & obj.keys():
        raise ParseError(f"not a CoinGlass frame: none of {', '.join(sorted(_COINGLASS_CONTROL))}")
    return []
