"""The venues' names and the facts the settings need about them, without the venues' code.

`registry.py` imports every venue module, and with them the websocket and HTTP clients
(aiohttp alone is ~90 ms of start-up). The settings, `liqbot --help` and `liqbot totals`
only need names; they read them here. `registry.py` checks at import that these agree with
the modules, so the two lists cannot drift apart.
"""

from __future__ import annotations

# Liquidation venues, in the order `liqbot status` lists them.
VENUE_NAMES: tuple[str, ...] = (
    "binance", "binance-coinm", "bybit", "okx", "bitmex", "deribit", "coinglass")
# Venues whose funding and open interest are polled over REST.
FUNDING_VENUES: tuple[str, ...] = ("binance", "bybit", "okx", "deribit", "hyperliquid")
# Throttled feeds: totals that include them are lower bounds (each module's SAMPLED).
SAMPLED_VENUES: frozenset[str] = frozenset({"binance", "binance-coinm", "okx"})
DEFAULT_LIVE: tuple[str, ...] = ("binance", "bybit", "okx")
