"""Hostile frames into the BitMEX, Deribit and CoinGlass parsers: only ParseError comes out."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.model import Liquidation, ParseError, Side
from feeds.venues import coinglass as coinglass_ws
from feeds.venues import deribit
from feeds.venues.bitmex import LiquidationTable, contract_of
from tests.helpers.shared import FIXTURES

RECV_MS = 1_700_000_000_000
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

BITMEX = json.loads((FIXTURES / "bitmex_liquidation_insert.json").read_text())
DERIBIT = json.loads((FIXTURES / "deribit_trade_liquidation.json").read_text())
COINGLASS = {"channel": "liquidationOrders",
             "data": [{"baseAsset": "BTC", "exName": "Binance", "price": 56738.0, "side": 2,
                       "symbol": "BTCUSDT", "time": 1725416318379, "volUsd": 3858.18}]}
# Both kinds of BitMEX conversion plus one that must fail loudly.
CONTRACTS = {c.symbol: c for c in map(contract_of, [
    {"symbol": "XBTUSDT", "quoteCurrency": "USDT", "isInverse": False, "isQuanto": False,
     "underlyingToPositionMultiplier": 1000000},
    {"symbol": "ETHUSD", "quoteCurrency": "USD", "isInverse": False, "isQuanto": True},
])}

_ODD_STRINGS = st.sampled_from(
    ["", "NaN", "Infinity", "-inf", "1e400", "1e-999999", "-0", "0x10", " 1 ", "9" * 500,
     "\x00", "Buy", "Sell", "buy", "sell", "M", "T", "MT", "insert", "partial", "update",
     "delete", "liquidation", "pong", "subscription", "heartbeat", "test_request",
     "liquidationOrders", "XBTUSD", "XBTUSDT", "ETHUSD", "BTC_USDC-PERPETUAL",
     "BTC-27DEC24-60000-C", "1", "2"]
)
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12) | _ODD_STRINGS
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6) | _ODD_STRINGS,
                                                                inner, max_size=4),
    max_leaves=12,
)


def _paths(sample: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a sample frame, lists entered through index 0."""
    out: list[tuple[Any, ...]] = []
    items = sample.items() if isinstance(sample, dict) else (
        [(0, sample[0])] if isinstance(sample, list) and sample else [])
    for key, value in items:
        out.append(prefix + (key,))
        out.extend(_paths(value, prefix + (key,)))
    return out


def mutated(sample: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The sample with 1-3 fields deleted or replaced by arbitrary JSON, as text or object."""
    paths = _paths(sample)

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        frame = copy.deepcopy(sample)
        for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3)):
            parent, key = _parent(frame, path), path[-1]
            if isinstance(parent, dict) and draw(st.booleans()):
                parent.pop(key, None)
            elif isinstance(parent, dict) or (isinstance(parent, list) and parent
                                              and key == 0):
                parent[key] = draw(JSON_VALUES)
        return json.dumps(frame) if draw(st.booleans()) else frame

    return build()


def _parent(frame: Any, path: tuple[Any, ...]) -> Any:
    """The container holding path[-1], or None once an earlier mutation removed the way."""
    for key in path[:-1]:
        try:
            frame = frame[key]
        except (KeyError, IndexError, TypeError):
            return None
    return frame


def hostile(sample: dict[str, Any]) -> st.SearchStrategy[Any]:
    return (mutated(sample) | JSON_VALUES | JSON_VALUES.map(json.dumps)
            | st.text(max_size=200) | st.binary(max_size=200))


def check(parse: Callable[[Any, int], list[Liquidation]], frame: Any) -> None:
    try:
        events = parse(frame, RECV_MS)
    except ParseError:
        return
    for e in events:
        assert isinstance(e, Liquidation) and e.symbol
        assert e.position_side in (Side.LONG, Side.SHORT)
        assert e.qty_base > 0 and e.price > 0 and e.notional_usd > 0
        assert all(isinstance(v, Decimal) and v.is_finite()
                   for v in (e.qty_base, e.price, e.notional_usd))
        assert e.sampled is False


@SETTINGS
@given(st.lists(hostile(BITMEX) | st.sampled_from(["pong", json.dumps(BITMEX)]),
                min_size=1, max_size=4))
def test_bitmex_hostile_frames_raise_only_parse_error(frames: list[Any]) -> None:
    table = LiquidationTable(CONTRACTS)  # a sequence: the table's state must survive junk too
    for frame in frames:
        check(table.parse, frame)


@SETTINGS
@given(hostile(DERIBIT))
def test_deribit_hostile_frames_raise_only_parse_error(frame: Any) -> None:
    check(deribit.parse_message, frame)


@SETTINGS
@given(hostile(COINGLASS))
def test_coinglass_hostile_frames_raise_only_parse_error(frame: Any) -> None:
    check(coinglass_ws.parse_message, frame)


def test_mutation_reaches_the_nested_fields() -> None:
    assert ("params", "data", 0, "liquidation") in _paths(DERIBIT)
    assert ("data", 0, "leavesQty") in _paths(BITMEX)
