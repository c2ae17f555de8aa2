"""Loaders for real market history, each returning HistoryData in the normalized model.

One loader per dataset kind; the code lives in `history_<kind>.py` beside this module and
this file names what is public. `feeds.history.replay` recognises a file's format and picks one.

| loader | files |
|---|---|
| load_coinglass_csv | CoinGlass liquidation export: timestamp, longUsd, shortUsd (USD) |
| load_coinglass_regime | CoinGlass regime export: + Binance spot price, funding (%), OI |
| load_price_funding_oi | Binance perp price / funding (raw) / OI export, no liquidations |
| load_coinalyze | Coinalyze CSV group: liquidations (base units), OHLCV, OI; local time |
| load_liquidations_parquet | multivenue events: OKX (ctVal-corrected), Hyperliquid skipped |
| load_candles_parquet, load_funding_parquet, load_open_interest_parquet | multivenue context |
| load_hyperliquid_daily | Hyperliquid daily sums as one-day buckets |
| load_events_jsonl | `liqbot decode` output, one event per line |
| load_frames_jsonl | raw exchange frames, one per line, through the venue's parser |
"""

from __future__ import annotations

from feeds.history.base import HistoryData
from feeds.history.coinalyze import DEFAULT_TZ_OFFSET_HOURS, load_coinalyze
from feeds.history.coinglass import (
    load_coinglass_csv,
    load_coinglass_regime,
    load_price_funding_oi,
)
from feeds.history.jsonl import FRAME_FORMATS, load_events_jsonl, load_frames_jsonl
from feeds.history.parquet import (
    load_candles_parquet,
    load_funding_parquet,
    load_hyperliquid_daily,
    load_liquidations_parquet,
    load_open_interest_parquet,
)

__all__ = [
    "DEFAULT_TZ_OFFSET_HOURS",
    "FRAME_FORMATS",
    "HistoryData",
    "load_candles_parquet",
    "load_coinalyze",
    "load_coinglass_csv",
    "load_coinglass_regime",
    "load_events_jsonl",
    "load_frames_jsonl",
    "load_funding_parquet",
    "load_hyperliquid_daily",
    "load_liquidations_parquet",
    "load_open_interest_parquet",
    "load_price_funding_oi",
]
