"""Which coins the store knows: what a chat command may name (bot/grammar.py).

A coin is known when a venue's instrument table lists it, or liquidations, funding or
candles were recorded for it. Read on the writer thread with the rest of a command.
"""

from __future__ import annotations

import time
import weakref

from feeds.model import coin_of
from feeds.store import Store

_TTL_S = 300.0
_RECHECK_S = 30.0  # an unknown word re-reads a list older than this
# Per store. Instrument tables change daily at most: re-read when their stamp moves. The
# coins with liquidations are a scan of the 4-hour buckets (aggregates too): cached for
# `_TTL_S`, and done only when a word is not known by the cheap means first.
_INSTRUMENT_STAMP: weakref.WeakKeyDictionary[Store, tuple[tuple[int, int], frozenset[str]]] = (
    weakref.WeakKeyDictionary())
_LIQUIDATED: weakref.WeakKeyDictionary[Store, tuple[float, frozenset[str]]] = (
    weakref.WeakKeyDictionary())
# Keyed or indexed by coin first: one lookup each.
_INDEXED = ("candles", "funding")


def _cached(cache: weakref.WeakKeyDictionary[Store, tuple[float, frozenset[str]]],
            store: Store, sql: str, max_age_s: float = _TTL_S) -> frozenset[str]:
    hit = cache.get(store)
    if hit is not None and time.monotonic() - hit[0] < max_age_s:
        return hit[1]
    found = frozenset(str(r[0]) for r in store.database.conn.execute(sql))
    cache[store] = (time.monotonic(), found)
    return found


def instrument_coins(store: Store) -> frozenset[str]:
    """Re-read when the tables changed (a refresh stamps `updated_ms`), else cached."""
    conn = store.database.conn
    stamp = conn.execute("SELECT count(*), max(updated_ms) FROM instruments").fetchone()
    hit = _INSTRUMENT_STAMP.get(store)
    if hit is not None and hit[0] == tuple(stamp):
        return hit[1]
    coins = frozenset(coin_of(str(r[0])) for r in conn.execute(
        "SELECT DISTINCT symbol FROM instruments"))
    _INSTRUMENT_STAMP[store] = (tuple(stamp), coins)
    return coins


def liquidated_coins(store: Store, max_age_s: float = _TTL_S) -> frozenset[str]:
    return _cached(_LIQUIDATED, store, "SELECT DISTINCT coin FROM buckets_4h UNION "
                   "SELECT DISTINCT coin FROM agg_buckets", max_age_s)


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
                        (coin,)).fetchone() for table in _INDEXED):
        return True
    liquidated = liquidated_coins(store)
    if coin not in liquidated:  # a coin liquidated for the first time minutes ago
        liquidated = liquidated_coins(store, max_age_s=_RECHECK_S)
    if coin in liquidated:
        return True
    return not instruments and not liquidated and not any(
        conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()  # noqa: S608
        for table in _INDEXED)
