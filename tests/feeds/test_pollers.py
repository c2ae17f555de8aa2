"""Funding/OI pollers and the shared JSON client against a fake REST server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import random
from decimal import Decimal
from typing import Any

import pytest

from feeds.clock import SimClock
from feeds.model import Funding, OpenInterest
from feeds.net.backoff import Backoff
from feeds.net.http import (
    AuthError,
    BadResponse,
    JsonClient,
    RateLimited,
    RequestRejected,
    ServerError,
    TransportError,
    parse_retry_after,
)
from feeds.pollers import FundingPoller
from feeds.venues.registry import FUNDING
from tests.helpers.fake_http import FakeHttp, Reply, fixture_text
from tests.helpers.fake_ws import wait_until

D = Decimal
NOW_MS = 1_739_502_303_204


def fixture_reply(name: str, **kwargs: Any) -> Reply:
    return Reply(body=fixture_text(name), **kwargs)


class Sleeper:
    """Injected sleep: backoff delays pass at once; the regular poll interval blocks forever."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if seconds >= self.interval_s:
            await asyncio.Event().wait()  # parked until the test cancels
        await asyncio.sleep(0)


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[Funding | OpenInterest]] = []

    async def __call__(self, batch: list[Funding | OpenInterest]) -> None:
        self.batches.append(batch)

    @property
    def items(self) -> list[Funding | OpenInterest]:
        return [i for b in self.batches for i in b]


def make_poller(venue: str, fake: FakeHttp, sink: Sink, **kwargs: Any) -> FundingPoller:
    kwargs.setdefault("clock", SimClock(NOW_MS))
    kwargs.setdefault("backoff", Backoff(base_s=0.01, cap_s=0.04, rng=random.Random(1)))
    return FundingPoller(venue, kwargs.pop("symbols", None), sink, fake.url, **kwargs)


def route_binance(fake: FakeHttp, *premium: Reply) -> None:
    fake.route("/fapi/v1/fundingInfo", Reply(json=[{"symbol": "BTCUSDT",
                                                    "fundingIntervalHours": 4}]))
    premium = premium or (fixture_reply("binance_premium_index.json"),)
    fake.route("/fapi/v1/premiumIndex", *premium)
    fake.route("/fapi/v1/openInterest", fixture_reply("binance_open_interest.json"))


# -- values flow to the writer ------------------------------------------------------------


async def test_binance_poll_writes_funding_with_info_interval_and_oi_in_usd() -> None:
    sink = Sink()
    async with FakeHttp() as fake:
        route_binance(fake)
        poller = make_poller("binance", fake, sink, symbols=["BTCUSDT"])
        assert await poller.poll_once() == 2
        await poller.close()
    funding, oi = sink.items
    assert funding == Funding("binance", "BTCUSDT", 1597370495002, D("0.00038246"), 4.0)
    assert oi.oi_base == D("10659.509")
    assert oi.oi_usd == D("10659.509") * D("11793.63104562")
    assert fake.calls("/fapi/v1/premiumIndex")[0].query == {"symbol": "BTCUSDT"}


async def test_okx_poll_writes_funding_and_oi() -> None:
    sink = Sink()
    async with FakeHttp() as fake:
        fake.route("/api/v5/public/funding-rate", fixture_reply("okx_funding_rate.json"))
        fake.route("/api/v5/public/open-interest", fixture_reply("okx_open_interest.json"))
        poller = make_poller("okx", fake, sink, symbols=["BTC-USDT-SWAP"])
        await poller.poll_once()
        await poller.close()
    assert sink.items == [
        Funding("okx", "BTC-USDT-SWAP", 1743588686291, D("0.0000182221218054"), 8.0),
        OpenInterest("okx", "BTC-USDT-SWAP", 1597026383085, D("555.55"), D("50000"))]
    assert fake.calls("/api/v5/public/open-interest")[0].query == {
        "instType": "SWAP", "instId": "BTC-USDT-SWAP"}


async def test_hyperliquid_poll_posts_meta_and_asset_ctxs() -> None:
    sink = Sink()
    async with FakeHttp() as fake:
        fake.route("/info", fixture_reply("hyperliquid_meta_and_asset_ctxs.json"), method="POST")
        poller = make_poller("hyperliquid", fake, sink, symbols=["SOL"])
        await poller.poll_once()
        await poller.close()
    assert fake.requests[0].body == {"type": "metaAndAssetCtxs"}
    assert sink.items == [Funding("hyperliquid", "SOL", NOW_MS, D("0.0000198"), 1.0),
                          OpenInterest("hyperliquid", "SOL", NOW_MS, D("10764.48"),
                                       D("1162994.4192"))]


