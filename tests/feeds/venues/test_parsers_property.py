"""Hostile frames against every websocket parser: the only exception allowed out is ParseError.

Each recorded payload is mutated (fields deleted or replaced by arbitrary JSON: NaN, huge and
tiny numbers, strings for numbers, wrong containers), wrapped oddly, or replaced by random
text and bytes (RELIABILITY.md item 5). Whatever still parses must be a sane event.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.model import Liquidation, ParseError, Side
from feeds.venues import binance, binance_coinm, bybit, okx
from feeds.venues.okx import ContractSpec
from tests.helpers.shared import FIXTURES

RECV_MS = 1700000000000
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

COINM_SIZES = {"BTCUSD": Decimal(100), "ETHUSD_PERP": Decimal(10)}
OKX_SPECS = {
    "IOST-USDT-SWAP": ContractSpec("IOST-USDT-SWAP", Decimal(10), "IOST", "linear"),
    "BTC-USD-SWAP": ContractSpec("BTC-USD-SWAP", Decimal(100), "USD", "inverse"),
}


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into the sample, containers included."""
    out = [prefix] if prefix else []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) \
        else []
    for key, value in items:
        out += _paths(value, (*prefix, key))
    return out


class Venue:
    def __init__(self, name: str, sample: Any, parse: Callable[[Any], list[Liquidation]],
                 wraps: Callable[[Any], list[Any]]) -> None:
        self.name, self.sample, self.parse, self.wraps = name, sample, parse, wraps
        self.paths = _paths(sample)


def _okx_unknown_skipped(frame: Any) -> list[Liquidation]:
    return okx.parse_message(frame, RECV_MS, OKX_SPECS, on_unknown=lambda exc: None)


VENUES = {
    "binance": Venue(
        "binance", _load("binance_usdm_forceorder.json"),
        lambda f: binance.parse_message(f, RECV_MS),
        lambda e: [e, [e, e], {"stream": "!forceOrder@arr", "data": e}]),
    "binance-coinm": Venue(
        "binance-coinm", _load("binance_coinm_forceorder.json"),
        lambda f: binance_coinm.parse_message(f, RECV_MS, COINM_SIZES),
        lambda e: [e, [e], {"stream": "!forceOrder@arr", "data": e}]),
    "bybit": Venue(
        "bybit", _load("bybit_all_liquidation.json"),
        lambda f: bybit.parse_message(f, RECV_MS),
        lambda e: [e, [e], {**e, "op": "subscribe"}, {**e, "topic": "allLiquidation.BTCUSD"}]),
    "okx": Venue(
        "okx", _load("okx_liquidation_orders.json"),
        lambda f: okx.parse_message(f, RECV_MS, OKX_SPECS),
        lambda e: [e, [e], {**e, "event": "error"}, "pong"]),
    "okx-skipping-unknowns": Venue(
        "okx", _load("okx_liquidation_orders.json"), _okx_unknown_skipped,
        lambda e: [e, [e], {**e, "event": "error"}, "pong"]),
}

_ODD_STRINGS = st.sampled_from([
    "", "NaN", "nan", "Infinity", "-inf", "1e400", "1e-400", "1E-999999", "-0", "0x10", "1_000",
    " 1 ", "9" * 500, "\x00", "Buy", "Sell", "BUY", "SELL", "long", "short", "net", "buy",
    "sell", "forceOrder", "١٢٣", "1692266434010", "16922664340", "BTCUSD", "IOST-USDT-SWAP",
    "BTC-USD-SWAP", "allLiquidation.X", "liquidation-orders", "pong",
])
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12) | _ODD_STRINGS
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=4) | _ODD_STRINGS, inner, max_size=4),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn, venue: Venue) -> Any:
    """The recorded frame with 1-4 fields deleted or replaced, in one of the venue's wrappers."""
    frame = copy.deepcopy(venue.sample)
    for path in draw(st.lists(st.sampled_from(venue.paths), min_size=1, max_size=4)):
        parent = frame
        for key in path[:-1]:
            try:
                parent = parent[key]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        key = path[-1]
        if isinstance(parent, dict) and draw(st.booleans()):
            parent.pop(key, None)
        elif isinstance(parent, dict) or (isinstance(parent, list) and isinstance(key, int)
                                          and key < len(parent)):
            parent[key] = draw(JSON_VALUES)
    return draw(st.sampled_from(venue.wraps(frame)))


def hostile(venue: Venue) -> st.SearchStrategy[Any]:
    as_text = st.sampled_from([json.dumps, lambda v: json.dumps(v).encode()])
    frames = mutated(venue)
    return (
        frames | st.tuples(frames, as_text).map(lambda t: t[1](t[0]))
        | JSON_VALUES | JSON_VALUES.map(json.dumps)
        | st.text(max_size=200) | st.binary(max_size=200)
    )


def check(venue: Venue, frame: Any) -> None:
    try:
        events = venue.parse(frame)
    except ParseError:
        return
    for e in events:
        assert isinstance(e, Liquidation) and e.exchange == venue.name and e.symbol
        assert e.position_side in (Side.LONG, Side.SHORT)
        assert e.qty_base > 0 and e.price > 0 and e.notional_usd.is_finite()
        if venue.name != "binance":  # USDⓈ-M keeps z × ap even when it underflows to 0
            assert e.notional_usd > 0
        assert 10**12 <= (e.ts_exchange_ms or 0) < 10**13


@pytest.mark.parametrize("name", list(VENUES))
def test_the_recorded_payload_survives_every_wrapper(name: str) -> None:
    venue = VENUES[name]
    for frame in venue.wraps(copy.deepcopy(venue.sample)):
        check(venue, frame)
        check(venue, json.dumps(frame))


@SETTINGS
@given(hostile(VENUES["binance"]))
def test_binance_hostile_frames_raise_only_parse_error(frame: Any) -> None:
    check(VENUES["binance"], frame)


@SETTINGS
@given(hostile(VENUES["binance-coinm"]))
def test_binance_coinm_hostile_frames_raise_only_parse_error(frame: Any) -> None:
    check(VENUES["binance-coinm"], frame)


@SETTINGS
@given(hostile(VENUES["bybit"]))
def test_bybit_hostile_frames_raise_only_parse_error(frame: Any) -> None:
    check(VENUES["bybit"], frame)


@SETTINGS
@given(hostile(VENUES["okx"]))
def test_okx_hostile_frames_raise_only_parse_error(frame: Any) -> None:
    check(VENUES["okx"], frame)
    check(VENUES["okx-skipping-unknowns"], frame)  # the feed's mode: unknown instIds skipped
