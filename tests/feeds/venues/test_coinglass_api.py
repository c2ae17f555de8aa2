"""CoinGlass v4 REST: fixture parses, backfill into a real Store, limits, 401/429, secrets."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.clock import SimClock
from feeds.model import HOUR_MS, MARKET, Bucket, ParseError
from feeds.net.http import RateLimiter, decode_json
from feeds.store import Store
from feeds.venues import coinglass_api as cg
from tests.helpers.fake_http import FakeHttp, Reply, Seen, fixture_text
from tests.helpers.fake_ws import wait_until

D = Decimal
KEY = "cg-secret-key-3f9a1c77"
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z


def load(name: str) -> Any:
    return decode_json(fixture_text(name))


class SimSleep:
    """Sleep that moves a SimClock instead of waiting; records every delay."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.clock.advance_to(self.clock.now_ms() + round(seconds * 1000))
        await asyncio.sleep(0)


def sim(start_ms: int = T0) -> tuple[SimClock, SimSleep]:
    clock = SimClock(start_ms)
    return clock, SimSleep(clock)


# -- fixtures parse to the README rows ----------------------------------------------------


@pytest.mark.playback
def test_aggregated_history_fixture_matches_readme() -> None:
    raw = load("coinglass_aggregated_history.json")
    assert cg.parse_liq_rows(raw, "aggregated_long_liquidation_usd",
                             "aggregated_short_liquidation_usd") == [
        cg.LiqRow(1658966400000, D("5916885.14234"), D("12969583.87632")),
        cg.LiqRow(1659052800000, D("5345708.23191"), D("6454875.54909"))]
    b = cg.parse_aggregated_history(raw, "btc", 86_400_000)[0]
    assert b == Bucket(1658966400000, 86_400_000, MARKET, "BTC", 5916885.14234, 12969583.87632,
                       source="coinglass")


@pytest.mark.playback
def test_pair_history_strings_match_readme() -> None:
    raw = load("coinglass_pair_history.json")
    assert cg.parse_liq_rows(raw, "long_liquidation_usd", "short_liquidation_usd") == [
        cg.LiqRow(1658880000000, D("2369935.19562"), D("6947459.43674")),
        cg.LiqRow(1658966400000, D("5118407.85124"), D("8517330.44192"))]
    buckets = cg.parse_pair_history(raw, "Binance", "BTC", 86_400_000)
    assert {(b.exchange, b.coin, b.source) for b in buckets} == {("binance", "BTC", "coinglass")}


@pytest.mark.playback
def test_exchange_list_fixture_matches_readme_and_sums_exactly() -> None:
    rows = cg.parse_exchange_list(load("coinglass_exchange_list.json"))
    assert rows == [
        cg.ExchangeTotal("All", D("14673519.81739075"), D("451394.17404598"),
                         D("14222125.64334477")),
        cg.ExchangeTotal("Bybit", D("4585290.13404"), D("104560.13885"), D("4480729.99519"))]
    assert all(r.long_usd + r.short_usd == r.total_usd for r in rows)


@pytest.mark.parametrize("name", ["coinglass_aggregated_history.json",
                                  "coinglass_exchange_list.json"])
def test_numbers_strings_and_floats_give_the_same_decimals(name: str) -> None:
    as_decimal = load(name)
    as_float = json.loads(fixture_text(name))
    as_string = copy.deepcopy(as_float)
    for row in as_string["data"]:
        for k, v in row.items():
            if isinstance(v, float):
                row[k] = str(v)
    parse = (cg.parse_exchange_list if "exchange" in name else
             lambda r: cg.parse_liq_rows(r, "aggregated_long_liquidation_usd",
                                         "aggregated_short_liquidation_usd"))
    assert parse(as_decimal) == parse(as_float) == parse(as_string)


def test_code_must_be_the_string_zero() -> None:
    raw = load("coinglass_pair_history.json")
    for code in (0, "1", None, False):
        with pytest.raises(ParseError, match="code"):
            cg.parse_envelope({**raw, "code": code})


@settings(max_examples=80, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
                    | st.sampled_from(["0", "time", "NaN", "-1"]),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["code", "data", "time", "exchange",
                                                       "long_liquidation_usd",
                                                       "short_liquidation_usd",
                                                       "liquidation_usd"]), inner, max_size=5),
                    max_leaves=12))
