"""What an alert says beyond its totals: hashtags, the largest single liquidation, no dust;
and the store reads behind them and the charts."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from bot.render import alert_lines, hashtags, render_totals, top, without_dust
from bot.run.pipeline import Pipeline
from feeds.model import HOUR_MS, MARKET, Side
from feeds.store import Store
from signals import SignalParams
from tests.helpers.factories import ALERT, T0, make_alert, make_bucket, make_liq

LARGEST = {"exchange": "bybit", "symbol": "BTCUSDT", "coin": "BTC", "side": "short",
           "usd": 2_140_000.0, "price": 67_210.4, "ts_ms": T0 + 12 * 60_000}


def test_hashtags_name_the_coin_and_the_kind():
    assert hashtags(make_alert(scope="BTC")) == "#BTC #squeeze"
    assert hashtags(make_alert(kind="long_cascade", scope="1000PEPE")) == "#1000PEPE #cascade"
    market = make_alert(top_coins=[("BTC", 0, 300e6), ("ETH", 0, 150e6), ("XRP", 0, 1e6)])
    assert hashtags(market) == "#BTC #ETH #squeeze"  # XRP is under 1 % of $458M: dust
    assert alert_lines(market)[-1] == "#BTC #ETH #squeeze"


def test_the_largest_liquidation_is_in_the_alert():
    lines = alert_lines(make_alert(largest=LARGEST))
    assert "Largest: bybit BTCUSDT short $2.14M @ 67,210 (21:12 UTC)" in lines


def test_dust_is_left_out_of_top_coins_and_venues():
    items = [("BTC", 50.0, 50.0), ("ETH", 0.0, 20.0), ("DOGE", 0.5, 0.4)]
    assert [i[0] for i in without_dust(items)] == ["BTC", "ETH"]  # 0.9 of 120.9 < 1 %
    assert top(items, 5) == "BTC $100 · ETH $20"
    market = make_alert(top_coins=[("BTC", 0, 450e6), ("ETH", 0, 4e6), ("SOL", 0, 4e6)],
                        top_exchanges=[("binance", 0, 455e6), ("kraken", 0, 3e6)])
    text = "\n".join(alert_lines(market))
    assert "Top: BTC $450M" in text and "ETH" not in text.split("Top:")[1].split("\n")[0]
    assert "Venues: binance $455M\n" in text + "\n"


def test_alert_payload_round_trips_the_largest_and_ignores_unknown_fields():
    alert = make_alert(largest=LARGEST)
    assert type(alert).from_json(alert.to_json()) == alert
    newer = alert.to_json()[:-1] + ',"added_later":1}'
    assert type(alert).from_json(newer) == alert


def _store_with_events(tmp_path) -> Store:
    store = Store(tmp_path / "a.db")
    store.insert_liquidations([
        make_liq(notional_usd=Decimal(50_000), ts_exchange_ms=T0 + 60_000),
        make_liq(exchange="bybit", symbol="BTCUSDT", position_side=Side.LONG,
                 price=Decimal("95000"), qty_base=Decimal("20"), ts_exchange_ms=T0 + 120_000),
        make_liq(symbol="ETHUSDT", price=Decimal(3000), qty_base=Decimal(1000),
                 ts_exchange_ms=T0 + 180_000),
        make_liq(notional_usd=Decimal(9e6), ts_exchange_ms=T0 + 2 * HOUR_MS),  # outside
    ])
    return store


def test_store_finds_the_largest_single_liquidation_of_a_window(tmp_path):
    store = _store_with_events(tmp_path)
    btc = store.largest_liquidation("BTC", T0, T0 + HOUR_MS)
    assert btc is not None and (btc.exchange, btc.side, btc.usd, btc.price) == (
        "bybit", "long", 1_900_000.0, 95_000.0)
    every = store.largest_liquidation(None, T0, T0 + HOUR_MS)
    assert every is not None and every.coin == "ETH" and every.usd == 3_000_000.0
    assert store.largest_liquidation("BTC", T0 + 3 * HOUR_MS, T0 + 4 * HOUR_MS) is None
    store.close()


def test_liqs_names_the_largest(tmp_path):
    store = _store_with_events(tmp_path)
    totals = store.totals(T0 + HOUR_MS, HOUR_MS, coin="BTC")
    big = store.largest_liquidation("BTC", totals.start_ms, totals.end_ms)
    text = render_totals(totals, HOUR_MS, "BTC", dataclasses.asdict(big) if big else None)
    assert "Largest: bybit BTCUSDT long $1.9M @ 95,000 (21:02 UTC)" in text
    store.close()


def test_the_pipeline_attaches_the_largest_to_an_alert(tmp_path):
    store = _store_with_events(tmp_path)
    pipeline = Pipeline(store, SignalParams(), ["console"])
    quoted = pipeline._quote(make_alert(scope="BTC"))
    assert quoted.largest is not None and quoted.largest["usd"] == 1_900_000.0
    assert pipeline._quote(make_alert(scope=MARKET)).largest["coin"] == "ETH"
    store.close()


def test_chart_bars_come_from_events_or_else_from_one_aggregate_source(tmp_path):
    store = _store_with_events(tmp_path)
    bars, bar_ms = store.liq_bars("BTC", T0, T0 + HOUR_MS, 15 * 60_000)
    assert bar_ms == 15 * 60_000 and len(bars) == 1
    assert (bars[0].long_usd, bars[0].short_usd) == (1_900_000.0, 50_000.0)
    later = T0 + 10 * HOUR_MS  # only aggregates there: CoinGlass wins over Coinalyze
    store.insert_buckets([make_bucket(start_ms=later, long_usd=5.0, short_usd=7.0),
                          make_bucket(start_ms=later, source="coinalyze", long_usd=99.0)])
    bars, bar_ms = store.liq_bars("BTC", later, later + 2 * HOUR_MS, 15 * 60_000)
    assert bar_ms == HOUR_MS and [(b.long_usd, b.short_usd) for b in bars] == [(5.0, 7.0)]
    assert ALERT.extreme and not make_alert(severity=2).extreme
    store.close()


def test_top_leaves_out_coins_under_one_percent_of_the_window(tmp_path):
    from bot.commands import Ctx, dispatch

    store = Store(tmp_path / "t.db")
    store.insert_liquidations([
        make_liq(notional_usd=Decimal(5_000_000), ts_exchange_ms=T0 + 60_000),
        make_liq(symbol="ETHUSDT", price=Decimal(3000), qty_base=Decimal(100),
                 ts_exchange_ms=T0 + 120_000),  # $300K: 5.7 %
        make_liq(symbol="DOGEUSDT", price=Decimal("0.2"), qty_base=Decimal(100_000),
                 ts_exchange_ms=T0 + 180_000)])  # $20K: 0.4 %, dust
    reply = dispatch(store, Ctx("telegram", "1", T0 + HOUR_MS), "top", ["1h"])
    assert reply.text.splitlines()[1:] == ["1. BTC $5M · 100% shorts", "2. ETH $300K · 100% shorts"]
    liqs = dispatch(store, Ctx("telegram", "1", T0 + HOUR_MS), "liqs", []).text
    assert "Top: BTC $5M · ETH $300K\n" in liqs and "DOGE" not in liqs
    store.close()
