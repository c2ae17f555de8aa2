"""Binance USDⓈ-M forceOrder parsing: recorded payload, side rule, wrappers, hostile input."""

from __future__ import annotations

import copy
import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.model import Funding, Liquidation, OpenInterest, ParseError, Side
from feeds.net.http import decode_json
from feeds.venues import binance_rest
from feeds.venues.binance import DEFAULT_URL, binance_feed, parse_force_order, parse_message
from tests.helpers.fake_http import fixture_text
from tests.helpers.shared import FIXTURES

FIXTURE = FIXTURES / "binance_usdm_forceorder.json"
SAMPLE: dict[str, Any] = json.loads(FIXTURE.read_text())
RECV_MS = 1568014461000


def make_event(**order: Any) -> dict[str, Any]:
    """The recorded event with some `o` fields replaced (None deletes the field)."""
    event = copy.deepcopy(SAMPLE)
    for key, value in order.items():
        if value is None:
            event["o"].pop(key, None)
        else:
            event["o"][key] = value
    return event


@pytest.mark.playback
def test_recorded_payload_normalizes_to_documented_values() -> None:
    [liq] = parse_message(FIXTURE.read_text(), RECV_MS)
    assert liq.as_short_dict() == {
        "exchange": "binance", "symbol": "BTCUSDT", "coin": "BTC", "side": "long", "qty": 0.014,
        "price": 9910.0, "usd": 138.74, "ts": 1568014460893, "sampled": True,
    }
    assert liq.notional_usd == Decimal("138.740")
    assert (liq.ts_exchange_ms, liq.ts_recv_ms) == (1568014460893, RECV_MS)
    assert liq.raw == SAMPLE


def test_buy_order_means_a_short_was_liquidated() -> None:
    assert parse_force_order(make_event(S="BUY"), RECV_MS).position_side is Side.SHORT
    assert parse_force_order(make_event(S="SELL"), RECV_MS).position_side is Side.LONG


def test_zero_average_price_falls_back_to_limit_price() -> None:
    liq = parse_force_order(make_event(ap="0", p="9800.5"), RECV_MS)
    assert liq.price == Decimal("9800.5")
    assert liq.notional_usd == Decimal("0.014") * Decimal("9800.5")


def test_notional_uses_filled_qty_times_average_price() -> None:
    liq = parse_force_order(make_event(q="1", z="0.5", p="9000", ap="10000"), RECV_MS)
    assert (liq.qty_base, liq.notional_usd) == (Decimal("0.5"), Decimal("5000.0"))


def test_event_time_is_used_when_trade_time_is_missing() -> None:
    assert parse_force_order(make_event(T=None), RECV_MS).ts_exchange_ms == SAMPLE["E"]


def test_combined_stream_wrapper_is_unwrapped() -> None:
    wrapped = {"stream": "!forceOrder@arr", "data": SAMPLE}
    [liq] = parse_message(json.dumps(wrapped), RECV_MS)
    assert liq.symbol == "BTCUSDT"


def test_array_frames_yield_every_item() -> None:
    frame = [SAMPLE, make_event(s="ETHUSDT", S="BUY")]
    assert [(x.symbol, x.position_side) for x in parse_message(frame, RECV_MS)] == [
        ("BTCUSDT", Side.LONG), ("ETHUSDT", Side.SHORT)]


def test_bytes_frames_are_accepted() -> None:
    assert len(parse_message(FIXTURE.read_bytes(), RECV_MS)) == 1


@pytest.mark.parametrize("frame", [
    {"result": None, "id": 1},
    {"e": "markPriceUpdate", "E": 1568014460893, "s": "BTCUSDT", "p": "9910"},
    {"stream": "btcusdt@markPrice", "data": {"e": "markPriceUpdate", "s": "BTCUSDT"}},
    [],
])
def test_acks_and_other_events_yield_nothing(frame: Any) -> None:
    assert parse_message(json.dumps(frame), RECV_MS) == []


@pytest.mark.parametrize(("frame", "reason"), [
    ("not json {", "not JSON"),
    ("42", "expected an object, got int"),
    ('{"E": 1568014460893}', "missing key 'e'"),
    ('{"e": "forceOrder", "E": 1568014460893}', "missing key 'o'"),
    (make_event(s=None), "missing key 's'"),
    (make_event(S="HOLD"), "unknown side"),
    (make_event(S=["SELL"]), "unknown side"),
    (make_event(z="abc"), "o.z: not a number"),
    (make_event(z="-1"), "o.z: must be positive"),
    (make_event(ap="NaN"), "o.ap: not finite"),
    (make_event(ap="0", p="0"), "o.p: must be positive"),
    (make_event(z="1e30"), "o.z: out of range"),
    (make_event(T=1568014460), "timestamp out of range"),
    ('{"e": "forceOrder", "E": 1' + "0" * 5000 + "}", "not JSON"),
    ("[" * 100_000, "not JSON"),
])
def test_malformed_frames_raise_parse_error_naming_the_problem(frame: Any, reason: str) -> None:
    text = frame if isinstance(frame, str) else json.dumps(frame)
    with pytest.raises(ParseError, match=reason):
        parse_message(text, RECV_MS)


def test_feed_defaults_to_the_market_route() -> None:
    feed = binance_feed(_discard)
    assert feed.url == DEFAULT_URL == "wss://fstream.binance.com/market/ws/!forceOrder@arr"
    assert (feed.exchange, feed.subscribe) == ("binance", [])


@pytest.mark.parametrize("url", [
    "wss://fstream.binance.com/ws/!forceOrder@arr",
    "wss://fstream.binance.com/stream?streams=!forceOrder@arr",
])
def test_feed_refuses_the_retired_unrouted_urls(url: str) -> None:
    with pytest.raises(ValueError, match="/market route"):
        binance_feed(_discard, url=url)


