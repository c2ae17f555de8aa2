"""History loaders on the real datasets in ../shared/data (marked realdata; skipped without)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from feeds.history import (
    HistoryData,
    load_coinalyze,
    load_coinglass_csv,
    load_coinglass_regime,
    load_liquidations_parquet,
)
from feeds.model import HOUR_MS, Side

# ---- the real datasets (../shared/data) --------------------------------------------------------

APR17_13H = int(pd.Timestamp("2026-04-17 13:00", tz="UTC").value // 1_000_000)


@pytest.mark.realdata
def test_real_coinglass_1h_bars(shared_data: Path) -> None:
    data = load_coinglass_csv(shared_data / "coinglass_btc" / "liquidations_1h.csv")
    assert len(data.buckets) == 2904
    assert {b.span_ms for b in data.buckets} == {HOUR_MS}
    bar = next(b for b in data.buckets if b.start_ms == APR17_13H)
    assert bar.short_usd == pytest.approx(82.6e6, rel=1e-3)
    assert bar.total_usd == pytest.approx(84.18e6, rel=1e-3)


@pytest.mark.realdata
def test_real_regime_funding_is_converted_from_percent(shared_data: Path) -> None:
    data = load_coinglass_regime(shared_data / "coinglass_btc" / "regime_1h.csv")
    first = data.funding[0]  # 2025-12-04 06:00 bar: funding_open 0.004936, funding_close 0.005673
    assert first.rate == Decimal("0.00005673")
    assert first.ts_ms == int(pd.Timestamp("2025-12-04 07:00", tz="UTC").value // 1_000_000)
    assert len(data.candles) == len(data.buckets) == len(data.open_interest) == 2899
    assert data.candles[0].close == 93140.74
    assert all(abs(f.rate) < Decimal("0.001") for f in data.funding)  # raw, not percent


@pytest.fixture(scope="module")
def real_coinalyze(shared_data: Path) -> HistoryData:
    return load_coinalyze(shared_data / "coinalyze_binance_1h_2024")


@pytest.mark.realdata
@pytest.mark.parametrize(("coin", "copies"), [("BTC", 19), ("ETH", 32), ("SOL", 22)])
def test_real_coinalyze_padding_rows_removed(
    real_coinalyze: HistoryData, coin: str, copies: int
) -> None:
    name = f"{coin}USDT_PERP.A_liquidation-history.csv"
    assert (
        f"{name}: dropped {copies} repeated rows (copies of the next row)" in real_coinalyze.notes
    )
    assert f"{name}: {copies} missing bars filled with zero buckets" in real_coinalyze.notes
    buckets = [b for b in real_coinalyze.buckets if b.coin == coin]
    assert len(buckets) == 1465  # the file's 1465 rows span 1465 hours: one bar each, no repeats
    starts = [b.start_ms for b in buckets]
    assert starts == sorted(set(starts))
    assert set(pd.Series(starts).diff().dropna()) == {HOUR_MS}


@pytest.mark.realdata
def test_real_coinalyze_first_btc_bar_in_usd(real_coinalyze: HistoryData) -> None:
    # 2024-06-20 03:00 local: long 0.013 BTC, short 0.974 BTC; bar h 65060.4, l 64809.5, c 64973
    first = min((b for b in real_coinalyze.buckets if b.coin == "BTC"), key=lambda b: b.start_ms)
    price = (65060.4 + 64809.5 + 64973) / 3
    assert first.start_ms == int(pd.Timestamp("2024-06-19 21:00", tz="UTC").value // 1_000_000)
    assert first.long_usd == pytest.approx(0.013 * price)
    assert first.short_usd == pytest.approx(0.974 * price)


@pytest.mark.realdata
def test_real_coinalyze_offset_shifts_by_exactly_the_offset(
    shared_data: Path, real_coinalyze: HistoryData
) -> None:
    local = load_coinalyze(
        shared_data / "coinalyze_binance_1h_2024" / "ETHUSDT_PERP.A_ohlcv-history.csv",
        tz_offset_hours=0,
    )
    eth = [c.start_ms for c in real_coinalyze.candles if c.coin == "ETH"]
    assert eth == [c.start_ms - 6 * HOUR_MS for c in local.candles]


@pytest.mark.realdata
def test_real_multivenue_okx_events_corrected_and_hyperliquid_skipped(shared_data: Path) -> None:
    path = shared_data / "multivenue" / "liquidations.parquet"
    data = load_liquidations_parquet(path)
    assert len(data.liquidations) == 5816
    assert any("skipped 2243 hyperliquid events: side unknown" in n for n in data.notes)
    raw = pd.read_parquet(path)
    okx_btc = raw[(raw.venue == "okx") & (raw.coin == "BTC")]
    btc = [e for e in data.liquidations if e.symbol == "BTC-USDT-SWAP"]
    assert sum(float(e.notional_usd) for e in btc) == pytest.approx(okx_btc.size_usd.sum() * 0.01)
    longs = sum(e.position_side is Side.LONG for e in data.liquidations)
    assert longs == (raw.side == "sell").sum() == 1812
