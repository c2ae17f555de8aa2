"""CoinGlass CSV exports (liquidations, regime, price/funding/OI) and merging HistoryData."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from feeds.history import (
    HistoryData,
    load_coinglass_csv,
    load_coinglass_regime,
    load_price_funding_oi,
)
from feeds.model import MARKET, Bucket, ParseError
from tests.helpers.history_files import HOUR, T0, write_coinglass, write_regime, write_text

# ---- HistoryData -------------------------------------------------------------------------------


def test_merge_keeps_both_sides_in_order() -> None:
    a = HistoryData(buckets=[Bucket(0, HOUR, "*", "*", 1.0, 2.0)], notes=["a"])
    b = HistoryData(buckets=[Bucket(HOUR, HOUR, "*", "*", 3.0, 4.0)], notes=["b"])
    merged = a.merge(b)
    assert [x.start_ms for x in merged.buckets] == [0, HOUR]
    assert merged.notes == ["a", "b"]
    assert len(a.buckets) == 1  # merge returns a new value


# ---- CoinGlass ---------------------------------------------------------------------------------


def test_coinglass_rows_become_market_wide_buckets(tmp_path: Path) -> None:
    path = write_coinglass(tmp_path / "l.csv", [(T0, 1.5e6, 82.6e6), (T0 + HOUR, 10.0, 20.0)])
    data = load_coinglass_csv(path)
    first = data.buckets[0]
    assert (first.start_ms, first.span_ms) == (T0, HOUR)
    assert (first.exchange, first.coin, first.source) == (MARKET, MARKET, "coinglass")
    assert (first.long_usd, first.short_usd) == (1.5e6, 82.6e6)


def test_coinglass_symbol_names_the_coin(tmp_path: Path) -> None:
    path = write_coinglass(tmp_path / "l.csv", [(T0, 1.0, 2.0), (T0 + HOUR, 1.0, 2.0)])
    assert {b.coin for b in load_coinglass_csv(path, symbol="ETHUSDT").buckets} == {"ETH"}


def test_coinglass_span_is_the_median_spacing_despite_gaps(tmp_path: Path) -> None:
    starts = [T0, T0 + HOUR // 2, T0 + HOUR, T0 + 10 * HOUR]
    path = write_coinglass(tmp_path / "l.csv", [(t, 1.0, 1.0) for t in starts])
    assert {b.span_ms for b in load_coinglass_csv(path).buckets} == {HOUR // 2}


def test_coinglass_single_row_needs_an_explicit_span(tmp_path: Path) -> None:
    path = write_coinglass(tmp_path / "l.csv", [(T0, 1.0, 1.0)])
    with pytest.raises(ParseError, match="span"):
        load_coinglass_csv(path)
    assert load_coinglass_csv(path, span_ms=HOUR).buckets[0].span_ms == HOUR


def test_coinglass_regime_funding_percent_becomes_raw_rate(tmp_path: Path) -> None:
    data = load_coinglass_regime(write_regime(tmp_path / "r.csv", funding="0.004936"))
    f = data.funding[0]
    assert f.rate == Decimal("0.00004936")
    assert (f.exchange, f.symbol, f.interval_h) == ("binance", "BTCUSDT", 8.0)
    assert f.ts_ms == T0 + HOUR  # the close is known at the bar's end
    assert any("percent" in n for n in data.notes)


def test_coinglass_regime_yields_spot_candles_oi_and_buckets(tmp_path: Path) -> None:
    data = load_coinglass_regime(write_regime(tmp_path / "r.csv"), symbol="ETHUSDT")
    c = data.candles[0]
    assert (c.exchange, c.coin, c.start_ms, c.span_ms) == ("binance-spot", "ETH", T0, HOUR)
    assert (c.open, c.high, c.low, c.close) == (100, 110, 90, 105)
    oi = data.open_interest[0]
    assert (oi.symbol, oi.ts_ms, oi.oi_usd) == ("ETHUSDT", T0 + HOUR, Decimal(8_000_000_000))
    assert data.funding[0].symbol == "ETHUSDT"
    assert (data.buckets[0].coin, data.buckets[0].short_usd) == ("ETH", 2000.0)


def test_price_funding_oi_export_keeps_raw_funding(tmp_path: Path) -> None:
    header = (
        "timestamp,datetime_utc,price_open,price_high,price_low,price_close,funding_close,oi_close"
    )
    rows = [f"{T0 + i * 300_000},x,1,2,0.5,1.5,-0.00002828,7e9" for i in range(3)]
    data = load_price_funding_oi(write_text(tmp_path / "p.csv", "\n".join([header, *rows])))
    assert data.funding[0].rate == Decimal("-0.00002828")
    assert data.candles[0].exchange == "binance" and data.candles[0].span_ms == 300_000
    assert not data.buckets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("timestamp,longUsd\n1776430800000,1\n", "missing column.*shortUsd"),
        (
            "timestamp,longUsd,shortUsd\n1776430800000,1,2\n1776434400000,abc,2\n",
            "line 3.*longUsd.*abc",
        ),
        ("timestamp,longUsd,shortUsd\n1776430800000,nan,2\n1776434400000,1,2\n", "line 2.*longUsd"),
        ("timestamp,longUsd,shortUsd\n1776430800000,,2\n1776434400000,1,2\n", "line 2.*longUsd"),
        ("timestamp,longUsd,shortUsd\n1776430800000,-5,2\n1776434400000,1,2\n", "longUsd.*below 0"),
        ("timestamp,longUsd,shortUsd\n1776430800,1,2\n1776434400,1,2\n", "epoch milliseconds"),
        ("", "empty file"),
        ("timestamp,longUsd,shortUsd\n", "no data rows"),
        ("timestamp,longUsd,shortUsd\n1,2\n3,4,5,6,7\n", "not a readable CSV"),
    ],
)
def test_coinglass_bad_input_is_a_parse_error_naming_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write_text(tmp_path / "bad.csv", text)
    with pytest.raises(ParseError, match=expected) as err:
        load_coinglass_csv(path)
    assert "bad.csv" in str(err.value)


def test_coinglass_repeated_rows_dropped_conflicts_refused(tmp_path: Path) -> None:
    rows = [(T0, 1.0, 2.0), (T0, 1.0, 2.0), (T0 + HOUR, 3.0, 4.0)]
    data = load_coinglass_csv(write_coinglass(tmp_path / "a.csv", rows))
    assert len(data.buckets) == 2
    assert any("dropped 1 repeated rows" in n for n in data.notes)
    clash = write_coinglass(tmp_path / "b.csv", [(T0, 1.0, 2.0), (T0, 9.0, 2.0)])
    with pytest.raises(ParseError, match="conflicting rows"):
        load_coinglass_csv(clash)
