"""CoinGlass `liquidationOrders`: item values, side rule, ping/pong, resubscribe, key redaction."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from decimal import Decimal
from typing import Any

import pytest

from feeds.model import ParseError, Side
from feeds.net.ws import WsFeed
from feeds.venues.base import FeedOptions
from feeds.venues.coinglass import (
    DEFAULT_URL,
    SUBSCRIBE,
    coinglass_feed,
    keyed_url,
    make_feeds,
    parse_message,
    parse_order,
    redact,
)
from feeds.venues.decode import decoder_for
from tests.helpers.fake_ws import Plan, wait_until
from tests.helpers.fake_ws_venues import (
    FAST,
    Recorder,
    TextPingFake,
    discard,
    fast_backoff,
    running_to_cancel,
)

# The shape docs.coinglass.com "Liquidation order" shows; no recorded push exists in fixtures.
ITEM: dict[str, Any] = {"baseAsset": "BTC", "exName": "Binance", "price": 56738.0, "side": 2,
                        "symbol": "BTCUSDT", "time": 1725416318379, "volUsd": 3858.18}
RECV_MS = 1725416318500
KEY = "s3cr3t-KEY-0123456789abcdef"


def item(**fields: Any) -> dict[str, Any]:
    """The sample item with some fields replaced (None deletes the field)."""
    out = copy.deepcopy(ITEM)
    for key, value in fields.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def push(*items: dict[str, Any], channel: str = "liquidationOrders") -> str:
    return json.dumps({"channel": channel, "data": list(items)})


# -- parsing ---------------------------------------------------------------------------------


def test_push_normalizes_to_usd_and_base_qty() -> None:
    [liq] = parse_message(push(ITEM), RECV_MS)
    assert (liq.exchange, liq.symbol, liq.position_side) == ("coinglass", "BTCUSDT", Side.LONG)
    assert (liq.notional_usd, liq.price) == (Decimal("3858.18"), Decimal("56738.0"))
    assert liq.qty_base == Decimal("3858.18") / Decimal("56738.0")
    assert (liq.ts_exchange_ms, liq.ts_recv_ms, liq.sampled) == (1725416318379, RECV_MS, False)
    assert liq.raw["exName"] == "Binance"  # the source venue stays in raw, not in the symbol


@pytest.mark.parametrize(("side", "expected"), [
    (1, Side.SHORT),    # a Buy order closed a short
    (2, Side.LONG),     # a Sell order closed a long
    ("1", Side.SHORT),
    ("2", Side.LONG),
])
def test_side_is_the_order_direction(side: Any, expected: Side) -> None:
    assert parse_order(item(side=side), RECV_MS).position_side is expected


def test_numbers_may_be_json_strings() -> None:
    as_numbers = parse_order(ITEM, RECV_MS)
    as_strings = parse_order(item(price="56738.0", volUsd="3858.18", time="1725416318379"),
                             RECV_MS)
    assert (as_numbers.price, as_numbers.notional_usd, as_numbers.ts_exchange_ms) == (
        as_strings.price, as_strings.notional_usd, as_strings.ts_exchange_ms)


def test_every_item_of_a_push_counts() -> None:
    events = parse_message(push(ITEM, item(side=1, symbol="ETHUSDT", exName="OKX")), RECV_MS)
    assert [(e.symbol, e.position_side.value) for e in events] == [
        ("BTCUSDT", "long"), ("ETHUSDT", "short")]


@pytest.mark.parametrize("message", [
    "pong",
    json.dumps({"method": "subscribe", "channels": ["liquidationOrders"], "success": True}),
    json.dumps({"code": "0", "msg": "success"}),
    push(ITEM, channel="tradeOrders"),
    push(),
])
def test_pongs_acks_and_other_channels_yield_nothing(message: str) -> None:
    assert parse_message(message, RECV_MS) == []


@pytest.mark.parametrize(("message", "reason"), [
    ("not json", "not JSON"),
    ("[]", "expected an object, got list"),
    (json.dumps({"code": "40001", "msg": "plan does not include this channel"}),
     "error reply: code 40001: plan does not"),
    (json.dumps({"channel": "liquidationOrders"}), "missing key 'data'"),
    (json.dumps({"channel": "liquidationOrders", "data": {}}), "data: expected a list"),
    (push(item(symbol=None)), "missing key 'symbol'"),
    (push(item(side=3)), "side: unknown side"),
    (push(item(side=True)), "side: unknown side"),
    (push(item(side="Sell")), "side: unknown side"),
    (push(item(price=0)), "price: must be positive"),
    (push(item(volUsd="lots")), "volUsd: not a number"),
    (push(item(volUsd=None)), "missing key 'volUsd'"),
    (push(item(time=1725416318)), "time: timestamp out of range"),
    (push(item(volUsd="1e18", price="1e-999999")), "out of range"),
])
def test_malformed_frames_raise_parse_error_naming_the_field(message: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_message(message, RECV_MS)


def test_decoder() -> None:
    decode = decoder_for("coinglass", None)
    assert len(decode(push(ITEM) + "\n")) == 1 and decode("pong\n") == []


def test_key_goes_into_the_query_and_redact_hides_it() -> None:
    url = keyed_url(DEFAULT_URL, "a&b c")
    assert url == "wss://open-ws.coinglass.com/ws-api?cg-api-key=a%26b+c"
    assert redact(f"connected to {url} ok") == \
        "connected to wss://open-ws.coinglass.com/ws-api?cg-api-key=*** ok"
    assert keyed_url("ws://h/x?a=1&cg-api-key=old", "new") == "ws://h/x?a=1&cg-api-key=new"


def test_make_feeds_needs_a_key_and_never_echoes_it() -> None:
    with pytest.raises(ValueError, match="LIQBOT_COINGLASS_API_KEY"):
        make_feeds(discard, FeedOptions())
    with pytest.raises(ValueError) as info:
        make_feeds(discard, FeedOptions(api_key=KEY, url="https://x/ws-api"))
    assert KEY not in str(info.value) and "cg-api-key=***" in str(info.value)
    [feed] = make_feeds(discard, FeedOptions(api_key=KEY))
    assert KEY not in repr(FeedOptions(api_key=KEY))
    assert feed.exchange == "coinglass" and [json.loads(m) for m in feed.subscribe] == [SUBSCRIBE]


# -- the feed against a fake CoinGlass -------------------------------------------------------

PATH = "/ws-api"


def fast_feed(fake: TextPingFake, rec: Recorder, **kwargs: Any) -> WsFeed:
    kwargs.setdefault("ping_every_s", 0.05)
    kwargs.setdefault("pong_timeout_s", 0.1)
    return coinglass_feed(rec.sink, api_key=KEY, url=fake.url, timing=FAST,
                          backoff=fast_backoff(), **kwargs)


async def test_pings_every_interval_even_while_data_flows_and_pong_keeps_it() -> None:
    rec = Recorder()
    script = [push(item(time=ITEM["time"] + i)) for i in range(10)]
    async with asyncio.timeout(5), TextPingFake(script, path=PATH, interval_s=0.02) as fake:
        fake.plan(Plan(wait_for=1))
        feed = fast_feed(fake, rec)
        async with running_to_cancel(feed):
            await wait_until(lambda: len(rec.events) == 10 and len(fake.pings[0]) >= 5)
    assert feed.stats.connects == 1 and len(fake.connections) == 1
    assert fake.connections[0].received[0] == json.dumps(SUBSCRIBE)


async def test_no_pong_reconnects_and_subscribe_is_resent(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    async with asyncio.timeout(5), TextPingFake([push(ITEM)], path=PATH) as fake:
        fake.mute_pongs.add(0)
        fake.plan(Plan(after=0), Plan(wait_for=1))
        feed = fast_feed(fake, rec)
        async with running_to_cancel(feed):
            await wait_until(lambda: len(rec.events) == 1)
    first, second = fake.connections[:2]
    assert first.received[0] == second.received[0] == json.dumps(SUBSCRIBE)
    assert feed.stats.reconnects == 1
    assert any("no pong within 0.1s" in r.getMessage() for r in caplog.records)


async def test_the_api_key_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # websockets' debug lines print the request path
    rec = Recorder()
    async with asyncio.timeout(5), TextPingFake([push(ITEM)], path=PATH) as fake:
        fake.mute_pongs.add(1)
        fake.plan(Plan(reject_status=401), Plan(after=0, wait_for=1), Plan(wait_for=1))
        feed = fast_feed(fake, rec)
        async with running_to_cancel(feed):
            await wait_until(lambda: len(rec.events) == 1)
        paths = [c.path for c in fake.connections]
    assert paths[0] == f"{PATH}?cg-api-key={KEY}"  # the key was sent: the check below is real
    # The fake server's own access log is the exchange's side of the wire; everything of ours:
    ours = [r for r in caplog.records if not r.name.startswith("aiohttp")]
    lines = [r.getMessage() for r in ours] + [str(r.exc_info) for r in ours if r.exc_info]
    assert not [line for line in lines if KEY in line]
    assert any(line.startswith("coinglass: connected to ws://127.0.0.1:") and
               line.endswith("?cg-api-key=*** (connection 1)") for line in lines), lines
    assert any("> GET /ws-api?cg-api-key=*** HTTP/1.1" in line for line in lines)
    assert feed.stats.failures == 1 and feed.stats.reconnects == 1
