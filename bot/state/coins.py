"""Which coins the store knows: what a chat command may name (bot/grammar.py).

A coin is known when a venue's instrument table lists it, or liquidations, funding or
candles were recorded for it. Read on the writer thread with the rest of a command.
"""

from __future__ import annotations

import time
import weakref

from feeds.model import coin_of
from feeds.store import Store

# Per store: (read at, coins of the instrument tables). The tables change daily at most;
# a command must not re-read thousands of symbols each time.
_INSTRUMENTS: weakref.WeakKeyDictionary[Store, tuple[float, frozenset[str]]] = (
    weakref.WeakKeyDictionary())
_TTL_S = 300.0

# Indexed lookups first (candles' key and funding's index lead with the coin); the bucket
# tables are scanned, which only an unknown word pays for in full.
_TABLES = ("candles", "funding", "buckets_4h", "buckets_1h", "agg_buckets")


def instrument_coins(store: Store) -> frozenset[str]:
    hit = _INSTRUMENTS.get(store)
    if hit is not None and time.monotonic() - hit[0] < _TTL_S:
        return hit[1]
    rows = store.database.conn.execute("SELECT DISTINCT symbol FROM instruments")
    coins = frozenset(coin_of(str(r[0])) for r in rows)
    _INSTRUMENTS[store] = (time.monotonic(), coins)
    return coins


def known_coin(store: Store, coin: str) -> bool:
    """Has any venue listed, or any data named, this coin?

    A store that knows no coin at all (a first start, before the instrument tables came)
    has nothing to judge by: every well-formed coin passes there rather than none.
    """
    coin = coin.upper()
    instruments = instrument_coins(store)
    if coin in instruments:
        return True
    conn = store.database.conn
    if any(conn.execute(f"SELECT 1 FROM {table} WHERE coin = ? LIMIT 1",  # noqa: S608
                        (coin,)).fetchone() for table in _TABLES):
        return True
    return not instruments and not any(
        conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()  # noqa: S608
        for table in _TABLES)
