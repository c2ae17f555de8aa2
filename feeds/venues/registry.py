"""Every liquidation venue, by the name `liqbot decode --exchange` and the config use.

Each venue module exposes the same small surface, so nothing outside it knows its quirks:

    EXCHANGE: str                                  # the venue id, e.g. "bybit"
    def decoder(instruments_path: str | None) -> Callable[[str], list[Liquidation]]
        # one raw frame (a JSON text line) -> normalized events; acks/pings -> []
    def make_feeds(sink, *, clock, on_gap, store_path=None, **options) -> list[WsFeed]
        # the live connections for this venue (one or more sockets)

Modules are imported lazily so a broken optional venue cannot stop the others.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Venue id -> module path. Order is the order `liqbot status` lists them in.
VENUES: dict[str, str] = {
    "binance": "feeds.venues.binance",
    "binance-coinm": "feeds.venues.binance_coinm",
    "bybit": "feeds.venues.bybit",
    "okx": "feeds.venues.okx",
    "bitmex": "feeds.venues.bitmex",
    "deribit": "feeds.venues.deribit",
    "coinglass": "feeds.venues.coinglass",
}

DEFAULT_LIVE = ("binance", "bybit", "okx")


def venue_module(name: str) -> ModuleType:
    """Import the module of a venue; ValueError lists the venues there are."""
    try:
        path = VENUES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown exchange {name!r}: choose one of {', '.join(VENUES)}") from None
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name == path:
            raise ValueError(f"exchange {name!r} is not implemented yet") from None
        raise
