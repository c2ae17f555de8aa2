"""JSONL recordings: decoded events and raw venue frames."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from feeds.history import load_events_jsonl, load_frames_jsonl
from feeds.model import Liquidation, ParseError, Side
from tests.helpers.history_files import BINANCE_FRAME, T0, write_text

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
