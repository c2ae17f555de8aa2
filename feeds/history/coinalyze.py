"""Coinalyze CSV exports: no header, local timestamps, liquidations in BASE units.

One export is a group of files sharing a prefix, e.g. `BTCUSDT_PERP.A_liquidation-history.csv`
next to `BTCUSDT_PERP.A_ohlcv-history.csv`. Loading a folder or any file of a group loads the
whole group, because liquidations need the group's prices to become USD.

Quirk seen in the real exports: when hours are missing at the source, the exporter still writes
one row per hour by repeating the first row AFTER the gap (a 2-hour hole gives 3 identical rows
with that later timestamp). The copies are dropped, and the holes become zero buckets: a missing
hour means no liquidations were reported.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.history.base import (
    HistoryData,
    drop_repeated_rows,
    exact,
    file_error,
    infer_span_ms,
    numbers,
    read_text_table,
)
from feeds.model import HOUR_MS, Bucket, Candle, OpenInterest, coin_of, iso_z

logger = logging.getLogger(__name__)

DEFAULT_TZ_OFFSET_HOURS = 6.0  # shared/data README: volume seasonality suggests UTC+6
# Coinalyze suffixes a symbol with its exchange code; only Binance's is confirmed.
VENUES = {"A": "binance"}
# Minimum columns per file kind, time first: the exports may grow columns at the end.
_MIN_COLUMNS = {"liquidation": 3, "ohlcv": 5, "open-interest": 5, "long-short-ratio": 2}
_NAME = re.compile(
    r"^(?P<prefix>(?:.*_)?(?P<symbol>[A-Z0-9]+)_PERP\.(?P<code>[A-Z0-9]+))"
    r"_(?P<kind>liquidation|ohlcv|open-interest|long-short-ratio)-history\.csv$"
)
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class _Group:
    prefix: str
    symbol: str
    exchange: str
    files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Series:
    table: pd.DataFrame
    ts_ms: list[int]
    copies: int


def group_key(path: str | Path) -> tuple[Path, str] | None:
    """Return (folder, prefix) for a Coinalyze export file name, else None."""
    p = Path(path)
    m = _NAME.match(p.name)
    return (p.resolve().parent, m["prefix"]) if m else None


def load_coinalyze(
    path: str | Path, *, tz_offset_hours: float = DEFAULT_TZ_OFFSET_HOURS
) -> HistoryData:
    """Load a folder of Coinalyze exports, or the whole group of one export file.

    Timestamps are local time: UTC = local - `tz_offset_hours`.
    """
    if not math.isfinite(tz_offset_hours) or abs(tz_offset_hours) > 14:
        raise file_error(path, f"tz_offset_hours must be within ±14, got {tz_offset_hours}")
    offset_ms = round(tz_offset_hours * HOUR_MS)
    data = HistoryData()
    for group in _groups(Path(path)):
        data = data.merge(_load_group(group, offset_ms, tz_offset_hours))
    return data


def _groups(path: Path) -> list[_Group]:
    if path.is_dir():
        files = sorted(p for p in path.glob("*.csv") if _NAME.match(p.name))
        if not files:
            raise file_error(path, "no Coinalyze exports (SYMBOL_PERP.A_<kind>-history.csv)")
        prefixes = sorted({_match(p)["prefix"] for p in files})
        return [_group(prefix, files) for prefix in prefixes]
    if not path.is_file():
        raise file_error(path, "no such file or folder")
    prefix = _match(path)["prefix"]
    return [_group(prefix, sorted(path.parent.glob("*.csv")))]


def _match(path: Path) -> re.Match[str]:
    m = _NAME.match(path.name)
    if m is None:
        raise file_error(
            path, "not a Coinalyze export name (expected SYMBOL_PERP.A_<kind>-history.csv)"
        )
    if m["code"] not in VENUES:
        raise file_error(path, f"unknown Coinalyze exchange code {m['code']!r}")
    return m


def _group(prefix: str, files: list[Path]) -> _Group:
    members = {m["kind"]: p for p in files if (m := _NAME.match(p.name)) and m["prefix"] == prefix}
    m = _match(next(iter(members.values())))
    return _Group(prefix, m["symbol"], VENUES[m["code"]], members)


def _read_series(path: Path, kind: str, offset_ms: int) -> _Series:
    df = read_text_table(path, header=False)
    if df.shape[1] < _MIN_COLUMNS[kind]:
        raise file_error(
            path,
            f"expected at least {_MIN_COLUMNS[kind]} columns for a {kind} file, "
            f"found {df.shape[1]}",
        )
    df, copies = drop_repeated_rows(df, 0, path)
    local = pd.to_datetime(df[0], format=_TIME_FORMAT, errors="coerce")
    if local.isna().any():
        i = int(np.argmax(local.isna().to_numpy()))
        raise file_error(
            path, f"line {df.index[i]}: not a 'YYYY-MM-DD HH:MM:SS' time: {df[0].iloc[i]!r}"
        )
    ms = local.to_numpy().astype("datetime64[ms]").astype(np.int64) - offset_ms
    order = np.argsort(ms, kind="stable")
    return _Series(df.iloc[order], ms[order].tolist(), copies)


def _load_group(group: _Group, offset_ms: int, offset_h: float) -> HistoryData:
    notes = [
        f"coinalyze {group.prefix}: local timestamps shifted by {-offset_h:+g} h to UTC"
        f" (tz_offset_hours={offset_h:g})"
    ]
    if "long-short-ratio" in group.files:
        notes.append(f"{group.files['long-short-ratio'].name}: not loaded (no model for it)")
    data = HistoryData(notes=notes)
    ohlcv = group.files.get("ohlcv")
    if ohlcv is None:
        if "liquidation" in group.files:
            raise file_error(
                group.files["liquidation"],
                f"needs its price file {group.prefix}_ohlcv-history.csv to convert base units "
                f"to USD (not found in {group.files['liquidation'].parent})",
            )
        return data.merge(_open_interest(group, offset_ms, None))
    prices = _Prices.read(ohlcv, group, offset_ms)
    data = data.merge(HistoryData(candles=prices.candles, notes=prices.notes))
    if "liquidation" in group.files:
        data = data.merge(_liquidations(group, offset_ms, prices))
    return data.merge(_open_interest(group, offset_ms, prices))


@dataclass(frozen=True, slots=True)
class _Prices:
    """The group's OHLCV bars: candles, plus typical and close price by bar start."""

    span_ms: int
    candles: list[Candle]
    typical: dict[int, float]
    close: dict[int, float]
    notes: list[str]

    @classmethod
    def read(cls, path: Path, group: _Group, offset_ms: int) -> _Prices:
        s = _read_series(path, "ohlcv", offset_ms)
        o, h, low, c = (numbers(s.table, col, path, min_value=0.0).tolist() for col in (1, 2, 3, 4))
        span = infer_span_ms(np.asarray(s.ts_ms), path)
        coin = coin_of(group.symbol)
        candles = [
            Candle(group.exchange, coin, t, span, *bar)
            for t, *bar in zip(s.ts_ms, o, h, low, c, strict=True)
        ]
        typical = {t: (hi + lo + cl) / 3 for t, hi, lo, cl in zip(s.ts_ms, h, low, c, strict=True)}
        notes = [f"{path.name}: dropped {s.copies} repeated rows"] if s.copies else []
        return cls(span, candles, typical, dict(zip(s.ts_ms, c, strict=True)), notes)


