"""Every venue, by the name `liqbot decode --exchange` and the config use.

The tables hold the venue modules themselves, typed as the protocols of base.py, so mypy
checks that each module exposes the whole surface (EXCHANGE, SAMPLED, decoder, make_feeds
taking a FeedOptions; FUNDING for the funding venues). What a venue is lives in its own
module; this file only lists them.
"""

from __future__ import annotations

from feeds.venues import (
    binance,
    binance_coinm,
    bitmex,
    bybit,
    coinglass,
    deribit,
    hyperliquid,
    names,
    okx,
)
from feeds.venues.base import FundingVenue, Venue

# Liquidation venues. Order is the order `liqbot status` lists them in.
VENUES: dict[str, Venue] = {
    "binance": binance,
    "binance-coinm": binance_coinm,
    "bybit": bybit,
    "okx": okx,
    "bitmex": bitmex,
    "deribit": deribit,
    "coinglass": coinglass,
}

# Venues whose current funding and open interest are polled over REST.
FUNDING: dict[str, FundingVenue] = {
    "binance": binance,
    "bybit": bybit,
    "okx": okx,
    "deribit": deribit,
    # Funding and OI only: Hyperliquid has no public all-market liquidation feed.
    "hyperliquid": hyperliquid,
}
FUNDING_VENUES: tuple[str, ...] = tuple(FUNDING)

# Throttled feeds: totals that include them are lower bounds (PROTOCOLS.md overview).
SAMPLED_VENUES: frozenset[str] = frozenset(name for name, v in VENUES.items() if v.SAMPLED)

DEFAULT_LIVE = names.DEFAULT_LIVE

# names.py lists the same facts for code that must not load the venues (start-up time).
if (tuple(VENUES), FUNDING_VENUES, SAMPLED_VENUES) != (
        names.VENUE_NAMES, names.FUNDING_VENUES, names.SAMPLED_VENUES):
    raise ImportError("feeds/venues/names.py disagrees with the venue modules; update it")


def venue_module(name: str) -> Venue:
    """The module of a liquidation venue; ValueError lists the venues there are."""
    try:
        return VENUES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown exchange {name!r}: choose one of {', '.join(VENUES)}") from None


def funding_venue(name: str) -> FundingVenue:
    """The module of a funding venue; ValueError lists the venues there are."""
    try:
        return FUNDING[name.lower()]
    except KeyError:
        raise ValueError(f"no funding poller for {name!r}: choose one of "
                         f"{', '.join(FUNDING)}") from None
