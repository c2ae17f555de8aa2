"""The instrument cache: each venue's latest instrument table, as JSON text per symbol.

feeds/venues/instruments.py decides when to fetch, refresh or fall back; the rows live here.
"""

from __future__ import annotations

from collections.abc import Iterable

from feeds.store.core import Store


def replace_instruments(store: Store, exchange: str,
                        specs: Iterable[tuple[str, str]], now_ms: int) -> None:
    """Replace the cached (symbol, spec JSON) rows of `exchange` in one transaction."""
    rows = [(exchange, symbol, text, now_ms) for symbol, text in specs]
    conn = store.database.conn
    with store.transaction():
        # Replace, not merge: the cache mirrors the venue's latest full answer, so a
        # delisted symbol does not stay subscribed forever.
        conn.execute("DELETE FROM instruments WHERE exchange = ?", (exchange,))
        conn.executemany("INSERT INTO instruments VALUES (?, ?, ?, ?)", rows)


def instrument_rows(store: Store, exchange: str) -> list[tuple[str, str, int]]:
    """The cached (symbol, spec JSON, updated_ms) rows of `exchange`."""
    return [(str(s), str(t), int(u)) for s, t, u in store.database.conn.execute(
        "SELECT symbol, spec, updated_ms FROM instruments WHERE exchange = ?", (exchange,))]
