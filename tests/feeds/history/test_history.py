"""History loaders: CoinGlass and Coinalyze CSV, multivenue parquet, JSONL recordings."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from feeds.history import (
    HistoryData,
    load_candles_parquet,
    load_coinalyze,
    load_coinglass_csv,
    load_coinglass_regime,
    load_events_jsonl,
    load_frames_jsonl,
    load_funding_parquet,
    load_hyperliquid_daily,
    load_liquidations_parquet,
    load_price_funding_oi,
)
from feeds.model import HOUR_MS, MARKET, Bucket, Liquidation, ParseError, Side
from feeds.venues.okx import load_okx_instruments, read_okx_instruments
from tests.helpers.history_files import (
    BINANCE_FRAME,
    HOUR,
    T0,
    typical,
    write_coinalyze_group,
    write_coinglass,
    write_instruments,
    write_parquet,
    write_regime,
    write_text,
)

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


# ---- Coinalyze ---------------------------------------------------------------------------------

# Hours 02 and 03 are missing at the source; the exporter wrote the 04:00 row three times.
PADDED = [
    "2024-06-20 00:00:00,0.5,0",
    "2024-06-20 01:00:00,0,2",
    "2024-06-20 04:00:00,1,1",
    "2024-06-20 04:00:00,1,1",
    "2024-06-20 04:00:00,1,1",
    "2024-06-20 05:00:00,0.25,0.75",
]
LOCAL_MIDNIGHT_MS = int(pd.Timestamp("2024-06-20 00:00:00", tz="UTC").value // 1_000_000)


def test_coinalyze_drops_padding_copies_and_zero_fills_the_holes(tmp_path: Path) -> None:
    write_coinalyze_group(tmp_path, PADDED)
    data = load_coinalyze(tmp_path, tz_offset_hours=0)
    starts = [b.start_ms for b in data.buckets]
    assert starts == [LOCAL_MIDNIGHT_MS + h * HOUR_MS for h in range(6)]
    assert [b.total_usd for b in data.buckets][2:4] == [0.0, 0.0]
    assert any("dropped 2 repeated rows" in n for n in data.notes)
    assert any("2 missing bars filled" in n for n in data.notes)


def test_coinalyze_usd_is_base_times_the_bars_typical_price(tmp_path: Path) -> None:
    write_coinalyze_group(tmp_path, PADDED)
    by_hour = {
        (b.start_ms - LOCAL_MIDNIGHT_MS) // HOUR_MS: b
        for b in load_coinalyze(tmp_path, tz_offset_hours=0).buckets
    }
    assert by_hour[0].long_usd == pytest.approx(0.5 * typical(0))
    assert by_hour[5].short_usd == pytest.approx(0.75 * typical(5))
    b = by_hour[4]
    assert (b.exchange, b.coin, b.source) == ("binance", "BTC", "coinalyze")


@pytest.mark.parametrize("offset", [6.0, 0.0, -3.0, 5.5])
def test_coinalyze_tz_offset_moves_every_timestamp_by_exactly_the_offset(
    tmp_path: Path, offset: float
) -> None:
    write_coinalyze_group(tmp_path, PADDED)
    local = load_coinalyze(tmp_path, tz_offset_hours=0)
    shifted = load_coinalyze(tmp_path, tz_offset_hours=offset)
    delta = round(offset * HOUR_MS)
    assert [b.start_ms for b in shifted.buckets] == [b.start_ms - delta for b in local.buckets]
    assert [c.start_ms for c in shifted.candles] == [c.start_ms - delta for c in local.candles]


def test_coinalyze_default_offset_is_utc_plus_6(tmp_path: Path) -> None:
    write_coinalyze_group(tmp_path, PADDED)
    assert load_coinalyze(tmp_path).buckets[0].start_ms == LOCAL_MIDNIGHT_MS - 6 * HOUR_MS


def test_coinalyze_any_file_of_a_group_loads_the_group(tmp_path: Path) -> None:
    files = write_coinalyze_group(tmp_path, PADDED)
    via_folder = load_coinalyze(tmp_path)
    for path in files.values():
        data = load_coinalyze(path)
        assert data.buckets == via_folder.buckets
        assert len(data.candles) == 6 and len(data.open_interest) == 6


def test_coinalyze_open_interest_is_base_at_bar_end_with_usd_from_close(tmp_path: Path) -> None:
    write_coinalyze_group(tmp_path, PADDED)
    oi = load_coinalyze(tmp_path, tz_offset_hours=0).open_interest[1]
    assert (oi.symbol, oi.ts_ms, oi.oi_base) == ("BTCUSDT", LOCAL_MIDNIGHT_MS + 2 * HOUR_MS, 1001)
    assert oi.oi_usd == Decimal(1001) * Decimal(106)


def test_coinalyze_liquidations_without_prices_name_the_missing_file(tmp_path: Path) -> None:
    files = write_coinalyze_group(tmp_path, PADDED)
    files["ohlcv"].unlink()
    with pytest.raises(ParseError, match=r"BTCUSDT_PERP\.A_ohlcv-history\.csv"):
        load_coinalyze(files["liquidation"])


def test_coinalyze_refuses_conflicting_rows_and_bad_times(tmp_path: Path) -> None:
    write_coinalyze_group(tmp_path / "a", ["2024-06-20 00:00:00,1,0", "2024-06-20 00:00:00,2,0"])
    with pytest.raises(ParseError, match="conflicting rows"):
        load_coinalyze(tmp_path / "a")
    write_coinalyze_group(tmp_path / "b", ["2024-06-20 00:00:00,1,0", "20/06/2024 01:00,1,0"])
    with pytest.raises(ParseError, match="line 2.*20/06/2024"):
        load_coinalyze(tmp_path / "b")


def test_coinalyze_sparse_rows_are_fine_off_grid_rows_are_not(tmp_path: Path) -> None:
    write_coinalyze_group(tmp_path / "a", ["2024-06-20 00:00:00,1,0", "2024-06-20 04:00:00,1,0"])
    assert len(load_coinalyze(tmp_path / "a").buckets) == 5
    write_coinalyze_group(tmp_path / "b", ["2024-06-20 00:00:00,1,0", "2024-06-20 00:30:00,1,0"])
    with pytest.raises(ParseError, match="not on the 60m grid"):
        load_coinalyze(tmp_path / "b")


def test_coinalyze_refuses_unknown_names_and_wild_offsets(tmp_path: Path) -> None:
    path = write_text(tmp_path / "prices.csv", "2024-06-20 00:00:00,1,2\n")
    with pytest.raises(ParseError, match="not a Coinalyze export name"):
        load_coinalyze(path)
    write_coinalyze_group(tmp_path / "g", PADDED)
    with pytest.raises(ParseError, match="tz_offset_hours"):
        load_coinalyze(tmp_path / "g", tz_offset_hours=30)


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


# ---- JSONL -------------------------------------------------------------------------------------


def _event(**overrides: object) -> Liquidation:
    base = Liquidation(
        "bybit",
        "ETHUSDT",
        Side.SHORT,
        Decimal("2"),
        Decimal("3000.5"),
        Decimal("6001"),
        T0,
        T0 + 5,
        False,
    )
    return Liquidation(
        **{**{f: getattr(base, f) for f in base.__slots__ if f != "raw"}, **overrides}
    )


def test_events_jsonl_reads_the_decode_shape_back(tmp_path: Path) -> None:
    events = [_event(), _event(position_side=Side.LONG, sampled=True, exchange="binance")]
    lines = [json.dumps(e.as_short_dict()) for e in events]
    data = load_events_jsonl(write_text(tmp_path / "e.jsonl", "\n".join([lines[0], "", lines[1]])))
    got = data.liquidations
    assert [e.position_side for e in got] == [Side.SHORT, Side.LONG]
    assert (got[0].qty_base, got[0].price, got[0].notional_usd) == (2, Decimal("3000.5"), 6001)
    assert (got[0].ts_ms, got[1].sampled, got[1].exchange) == (T0, True, "binance")


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("{not json", "not JSON"),
        (
            '{"exchange": "x", "symbol": "BTCUSDT", "side": "buy", "qty": 1, "price": 1, "usd": 1,'
            ' "ts": 1776430800000}',
            "side",
        ),
        (
            '{"exchange": "x", "symbol": "BTCUSDT", "side": "long", "qty": 1, "price": 1,'
            ' "usd": 1}',
            "missing key 'ts'",
        ),
        (
            '{"exchange": "x", "symbol": "BTCUSDT", "side": "long", "qty": "abc", "price": 1,'
            ' "usd": 1, "ts": 1776430800000}',
            "qty",
        ),
    ],
)
def test_events_jsonl_errors_name_file_and_line(
    tmp_path: Path, bad_line: str, expected: str
) -> None:
    good = json.dumps(_event().as_short_dict())
    path = write_text(tmp_path / "e.jsonl", "\n".join([good, "", bad_line, good]))
    with pytest.raises(ParseError, match=rf"e\.jsonl:3: .*{expected}"):
        load_events_jsonl(path)


def test_frames_jsonl_runs_each_frame_through_the_venue_parser(tmp_path: Path) -> None:
    wrapped = json.dumps({"stream": "!forceOrder@arr", "data": json.loads(BINANCE_FRAME)})
    lines = ['{"result": null, "id": 1}', BINANCE_FRAME, "", wrapped, f"[{BINANCE_FRAME}]"]
    data = load_frames_jsonl(write_text(tmp_path / "f.jsonl", "\n".join(lines)))
    assert len(data.liquidations) == 3
    e = data.liquidations[0]
    assert (e.exchange, e.symbol, e.position_side) == ("binance", "BTCUSDT", Side.LONG)
    assert (e.qty_base, e.notional_usd, e.ts_ms) == (
        Decimal("0.014"),
        Decimal("138.740"),
        1568014460893,
    )
    assert e.ts_recv_ms == 1568014460893  # recorded frames: event time stands in for receipt


def test_frames_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    broken = BINANCE_FRAME.replace('"S":"SELL"', '"S":"SIDEWAYS"')
    path = write_text(tmp_path / "f.jsonl", "\n".join([BINANCE_FRAME, broken]))
    with pytest.raises(ParseError, match=r"f\.jsonl:2: binance: .*SIDEWAYS"):
        load_frames_jsonl(path)
    path = write_text(tmp_path / "g.jsonl", "\n".join([BINANCE_FRAME, "{oops"]))
    with pytest.raises(ParseError, match=r"g\.jsonl:2: not JSON"):
        load_frames_jsonl(path)
    with pytest.raises(ParseError, match="no frame parser for 'kraken'"):
        load_frames_jsonl(path, exchange="kraken")
