"""Replay: format recognition from content, merging files, and the known-at timeline."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from feeds.history import HistoryData
from feeds.history.replay import FORMATS, ReplayData, available_ms, detect_format, load_replay
from feeds.model import (
    HOUR_MS,
    Bucket,
    Candle,
    Funding,
    Liquidation,
    OpenInterest,
    ParseError,
    Side,
)
from tests.helpers.history_files import (
    BINANCE_FRAME,
    HOUR,
    T0,
    write_coinalyze_group,
    write_coinglass,
    write_parquet,
    write_regime,
    write_text,
)

EVENT = {
    "exchange": "okx",
    "symbol": "BTC-USDT-SWAP",
    "side": "long",
    "qty": 0.5,
    "price": 70000.0,
    "usd": 35000.0,
    "ts": T0 + 1,
    "sampled": True,
}
PADDED = ["2024-06-20 00:00:00,0.5,0", "2024-06-20 01:00:00,0,2", "2024-06-20 01:00:00,0,2"]


def _coinglass(d: Path) -> Path:
    return write_coinglass(d / "liq.csv", [(T0, 1.0, 2.0), (T0 + HOUR, 3.0, 4.0)])


def _parquet(kind: str) -> Callable[[Path], Path]:
    rows = {
        "parquet-liquidations": dict(venue="okx", coin="BTC", side="sell", size_usd=1.0, price=1.0),
        "parquet-candles": dict(venue="bybit", coin="BTC", o=1.0, h=1.0, l=1.0, c=1.0, v=1.0),
        "parquet-funding": dict(venue="bybit", coin="BTC", funding_rate=0.0001),
        "parquet-open-interest": dict(venue="lighter", coin="BTC", oi_usd=5.0),
        "parquet-hyperliquid-daily": dict(
            coin="BTC", total_usd=2.0, long_usd=1.0, short_usd=1.0, liq_count=2
        ),
    }[kind]
    return lambda d: write_parquet(d / "x.parquet", [dict(timestamp=T0, **rows)])


WRITERS: dict[str, Callable[[Path], Path]] = {
    "coinglass-csv": _coinglass,
    "coinglass-regime-csv": lambda d: write_regime(d / "regime.csv"),
    "price-funding-oi-csv": lambda d: write_text(
        d / "p.csv",
        "timestamp,price_open,price_high,price_low,price_close,funding_close,"
        f"oi_close\n{T0},1,1,1,1,0.0001,5\n{T0 + HOUR},1,1,1,1,0.0001,5\n",
    ),
    "coinalyze-csv": lambda d: write_coinalyze_group(d, PADDED)["liquidation"],
    "events-jsonl": lambda d: write_text(d / "e.jsonl", json.dumps(EVENT) + "\n"),
    "frames-jsonl": lambda d: write_text(d / "f.jsonl", BINANCE_FRAME + "\n"),
    **{k: _parquet(k) for k in FORMATS if k.startswith("parquet-")},
}


def test_every_format_has_a_writer_here() -> None:
    assert set(WRITERS) == set(FORMATS)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_detect_format_recognises_and_loads_each_kind(tmp_path: Path, fmt: str) -> None:
    path = WRITERS[fmt](tmp_path)
    assert detect_format(path) == fmt
    replay = load_replay([path])
    assert replay.files == ((str(path), fmt),)
    assert replay.span() is not None


@pytest.mark.parametrize("fmt", ["coinglass-csv", "events-jsonl", "parquet-candles"])
def test_detection_reads_content_not_the_extension(tmp_path: Path, fmt: str) -> None:
    renamed = WRITERS[fmt](tmp_path).rename(tmp_path / "recording.dat")
    assert detect_format(renamed) == fmt


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"hello,world\n1,2\n", "unrecognised content.*expected a CoinGlass CSV"),
        (b"", "empty file"),
        (b"\x00\x01\x02\xff\xfe", "binary content"),
        (b'{"hello": 1}\n', "neither a normalized event .* nor a known exchange frame"),
        (b"PAR1\x00garbage", "damaged parquet"),
        (b"2024-06-20 00:00:00,1,2\n", "looks like a Coinalyze export"),
    ],
)
def test_unrecognised_files_name_the_file_and_what_was_expected(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "mystery.bin"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=expected) as err:
        detect_format(path)
    assert "mystery.bin" in str(err.value)
    with pytest.raises(ParseError):
        load_replay([path])


def test_parquet_with_unknown_columns_lists_the_known_kinds(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "x.parquet", [dict(timestamp=T0, foo=1.0)])
    with pytest.raises(ParseError, match="match no known kind.*parquet-candles"):
        detect_format(path)


def test_corrupt_csv_after_a_good_header_is_a_parse_error(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "l.csv",
        "timestamp,longUsd,shortUsd\n1776430800000,1,2\n1776434400000,1e400,oops\n",
    )
    with pytest.raises(ParseError, match="l.csv: line 3"):
        load_replay([path])


def test_missing_file_and_empty_list_are_parse_errors(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read"):
        load_replay([tmp_path / "nope.csv"])
    with pytest.raises(ParseError, match="no replay files"):
        load_replay([])


def test_symbol_names_the_coin_of_coinglass_files(tmp_path: Path) -> None:
    replay = load_replay([_coinglass(tmp_path)], symbol="SOLUSDT")
    assert {b.coin for b in replay.buckets} == {"SOL"}


def test_a_coinalyze_group_named_twice_loads_once(tmp_path: Path) -> None:
    files = write_coinalyze_group(tmp_path, PADDED)
    once = load_replay([files["liquidation"]], tz_offset_hours=0)
    twice = load_replay([files["liquidation"], files["ohlcv"], tmp_path], tz_offset_hours=0)
    assert twice.buckets == once.buckets and len(twice.candles) == len(once.candles) == 6
    assert not any("already given" in n for n in twice.notes)


def test_overlapping_files_keep_the_first_files_values(tmp_path: Path) -> None:
    first = write_coinglass(tmp_path / "a.csv", [(T0, 1.0, 2.0), (T0 + HOUR, 3.0, 4.0)])
    second = write_regime(tmp_path / "b.csv", n=3)  # its first two bars overlap
    replay = load_replay([first, second])
    assert [b.long_usd for b in replay.buckets] == [1.0, 3.0, 1000.0]
    assert any("b.csv: dropped 2 buckets already given" in n for n in replay.notes)


def test_mixed_bucket_spans_are_noted(tmp_path: Path) -> None:
    hourly = _coinglass(tmp_path)
    half = write_coinglass(tmp_path / "h.csv", [(T0, 1.0, 1.0), (T0 + HOUR // 2, 1.0, 1.0)])
    replay = load_replay([hourly, half])
    assert replay.bar_span_ms == HOUR // 2
    assert any("several spans (30m, 60m)" in n for n in replay.notes)


def test_folder_skips_unrecognised_files_with_a_note(tmp_path: Path) -> None:
    _coinglass(tmp_path)
    write_text(tmp_path / "LICENSE.txt", "MIT License\n")
    replay = load_replay([tmp_path])
    assert len(replay.buckets) == 2
    assert any("LICENSE.txt: skipped" in n for n in replay.notes)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ParseError, match="no recognised file"):
        load_replay([empty])


def test_instruments_reach_the_okx_loader(tmp_path: Path) -> None:
    path = _parquet("parquet-liquidations")(tmp_path)
    inst = write_text(
        tmp_path / "i.json",
        json.dumps(
            {"code": "0", "data": [{"instId": "BTC-USDT-SWAP", "ctVal": "3", "ctType": "linear"}]}
        ),
    )
    assert load_replay([path], instruments=inst).liquidations[0].notional_usd == Decimal(3)


# ---- the timeline ------------------------------------------------------------------------------


def _mixed() -> ReplayData:
    bucket = Bucket(T0, HOUR, "*", "*", 1.0, 2.0)
    candle = Candle("binance", "BTC", T0, HOUR, 1.0, 2.0, 0.5, 1.5)
    funding = Funding("binance", "BTCUSDT", T0 + HOUR, Decimal("0.0001"))
    oi = OpenInterest("binance", "BTCUSDT", T0 + HOUR, None, Decimal(5))
    early = Liquidation(
        "okx",
        "BTC-USDT-SWAP",
        Side.LONG,
        Decimal(1),
        Decimal(1),
        Decimal(1),
        T0 + 10,
        T0 + 10,
        True,
    )
    on_close = Liquidation(
        "okx",
        "BTC-USDT-SWAP",
        Side.SHORT,
        Decimal(1),
        Decimal(1),
        Decimal(1),
        T0 + HOUR,
        T0 + HOUR,
        True,
    )
    history = HistoryData(
        liquidations=[on_close, early],
        buckets=[bucket],
        funding=[funding],
        candles=[candle],
        open_interest=[oi],
    )
    return ReplayData(history)


def test_timeline_delivers_bars_at_their_close_and_events_at_their_time() -> None:
    timeline = list(_mixed().timeline())
    assert [at for at, _ in timeline] == [T0 + 10] + [T0 + HOUR] * 5
    kinds = [type(item).__name__ for _, item in timeline]
    # Context before the bar total a signal reads; an event at the close opens the next bar.
    assert kinds == ["Liquidation", "Candle", "Funding", "OpenInterest", "Bucket", "Liquidation"]
    assert all(at == available_ms(item) for at, item in timeline)


def test_span_and_bar_span() -> None:
    replay = _mixed()
    assert replay.span() == (T0 + 10, T0 + HOUR)
    assert replay.bar_span_ms == HOUR
    events_only = ReplayData(HistoryData(liquidations=replay.liquidations))
    assert events_only.bar_span_ms is None
    assert ReplayData(HistoryData()).span() is None


# ---- the real datasets -------------------------------------------------------------------------

REAL_FORMATS = {
    "coinglass_btc/liquidations_1h.csv": "coinglass-csv",
    "coinglass_btc/liquidations_30m.csv": "coinglass-csv",
    "coinglass_btc/regime_1h.csv": "coinglass-regime-csv",
    "coinglass_btc/regime_30m.csv": "coinglass-regime-csv",
    "binance_btc_perp_5m/price_oi_funding_5m.csv": "price-funding-oi-csv",
    "coinalyze_binance_1h_2024/BTCUSDT_PERP.A_liquidation-history.csv": "coinalyze-csv",
    "coinalyze_binance_1h_2024/csvFolder2_BTCUSDT_PERP.A_ohlcv-history.csv": "coinalyze-csv",
    "multivenue/liquidations.parquet": "parquet-liquidations",
    "multivenue/candles.parquet": "parquet-candles",
    "multivenue/funding_rates.parquet": "parquet-funding",
    "multivenue/open_interest.parquet": "parquet-open-interest",
    "multivenue/hyperliquid_daily_liquidations.parquet": "parquet-hyperliquid-daily",
}


@pytest.mark.realdata
def test_real_files_are_recognised(shared_data: Path) -> None:
    found = {name: detect_format(shared_data / name) for name in REAL_FORMATS}
    assert found == REAL_FORMATS


@pytest.mark.realdata
def test_real_coinglass_folder_replays_in_known_at_order(shared_data: Path) -> None:
    replay = load_replay([shared_data / "coinglass_btc"], symbol="BTCUSDT")
    assert replay.bar_span_ms == HOUR_MS // 2
    assert any("regime_1h.csv: dropped" in n and "buckets" in n for n in replay.notes)
    times = [at for at, _ in replay.timeline()]
    assert times == sorted(times)
    assert replay.span() == (times[0], times[-1])


@pytest.mark.realdata
def test_real_coinalyze_and_okx_events_merge(shared_data: Path) -> None:
    replay = load_replay(
        [
            shared_data / "coinalyze_binance_1h_2024",
            shared_data / "multivenue" / "liquidations.parquet",
        ]
    )
    assert len(replay.liquidations) == 5816
    assert {b.coin for b in replay.buckets} == {"BTC", "ETH", "SOL"}
    assert any("LICENSE_source_repo.txt: skipped" in n for n in replay.notes)
    first_at, first = next(replay.timeline())
    assert isinstance(first, Candle) and first_at == first.start_ms + HOUR_MS
