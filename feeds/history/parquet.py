"""Multi-venue parquet history: liquidation events, candles, funding, OI, Hyperliquid daily sums.

All files carry tz-aware UTC `timestamp`s and a `venue` / `coin` pair (the daily file: coin only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.history.base import HistoryData, file_error
from feeds.model import (
    DAY_MS,
    HOUR_MS,
    Bucket,
    Candle,
    Funding,
    Liquidation,
    OpenInterest,
    Side,
    canonical_coin,
)
from feeds.venues.okx import ContractSpec, load_okx_instruments

logger = logging.getLogger(__name__)

# How each venue spells a coin's USD-margined perpetual, so coin_of(symbol) gives the coin back.
SYMBOLS = {"binance": "{coin}USDT", "bybit": "{coin}USDT", "okx": "{coin}-USDT-SWAP"}
# Funding interval when a series is too short to measure; a longer series measures its own,
# because intervals differ per symbol (Binance and OKX HYPE pay every 4 h in this data).
FUNDING_HOURS = {"binance": 8.0, "bybit": 8.0, "okx": 8.0, "hyperliquid": 1.0}
_OKX_SIDES = {"sell": Side.LONG, "buy": Side.SHORT}  # ORDER side: a sell closed a long
_CONTRACT_STEP = Decimal("1e-8")  # far below OKX lot sizes (0.01 and up here)


def symbol_for(venue: str, coin: str) -> str:
    """Return the venue's perpetual symbol for a coin (the bare coin when unknown)."""
    return SYMBOLS.get(venue, "{coin}").format(coin=coin)


