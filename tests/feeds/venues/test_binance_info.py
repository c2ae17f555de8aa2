"""Binance USDⓈ-M base and quote from exchangeInfo: live, cache, snapshot, the name last."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feeds.model import Liquidation
from feeds.net.ws import FeedTiming
from feeds.store import Store
from feeds.venues import binance
from feeds.venues.base import FeedOptions, VenueFeed
from feeds.venues.instruments import load_instruments
from tests.helpers.fake_rest import FakeRest
from tests.helpers.fake_ws import FakeExchange, running, wait_until
from tests.helpers.fake_ws_venues import fast_backoff

INFO_PATH = binance.EXCHANGE_INFO_PATH
FAST = FeedTiming(ping_interval_s=0.5, ping_timeout_s=0.5, open_timeout_s=1.0,
                  close_timeout_s=0.2)
# A symbol the naming rule reads wrongly: only exchangeInfo says it is ABC quoted in BTC.
ODD = "ABCXYZ"


@pytest.fixture(autouse=True)
def fresh_parts() -> Iterator[None]:
    binance._PARTS.clear()
    yield
    binance._PARTS.clear()
    binance._unlisted.clear()


def info(rows: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {"timezone": "UTC", "symbols": [
        {"symbol": s, "pair": s, "contractType": "PERPETUAL", "baseAsset": b, "quoteAsset": q,
         "marginAsset": q} for s, (b, q) in rows.items()]}


def frame(symbol: str, price: str = "100", qty: str = "2", ts: int = 1_767_225_600_000) -> str:
    return json.dumps({"e": "forceOrder", "E": ts, "o": {
        "s": symbol, "S": "SELL", "o": "LIMIT", "f": "IOC", "q": qty, "p": price, "ap": price,
        "X": "FILLED", "l": qty, "z": qty, "T": ts}})


def test_the_snapshot_lists_every_symbol_the_fixtures_use() -> None:
    specs = binance.read_exchange_info(binance.SNAPSHOT)
    for symbol, base, quote in [("BTCUSDT", "BTC", "USDT"), ("ETHBTC", "ETH", "BTC"),
                                ("BTCUSDT_260327", "BTC", "USDT"), ("BTCUSDC", "BTC", "USDC"),
                                ("1000PEPEUSDT", "1000PEPE", "USDT")]:
        assert specs[symbol] == {"baseAsset": base, "quoteAsset": quote}


def test_malformed_rows_are_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    payload = info({"BTCUSDT": ("BTC", "USDT")})
    payload["symbols"] += [{"symbol": "NOBASE", "quoteAsset": "USDT"}, "junk",
                           {"symbol": "ODD", "baseAsset": "A B", "quoteAsset": "USDT"}]
    assert binance.parse_exchange_info(payload) == {
        "BTCUSDT": {"baseAsset": "BTC", "quoteAsset": "USDT"}}
    assert "skipped" in caplog.text


def test_decode_reads_an_exchange_info_file_over_the_naming_rule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "info.json"
    path.write_text(json.dumps(info({ODD: ("ABC", "BTC")})))
    caplog.set_level(logging.INFO, logger="feeds.venues.binance")
    [event] = binance.decoder(str(path))(frame(ODD))
    assert (event.base, event.quote, event.notional_usd) == ("ABC", "BTC", 0)  # unpriced
    assert "read from the symbol name" not in caplog.text


def test_an_unlisted_symbol_falls_back_to_the_name_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feeds.venues.binance")
    decode = binance.decoder()  # the shipped snapshot
    for _ in range(3):
        [event] = decode(frame("NEWCOINUSDT"))
        assert (event.base, event.quote) == ("NEWCOIN", None)
    assert caplog.text.count("NEWCOINUSDT: not in exchangeInfo") == 1


async def test_the_live_table_is_fetched_cached_and_read_by_the_parser(tmp_path: Path) -> None:
    db = str(tmp_path / "live.db")
    got: list[Liquidation] = []

    async def sink(batch: list[Liquidation]) -> None:
        got.extend(batch)

    routes = {INFO_PATH: info({ODD: ("ABC", "USDT")})}
    frames = [json.loads(frame(ODD))]
    async with asyncio.timeout(5), FakeRest(routes) as rest, FakeExchange(
            frames, path="/market/ws/!forceOrder@arr") as ws:
        [feed] = binance.make_feeds(sink, FeedOptions(
            url=ws.url, rest_url=rest.url, store_path=db, timing=FAST, backoff=fast_backoff()))
        assert isinstance(feed, VenueFeed) and feed.table is not None
        async with running(feed):
            await wait_until(lambda: len(got) == 1)
    assert (got[0].base, got[0].quote, got[0].notional_usd) == ("ABC", None, 200)
    store = Store(db)
    try:
        cached = load_instruments(store, "binance")
    finally:
        store.close()
    assert cached is not None and cached.specs == {ODD: {"baseAsset": "ABC", "quoteAsset": "USDT"}}


async def test_unreachable_rest_starts_from_the_shipped_snapshot(
    caplog: pytest.LogCaptureFixture
) -> None:
    got: list[Liquidation] = []

    async def sink(batch: list[Liquidation]) -> None:
        got.extend(batch)

    async with asyncio.timeout(5), FakeRest() as rest, FakeExchange(
            [json.loads(frame("ETHBTC", price="0.0345", qty="10"))],
            path="/market/ws/!forceOrder@arr") as ws:
        rest.fail(INFO_PATH, 503)
        [feed] = binance.make_feeds(sink, FeedOptions(url=ws.url, rest_url=rest.url,
                                                      timing=FAST, backoff=fast_backoff()))
        async with running(feed):
            await wait_until(lambda: len(got) == 1)
        assert feed.table is not None and feed.table.source == "fallback"  # type: ignore[attr-defined]
    assert (got[0].base, got[0].quote) == ("ETH", "BTC")
    assert "instruments fetch failed" in caplog.text


def test_a_custom_socket_without_rest_fetches_nothing() -> None:
    async def sink(batch: list[Liquidation]) -> None:
        pass

    [feed] = binance.make_feeds(sink, FeedOptions(url="ws://127.0.0.1:9/market/ws/x"))
    assert isinstance(feed, VenueFeed) and feed.table is None
    assert binance._PARTS["ETHBTC"][:2] == ("ETH", "BTC")  # the snapshot, learnt at once
