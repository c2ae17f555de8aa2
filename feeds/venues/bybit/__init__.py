"""Bybit v5: the liquidation sockets (stream.py) and funding / open interest over REST (rest.py)."""

from feeds.venues.bybit.rest import (
    FUNDING,
    category_of,
    fetch_funding,
    parse_funding_history,
    parse_funding_intervals,
    parse_tickers,
)
from feeds.venues.bybit.stream import (
    CATEGORIES,
    DEFAULT_REST_URL,
    DEFAULT_URL,
    EXCHANGE,
    FALLBACK_SYMBOLS,
    INSTRUMENTS_PATH,
    SAMPLED,
    TOPIC,
    BybitFeed,
    category_feeds,
    decoder,
    fetch_symbols,
    looks_inverse,
    make_feeds,
    parse_instruments_page,
    parse_liquidation,
    parse_message,
)

__all__ = [
    "CATEGORIES", "DEFAULT_REST_URL", "DEFAULT_URL", "EXCHANGE", "FALLBACK_SYMBOLS", "FUNDING",
    "INSTRUMENTS_PATH", "SAMPLED", "TOPIC", "BybitFeed", "category_feeds", "category_of", "decoder",
    "fetch_funding", "fetch_symbols", "looks_inverse", "make_feeds", "parse_funding_history",
    "parse_funding_intervals", "parse_instruments_page", "parse_liquidation", "parse_message",
    "parse_tickers",
]