def test_hostile_envelopes_raise_only_parse_error(raw: Any) -> None:
    for parse in (cg.parse_exchange_list, lambda r: cg.parse_pair_history(r, "OKX", "BTC", 1),
                  lambda r: cg.parse_aggregated_history(r, "BTC", 1)):
        try:
            parse(raw)
        except ParseError:
            pass


def test_cross_check_ratios() -> None:
    theirs = cg.parse_exchange_list(load("coinglass_exchange_list.json"))
    out = cg.cross_check({"bybit": (104560.13885, 4000000.0), MARKET: (0.0, 7336759.908695375),
                          "okx": (1.0, 1.0)}, theirs)
    assert out[0][:3] == ("bybit", 4104560.13885, 4585290.13404)
    assert out[0][3] == pytest.approx(4104560.13885 / 4585290.13404)
    assert out[1][3] == pytest.approx(0.5)  # "*" is compared with CoinGlass's "All" row
    assert out[2] == ("okx", 2.0, None, None)


def test_plan_interval_limits_are_explained() -> None:
    with pytest.raises(ValueError, match="hobbyist plan serves nothing finer than 4h"):
        cg.check_interval("1h", "hobbyist")
    with pytest.raises(ValueError, match="use one of 1m, 3m"):
        cg.check_interval("2h")
    with pytest.raises(ValueError, match="unknown CoinGlass plan"):
        cg.check_interval("1h", "gold")
    assert cg.check_interval("30m", "startup") == 30 * 60_000
    assert cg.check_interval("1h") == HOUR_MS  # plan unknown: the server decides


# -- backfill -----------------------------------------------------------------------------


