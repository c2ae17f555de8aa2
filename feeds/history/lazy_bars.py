"""Parquet bar files (candles, funding, OI) held as columns, made into items as replayed.

The whole-file loaders of `feeds.history.parquet` build every Candle/Funding/OpenInterest
up front, ~700 bytes each; these keep the same checked values as plain columns (~60 bytes
a row) and build each item only when the timeline reaches it. Values, spans, funding
intervals and notes are computed by the loaders' own helpers, so the items are equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feeds.history.parquet import (
    FUNDING_HOURS,
    _dec,
    _series_steps,
    finite,
    read_parquet,
    symbol_for,
    utc_ms,
)
from feeds.history.replay import _RANK
from feeds.model import HOUR_MS, Candle, Funding, OpenInterest

# (available_ms, rank, file number, position, item), as feeds.history.stream orders them.
Keyed = tuple[int, int, int, int, Any]


def _in_time_order(n: int, at: Sequence[int], make: Callable[[int], Any], kind: type
                   ) -> Iterator[Keyed]:
    rank = _RANK[kind]  # the same order as whole-file loads
    order = np.argsort(np.asarray(at, dtype=np.int64), kind="stable")
    for i, j in enumerate(order.tolist()):
        yield at[j], rank, n, i, make(j)


def candles(n: int, path: Path) -> tuple[Iterator[Keyed], list[str]]:
    """As `load_candles_parquet`: each series measures its bar span; known at the bar close."""
    df = read_parquet(path, ["timestamp", "venue", "coin", "o", "h", "l", "c"])
    starts = utc_ms(df, path)
    spans = _series_steps(df, starts, default=HOUR_MS)
    o, h, low, c = (finite(df, col, path, positive=True) for col in ("o", "h", "l", "c"))
    venues, coins = df["venue"].tolist(), df["coin"].tolist()
    del df
    at = [t + s for t, s in zip(starts, spans, strict=True)]

    def make(j: int) -> Candle:
        return Candle(venues[j], coins[j], starts[j], spans[j], o[j], h[j], low[j], c[j])

    return _in_time_order(n, at, make, Candle), []


def funding(n: int, path: Path) -> tuple[Iterator[Keyed], list[str]]:
    """As `load_funding_parquet`: the interval is measured per venue and coin."""
    df = read_parquet(path, ["timestamp", "venue", "coin", "funding_rate"])
    ts = utc_ms(df, path)
    steps = _series_steps(df, ts, default=0)
    venues, coins = df["venue"].tolist(), df["coin"].tolist()
    rates = finite(df, "funding_rate", path)
    del df
    hours = [max(1.0, float(round(step / HOUR_MS))) if step else FUNDING_HOURS.get(v, 8.0)
             for v, step in zip(venues, steps, strict=True)]
    symbols = {(v, c): symbol_for(v, c) for v, c in set(zip(venues, coins, strict=True))}
    measured = sorted({f"{v} {c} {h:g}h" for v, c, h in zip(venues, coins, hours, strict=True)
                       if h != FUNDING_HOURS.get(v, 8.0)})
    notes = [f"{path.name}: funding intervals from spacing: {', '.join(measured)}"]

    def make(j: int) -> Funding:
        return Funding(venues[j], symbols[venues[j], coins[j]], ts[j], _dec(rates[j]), hours[j])

    return _in_time_order(n, ts, make, Funding), notes if measured else []


def open_interest(n: int, path: Path) -> tuple[Iterator[Keyed], list[str]]:
    """As `load_open_interest_parquet`."""
    df = read_parquet(path, ["timestamp", "venue", "coin", "oi_usd"])
    ts = utc_ms(df, path)
    venues, coins = df["venue"].tolist(), df["coin"].tolist()
    usd = finite(df, "oi_usd", path)
    del df

    def make(j: int) -> OpenInterest:
        v = str(venues[j])
        return OpenInterest(v, symbol_for(v, str(coins[j])), ts[j], None, _dec(usd[j]))

    return _in_time_order(n, ts, make, OpenInterest), []