def test_feed_rejects_a_malformed_url_up_front() -> None:
    with pytest.raises(ValueError, match="binance: .*isn't a valid URI"):
        binance_feed(_discard, url="https://fstream.binance.com/market/ws/x")


async def _discard(batch: list[Liquidation]) -> None:
    return None


# -- hostile input ---------------------------------------------------------------------------

_ODD_STRINGS = st.sampled_from(
    ["", "NaN", "Infinity", "-inf", "1e400", "-0", "0x10", "1_000", " 1 ", "9" * 500, "\x00",
     "BUY", "SELL", "forceOrder", "١٢٣"]
)
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12) | _ODD_STRINGS
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=12,
)
_PATHS = [("e",), ("E",), ("o",)] + [("o", k) for k in SAMPLE["o"]]


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """The recorded event with 1-3 fields deleted or replaced by arbitrary JSON."""
    event = copy.deepcopy(SAMPLE)
    for path in draw(st.lists(st.sampled_from(_PATHS), min_size=1, max_size=3)):
        parent = event
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return draw(st.sampled_from([
        event, [event, SAMPLE], {"stream": "!forceOrder@arr", "data": event}, [[event]],
    ]))


def _as_text(value: Any) -> str:
    return json.dumps(value)  # allow_nan: NaN/Infinity tokens reach the parser as floats


HOSTILE = (
    mutated_events() | mutated_events().map(_as_text) | JSON_VALUES | JSON_VALUES.map(_as_text)
    | st.text(max_size=200) | st.binary(max_size=200)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE)
def test_hostile_frames_raise_only_parse_error(frame: Any) -> None:
    try:
        events = parse_message(frame, RECV_MS)
    except ParseError:
        return
    for e in events:
        assert isinstance(e, Liquidation)
        assert e.qty_base > 0 and e.price > 0 and e.notional_usd.is_finite()
        assert e.position_side in (Side.LONG, Side.SHORT) and e.symbol
        assert not math.isnan(float(e.notional_usd))


# -- funding and open interest (REST) -----------------------------------------------

D = Decimal

def load(name: str) -> Any:
    """A fixture decoded the way JsonClient decodes bodies (JSON numbers as Decimal)."""
    return decode_json(fixture_text(name))


def test_binance_history_matches_readme_and_derives_8h_from_spacing() -> None:
    rows = binance_rest.parse_funding_history(load("binance_funding_history.json"))
    assert rows == [
        Funding("binance", "BTCUSDT", 1570608000000, D("-0.03750000"), 8.0),
        Funding("binance", "BTCUSDT", 1570636800000, D("0.00010000"), 8.0),
    ]
    assert rows[0].rate_8h == pytest.approx(-0.0375)


def test_binance_history_uses_funding_info_interval_over_spacing() -> None:
    rows = binance_rest.parse_funding_history(load("binance_funding_history.json"),
                                            {"BTCUSDT": 4.0})
    assert {r.interval_h for r in rows} == {4.0}
    assert rows[1].rate_8h == pytest.approx(0.0002)  # 4 h rate x 2


def test_binance_history_derives_4h_when_symbol_is_not_in_funding_info() -> None:
    raw = [{"symbol": "XUSDT", "fundingRate": "0.0001", "fundingTime": 1700000000000 + i * d}
           for i, d in enumerate((0, 4 * 3_600_000 + 3, 8 * 3_600_000))]  # ms jitter included
    assert {r.interval_h for r in binance_rest.parse_funding_history(raw, {"BTCUSDT": 8.0})} == {
        4.0}


def test_binance_single_row_without_info_falls_back_to_8h() -> None:
    raw = [{"symbol": "XUSDT", "fundingRate": "0.0001", "fundingTime": 1700000000000}]
    assert binance_rest.parse_funding_history(raw)[0].interval_h == 8.0


def test_binance_funding_info_maps_symbol_to_hours() -> None:
    raw = [{"symbol": "BLZUSDT", "adjustedFundingRateCap": "0.02500000",
            "adjustedFundingRateFloor": "-0.02500000", "fundingIntervalHours": 4,
            "disclaimer": False}]
    assert binance_rest.parse_funding_info(raw) == {"BLZUSDT": 4.0}
    with pytest.raises(ParseError):
        binance_rest.parse_funding_info([{"symbol": "X", "fundingIntervalHours": 0}])


def test_binance_premium_index_matches_readme() -> None:
    [p] = binance_rest.parse_premium_index(load("binance_premium_index.json"))
    assert p.funding == Funding("binance", "BTCUSDT", 1597370495002, D("0.00038246"), 8.0)
    assert p.mark_price == D("11793.63104562")
    assert p.next_funding_ms == 1597392000000


def test_binance_premium_index_array_skips_delivery_and_applies_4h() -> None:
    perp = load("binance_premium_index.json")
    delivery = {**perp, "symbol": "BTCUSDT_250926", "lastFundingRate": "", "nextFundingTime": 0}
    [p] = binance_rest.parse_premium_index([perp, delivery], {"BTCUSDT": 4.0})
    assert p.funding.interval_h == 4.0
    assert p.funding.rate_8h == pytest.approx(2 * 0.00038246)


def test_binance_open_interest_is_base_coin_and_usd_needs_mark() -> None:
    raw = load("binance_open_interest.json")
    assert binance_rest.parse_open_interest(raw) == OpenInterest(
        "binance", "BTCUSDT", 1589437530011, D("10659.509"), None)
    oi = binance_rest.parse_open_interest(raw, D("11793.63104562"))
    assert oi.oi_usd == D("10659.509") * D("11793.63104562")
