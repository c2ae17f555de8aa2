"""`liqbot decode`: one raw frame (a JSON line) -> normalized events, per venue."""

from __future__ import annotations

from collections.abc import Callable

from feeds.model import Liquidation
from feeds.venues.registry import venue_module

Decoder = Callable[[str], list[Liquidation]]


def decoder_for(exchange: str, instruments: str | None = None) -> Decoder:
    """Return the line decoder for a venue; ValueError lists the venues there are."""
    decoder: Decoder = venue_module(exchange).decoder(instruments)
    return decoder