def read_parquet(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read the named columns; a corrupt file or a missing column is a ParseError."""
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises OSError, ArrowInvalid, ValueError... on damage
        raise file_error(path, f"not a readable parquet file: {str(exc)[:200]}") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        found = ", ".join(map(str, df.columns))
        raise file_error(path, f"missing column(s) {', '.join(missing)} (found: {found})")
    if df.empty:
        raise file_error(path, "no rows")
    bad = df[list(columns)].isna().any(axis=1)
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        cols = [c for c in columns if pd.isna(df[c].iloc[row])]
        raise file_error(path, f"row {row}: missing value in {', '.join(cols)}")
    return df


def utc_ms(df: pd.DataFrame, path: str | Path, column: str = "timestamp") -> list[int]:
    """Return tz-aware timestamps as epoch ms; naive ones are refused as ambiguous."""
    ts = df[column]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise file_error(path, f"column {column!r} must hold tz-aware timestamps, got {ts.dtype}")
    ms = ts.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ms]").astype(np.int64)
    return list(ms.tolist())


def finite(
    df: pd.DataFrame, column: str, path: str | Path, *, positive: bool = False
) -> list[float]:
    """Return a numeric column as floats; infinities (and non-positive values) fail."""
    try:
        values = df[column].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise file_error(path, f"column {column!r} is not numeric") from None
    bad = ~np.isfinite(values) | ((values <= 0) if positive else False)
    if bad.any():
        row = int(np.argmax(bad))
        raise file_error(path, f"row {row}, column {column!r}: bad value {values[row]!r}")
    return list(values.tolist())


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


# ---- liquidation events ---------------------------------------------------------------------


def load_liquidations_parquet(
    path: str | Path, *, instruments: str | Path | None = None
) -> HistoryData:
    """Load liquidation events; OKX sizes are corrected by ctVal, side-less venues are skipped.

    `instruments` is an OKX instruments response file that overrides the shipped snapshot.
    """
    df = read_parquet(path, ["timestamp", "venue", "coin", "side", "size_usd", "price"])
    unknown = sorted(set(df["venue"]) - set(_VENUE_EVENTS))
    if unknown:
        raise file_error(
            path,
            f"unknown venue(s) {', '.join(map(repr, unknown))} (known: {', '.join(_VENUE_EVENTS)})",
        )
    data = HistoryData()
    for venue, rows in df.groupby("venue", sort=True):
        data = data.merge(_VENUE_EVENTS[str(venue)](rows, path, instruments))
    return data


def _okx_events(df: pd.DataFrame, path: str | Path, instruments: str | Path | None) -> HistoryData:
    """OKX rows: `size_usd` = contracts × price, missing ctVal, so true USD = size_usd × ctVal."""
    specs = load_okx_instruments(instruments)
    used: dict[str, ContractSpec] = {}
    events = []
    sizes = finite(df, "size_usd", path, positive=True)
    prices = finite(df, "price", path, positive=True)
    rows = zip(utc_ms(df, path), df["coin"], df["side"], sizes, prices, strict=True)
    for i, (ts, coin, side, size_usd, price) in enumerate(rows):
        if side not in _OKX_SIDES:
            raise file_error(path, f"okx row {i}: unknown side {side!r} (expected buy or sell)")
        spec = used.get(coin) or _okx_spec(specs, str(coin), path, instruments)
        used[coin] = spec
        px = _dec(price)
        # size_usd / price gives back the contract count; rounding it drops the float noise
        # of the exporter's multiplication, so qty and USD stay exact multiples of ctVal.
        contracts = (_dec(size_usd) / px).quantize(_CONTRACT_STEP)
        qty = contracts * spec.ct_val
        events.append(
            Liquidation(
                "okx", spec.inst_id, _OKX_SIDES[side], qty, px, qty * px, ts, ts, sampled=True,
                base=canonical_coin(str(coin)),  # the file names the coin: no guess
            )
        )
    ct = ", ".join(f"{s.inst_id} {s.ct_val}" for s in used.values())
    note = f"{Path(path).name}: {len(events)} OKX events, size_usd × ctVal ({ct})"
    return HistoryData(liquidations=events, notes=[note])


def _okx_spec(
    specs: dict[str, ContractSpec], coin: str, path: str | Path, instruments: str | Path | None
) -> ContractSpec:
    inst_id = symbol_for("okx", coin)
    spec = specs.get(inst_id)
    if spec is None:
        source = instruments or "the shipped snapshot"
        raise file_error(
            path,
            f"no ctVal for OKX instrument {inst_id} in {source}; "
            "pass an instruments file that lists it",
        )
    if not spec.linear:
        raise file_error(path, f"{inst_id}: expected a linear contract, got {spec.ct_type!r}")
    return spec


def _skip_sideless(df: pd.DataFrame, path: str | Path, _: str | Path | None) -> HistoryData:
    """Hyperliquid rows say 'S' for every side: unknown, so they cannot become events."""
    venue = str(df["venue"].iloc[0])
    note = f"{Path(path).name}: skipped {len(df)} {venue} events: side unknown"
    return HistoryData(notes=[note])


_EventLoader = Callable[[pd.DataFrame, str | Path, str | Path | None], HistoryData]
_VENUE_EVENTS: dict[str, _EventLoader] = {"okx": _okx_events, "hyperliquid": _skip_sideless}


# ---- context series -------------------------------------------------------------------------


def load_candles_parquet(path: str | Path) -> HistoryData:
    """Load candles [timestamp, venue, coin, o, h, l, c]; each series measures its bar span."""
    df = read_parquet(path, ["timestamp", "venue", "coin", "o", "h", "l", "c"])
    starts = utc_ms(df, path)
    spans = _series_steps(df, starts, default=HOUR_MS)
    prices = [finite(df, col, path, positive=True) for col in ("o", "h", "l", "c")]
    candles = [
        Candle(v, c, t, span, *bar)
        for v, c, t, span, *bar in zip(
            df["venue"].tolist(), df["coin"].tolist(), starts, spans, *prices, strict=True
        )
    ]
    return HistoryData(candles=candles)


def load_funding_parquet(path: str | Path) -> HistoryData:
    """Load raw funding rates; the interval is measured per venue and coin.

    Venues pay every 8 h, 4 h or 1 h and it differs per coin (Binance HYPE: 4 h), so the
    spacing of each series decides; the venue's usual interval only covers a lone row.
    """
    df = read_parquet(path, ["timestamp", "venue", "coin", "funding_rate"])
    ts = utc_ms(df, path)
    steps = _series_steps(df, ts, default=0)
    venues, coins = df["venue"].tolist(), df["coin"].tolist()
    hours = [
        max(1.0, float(round(step / HOUR_MS))) if step else FUNDING_HOURS.get(v, 8.0)
        for v, step in zip(venues, steps, strict=True)
    ]
    symbols = {(v, c): symbol_for(v, c) for v, c in set(zip(venues, coins, strict=True))}
    items = [
        Funding(v, symbols[v, c], t, _dec(r), h)
        for v, c, t, r, h in zip(
            venues, coins, ts, finite(df, "funding_rate", path), hours, strict=True
        )
    ]
    measured = sorted(
        {
            f"{v} {c} {h:g}h"
            for v, c, h in zip(venues, coins, hours, strict=True)
            if h != FUNDING_HOURS.get(v, 8.0)
        }
    )
    notes = [f"{Path(path).name}: funding intervals from spacing: {', '.join(measured)}"]
    return HistoryData(funding=items, notes=notes if measured else [])


def load_open_interest_parquet(path: str | Path) -> HistoryData:
    """Load open interest in USD [timestamp, venue, coin, oi_usd]."""
    df = read_parquet(path, ["timestamp", "venue", "coin", "oi_usd"])
    items = [
        OpenInterest(str(v), symbol_for(str(v), str(c)), t, None, _dec(usd))
        for t, v, c, usd in zip(
            utc_ms(df, path), df["venue"], df["coin"], finite(df, "oi_usd", path), strict=True
        )
    ]
    return HistoryData(open_interest=items)


def load_hyperliquid_daily(path: str | Path) -> HistoryData:
    """Load Hyperliquid daily sums as one-day buckets.

    `total_usd` exceeds long + short on many rows; only the sided part can be a bucket.
    """
    df = read_parquet(path, ["timestamp", "coin", "total_usd", "long_usd", "short_usd"])
    longs = finite(df, "long_usd", path)
    shorts = finite(df, "short_usd", path)
    buckets = [
        Bucket(t, DAY_MS, "hyperliquid", str(c), lu, su, source="hyperliquid-daily")
        for t, c, lu, su in zip(utc_ms(df, path), df["coin"], longs, shorts, strict=True)
    ]
    unsided = np.asarray(finite(df, "total_usd", path)) - np.asarray(longs) - np.asarray(shorts)
    notes = []
    if (unsided > 1.0).any():
        notes.append(
            f"{Path(path).name}: {int((unsided > 1.0).sum())} days where total_usd "
            f"exceeds long + short (${unsided[unsided > 0].sum() / 1e6:.2f}M side "
            "unknown, not in the buckets)"
        )
    return HistoryData(buckets=buckets, notes=notes)


def _series_steps(df: pd.DataFrame, ts: list[int], *, default: int) -> list[int]:
    """Return, for every row, the median time step of its (venue, coin) series."""
    times = pd.Series(ts, index=df.index, dtype="int64")
    steps = times.groupby([df["venue"], df["coin"]]).transform(_median_step)
    return [int(s) if s > 0 else default for s in steps.tolist()]


def _median_step(times: pd.Series) -> int:
    diffs = np.diff(np.unique(times.to_numpy()))
    return int(np.median(diffs)) if len(diffs) else 0
