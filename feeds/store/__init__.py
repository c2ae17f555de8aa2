"""The only SQL about market data: schema, buckets, window totals, status queries.

`Database` (db.py) is the one connection of the file and the seam bot/state builds on;
`Store` (core.py) is the market data on it. Import the names from here.
"""

from feeds.store.core import Store
from feeds.store.db import Database, StoreError, Transaction
from feeds.store.totals import (
    AGGREGATE_RANK,
    WINDOWS_MS,
    Totals,
    TotalsRow,
    parse_window,
    window_name,
)

__all__ = [
    "AGGREGATE_RANK",
    "WINDOWS_MS",
    "Database",
    "Store",
    "StoreError",
    "Totals",
    "TotalsRow",
    "Transaction",
    "parse_window",
    "window_name",
]
