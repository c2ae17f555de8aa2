"""CoinGlass-style CSV exports: liquidation bars, and regime / price-funding-OI context."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.history.base import (
    HistoryData,
    drop_repeated_rows,
    epoch_ms,
    exact,
    infer_span_ms,
    numbers,
    read_text_table,
    require_columns,
)
from feeds.model import MARKET, Bucket, Candle, Funding, OpenInterest, coin_of

logger = logging.getLogger(__name__)

_LIQ_EXPORT = ("longUsd", "shortUsd")
_REGIME_LIQ = ("liquidation_long_usd", "liquidation_short_usd")
_PRICE = ("price_open", "price_high", "price_low", "price_close")
_CONTEXT = (*_PRICE, "funding_close", "oi_close")


@dataclass(frozen=True, slots=True)
class _Bars:
    """One export's rows after checks: bar starts, span, and the parsed columns."""

    table: pd.DataFrame
    starts: list[int]
    span_ms: int
    values: dict[str, list[float]]
    notes: list[str]


def _read_bars(path: str | Path, columns: Sequence[str], span_ms: int | None) -> _Bars:
    df = read_text_table(path, header=True)
    require_columns(df, ["timestamp", *columns], path)
    df, copies = drop_repeated_rows(df, "timestamp", path)
    starts = epoch_ms(df, "timestamp", path)
    order = np.argsort(starts, kind="stable")
    df, starts = df.iloc[order], starts[order]
    notes = [f"{Path(path).name}: dropped {copies} repeated rows"] if copies else []
    values = {c: numbers(df, c, path).tolist() for c in columns}
    span = span_ms if span_ms is not None else infer_span_ms(starts, path)
    return _Bars(df, starts.tolist(), span, values, notes)


def _liq_buckets(
    bars: _Bars, long_col: str, short_col: str, coin: str, path: str | Path
) -> list[Bucket]:
    for col in (long_col, short_col):
        numbers(bars.table, col, path, min_value=0.0)  # negative USD is corruption, not data
    return [
        Bucket(start, bars.span_ms, MARKET, coin, long_usd, short_usd, source="coinglass")
        for start, long_usd, short_usd in zip(
            bars.starts, bars.values[long_col], bars.values[short_col], strict=True
        )
    ]


def _context(bars: _Bars, *, coin: str, candle_exchange: str, funding_divisor: int) -> HistoryData:
    """Candles, funding and OI from price_* / funding_* / oi_* columns.

    Funding and OI are stamped at the bar END: the close value is only known then.
    """
    span, v = bars.span_ms, bars.values
    symbol = f"{coin}USDT"
    candles = [
        Candle(candle_exchange, coin, start, span, o, h, low, c)
        for start, o, h, low, c in zip(
            bars.starts,
            v["price_open"],
            v["price_high"],
            v["price_low"],
            v["price_close"],
            strict=True,
        )
    ]
    funding = [
        Funding("binance", symbol, start + span, exact(rate) / funding_divisor, 8.0)
        for start, rate in zip(bars.starts, bars.table["funding_close"], strict=True)
    ]
    oi = [
        OpenInterest("binance", symbol, start + span, None, exact(usd))
        for start, usd in zip(bars.starts, bars.table["oi_close"], strict=True)
    ]
    return HistoryData(funding=funding, candles=candles, open_interest=oi)


def _coins(symbol: str | None) -> tuple[str, str]:
    """Return (bucket coin, context coin): market-wide buckets without a symbol, BTC context."""
    if symbol is None:
        return MARKET, "BTC"
    coin = coin_of(symbol)
    return coin, coin


def load_coinglass_csv(
    path: str | Path, *, symbol: str | None = None, span_ms: int | None = None
) -> HistoryData:
    """Load a CoinGlass liquidation export (timestamp, longUsd, shortUsd in USD, bar-open ms).

    Without `symbol` the rows count as market-wide (coin "*"), as DESIGN.md asks.
    """
    bars = _read_bars(path, _LIQ_EXPORT, span_ms)
    bucket_coin, _ = _coins(symbol)
    buckets = _liq_buckets(bars, *_LIQ_EXPORT, bucket_coin, path)
    return HistoryData(buckets=buckets, notes=bars.notes)


def load_coinglass_regime(
    path: str | Path, *, symbol: str | None = None, span_ms: int | None = None
) -> HistoryData:
    """Load a CoinGlass regime export: liquidations plus Binance spot price, funding and OI.

    Funding is in PERCENT there (0.01 = 0.01 %), so the raw rate is the value / 100.
    """
    bars = _read_bars(path, (*_REGIME_LIQ, *_CONTEXT), span_ms)
    bucket_coin, coin = _coins(symbol)
    buckets = _liq_buckets(bars, *_REGIME_LIQ, bucket_coin, path)
    # The price columns are Binance SPOT candles, not the perpetual: name them so.
    context = _context(bars, coin=coin, candle_exchange="binance-spot", funding_divisor=100)
    notes = [*bars.notes, f"{Path(path).name}: funding read as percent (value / 100 = raw rate)"]
    return HistoryData(buckets=buckets, notes=notes).merge(context)


def load_price_funding_oi(
    path: str | Path, *, symbol: str | None = None, span_ms: int | None = None
) -> HistoryData:
    """Load a Binance perpetual price / funding / OI export (funding as a RAW rate)."""
    bars = _read_bars(path, _CONTEXT, span_ms)
    _, coin = _coins(symbol)
    context = _context(bars, coin=coin, candle_exchange="binance", funding_divisor=1)
    return HistoryData(notes=bars.notes).merge(context)
