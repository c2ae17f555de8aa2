"""Live REST sources: funding/OI pollers and CoinGlass bars + cross-check, against fake servers."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import time
from decimal import Decimal

import pytest

from bot.commands import Ctx, cmd_funding
from bot.config import FUNDING_VENUES, ConfigError, Settings, load_settings
from bot.ops.health import CHECK_KEY, status_report
from bot.render import render_status
from bot.run.pipeline import Pipeline
from bot.run.sources import Sources
from bot.state.writer import Writer
from feeds.model import MARKET, Side
from feeds.store import Store
from feeds.venues import coinglass_api as cg
from feeds.venues.registry import FUNDING as POLLER_VENUES
from tests.helpers.factories import make_liq
from tests.helpers.fake_http import FakeHttp, Reply, fixture_text
from tests.helpers.fake_ws import wait_until


def premium_now(now_ms: int) -> dict:
    return {"symbol": "BTCUSDT", "markPrice": "97000.5", "indexPrice": "96990",
            "lastFundingRate": "0.00010000", "nextFundingTime": now_ms + 3_600_000,
            "time": now_ms}


def route_binance(fake: FakeHttp, now_ms: int) -> None:
    fake.route("/fapi/v1/fundingInfo", Reply(json=[{"symbol": "BTCUSDT",
                                                    "fundingIntervalHours": 4}]))
    fake.route("/fapi/v1/premiumIndex", Reply(json=premium_now(now_ms)))
    fake.route("/fapi/v1/openInterest", Reply(json={"openInterest": "100.5",
                                                    "symbol": "BTCUSDT", "time": now_ms}))


def settings_for(tmp_path, **changes) -> Settings:
    base = load_settings(None, environ={}, overrides={"db": str(tmp_path / "s.db")})
    return dataclasses.replace(base, **changes)


async def run_sources(settings: Settings, until) -> tuple[Writer, Sources]:
    writer = Writer(settings.db)
    pipeline = Pipeline(writer.store, settings.signals, ["console"])

    async def ingest(items):
        return await writer.run(pipeline.ingest, items)

    sources = Sources(settings, ingest, writer)
    tasks = sources.start()
    try:
        await wait_until(lambda: until(writer), 10, 0.02)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return writer, sources


async def test_funding_poller_feeds_the_store_and_the_funding_command(tmp_path):
    now = int(time.time() * 1000)
    async with FakeHttp() as fake:
        route_binance(fake, now)
        settings = settings_for(tmp_path, funding_venues=("binance",),
                                funding_urls={"binance": fake.url})

        async def has_funding(w):
            return await w.run(w.store.latest_funding, "BTC", now + 1)

        writer, sources = await run_sources(settings, has_funding)
    try:
        reply = await writer.run(cmd_funding, writer.store, Ctx("console", "0", now + 1), [])
        # 0.01% per 4h is 0.02% per 8h; the raw rate and the venue's interval are kept.
        assert "binance BTCUSDT: +0.0200% (+0.0100% / 4h)" in reply.text
        await writer.run(sources.save_status, writer.store, now)
        report = await writer.run(status_report, writer.store, now)
        assert [(p["name"], p["polls"] >= 1) for p in report["pollers"]] == [("binance", True)]
        report["snapshot_at_ms"] = now  # as if the feeds' snapshot had been saved too
        assert "binance funding/OI: ok" in render_status(report, now)
    finally:
        writer.close()


async def test_coinglass_bars_become_an_aggregate_source_and_are_cross_checked(tmp_path):
    now = int(time.time() * 1000)
    async with FakeHttp() as fake:
        fake.route(cg.AGGREGATED, Reply(body=fixture_text("coinglass_aggregated_history.json")))
        fake.route(cg.EXCHANGES, Reply(body=fixture_text("coinglass_exchange_list.json")))
        settings = settings_for(tmp_path, funding_venues=(), coinglass_api_key="cg-key-123",
                                coinglass_url=fake.url, coinglass_symbols=("BTC",))
        writer = Writer(settings.db)
        pipeline = Pipeline(writer.store, settings.signals, ["console"])
        ours = make_liq(exchange="bybit", symbol="BTCUSDT", position_side=Side.SHORT,
                        notional_usd=Decimal("1000000"), ts_exchange_ms=now - 60_000,
                        ts_recv_ms=now - 59_000)
        await writer.run(pipeline.ingest, [ours])
        writer.close()

        async def checked(w):
            return await w.run(w.store.get_meta, CHECK_KEY)

        writer, _ = await run_sources(settings, checked)
    try:
        doc = json.loads(await writer.run(writer.store.get_meta, CHECK_KEY))
        theirs = {t.exchange.lower(): float(t.total_usd)
                  for t in cg.parse_exchange_list(json.loads(
                      fixture_text("coinglass_exchange_list.json")))}
        rows = {r["exchange"]: r for r in doc["rows"]}
        assert rows["bybit"]["ours_usd"] == pytest.approx(1e6)
        assert rows["bybit"]["ratio"] == pytest.approx(1e6 / theirs["bybit"])
        assert rows[MARKET]["coinglass_usd"] == pytest.approx(theirs["all"])
        bars = await writer.run(lambda: writer.store.database.conn.execute(
            "SELECT count(*) FROM agg_buckets WHERE source = 'coinglass'").fetchone()[0])
        assert bars == 2
        report = await writer.run(status_report, writer.store, now)
        text = render_status({**report, "snapshot_at_ms": now}, now + 1)
        assert "CoinGlass cross-check (1h): bybit" in text
    finally:
        writer.close()
    assert all(r.headers.get(cg.KEY_HEADER) == "cg-key-123" for r in fake.requests)
    assert {r.path for r in fake.requests} == {cg.AGGREGATED, cg.EXCHANGES}


def test_funding_venues_match_the_pollers():
    assert FUNDING_VENUES == tuple(POLLER_VENUES)


def test_funding_config_names_a_bad_venue(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[funding]\nvenues = ["binance", "kraken"]\n')
    with pytest.raises(ConfigError, match="funding.venues: unknown venue.*kraken"):
        load_settings(cfg, environ={})
    cfg.write_text('[funding.urls]\nkraken = "http://127.0.0.1:1"\n')
    with pytest.raises(ConfigError, match="funding_urls: unknown venue.*kraken"):
        load_settings(cfg, environ={})
    cfg.write_text('[funding]\nvenues = ["hyperliquid"]\ninterval_s = 60\n'
                   '[funding.urls]\nhyperliquid = "http://127.0.0.1:1"\n'
                   '[coinglass]\nsymbols = ["BTC"]\nplan = "startup"\n')
    s = load_settings(cfg, environ={})
    assert (s.funding_venues, s.funding_interval_s, s.funding_urls["hyperliquid"],
            s.coinglass_symbols, s.coinglass_plan) == (
        ("hyperliquid",), 60.0, "http://127.0.0.1:1", ("BTC",), "startup")


async def test_a_live_run_polls_funding_and_status_shows_the_poller(tmp_path):
    from bot.chat.console import ConsoleNotifier
    from bot.run.live import run_live

    now = int(time.time() * 1000)
    async with FakeHttp() as fake:
        route_binance(fake, now)
        settings = settings_for(tmp_path, venues=(), funding_venues=("binance",),
                                funding_urls={"binance": fake.url}, health_interval_s=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(settings, stop=stop,
                                            notifiers={"console": ConsoleNotifier(io.StringIO())}))
        try:
            async with asyncio.timeout(10):
                while True:
                    store = Store(settings.db)
                    try:
                        report = status_report(store, int(time.time() * 1000))
                    finally:
                        store.close()
                    if any(p["polls"] for p in report["pollers"]):
                        break
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    assert fake.calls("/fapi/v1/premiumIndex")[0].query == {"symbol": "BTCUSDT"}
    store = Store(settings.db)
    try:
        assert store.latest_funding("BTC", now + 1)[0].exchange == "binance"
    finally:
        store.close()
