"""The plausibility gate: implausible events are counted per fault, logged once, never stored."""

import logging
import time
from decimal import Decimal

import pytest

from feeds.plausible import FAULTS, Gate, fault
from feeds.store import Store
from tests.helpers.factories import T0, make_liq

NOW = T0 + 60_000

# (fault, event): every class of implausible event the issue found stored, plus neighbours.
BAD = [
    ("usd_vs_qty_price", make_liq(qty_base=Decimal("0.0095"), price=Decimal("100000"),
                                  notional_usd=Decimal("1e17"))),
    ("usd", make_liq(qty_base=Decimal("1e12"), price=Decimal("100000"),
                     notional_usd=Decimal("1e17"))),
    ("usd", make_liq(notional_usd=Decimal("NaN"), qty_base=Decimal(1), price=Decimal(1))),
    ("price", make_liq(price=Decimal("1e17"))),
    ("price", make_liq(price=Decimal("Infinity"), qty_base=Decimal(1),
                       notional_usd=Decimal(1))),
    ("qty", make_liq(qty_base=Decimal(0), notional_usd=Decimal(1))),
    ("timestamp", make_liq(ts_exchange_ms=7_258_118_400_000)),  # 2200-01-01
    ("timestamp", make_liq(ts_exchange_ms=int(time.time() * 1000) + 2 * 86_400_000)),
    ("timestamp", make_liq(ts_exchange_ms=1_000)),
    ("timestamp", make_liq(ts_exchange_ms=None, ts_recv_ms=7_258_118_400_000)),  # BitMEX
    ("symbol", make_liq(symbol="BTC\x00USDT")),
    ("symbol", make_liq(symbol="BTC\u202eUSDT")),  # right-to-left override
    ("symbol", make_liq(symbol="BTC USDT")),
    ("symbol", make_liq(symbol="B" * 41)),
    ("symbol", make_liq(symbol="")),
]


@pytest.mark.parametrize(("why", "event"), BAD, ids=[f"{w}-{i}" for i, (w, _) in enumerate(BAD)])
def test_each_implausible_event_names_its_fault(why, event):
    assert fault(event, NOW) == why


def test_real_shapes_pass():
    for e in (make_liq(), make_liq(qty_base=Decimal("0.014"), price=Decimal("9910.10")),
              make_liq(symbol="1000PEPEUSDT", price=Decimal("0.0000123"),
                       qty_base=Decimal("1e9")),
              make_liq(symbol="BTC-27DEC24-100000", ts_exchange_ms=None),
              # an inverse contract: USD is exact, qty derived, rounding within the factor
              make_liq(qty_base=Decimal("0.00315"), price=Decimal("95000"),
                       notional_usd=Decimal("300"))):
        assert fault(e, NOW) is None, e


def test_store_keeps_out_counts_and_logs_once_per_fault(tmp_path, caplog):
    store = Store(tmp_path / "g.db")
    good = [make_liq(ts_exchange_ms=T0 + i) for i in range(3)]
    bad = [e for _, e in BAD]
    with caplog.at_level(logging.WARNING, logger="feeds.plausible"):
        assert store.insert_liquidations(good + bad + bad) == 3
    assert store.count_events() == 3
    counts = store.gate.rejected
    assert set(counts) == set(FAULTS)  # every fault counted from the start (0s included)
    for why in {w for w, _ in BAD}:
        assert counts[why] == 2 * sum(w == why for w, _ in BAD)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == len({w for w, _ in BAD})  # once per kind of fault
    assert all("\x00" not in line and "\u202e" not in line for line in lines)
    store.close()


def test_gate_counts_show_in_metrics():
    from bot.ops.metrics import Metrics

    gate, metrics = Gate(), Metrics()
    metrics.bind_rejections(gate.rejected)
    gate.admit([make_liq(price=Decimal("1e17"))])
    assert metrics.value("liqbot_events_rejected_total", reason="price") == 1
    assert metrics.value("liqbot_events_rejected_total", reason="symbol") == 0
