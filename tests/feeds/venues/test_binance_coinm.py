"""Binance COIN-M: contract conversion, contract-size tables, the feed into a real store.

Also the instrument cache and table every contract-priced venue shares.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from feeds.model import Liquidation, ParseError, Side
from feeds.net.http import ServerError
from feeds.net.ws import FeedTiming
from feeds.store import Store
from feeds.venues import binance_coinm as coinm
from feeds.venues.base import FeedOptions
from feeds.venues.decode import decoder_for
from feeds.venues.instruments import InstrumentTable, load_instruments, save_instruments
from tests.helpers.fake_rest import FakeRest, coinm_exchange_info
from tests.helpers.fake_ws import FakeExchange, running, wait_until
from tests.helpers.fake_ws_venues import discard, fast_backoff
from tests.helpers.shared import FIXTURES

FIXTURE = FIXTURES / "binance_coinm_forceorder.json"
SAMPLE: dict[str, Any] = json.loads(FIXTURE.read_text())
RECV_MS = 1591154241000
SIZES = {"BTCUSD_PERP": Decimal(100), "BTCUSD": Decimal(100), "ETHUSD": Decimal(10)}
INFO_PATH = coinm.EXCHANGE_INFO_PATH
FAST = FeedTiming(ping_interval_s=0.5, ping_timeout_s=0.5, open_timeout_s=1.0,
                  close_timeout_s=0.2)


def make_event(**order: Any) -> dict[str, Any]:
    """The recorded event with some `o` fields replaced (None deletes the field)."""
    event = copy.deepcopy(SAMPLE)
    for key, value in order.items():
        if value is None:
            event["o"].pop(key, None)
        else:
            event["o"][key] = value
    return event


def close_to(value: Decimal, expected: float) -> bool:
    return math.isclose(float(value), expected, rel_tol=1e-9)


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.playback
def test_recorded_payload_converts_contracts_with_the_injected_contract_size() -> None:
    [liq] = coinm.parse_message(FIXTURE.read_text(), RECV_MS, {"BTCUSD": Decimal(100)})
    assert (liq.exchange, liq.symbol, liq.position_side) == (
        "binance-coinm", "BTCUSD_200925", Side.LONG)  # S=SELL: the order sold, a long died
    assert liq.notional_usd == Decimal(100)  # 1 contract x 100 USD
    assert close_to(liq.qty_base, 0.010530195335)  # 100 / ap 9496.5, not / p 9425.5
    assert (liq.price, liq.ts_exchange_ms, liq.ts_recv_ms) == (Decimal("9496.5"), 1591154240949,
                                                               RECV_MS)
    assert liq.sampled is True and liq.raw == SAMPLE


def test_buy_order_means_a_short_was_liquidated() -> None:
    [liq] = coinm.parse_message(make_event(S="BUY"), RECV_MS, SIZES)
    assert liq.position_side is Side.SHORT


def test_size_uses_filled_contracts_and_the_pairs_contract_size() -> None:
    event = make_event(s="ETHUSD_PERP", ps="ETHUSD", q="9", z="7", ap="2000", p="1990")
    [liq] = coinm.parse_message(event, RECV_MS, SIZES)
    assert (liq.notional_usd, liq.qty_base) == (Decimal(70), Decimal("0.035"))


def test_symbol_entry_wins_over_pair_entry() -> None:
    sizes = {"BTCUSD_200925": Decimal(50), "BTCUSD": Decimal(100)}
    [liq] = coinm.parse_message(SAMPLE, RECV_MS, sizes)
    assert liq.notional_usd == 50


def test_pair_is_derived_from_the_symbol_when_ps_is_missing() -> None:
    [liq] = coinm.parse_message(make_event(ps=None), RECV_MS, {"BTCUSD": Decimal(100)})
    assert liq.notional_usd == 100


def test_unknown_contract_size_is_a_parse_error_naming_the_symbol() -> None:
    with pytest.raises(coinm.UnknownContract, match="BTCUSD_200925: unknown contractSize") as e:
        coinm.parse_message(SAMPLE, RECV_MS, {"ETHUSD": Decimal(10)})
    assert e.value.symbol == "BTCUSD_200925" and isinstance(e.value, ParseError)


def test_exchange_info_is_indexed_by_symbol_and_by_pair() -> None:
    payload = {"symbols": [
        {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractSize": 100},
        {"symbol": "BTCUSD_250926", "pair": "BTCUSD", "contractSize": "100"},
        {"symbol": "ODDUSD_PERP", "pair": "ODDUSD", "contractSize": 10},
        {"symbol": "ODDUSD_250926", "pair": "ODDUSD", "contractSize": 1},  # pair ambiguous
        {"symbol": "BADUSD_PERP", "pair": "BADUSD", "contractSize": "0"},  # skipped
        {"pair": "NOSYMBOL", "contractSize": 10},  # skipped
    ]}
    sizes = coinm.contract_sizes(coinm.parse_exchange_info(payload))
    assert sizes == {"BTCUSD_PERP": 100, "BTCUSD_250926": 100, "BTCUSD": 100,
                     "ODDUSD_PERP": 10, "ODDUSD_250926": 1}


@pytest.mark.parametrize("payload", [{}, {"symbols": {}}, [], "x"])
def test_malformed_exchange_info_is_a_parse_error(payload: Any) -> None:
    with pytest.raises(ParseError):
        coinm.parse_exchange_info(payload)


def test_decoder_reads_contract_sizes_from_an_exchange_info_file(tmp_path: Path) -> None:
    path = tmp_path / "info.json"
    path.write_text(json.dumps(coinm_exchange_info({"BTCUSD_PERP": 100})))
    [liq] = decoder_for("binance-coinm", str(path))(FIXTURE.read_text())
    assert liq.as_short_dict()["usd"] == 100.0 and liq.position_side is Side.LONG


def test_decoder_without_a_file_uses_the_shipped_snapshot_and_never_guesses() -> None:
    # BTCUSD_200925 expired before the recorded table: its pair's entry sizes it.
    [liq] = decoder_for("binance-coinm")(FIXTURE.read_text())
    assert (liq.notional_usd, liq.base) == (100, "BTC")
    unlisted = json.dumps(make_event(s="NEWUSD_PERP", ps="NEWUSD"))
    with pytest.raises(ParseError, match="NEWUSD_PERP.*--instruments"):
        decoder_for("binance-coinm")(unlisted)


def test_decoder_with_a_broken_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ParseError, match="not JSON"):
        coinm.decoder(str(tmp_path / "bad.json"))
    with pytest.raises(ParseError, match="cannot read"):
        coinm.decoder(str(tmp_path / "missing.json"))


def test_feed_defaults_to_dstream() -> None:
    [feed] = coinm.make_feeds(discard, FeedOptions())
    assert feed.url == coinm.DEFAULT_URL == "wss://dstream.binance.com/ws/!forceOrder@arr"
    assert (feed.exchange, feed.subscribe) == ("binance-coinm", [])


# -- the live feed -----------------------------------------------------------------------------


def coinm_frames(n: int) -> list[dict[str, Any]]:
    return [make_event(s="BTCUSD_PERP", T=SAMPLE["o"]["T"] + i, z=str(i + 1)) for i in range(n)]


async def test_contracts_are_converted_through_the_feed_into_a_real_store(tmp_path: Path) -> None:
    db = str(tmp_path / "live.db")
    store = Store(db)

    async def sink(batch: list[Liquidation]) -> None:
        store.insert_liquidations(batch)

    routes = {INFO_PATH: coinm_exchange_info({"BTCUSD_PERP": 100})}
    async with asyncio.timeout(5), FakeRest(routes) as rest, FakeExchange(coinm_frames(3)) as ws:
        [feed] = coinm.make_feeds(sink, FeedOptions(url=ws.url, rest_url=rest.url, store_path=db,
                                                    timing=FAST, backoff=fast_backoff()))
        async with running(feed):
            await wait_until(lambda: store.count_events() == 3)
        assert [c.path for c in ws.connections] == ["/market/ws/!forceOrder@arr"]
    rows = store.database.conn.execute("SELECT exchange, symbol, side, qty, usd FROM events "
                              "ORDER BY ts_ms").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("binance-coinm", "BTCUSD_PERP", "long")] * 3
    assert [r[4] for r in rows] == [100.0, 200.0, 300.0]
    assert all(math.isclose(float(r[3]), r[4] / 9496.5, rel_tol=1e-9) for r in rows)
    cached = load_instruments(store, "binance-coinm")
    assert cached is not None and cached.specs["BTCUSD_PERP"] == {"contractSize": "100"}
    assert rest.calls(INFO_PATH) == [{}]


async def test_unreachable_rest_falls_back_to_a_stale_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = str(tmp_path / "live.db")
    store = Store(db)
    save_instruments(store, "binance-coinm", {"BTCUSD": {"contractSize": "100"}}, now_ms=1)
    got: list[Liquidation] = []

    async def sink(batch: list[Liquidation]) -> None:
        got.extend(batch)

    async with asyncio.timeout(5), FakeRest() as rest, FakeExchange(coinm_frames(1)) as ws:
        rest.fail(INFO_PATH, 503)
        [feed] = coinm.make_feeds(sink, FeedOptions(url=ws.url, rest_url=rest.url, store_path=db,
                                                    timing=FAST, backoff=fast_backoff()))
        async with running(feed):
            await wait_until(lambda: len(got) == 1)
    assert got[0].notional_usd == 100
    text = caplog.text
    assert "instruments fetch failed (binance-coinm GET /dapi/v1/exchangeInfo: HTTP 503" in text
    assert "stale instruments cache" in text


async def test_without_rest_or_cache_the_instruments_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "info.json"
    path.write_text(json.dumps(coinm_exchange_info({"BTCUSD_PERP": 100})))
    got: list[Liquidation] = []

    async def sink(batch: list[Liquidation]) -> None:
        got.extend(batch)

    async with asyncio.timeout(5), FakeRest() as rest, FakeExchange(coinm_frames(1)) as ws:
        [feed] = coinm.make_feeds(sink, FeedOptions(
            url=ws.url, rest_url=rest.url + "/nothing-here", instruments_path=str(path),
            timing=FAST, backoff=fast_backoff()))
        async with running(feed):
            await wait_until(lambda: len(got) == 1)
    assert got[0].notional_usd == 100


async def test_with_no_sizes_at_all_events_are_rejected_and_the_feed_lives_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Only the shipped snapshot is known, and it does not list these symbols.
    frames = [make_event(s="NEWUSD_PERP", ps="NEWUSD", T=SAMPLE["o"]["T"] + i) for i in range(2)]
    async with asyncio.timeout(5), FakeRest() as rest, FakeExchange(frames) as ws:
        rest.fail(INFO_PATH, 500)
        [feed] = coinm.make_feeds(discard, FeedOptions(url=ws.url, rest_url=rest.url,
                                                        timing=FAST, backoff=fast_backoff()))
        async with running(feed):
            await wait_until(lambda: feed.stats.parse_errors == 2)
            assert feed.stats.connected_since_ms is not None
            assert feed.table is not None and feed.table.source == "fallback"  # type: ignore[attr-defined]
    assert "NEWUSD_PERP: unknown contractSize" in caplog.text


async def test_daily_refresh_picks_up_new_contracts() -> None:
    sizes = {"BTCUSD_PERP": 100}
    got: list[Liquidation] = []

    async def sink(batch: list[Liquidation]) -> None:
        got.extend(batch)

    new = make_event(s="SOLUSD_PERP", ps="SOLUSD", z="3", ap="150")
    async with asyncio.timeout(5), FakeRest(
        {INFO_PATH: lambda q: coinm_exchange_info(sizes)}
    ) as rest, FakeExchange() as ws:
        [feed] = coinm.make_feeds(sink, FeedOptions(url=ws.url, rest_url=rest.url, refresh_s=0.05,
                                                    timing=FAST, backoff=fast_backoff()))
        async with running(feed):
            await ws.wait_connections(1)
            sizes["SOLUSD_PERP"] = 10
            await wait_until(lambda: len(rest.calls(INFO_PATH)) >= 3)
            await ws.push(new)
            await wait_until(lambda: len(got) == 1)
    assert (got[0].symbol, got[0].notional_usd, got[0].qty_base) == (
        "SOLUSD_PERP", Decimal(30), Decimal("0.2"))


# -- the shared instrument cache and table -----------------------------------------------------


def test_cache_round_trips_and_replaces_the_whole_table(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    assert load_instruments(store, "okx") is None
    save_instruments(store, "okx", {"A": {"ctVal": "1"}, "B": {"ctVal": "2"}}, now_ms=1000)
    save_instruments(store, "bybit:linear", {"X": {}}, now_ms=1500)
    save_instruments(store, "okx", {"B": {"ctVal": "3"}}, now_ms=2000)
    cached = load_instruments(store, "okx")
    assert cached is not None
    assert (cached.specs, cached.updated_ms, cached.age_ms(5000)) == ({"B": {"ctVal": "3"}},
                                                                      2000, 3000)
    assert load_instruments(store, "bybit:linear").specs == {"X": {}}  # type: ignore[union-attr]


async def test_table_fetch_failure_falls_back_and_refresh_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers: list[Any] = [ServerError("x GET /i: HTTP 503"), {"A": {"v": 2}}]
    seen: list[dict[str, Any]] = []

    async def fetch() -> dict[str, Any]:
        answer = answers.pop(0) if answers else {"A": {"v": 2}}
        if isinstance(answer, Exception):
            raise answer
        return answer

    table = InstrumentTable("t", fetch, fallback=lambda: {"A": {"v": 1}}, retry_s=0.02)
    table.on_update(seen.append)
    await table.load()
    assert (table.source, seen) == ("fallback", [{"A": {"v": 1}}])
    refresher = asyncio.create_task(table.refresh_forever())
    try:
        await wait_until(lambda: table.source == "rest")
    finally:
        refresher.cancel()
    assert seen[1] == {"A": {"v": 2}}
    assert "instruments fetch failed (x GET /i: HTTP 503)" in caplog.text


async def test_an_empty_answer_never_wipes_the_table() -> None:
    async def fetch() -> dict[str, Any]:
        return {}

    table = InstrumentTable("t", fetch, fallback=lambda: {"A": {}})
    await table.load()
    assert (table.source, table.specs) == ("fallback", {"A": {}})


async def test_early_refresh_requests_are_rate_limited() -> None:
    calls: list[int] = []

    async def fetch() -> dict[str, Any]:
        calls.append(1)
        return {"A": {}}

    table = InstrumentTable("t", fetch, refresh_s=3600, min_gap_s=0.2)
    await table.load()
    refresher = asyncio.create_task(table.refresh_forever())
    try:
        await asyncio.sleep(0.01)
        table.request_refresh("unknown X")  # too soon after the startup fetch: ignored
        await asyncio.sleep(0.05)
        assert len(calls) == 1
        await asyncio.sleep(0.2)
        table.request_refresh("unknown X")
        await wait_until(lambda: len(calls) == 2)
        table.request_refresh("unknown X")  # the gap starts again
        await asyncio.sleep(0.05)
        assert len(calls) == 2
    finally:
        refresher.cancel()
