"""Market-wide reads answer every scope as the per-scope reads do; the span cache forgets
what a later write changed."""

from __future__ import annotations

import random
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from feeds.model import HOUR_MS, MINUTE_MS, Side
from feeds.store import Store
from tests.helpers.factories import T0, make_bucket, make_liq

WEEK = 168 * HOUR_MS
COINS = {"BTC": ("BTCUSDT", 100_000), "ETH": ("ETHUSDT", 3_000), "SOL": ("SOL-USDT-SWAP", 150)}


def _fill(store: Store, hours: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    events = []
    for i in range(3000):
        coin = rng.choice(list(COINS))
        symbol, price = COINS[coin]
        events.append(make_liq(
            exchange=rng.choice(("binance", "bybit", "okx")), symbol=symbol,
            position_side=rng.choice((Side.LONG, Side.SHORT)),
            qty_base=Decimal(rng.randint(1, 40)) / 10, price=Decimal(price),
            ts_exchange_ms=T0 + rng.randrange(hours * HOUR_MS), venue_id=str(i)))
    store.insert_liquidations(events)
    # Imported bars: one coin only there (its scope falls back to them), one also in events.
    store.insert_buckets([make_bucket(start_ms=T0 + h * HOUR_MS, coin="DOGE") for h in range(30)])
    store.insert_buckets([make_bucket(start_ms=T0 + h * HOUR_MS, coin="BTC", source="coinalyze",
                                      exchange="binance") for h in range(10)])
    store.record_gap("okx", T0 + 20 * HOUR_MS + 7 * MINUTE_MS, T0 + 26 * HOUR_MS, "lost")


@pytest.fixture
def store():
    s = Store(":memory:")
    _fill(s, hours=240)
    yield s
    s.close()


@pytest.mark.parametrize("span", [5 * MINUTE_MS, HOUR_MS, 4 * HOUR_MS, 24 * HOUR_MS, WEEK])
def test_every_scope_of_one_read_equals_its_own_read(store, span):
    cache = store.span_cache()
    for end in (T0 + 9 * HOUR_MS + 17 * MINUTE_MS, T0 + 200 * HOUR_MS, T0 + 30 * HOUR_MS):
        read = store.scoped_totals(end, span, sampled_venues={"okx"}, cache=cache)
        cover = store.scoped_coverage(end, span, cache=cache)
        for coin in (None, "BTC", "ETH", "SOL", "DOGE", "XRP"):
            own = store.totals(end, span, coin=coin, sampled_venues={"okx"})
            got = read.of(coin)
            assert (got.start_ms, got.end_ms, got.sampled_exchanges) == (
                own.start_ms, own.end_ms, own.sampled_exchanges)
            assert [(r.exchange, r.coin, r.long_n, r.short_n) for r in got.rows] == [
                (r.exchange, r.coin, r.long_n, r.short_n) for r in own.rows]
            assert got.long_usd == pytest.approx(own.long_usd, rel=1e-12)
            assert got.short_usd == pytest.approx(own.short_usd, rel=1e-12)
            assert cover.of(coin) == store.coverage(end, span, coin=coin)


def test_the_cache_forgets_spans_a_later_write_reached(store):
    cache = store.span_cache()
    end = T0 + 230 * HOUR_MS
    before = store.scoped_totals(end, WEEK, cache=cache).of("ETH").total_usd
    held = store.scoped_coverage(end, WEEK, cache=cache).of("XRP")
    store.take_write_floor()  # what the fill wrote is behind us
    late = T0 + 100 * HOUR_MS + 5 * MINUTE_MS + 123
    store.insert_liquidations([make_liq(symbol="ETHUSDT", price=Decimal(3000), qty_base=Decimal(7),
                                        ts_exchange_ms=late)])
    store.insert_liquidations([make_liq(symbol="XRPUSDT", price=Decimal(2), qty_base=Decimal(9),
                                        ts_exchange_ms=late)])
    floor = store.take_write_floor()
    assert floor == late - 123  # the start of the minute it fell in
    stale = store.scoped_totals(end, WEEK, cache=cache).of("ETH").total_usd
    assert stale == before  # still the kept middle: nothing told the cache
    cache.forget_from(floor)
    fresh = store.scoped_totals(end, WEEK, cache=cache)
    assert fresh.of("ETH").total_usd == pytest.approx(before + 21_000)
    assert fresh.of("ETH").total_usd == pytest.approx(store.totals(end, WEEK, coin="ETH").total_usd)
    assert held == (0, WEEK)
    assert store.scoped_coverage(end, WEEK, cache=cache).of("XRP") == (HOUR_MS, WEEK)
    assert store.take_write_floor() is None


def test_another_connections_commit_forgets_everything(tmp_path: Path):
    path = tmp_path / "s.db"
    store = Store(path)
    try:
        store.take_write_floor()
        other = sqlite3.connect(path)
        other.execute("INSERT INTO gaps VALUES ('okx', ?, NULL, 'x')", (T0,))
        other.commit()
        other.close()
        assert store.take_write_floor() == 0
        assert store.take_write_floor() is None
    finally:
        store.close()


def test_a_sliding_baseline_and_its_hours_follow_the_exact_reads_minute_by_minute(store):
    cache = store.span_cache()
    end = T0 + 200 * HOUR_MS + 3 * MINUTE_MS
    for step in range(0, 3000, 7):  # past the events' last hour too: sums fall to zero
        at = end + step * MINUTE_MS
        for window in (5 * MINUTE_MS, HOUR_MS):
            read = store.scoped_totals(at - window, WEEK, cache=cache)
            cover = store.scoped_coverage(at - window, WEEK, cache=cache)
            for coin in (None, "BTC", "ETH", "SOL", "DOGE"):
                assert cover.of(coin) == store.coverage(at - window, WEEK, coin=coin)
                own = store.totals(at - window, WEEK, coin=coin)
                got = read.of(coin)
                assert got.count == own.count
                assert got.long_usd == pytest.approx(own.long_usd, rel=1e-9, abs=0)
                assert got.short_usd == pytest.approx(own.short_usd, rel=1e-9, abs=0)
    # Slid until the last events leave: exactly zero, and no rows, as one read says.
    for at in range(T0 + 395 * HOUR_MS, T0 + 412 * HOUR_MS, 61 * MINUTE_MS):
        read = store.scoped_totals(at, WEEK, cache=cache)
        cover = store.scoped_coverage(at, WEEK, cache=cache)
        for coin in ("ETH", "SOL"):
            assert cover.of(coin) == store.coverage(at, WEEK, coin=coin)
            own = store.totals(at, WEEK, coin=coin, source="events")
            assert read.of(coin).count == own.count
            assert read.of(coin).long_usd == pytest.approx(own.long_usd, rel=1e-9, abs=0)
    assert read.of("ETH").rows == () and read.of("ETH").total_usd == 0
