"""The streamed replay gives the timeline `load_replay` gives, whatever the files' order."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from feeds.history.replay import load_replay
from feeds.history.stream import open_replay, reorder
from feeds.model import ParseError
from tests.helpers.history_files import (
    BINANCE_FRAME,
    HOUR,
    T0,
    write_coinglass,
    write_parquet,
    write_regime,
    write_text,
)


def _events(n: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out, t = [], T0
    for i in range(n):
        t += rng.choice((0, 0, 1, 250, 40_000))  # equal times too: their order must hold
        coin = rng.choice(("BTC", "ETH"))
        out.append({"exchange": rng.choice(("binance", "okx")), "symbol": f"{coin}USDT",
                    "side": rng.choice(("long", "short")), "qty": 1 + i % 7,
                    "price": 100.0 + i, "usd": (1 + i % 7) * (100.0 + i), "ts": t,
                    "coin": coin, "id": str(i)})
    return out


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    return write_text(path, "\n".join(json.dumps(r) for r in rows) + "\n\n")


def same_timeline(paths: list[Path], **kw: Any) -> int:
    whole = list(load_replay(paths, **kw).timeline())
    streamed = list(open_replay(paths, **kw).timeline())
    assert [(at, type(x), x) for at, x in streamed] == [(at, type(x), x) for at, x in whole]
    return len(streamed)


def test_sorted_events_with_bars_stream_in_the_loaded_order(tmp_path: Path) -> None:
    events = _jsonl(tmp_path / "e.jsonl", _events(600))
    regime = write_regime(tmp_path / "r.csv", n=4)
    assert same_timeline([events, regime], symbol="BTC") == 600 + 4 * 4


def test_events_out_of_order_still_give_the_exact_timeline(tmp_path: Path) -> None:
    rows = _events(500)
    random.Random(9).shuffle(rows)
    path = _jsonl(tmp_path / "shuffled.jsonl", rows)
    assert same_timeline([path]) == 500
    assert open_replay([path]).bar_span_ms is None


def test_overlapping_bar_files_keep_the_first_files_values(tmp_path: Path) -> None:
    first = write_coinglass(tmp_path / "a.csv", [(T0, 1.0, 2.0), (T0 + HOUR, 3.0, 4.0)])
    second = write_regime(tmp_path / "b.csv", n=3)
    stream = open_replay([first, second])
    assert any("b.csv: dropped 2 buckets already given" in n for n in stream.notes)
    assert same_timeline([first, second]) > 0
    assert stream.bar_span_ms == HOUR


def test_parquet_events_stream_sorted_and_unsorted(tmp_path: Path) -> None:
    rows = [{"timestamp": T0 + 1000 * (i % 7) * (1 if i % 2 else -1) + 10_000, "venue": "okx",
             "coin": "BTC", "side": "sell" if i % 3 else "buy", "size_usd": 50_000.0 + i,
             "price": 50_000.0} for i in range(40)]
    rows.append({**rows[0], "venue": "hyperliquid", "side": "S"})
    unsorted = write_parquet(tmp_path / "u.parquet", rows)
    ordered = write_parquet(tmp_path / "s.parquet", sorted(rows, key=lambda r: r["timestamp"]))
    assert same_timeline([unsorted]) == 40
    assert same_timeline([ordered]) == 40


def test_a_bad_line_fails_naming_file_and_line_when_read(tmp_path: Path) -> None:
    rows = [json.dumps(r) for r in _events(5)]
    rows[3] = rows[3].replace('"long"', '"sideways"').replace('"short"', '"sideways"')
    path = write_text(tmp_path / "bad.jsonl", "\n".join(rows) + "\n")
    stream = open_replay([path])  # recognised from the first line; rows are read later
    with pytest.raises(ParseError, match=r"bad\.jsonl:4: side"):
        list(stream.timeline())


def test_frames_stream_and_a_frame_too_far_back_fails(tmp_path: Path) -> None:
    frame = json.loads(BINANCE_FRAME)

    def at(t: int) -> str:
        return json.dumps({**frame, "E": t, "o": {**frame["o"], "T": t}})

    ok = write_text(tmp_path / "f.jsonl", "\n".join(at(T0 + d) for d in (5, 1, 9, 2)) + "\n")
    assert same_timeline([ok]) == 4
    pairs = [(T0 + d, d, n) for n, d in enumerate((5, 6, 7, 1), start=1)]
    with pytest.raises(ParseError, match=r"x\.jsonl:4: more than 2 events out of time order"):
        list(reorder(pairs, 2, Path("x.jsonl")))
    assert [d for _, d in reorder(pairs, 3, Path("x.jsonl"))] == [1, 5, 6, 7]


def test_unknown_parquet_venue_fails_before_the_replay(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "v.parquet", [
        {"timestamp": T0, "venue": "nowhere", "coin": "BTC", "side": "sell",
         "size_usd": 1.0, "price": 1.0}])
    with pytest.raises(ParseError, match="unknown venue"):
        open_replay([path])


def test_parquet_bar_files_replay_from_columns_in_the_loaded_order(tmp_path: Path) -> None:
    rows = [{"timestamp": T0 + HOUR * (i % 5) + (i // 5) * 7 * HOUR, "venue": v, "coin": c,
             "o": 10.0 + i, "h": 12.0 + i, "l": 9.0 + i, "c": 11.0 + i, "funding_rate": 1e-4 * i,
             "oi_usd": 1e6 + i}
            for i, (v, c) in enumerate([("binance", "BTC"), ("bybit", "ETH"), ("okx", "SOL")] * 9)]
    candles = write_parquet(tmp_path / "candles.parquet", [
        {k: r[k] for k in ("timestamp", "venue", "coin", "o", "h", "l", "c")} for r in rows])
    funding = write_parquet(tmp_path / "funding.parquet", [
        {k: r[k] for k in ("timestamp", "venue", "coin", "funding_rate")} for r in rows])
    oi = write_parquet(tmp_path / "oi.parquet", [
        {k: r[k] for k in ("timestamp", "venue", "coin", "oi_usd")} for r in rows[::-1]])
    assert same_timeline([candles, funding, oi]) == 3 * len(rows)
    # A second file that can give candles too: the whole-file path keeps the first's values.
    regime = write_regime(tmp_path / "r.csv", n=3)
    assert same_timeline([candles, regime], symbol="BTC") == len(rows) + 3 * 4


@pytest.mark.realdata
def test_real_folders_stream_as_they_load(shared_data: Path) -> None:
    assert same_timeline([shared_data / "multivenue"]) > 250_000
    assert same_timeline([shared_data / "coinalyze_binance_1h_2024",
                          shared_data / "multivenue" / "liquidations.parquet"]) > 5816
    assert same_timeline([shared_data / "coinglass_btc"], symbol="BTCUSDT") > 0