def _liquidations(group: _Group, offset_ms: int, prices: _Prices) -> HistoryData:
    path = group.files["liquidation"]
    s = _read_series(path, "liquidation", offset_ms)
    long_base = numbers(s.table, 1, path, min_value=0.0).tolist()
    short_base = numbers(s.table, 2, path, min_value=0.0).tolist()
    coin, span = coin_of(group.symbol), prices.span_ms
    # Sparse files are fine (quiet hours have no row); bars off the price grid are not.
    origin = prices.candles[0].start_ms
    off_grid = [t for t in s.ts_ms if (t - origin) % span]
    if off_grid:
        raise file_error(
            path,
            f"bar at {iso_z(off_grid[0])} (UTC) is not on the {span // 60_000}m "
            f"grid of {group.prefix}_ohlcv-history.csv",
        )
    buckets = []
    for t, lb, sb in zip(s.ts_ms, long_base, short_base, strict=True):
        price = prices.typical.get(t)
        if price is None and (lb or sb):
            raise file_error(
                path,
                f"no price bar at {iso_z(t)} (UTC) in "
                f"{group.prefix}_ohlcv-history.csv to convert {lb}/{sb} base",
            )
        price = price or 0.0
        buckets.append(
            Bucket(t, span, group.exchange, coin, lb * price, sb * price, source="coinalyze")
        )
    notes = []
    if s.copies:
        notes.append(f"{path.name}: dropped {s.copies} repeated rows (copies of the next row)")
    filled = _zero_fill(buckets, span)
    if filled:
        notes.append(f"{path.name}: {len(filled)} missing bars filled with zero buckets")
    return HistoryData(buckets=sorted(buckets + filled, key=lambda b: b.start_ms), notes=notes)


def _zero_fill(buckets: list[Bucket], span: int) -> list[Bucket]:
    """Return zero buckets for the holes between the first and last bar."""
    if not buckets:
        return []
    first = buckets[0]
    starts = {b.start_ms for b in buckets}
    if any((t - first.start_ms) % span for t in starts):
        return []  # off-grid rows: a hole cannot be told from a shifted bar
    grid = range(first.start_ms, buckets[-1].start_ms, span)
    return [
        Bucket(t, span, first.exchange, first.coin, 0.0, 0.0, source=first.source)
        for t in grid
        if t not in starts
    ]


def _open_interest(group: _Group, offset_ms: int, prices: _Prices | None) -> HistoryData:
    """Open interest in base units at each bar's END; USD from that bar's close when known."""
    path = group.files.get("open-interest")
    if path is None:
        return HistoryData()
    s = _read_series(path, "open-interest", offset_ms)
    numbers(s.table, 4, path, min_value=0.0)
    span = prices.span_ms if prices else infer_span_ms(np.asarray(s.ts_ms), path)
    items = []
    for t, text in zip(s.ts_ms, s.table[4], strict=True):
        base = exact(text)
        close = prices.close.get(t) if prices else None
        usd = base * Decimal(repr(close)) if close is not None else None
        items.append(OpenInterest(group.exchange, group.symbol, t + span, base, usd))
    notes = [f"{path.name}: dropped {s.copies} repeated rows"] if s.copies else []
    return HistoryData(open_interest=items, notes=notes)