async def test_deribit_poll_keeps_latest_hourly_point_and_ticker_oi() -> None:
    sink = Sink()
    ticker = {"jsonrpc": "2.0", "result": {"instrument_name": "BTC-PERPETUAL",
                                           "timestamp": NOW_MS, "open_interest": 960000000,
                                           "mark_price": 96000}}
    async with FakeHttp() as fake:
        fake.route("/api/v2/public/get_funding_rate_history",
                   fixture_reply("deribit_funding_history.json"))
        fake.route("/api/v2/public/ticker", Reply(json=ticker))
        poller = make_poller("deribit", fake, sink, symbols=["BTC-PERPETUAL"])
        await poller.poll_once()
        await poller.close()
    funding, oi = sink.items
    assert (funding.ts_ms, funding.rate, funding.interval_h) == (
        1569895200000, D("-2.8583510923267753E-7"), 1.0)
    assert (oi.oi_usd, oi.oi_base) == (D(960000000), D(10000))
    q = fake.calls("/api/v2/public/get_funding_rate_history")[0].query
    assert int(q["end_timestamp"]) - int(q["start_timestamp"]) == 3 * 3_600_000


async def test_bybit_poll_uses_instruments_interval_cached_across_polls() -> None:
    sink = Sink()
    tickers = {"retCode": 0, "retMsg": "OK", "time": NOW_MS, "result": {
        "category": "linear", "list": [{"symbol": "BTCUSDT", "fundingRate": "0.0001",
                                        "openInterest": "5", "openInterestValue": "480000"}]}}
    instruments = {"retCode": 0, "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "fundingInterval": 240}]}}
    async with FakeHttp() as fake:
        fake.route("/v5/market/instruments-info", Reply(json=instruments))
        fake.route("/v5/market/tickers", Reply(json=tickers))
        poller = make_poller("bybit", fake, sink, symbols=["BTCUSDT"])
        await poller.poll_once()
        await poller.poll_once()
        await poller.close()
    assert sink.items[0] == Funding("bybit", "BTCUSDT", NOW_MS, D("0.0001"), 4.0)
    assert sink.items[1] == OpenInterest("bybit", "BTCUSDT", NOW_MS, D("5"), D("480000"))
    assert len(fake.calls("/v5/market/instruments-info")) == 1
    assert fake.calls("/v5/market/tickers")[0].query == {"category": "linear",
                                                         "symbol": "BTCUSDT"}


async def test_one_bad_symbol_does_not_blank_the_others(caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink()
    async with FakeHttp() as fake:
        fake.handler("/api/v5/public/funding-rate", lambda req: (
            Reply(body=fixture_text("okx_funding_rate.json"))
            if req.query["instId"] == "BTC-USDT-SWAP"
            else Reply(status=400, json={"code": "51001"})))
        fake.route("/api/v5/public/open-interest", fixture_reply("okx_open_interest.json"))
        poller = make_poller("okx", fake, sink, symbols=["BTC-USDT-SWAP", "GONE-USDT-SWAP"])
        assert await poller.poll_once() == 2
        await poller.close()
    assert "okx: 1 of 2 symbols failed (GONE-USDT-SWAP" in caplog.text


def test_every_venue_has_a_default_host_and_symbols() -> None:
    assert set(FUNDING) == {"binance", "bybit", "okx", "deribit", "hyperliquid"}
    polls = [v.FUNDING for v in FUNDING.values()]
    assert all(p.base_url.startswith("https://") and p.symbols for p in polls)
    assert all(name == v.EXCHANGE for name, v in FUNDING.items())
    with pytest.raises(ValueError, match="choose one of"):
        FundingPoller("kraken", None, Sink())


# -- failures, backoff, cancellation ------------------------------------------------------


async def test_500_then_success_logs_one_warning_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, sleeper = Sink(), Sleeper(interval_s=300)
    async with FakeHttp() as fake:
        route_binance(fake, Reply(status=500, body="boom"),
                      fixture_reply("binance_premium_index.json"))
        poller = make_poller("binance", fake, sink, symbols=["BTCUSDT"], retries=0,
                             sleep=sleeper)
        task = asyncio.create_task(poller.run())
        await wait_until(lambda: bool(sink.batches), within_s=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 500" in warnings[0].getMessage()
    assert poller.stats.failures == 1 and poller.stats.consecutive_failures == 0
    assert poller.stats.last_ok_ms == NOW_MS
    assert sleeper.delays[0] <= 0.04 and sleeper.delays[-1] == 300  # backoff, then interval
    assert poller._ctx.http.closed


async def test_timeout_counts_as_failure_then_recovers() -> None:
    sink, sleeper = Sink(), Sleeper(interval_s=300)
    async with FakeHttp() as fake:
        fake.route("/info", Reply(delay_s=1.0, json=[]),
                   fixture_reply("hyperliquid_meta_and_asset_ctxs.json"), method="POST")
        poller = make_poller("hyperliquid", fake, sink, retries=0, timeout_s=0.1,
                             sleep=sleeper, symbols=["SOL"])
        task = asyncio.create_task(poller.run())
        await wait_until(lambda: bool(sink.batches), within_s=5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert poller.stats.failures == 1
    assert "timed out after 0.1s" in (poller.stats.last_error or "")


async def test_backoff_grows_and_stays_capped_while_venue_is_down() -> None:
    sink, sleeper = Sink(), Sleeper(interval_s=300)
    async with FakeHttp() as fake:
        fake.route("/info", Reply(status=503), method="POST")
        poller = make_poller("hyperliquid", fake, sink, retries=0, sleep=sleeper)
        task = asyncio.create_task(poller.run())
        await wait_until(lambda: poller.stats.failures >= 6, within_s=5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert all(0.005 <= d <= 0.04 for d in sleeper.delays)
    assert max(sleeper.delays[4:]) > 0.02  # ceiling reached 0.04: jittered in [0.02, 0.04]
    assert not sink.batches and poller.stats.last_ok_ms is None


async def test_cancel_during_a_slow_request_ends_promptly_and_closes_session() -> None:
    async with FakeHttp() as fake:
        fake.route("/info", Reply(delay_s=5.0, json=[]), method="POST")
        poller = make_poller("hyperliquid", fake, Sink(), timeout_s=10)
        task = asyncio.create_task(poller.run())
        await wait_until(lambda: bool(fake.requests), within_s=5)
        task.cancel()
        async with asyncio.timeout(1):
            await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and poller._ctx.http.closed


async def test_writer_failure_is_a_logged_poll_failure_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(batch: list[Any]) -> None:
        raise RuntimeError("disk full")

    async with FakeHttp() as fake:
        fake.route("/info", fixture_reply("hyperliquid_meta_and_asset_ctxs.json"), method="POST")
        poller = FundingPoller("hyperliquid", None, broken, fake.url, clock=SimClock(NOW_MS),
                               sleep=Sleeper(300), backoff=Backoff(0.01, 0.02))
        task = asyncio.create_task(poller.run())
        await wait_until(lambda: poller.stats.failures >= 2, within_s=5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert "RuntimeError: disk full" in caplog.text


# -- the JSON client ----------------------------------------------------------------------


async def test_client_retries_5xx_then_succeeds() -> None:
    delays: list[float] = []

    async def sleep(s: float) -> None:
        delays.append(s)

    async with FakeHttp() as fake, JsonClient(fake.url, name="t", retries=2, sleep=sleep) as c:
        fake.route("/x", Reply(status=502), Reply(status=500), Reply(json={"v": 1.5}))
        assert await c.get("/x") == {"v": D("1.5")}  # JSON numbers decode as Decimal
        assert len(delays) == 2 and len(fake.requests) == 3


@pytest.mark.parametrize(("reply", "error"), [
    (Reply(status=500), ServerError), (Reply(status=401), AuthError),
    (Reply(status=403), AuthError), (Reply(status=400, json={"msg": "bad"}), RequestRejected),
    (Reply(status=429, headers={"Retry-After": "12"}), RateLimited),
    (Reply(body="<html>"), BadResponse),
])
async def test_client_error_types(reply: Reply, error: type[Exception]) -> None:
    async def sleep(s: float) -> None:
        pass

    async with FakeHttp() as fake, JsonClient(fake.url, name="t", retries=1, sleep=sleep) as c:
        fake.route("/x", reply)
        with pytest.raises(error) as info:
            await c.get("/x", {"a": 1})
    assert "t GET /x?a=1" in str(info.value)
    if error is RateLimited:
        assert info.value.retry_after_s == 12.0  # type: ignore[attr-defined]
    # 4xx are not retried; 5xx are, once here.
    assert len(fake.requests) == (2 if error is ServerError else 1)


async def test_client_connection_refused_is_a_transport_error() -> None:
    async def sleep(s: float) -> None:
        pass

    async with FakeHttp() as fake:
        url = fake.url
    async with JsonClient(url, name="t", retries=1, sleep=sleep) as c:
        with pytest.raises(TransportError, match="t GET /x failed"):
            await c.get("/x")


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("inf") is None and parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now_s=1445412480.0) == 10.0
