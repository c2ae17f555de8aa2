"""Executed trades: latency on fine prices only, funding, size-dependent slippage, no overlap."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from backtests.bars import FundingSeries, PriceSeries
from backtests.engine import AlertRecord
from backtests.execution import entry_index, execute, funding_cost, impact
from backtests.study import SignalOutcome, StudyConfig
from feeds.model import HOUR_MS, MINUTE_MS

T0 = 1_700_000_000_000 // HOUR_MS * HOUR_MS


def _prices(span: int, opens: list[float]) -> PriceSeries:
    a = np.array(opens, dtype=float)
    return PriceSeries("test perp", "BTC", T0, span, a, a, a, a)


def _signal(end_ms: int, total: float = 1e6, kind: str = "short_squeeze") -> SignalOutcome:
    rec = AlertRecord(kind, "BTC", HOUR_MS, end_ms - HOUR_MS, end_ms, 2, total / 2, total / 2,
                      0.9, 3.0, 1e5, None, None, False, end_ms)
    return SignalOutcome(rec, False, True, None, None, {}, {}, {})


def _bars(prices: PriceSeries, funding: tuple[FundingSeries, ...] = ()) -> Any:
    return SimpleNamespace(prices={"BTC": prices}, funding={"BTC": funding} if funding else {})


def test_latency_is_honoured_on_5m_prices_only() -> None:
    fine = _prices(5 * MINUTE_MS, [100.0] * 100)
    assert entry_index(fine, T0 + HOUR_MS, 60_000) == (13, True)  # 1h + 1min -> 1h05 bar
    coarse = _prices(HOUR_MS, [100.0] * 10)
    assert entry_index(coarse, T0 + HOUR_MS, 60_000) == (1, False)  # the next bar's open


def test_funding_accrues_per_hour_from_the_last_known_rate() -> None:
    series = FundingSeries(np.array([T0, T0 + 2 * HOUR_MS], dtype=np.int64),
                           np.array([0.0008, 0.0016]))
    bars = _bars(_prices(HOUR_MS, [100.0] * 10), (series,))
    # 2 hours at 0.0008 and 2 at 0.0016, each hour 1/8 of the 8h rate
    assert funding_cost(bars, "BTC", T0, T0 + 4 * HOUR_MS) == pytest.approx(0.0006)
    assert funding_cost(_bars(_prices(HOUR_MS, [1.0])), "BTC", T0, T0 + HOUR_MS) is None


def test_impact_grows_with_size_and_is_capped() -> None:
    c = StudyConfig(impact_bps=2.0, impact_cap_bps=10.0)
    assert impact(10e6, c) == pytest.approx(2e-4)
    assert impact(30e6, c) == pytest.approx(6e-4)
    assert impact(1e9, c) == pytest.approx(1e-3)


def test_trades_do_not_overlap_and_equity_compounds() -> None:
    opens = [100.0, 100.0, 101, 102, 103, 104, 110, 110, 110, 110, 121, 121, 121, 121]
    bars = _bars(_prices(HOUR_MS, opens))
    c = StudyConfig(fees_bps=0, slippage_bps=0, impact_bps=0)
    # squeeze at 1h enters bar 1 (100), exits bar 5 (104); the one at 3h overlaps; at 6h
    # enters 110, exits bar 10 (121)
    out = execute([_signal(T0 + HOUR_MS), _signal(T0 + 3 * HOUR_MS), _signal(T0 + 6 * HOUR_MS)],
                  bars, c)
    k = out["kinds"]["short_squeeze"]
    assert (k["trades"], k["skipped_overlapping"]) == (2, 1)
    assert k["continuation"]["equity"] == pytest.approx(1.04 * 1.1 - 1)
    assert k["continuation"]["hit"] == 1.0 and k["reversal"]["hit"] == 0.0
    assert out["entry"].startswith("next bar's open") and out["funding"] == "no funding in the data"


def test_costs_are_charged_on_both_sides_plus_impact() -> None:
    bars = _bars(_prices(HOUR_MS, [100.0] * 10))
    c = StudyConfig(fees_bps=5, slippage_bps=5, impact_bps=1, impact_cap_bps=50)
    out = execute([_signal(T0 + HOUR_MS, total=20e6)], bars, c)["kinds"]["short_squeeze"]
    assert out["continuation"]["mean"] == pytest.approx(-(20 + 2) / 10_000)
    assert out["continuation"]["hit"] == 0.0


def test_returns_come_from_the_perp_when_the_data_has_one() -> None:
    from backtests.bars import _prices as pick
    from feeds.model import Candle

    def candles(exchange: str, n: int, price: float) -> list[Candle]:
        return [Candle(exchange, "BTC", i * HOUR_MS, HOUR_MS, price, price, price, price)
                for i in range(n)]

    # The spot series is longer, yet the perpetual's prices are the ones a trade would get.
    series, notes = pick(candles("binance-spot", 48, 100.0) + candles("binance", 24, 101.0),
                         ["BTC"], HOUR_MS)
    assert series["BTC"].source.startswith("binance BTC") and "binance BTC" in notes[0]
    spot_only, _ = pick(candles("binance-spot", 48, 100.0), ["BTC"], HOUR_MS)
    assert spot_only["BTC"].source.startswith("binance-spot BTC")
