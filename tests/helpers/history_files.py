"""Small history files written to a temp folder, plus where the real datasets live."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.helpers.shared import REPO_ROOT, SHARED_DATA  # noqa: F401 (re-exported)

T0 = 1_776_430_800_000  # 2026-04-17 13:00 UTC, an hour boundary
HOUR = 3_600_000

# The published Binance USDⓈ-M forceOrder sample (shared/fixtures/exchanges), one frame.
BINANCE_FRAME = (
    '{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",'
    '"q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}'
)


def require_shared_data(*parts: str) -> Path:
    """Return a path under ../shared/data, or skip the test saying where it was looked for."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (../shared/data beside the repo)")
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_coinglass(path: Path, rows: Sequence[tuple[int, float, float]]) -> Path:
    """A CoinGlass liquidation export: (bar open ms, long USD, short USD) per row."""
    lines = ["timestamp,datetime_utc,longUsd,shortUsd,totalUsd"]
    for ts, long_usd, short_usd in rows:
        iso = pd.Timestamp(ts, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines.append(f"{ts},{iso},{long_usd},{short_usd},{long_usd + short_usd}")
    return write_text(path, "\n".join(lines) + "\n")


REGIME_HEADER = (
    "timestamp,datetime_utc,price_open,price_high,price_low,price_close,liquidation_long_usd,"
    "liquidation_short_usd,liquidation_total_usd,funding_open,funding_high,funding_low,"
    "funding_close,oi_open,oi_high,oi_low,oi_close"
)


def write_regime(path: Path, n: int = 3, funding: str = "0.004936") -> Path:
    """A CoinGlass regime export with `n` hourly bars; funding_close in PERCENT units."""
    lines = [REGIME_HEADER]
    for i in range(n):
        ts = T0 + i * HOUR
        lines.append(
            f"{ts},x,{100 + i},{110 + i},{90 + i},{105 + i},1000,2000,3000,"
            f"0,0,0,{funding},0,0,0,{8_000_000_000 + i}"
        )
    return write_text(path, "\n".join(lines) + "\n")


def write_coinalyze_group(
    folder: Path,
    liq_rows: Sequence[str],
    ohlcv_hours: int = 6,
    prefix: str = "BTCUSDT_PERP.A",
) -> dict[str, Path]:
    """A Coinalyze export group: liquidation rows as given, hourly OHLCV from 2024-06-20 00:00."""
    folder.mkdir(parents=True, exist_ok=True)
    ohlcv = [
        f"2024-06-20 {h:02d}:00:00,{100 + h},{110 + h},{90 + h},{105 + h},5,2,10,4"
        for h in range(ohlcv_hours)
    ]
    oi = [f"2024-06-20 {h:02d}:00:00,1,2,0.5,{1000 + h}" for h in range(ohlcv_hours)]
    files = {
        "liquidation": folder / f"{prefix}_liquidation-history.csv",
        "ohlcv": folder / f"{prefix}_ohlcv-history.csv",
        "open-interest": folder / f"{prefix}_open-interest-history.csv",
    }
    write_text(files["liquidation"], "\n".join(liq_rows) + "\n")
    write_text(files["ohlcv"], "\n".join(ohlcv) + "\n")
    write_text(files["open-interest"], "\n".join(oi) + "\n")
    return files


def typical(hour: int) -> float:
    """The typical price (h + l + c) / 3 of write_coinalyze_group's bar at that hour."""
    return ((110 + hour) + (90 + hour) + (105 + hour)) / 3


def write_parquet(path: Path, rows: list[dict[str, Any]], *, tz: str | None = "UTC") -> Path:
    """A parquet file from row dicts; `timestamp` (ms) becomes tz-aware unless tz is None."""
    df = pd.DataFrame(rows)
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="ms", utc=tz is not None)
    df.to_parquet(path)
    return path


def write_instruments(path: Path, ct_vals: dict[str, str]) -> Path:
    """An OKX /api/v5/public/instruments response listing linear swaps with these ctVals."""
    data = [
        {"instId": inst, "ctVal": v, "ctValCcy": inst.split("-")[0], "ctType": "linear"}
        for inst, v in ct_vals.items()
    ]
    return write_text(path, json.dumps({"code": "0", "msg": "", "data": data}))
