"""BitMEX merges further liquidations into an open liquidation order: its growth counts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from feeds.venues.bitmex import LiquidationTable
from feeds.venues.parsing import ITEM_FAULTS

ID = "a1b2"


def frame(action: str, **row: Any) -> str:
    return json.dumps({"table": "liquidation", "action": action,
                       "data": [{"orderID": ID, "symbol": "XBTUSD", **row}]})


def test_an_update_that_raises_leaves_qty_is_the_growth_liquidated() -> None:
    table = LiquidationTable()
    [first] = table.parse(frame("insert", side="Sell", price=90000, leavesQty=12900), 1)
    [grown] = table.parse(frame("update", leavesQty=21600), 2)
    assert (first.notional_usd, grown.notional_usd) == (12900, 8700)
    assert (grown.position_side, grown.price, grown.ts_ms) == (first.position_side, 90000, 2)
    assert grown.venue_id == f"{ID}+21600" and grown.event_key() != first.event_key()
    # Filling (shrinking) is bookkeeping; the same update again adds nothing.
    assert table.parse(frame("update", leavesQty=20000), 3) == []
    assert table.parse(frame("update", leavesQty=20000), 4) == []
    # Growth again from the filled level: 20,000 -> 25,000 is 5,000 more.
    [again] = table.parse(frame("update", leavesQty=25000, price=89000), 5)
    assert (again.notional_usd, again.price) == (5000, 89000)
    assert table.open[ID] == Decimal(25000)


def test_growth_of_an_order_known_only_from_the_partial() -> None:
    table = LiquidationTable()
    table.parse(frame("partial", side="Buy", price=90000, leavesQty=100), 1)
    [grown] = table.parse(frame("update", leavesQty=150), 2)
    assert (grown.notional_usd, grown.position_side.value) == (50, "short")


def test_growth_of_an_order_without_price_or_side_is_counted_as_a_fault() -> None:
    ITEM_FAULTS.clear()
    table = LiquidationTable()
    table.parse(frame("partial", leavesQty=100), 1)  # the partial row lacked price and side
    assert table.parse(frame("update", leavesQty=150), 2) == []
    assert sum(n for (venue, _), n in ITEM_FAULTS.items() if venue == "bitmex") == 1
