"""Coinalyze CSV export groups: padding, holes, USD from prices, the local-time offset."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from feeds.history import load_coinalyze
from feeds.model import HOUR_MS, ParseError
from tests.helpers.history_files import typical, write_coinalyze_group, write_text

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