def bars_handler(hours_with_data: range | None = None) -> Any:
    """aggregated-history that serves hourly bars in [start_time, end_time], capped at limit.

    It also serves the bar AT end_time (inclusive end), which backfill must not double count.
    """
    def handle(req: Seen) -> Reply:
        start, end = int(req.query["start_time"]), int(req.query["end_time"])
        first = -(-start // HOUR_MS) * HOUR_MS
        times = list(range(first, end + 1, HOUR_MS))[: int(req.query["limit"])]
        seed = {"BTC": 1, "ETH": 2, "SOL": 3}[req.query["symbol"]]
        data = [{"time": t, "aggregated_long_liquidation_usd": seed * 1000 + (t - T0) // HOUR_MS,
                 "aggregated_short_liquidation_usd": f"{seed}.5"} for t in times]
        return Reply(json={"code": "0", "msg": "success", "data": data})
    return handle


class StoreWriter:
    """The async writer the bot would hand over: a real SQLite Store behind it."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.calls = 0

    async def __call__(self, buckets: list[Bucket]) -> None:
        self.calls += 1
        self.store.insert_buckets(buckets)

    def rows(self) -> list[tuple[Any, ...]]:
        return self.store.database.conn.execute(
            "SELECT source, span_ms, start_ms, exchange, coin, long_usd, short_usd "
            "FROM agg_buckets ORDER BY coin, start_ms").fetchall()


async def test_backfill_pages_the_range_and_is_idempotent(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "x.db")
    since, until = T0 + 1234, T0 + 2500 * HOUR_MS  # since is rounded down to the bar
    progress: list[cg.BackfillProgress] = []
    async with FakeHttp() as fake:
        fake.handler(cg.AGGREGATED, bars_handler())
        for _ in range(2):
            clock, sleep = sim()
            n = await cg.backfill(writer, KEY, symbols=("BTC", "ETH"), since_ms=since,
                                  until_ms=until, base_url=fake.url, progress=progress.append,
                                  clock=clock, sleep=sleep, per_minute=600)
            assert n == 5000
    rows = writer.rows()
    assert len(rows) == 5000  # the second run replaced, never added
    assert rows[0] == ("coinglass", HOUR_MS, T0, "*", "BTC", 1000.0, 1.5)
    assert rows[2499][2] == T0 + 2499 * HOUR_MS
    pages = [(int(r.query["start_time"]), int(r.query["end_time"])) for r in fake.requests[:3]]
    assert pages == [(T0, T0 + 1000 * HOUR_MS - 1), (T0 + 1000 * HOUR_MS, T0 + 2000 * HOUR_MS - 1),
                     (T0 + 2000 * HOUR_MS, until - 1)]
    q = fake.requests[0].query
    assert (q["symbol"], q["interval"], q["limit"], q["exchange_list"]) == (
        "BTC", "1h", "1000", "Binance,OKX,Bybit")
    assert fake.requests[0].headers["CG-API-KEY"] == KEY
    assert [str(p) for p in progress[:3]] == [
        "coinglass backfill BTC: page 1/3, 1000 bars (1000 total)",
        "coinglass backfill BTC: page 2/3, 1000 bars (2000 total)",
        "coinglass backfill BTC: page 3/3, 500 bars (2500 total)"]
    writer.store.close()


async def test_backfill_totals_match_what_the_store_reports(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "x.db")
    async with FakeHttp() as fake:
        fake.handler(cg.AGGREGATED, bars_handler())
        clock, sleep = sim()
        await cg.backfill(writer, KEY, symbols=("SOL",), since_ms=T0, until_ms=T0 + 24 * HOUR_MS,
                          base_url=fake.url, clock=clock, sleep=sleep)
    totals = writer.store.totals(T0 + 24 * HOUR_MS, 24 * HOUR_MS, coin="SOL")
    assert totals.long_usd == sum(3000 + h for h in range(24))
    assert totals.short_usd == pytest.approx(24 * 3.5)
    writer.store.close()


async def test_backfill_clamps_to_plan_depth(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeHttp() as fake:
        fake.handler(cg.AGGREGATED, bars_handler())
        clock, sleep = sim(T0 + 200 * 86_400_000)
        got: list[Bucket] = []

        async def keep(b: list[Bucket]) -> None:
            got.extend(b)

        await cg.backfill(keep, KEY, symbols=("BTC",), since_ms=T0, until_ms=clock.now_ms(),
                          base_url=fake.url, plan="startup", clock=clock, sleep=sleep)
    assert min(b.start_ms for b in got) == T0 + 20 * 86_400_000  # 1h keeps 180 days on Startup
    assert "startup plan keeps 180 days of 1h bars" in caplog.text


# -- rate limits --------------------------------------------------------------------------


async def test_limiter_spaces_requests_by_plan_rate() -> None:
    clock, sleep = sim()
    limiter = RateLimiter(30, clock, sleep)
    waits = [await limiter.acquire() for _ in range(4)]
    assert waits == [0.0, 2.0, 2.0, 2.0]  # 30/min: one request every 2 s
    assert clock.now_ms() == T0 + 6000


async def test_client_requests_hit_the_server_two_seconds_apart() -> None:
    clock, sleep = sim()
    seen_at: list[int] = []

    def handle(req: Seen) -> Reply:
        seen_at.append(clock.now_ms())
        return Reply(body=fixture_text("coinglass_exchange_list.json"))

    async with FakeHttp() as fake:
        fake.handler(cg.EXCHANGES, handle)
        async with cg.CoinglassClient(KEY, base_url=fake.url, clock=clock, sleep=sleep) as c:
            for _ in range(3):
                await c.exchange_list("BTC", "1h")
    assert [t - T0 for t in seen_at] == [0, 2000, 4000]
    assert fake.requests[0].query == {"symbol": "BTC", "range": "1h"}


async def test_server_max_limit_header_lowers_our_rate() -> None:
    clock, sleep = sim()
    async with FakeHttp() as fake:
        fake.route(cg.EXCHANGES, Reply(body=fixture_text("coinglass_exchange_list.json"),
                                       headers={"API-KEY-MAX-LIMIT": "10"}))
        async with cg.CoinglassClient(KEY, base_url=fake.url, clock=clock, sleep=sleep,
                                      plan="startup") as c:
            assert c.limiter.per_minute == 80
            await c.exchange_list()
            assert c.limiter.per_minute == 10


async def test_429_waits_for_retry_after_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    clock, sleep = sim()
    async with FakeHttp() as fake:
        fake.route(cg.EXCHANGES, Reply(status=429, headers={"Retry-After": "17"}),
                   Reply(body=fixture_text("coinglass_exchange_list.json")))
        async with cg.CoinglassClient(KEY, base_url=fake.url, clock=clock, sleep=sleep) as c:
            rows = await c.exchange_list("BTC")
    assert rows[1].exchange == "Bybit"
    assert 17.0 in sleep.delays
    assert "rate limited (429)" in caplog.text
    assert "backing off 17s as Retry-After asks" in caplog.text


async def test_persistent_429_gives_up_with_advice() -> None:
    clock, sleep = sim()
    async with FakeHttp() as fake:
        fake.route(cg.EXCHANGES, Reply(json={"code": "429", "msg": "Too Many Requests"}))
        async with cg.CoinglassClient(KEY, base_url=fake.url, clock=clock, sleep=sleep,
                                      max_429_waits=2) as c:
            with pytest.raises(cg.CoinglassRateLimited, match="lower per_minute"):
                await c.exchange_list()
    assert len(fake.requests) == 3
    assert sleep.delays.count(60.0) == 2  # no Retry-After in an envelope 429: a whole minute


@pytest.mark.parametrize("reply", [
    Reply(status=401, json={"code": "401", "msg": "API key missing"}),
    Reply(json={"code": "401", "msg": "Invalid API key"}),
])
async def test_401_names_the_environment_variable(reply: Reply) -> None:
    clock, sleep = sim()
    async with FakeHttp() as fake:
        fake.route(cg.AGGREGATED, reply)
        async with cg.CoinglassClient(KEY, base_url=fake.url, clock=clock, sleep=sleep) as c:
            with pytest.raises(cg.CoinglassAuthError) as info:
                await c.aggregated_history("BTC", "1h", T0, T0 + HOUR_MS)
    assert str(info.value) == ("CoinGlass rejected the API key (401): "
                               "check LIQBOT_COINGLASS_API_KEY")
    assert len(fake.requests) == 1  # a bad key is never retried


def test_missing_key_is_refused_before_any_request() -> None:
    with pytest.raises(cg.CoinglassAuthError, match="set LIQBOT_COINGLASS_API_KEY"):
        cg.CoinglassClient("  ")


async def test_other_error_codes_are_reported_with_the_message() -> None:
    clock, sleep = sim()
    async with FakeHttp() as fake:
        fake.route(cg.PAIR, Reply(json={"code": "400", "msg": "interval not supported"}))
        async with cg.CoinglassClient(KEY, base_url=fake.url, clock=clock, sleep=sleep) as c:
            with pytest.raises(cg.CoinglassError, match="code '400': 'interval not supported'"):
                await c.pair_history("Binance", "BTCUSDT", "1h", T0, T0 + HOUR_MS)


async def test_the_key_never_reaches_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock, sleep = sim()
    errors: list[BaseException] = []
    replies = [Reply(status=401), Reply(status=403), Reply(status=500, body=f"bad key {KEY}"),
               Reply(status=429), Reply(status=404, body=KEY), Reply(body=f"<{KEY}>"),
               Reply(status=400, body="x" * 150 + KEY),  # straddles the excerpt cut-off
               Reply(json={"code": "500", "msg": f"echo {KEY}"}), Reply(delay_s=1.0)]
    async with FakeHttp() as fake:
        for reply in replies:
            fake.route(cg.PAIR, reply)
            async with cg.CoinglassClient(KEY, base_url=fake.url, clock=clock, sleep=sleep,
                                          max_429_waits=1, timeout_s=0.05) as c:
                try:
                    await c.pair_history("OKX", "BTCUSDT", "4h", T0, T0 + HOUR_MS)
                except Exception as exc:
                    errors.append(exc)
    assert len(errors) == len(replies)
    assert all(r.headers.get("CG-API-KEY") == KEY for r in fake.requests)  # it was sent
    text = caplog.text + "".join("".join(traceback.format_exception(e)) + repr(e)
                                 for e in errors)
    assert KEY[:8] not in text  # not even the part of it an excerpt would keep
    assert "***" in text  # the echoed key was masked, not dropped silently


# -- live poller --------------------------------------------------------------------------


async def test_poller_fetches_the_last_bars_and_runs_until_cancelled() -> None:
    clock, sleep = sim(T0 + 10 * HOUR_MS + 1234)
    got: list[list[Bucket]] = []

    async def keep(b: list[Bucket]) -> None:
        got.append(b)

    async with FakeHttp() as fake:
        fake.handler(cg.AGGREGATED, bars_handler())
        poller = cg.CoinglassPoller(KEY, keep, symbols=("BTC", "ETH"), base_url=fake.url,
                                    clock=clock, sleep=sleep, interval_s=180)
        task = asyncio.create_task(poller.run())
        await wait_until(lambda: poller.stats.polls >= 2, within_s=5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    first = got[0]
    assert [b.start_ms for b in first if b.coin == "BTC"] == [
        T0 + 8 * HOUR_MS, T0 + 9 * HOUR_MS, T0 + 10 * HOUR_MS]  # the open bar included
    assert fake.requests[0].query["start_time"] == str(T0 + 8 * HOUR_MS)
    assert 180 in sleep.delays and poller.client.http.closed
    assert poller.stats.last_ok_ms is not None and poller.stats.failures == 0
