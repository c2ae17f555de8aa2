"""Multivenue parquet datasets (liquidations, candles, funding, Hyperliquid daily), OKX ctVal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from feeds.history import (
    load_candles_parquet,
    load_funding_parquet,
    load_hyperliquid_daily,
    load_liquidations_parquet,
)
from feeds.model import ParseError, Side
from feeds.venues.okx import load_okx_instruments, read_okx_instruments
from tests.helpers.history_files import (
    HOUR,
    T0,
    write_instruments,
    write_parquet,
    write_text,
)

# ---- multivenue parquet ------------------------------------------------------------------------


def _liq_rows() -> list[dict[str, object]]:
    okx = dict(venue="okx", size_usd=70_000.0, price=70_000.0)
    return [
        dict(timestamp=T0, coin="BTC", side="sell", **okx),
        dict(timestamp=T0 + 1, coin="BTC", side="buy", **okx),
        dict(timestamp=T0 + 2, venue="hyperliquid", coin="HYPE", side="S", size_usd=9.0, price=3.0),
        dict(timestamp=T0 + 3, venue="hyperliquid", coin="BTC", side="S", size_usd=9.0, price=3.0),
    ]


def test_okx_usd_is_size_usd_times_the_ctval_read_from_instruments(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "liq.parquet", _liq_rows())
    inst = write_instruments(tmp_path / "inst.json", {"BTC-USDT-SWAP": "0.5"})
    data = load_liquidations_parquet(path, instruments=inst)
    first = data.liquidations[0]
    assert first.notional_usd == Decimal(35_000)  # 70,000 × 0.5, not the snapshot's 0.01
    assert first.qty_base == Decimal("0.5")  # true USD / price
    assert (first.exchange, first.symbol, first.sampled) == ("okx", "BTC-USDT-SWAP", True)
    assert first.ts_ms == T0


def test_okx_default_snapshot_ctval_and_order_side(tmp_path: Path) -> None:
    data = load_liquidations_parquet(write_parquet(tmp_path / "liq.parquet", _liq_rows()))
    sell, buy = data.liquidations
    assert sell.notional_usd == Decimal(700)  # BTC-USDT-SWAP ctVal 0.01
    assert sell.position_side is Side.LONG  # a sell order closed a long
    assert buy.position_side is Side.SHORT


def test_hyperliquid_events_are_skipped_with_a_note(tmp_path: Path) -> None:
    data = load_liquidations_parquet(write_parquet(tmp_path / "liq.parquet", _liq_rows()))
    assert {e.exchange for e in data.liquidations} == {"okx"}
    assert any("skipped 2 hyperliquid events: side unknown" in n for n in data.notes)


def test_okx_coin_without_ctval_is_an_error_naming_the_instrument(tmp_path: Path) -> None:
    rows = [dict(timestamp=T0, venue="okx", coin="XRP", side="buy", size_usd=1.0, price=1.0)]
    with pytest.raises(ParseError, match="XRP-USDT-SWAP"):
        load_liquidations_parquet(write_parquet(tmp_path / "liq.parquet", rows))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"venue": "bitmex"}, "unknown venue.*bitmex"),
        ({"side": "long"}, "unknown side"),
        ({"price": 0.0}, "price"),
        ({"size_usd": float("nan")}, "missing value in size_usd"),
    ],
)
def test_liquidation_parquet_bad_rows_are_parse_errors(
    tmp_path: Path, change: dict[str, object], expected: str
) -> None:
    row = {**_liq_rows()[0], **change}
    with pytest.raises(ParseError, match=expected):
        load_liquidations_parquet(write_parquet(tmp_path / "liq.parquet", [row]))


def test_naive_timestamps_are_refused(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "liq.parquet", _liq_rows(), tz=None)
    with pytest.raises(ParseError, match="tz-aware"):
        load_liquidations_parquet(path)


def test_corrupt_parquet_is_a_parse_error(tmp_path: Path) -> None:
    path = write_text(tmp_path / "liq.parquet", "PAR1 this is not parquet at all")
    with pytest.raises(ParseError, match="liq.parquet.*not a readable parquet"):
        load_liquidations_parquet(path)


def test_candles_and_funding_measure_their_own_spacing(tmp_path: Path) -> None:
    candles = [
        dict(timestamp=T0 + i * HOUR, venue="bybit", coin="SOL", o=1.0, h=2.0, l=0.5, c=1.5, v=3.0)
        for i in range(3)
    ]
    c = load_candles_parquet(write_parquet(tmp_path / "c.parquet", candles)).candles[0]
    assert (c.exchange, c.coin, c.start_ms, c.span_ms, c.close) == ("bybit", "SOL", T0, HOUR, 1.5)
    funding = [
        dict(timestamp=T0 + i * 4 * HOUR, venue="binance", coin="HYPE", funding_rate=0.0001)
        for i in range(3)
    ]
    funding += [dict(timestamp=T0, venue="hyperliquid", coin="BTC", funding_rate=0.0000125)]
    data = load_funding_parquet(write_parquet(tmp_path / "f.parquet", funding))
    by = {(f.exchange, f.symbol): f for f in data.funding}
    assert by["binance", "HYPEUSDT"].interval_h == 4.0  # measured, not the venue's usual 8 h
    assert by["binance", "HYPEUSDT"].rate == Decimal("0.0001")
    assert by["hyperliquid", "BTC"].interval_h == 1.0  # a lone row: the venue's interval


def test_hyperliquid_daily_rows_become_day_buckets(tmp_path: Path) -> None:
    rows = [
        dict(
            timestamp=T0 - 13 * HOUR,
            coin="BTC",
            total_usd=20.0,
            long_usd=6.0,
            short_usd=3.0,
            liq_count=4,
        )
    ]
    data = load_hyperliquid_daily(write_parquet(tmp_path / "d.parquet", rows))
    b = data.buckets[0]
    assert (b.span_ms, b.exchange, b.coin, b.source) == (
        86_400_000,
        "hyperliquid",
        "BTC",
        "hyperliquid-daily",
    )
    assert (b.long_usd, b.short_usd) == (6.0, 3.0)
    assert any("exceeds long + short" in n for n in data.notes)


# ---- OKX instruments ---------------------------------------------------------------------------


def test_user_instruments_override_the_snapshot_per_instrument(tmp_path: Path) -> None:
    specs = load_okx_instruments(write_instruments(tmp_path / "i.json", {"ETH-USDT-SWAP": "2"}))
    assert specs["ETH-USDT-SWAP"].ct_val == Decimal(2)
    assert specs["BTC-USDT-SWAP"].ct_val == Decimal("0.01")
    assert specs["DOGE-USDT-SWAP"].ct_val == Decimal(1000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"code": "51001", "data": []}', "code"),
        ('{"code": "0", "data": [{"instId": "X-USDT-SWAP", "ctVal": "0"}]}', "must be positive"),
        ("not json", "not JSON"),
    ],
)
def test_bad_instruments_files_are_parse_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ParseError, match=expected):
        read_okx_instruments(write_text(tmp_path / "i.json", text))
