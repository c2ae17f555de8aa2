"""Bucket levels: a window's cover is exact, and totals from buckets equal sums over events."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.model import HOUR_MS, MINUTE_MS, Side
from feeds.store import WINDOWS_MS, Store
from feeds.store.buckets import LEVELS, cover
from tests.helpers.factories import T0, make_liq

DAY = 24 * HOUR_MS


@given(start=st.integers(0, 3 * DAY // MINUTE_MS), minutes=st.integers(0, 2 * DAY // MINUTE_MS))
def test_cover_tiles_the_window_with_whole_aligned_buckets(start, minutes):
    lo, hi = T0 + start * MINUTE_MS, T0 + (start + minutes) * MINUTE_MS
    parts = cover(lo, hi)
    spans = dict(LEVELS)
    edges = sorted((a, b) for _, a, b in parts)
    assert all(x[1] == y[0] for x, y in zip(edges, edges[1:], strict=False))  # no gap, no overlap
    assert (edges[0][0], edges[-1][1]) == (lo, hi) if parts else lo == hi
    for table, a, b in parts:
        assert a % spans[table] == 0 and b % spans[table] == 0 and a < b


def test_a_day_reads_few_buckets():
    parts = cover(T0 + 17 * MINUTE_MS, T0 + 17 * MINUTE_MS + DAY)
    rows = sum((b - a) // dict(LEVELS)[t] for t, a, b in parts)
    assert rows <= 6 + 6 + 10 + 18


@pytest.fixture(scope="module")
def busy_store(tmp_path_factory):
    """Three days of random events on two venues and three coins, stored in random batches."""
    rng = random.Random(5)
    events = [make_liq(exchange=rng.choice(("binance", "okx")),
                       symbol=rng.choice(("BTCUSDT", "ETHUSDT", "SOLUSDT")),
                       position_side=rng.choice((Side.LONG, Side.SHORT)),
                       notional_usd=Decimal(rng.randint(1, 10**6)),
                       ts_exchange_ms=T0 + rng.randrange(3 * DAY),
                       price=Decimal(rng.randint(1, 99)))
              for _ in range(4000)]
    store = Store(tmp_path_factory.mktemp("b") / "busy.db")
    while events:
        n = rng.randint(1, 700)
        store.insert_liquidations([*events[:n], *events[: n // 10]])  # with duplicates
        events = events[n:]
    yield store
    store.close()


@settings(max_examples=60, deadline=None)
@given(end=st.integers(0, 3 * DAY // MINUTE_MS), window=st.sampled_from(sorted(WINDOWS_MS)),
       coin=st.sampled_from([None, "BTC", "SOL"]))
def test_totals_from_buckets_equal_sums_over_events(busy_store, end, window, coin):
    end_ms = T0 + end * MINUTE_MS
    got = busy_store.totals(end_ms, WINDOWS_MS[window], coin=coin)
    where = " AND coin = ?" if coin else ""
    want = busy_store.database.conn.execute(
        "SELECT exchange, coin, total(CASE WHEN side = 'long' THEN usd END), "
        "total(CASE WHEN side = 'short' THEN usd END), count(*) FROM events "
        f"WHERE ts_ms >= ? AND ts_ms < ?{where} GROUP BY exchange, coin",
        [end_ms - WINDOWS_MS[window], end_ms, *([coin] if coin else [])]).fetchall()
    assert sorted((r.exchange, r.coin, r.long_n + r.short_n) for r in got.rows) == sorted(
        (e, c, n) for e, c, _, _, n in want)
    assert got.long_usd == pytest.approx(sum(r[2] for r in want))
    assert got.short_usd == pytest.approx(sum(r[3] for r in want))
