"""Store.coverage: the whole clock hours of a span that hold data, less recorded feed gaps."""

from __future__ import annotations

import pytest

from feeds.model import HOUR_MS, MINUTE_MS
from feeds.store import Store
from tests.helpers.factories import T0, make_bucket, make_liq


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


def test_an_empty_store_holds_nothing(store):
    assert store.coverage(T0 + 168 * HOUR_MS, 168 * HOUR_MS) == (0, 168 * HOUR_MS)


def test_imported_bars_count_per_hour_and_per_coin(store):
    store.insert_buckets([make_bucket(start_ms=T0 + h * HOUR_MS) for h in range(8)])
    end = T0 + 168 * HOUR_MS
    assert store.coverage(end, 168 * HOUR_MS) == (8 * HOUR_MS, 168 * HOUR_MS)
    assert store.coverage(end, 168 * HOUR_MS, coin="BTC") == (8 * HOUR_MS, 168 * HOUR_MS)
    assert store.coverage(end, 168 * HOUR_MS, coin="ETH") == (0, 168 * HOUR_MS)


def test_only_whole_hours_inside_the_span_count(store):
    store.insert_buckets([make_bucket(start_ms=T0 + h * HOUR_MS) for h in range(4)])
    # [T0 + 30m, T0 + 3h30m): hours 1 and 2 lie inside; the two halves do not count.
    assert store.coverage(T0 + 3 * HOUR_MS + 30 * MINUTE_MS, 3 * HOUR_MS) == (
        2 * HOUR_MS, 2 * HOUR_MS)


def test_our_own_events_count_the_hours_they_fall_in(store):
    store.insert_liquidations([make_liq(ts_exchange_ms=T0 + 5 * MINUTE_MS),
                               make_liq(ts_exchange_ms=T0 + 2 * HOUR_MS + 59 * MINUTE_MS)])
    assert store.coverage(T0 + 4 * HOUR_MS, 4 * HOUR_MS) == (2 * HOUR_MS, 4 * HOUR_MS)


def test_gaps_of_a_venue_that_supplied_the_scope_are_missing_history(store):
    store.insert_liquidations([make_liq(ts_exchange_ms=T0 + h * HOUR_MS + MINUTE_MS)
                               for h in range(4)])
    store.record_gap("binance", T0 + HOUR_MS + 30 * MINUTE_MS, T0 + 2 * HOUR_MS, "lost")
    store.record_gap("okx", T0, T0 + 4 * HOUR_MS, "not a source here")
    assert store.coverage(T0 + 4 * HOUR_MS, 4 * HOUR_MS) == (
        4 * HOUR_MS - 30 * MINUTE_MS, 4 * HOUR_MS)
    store.record_gap("binance", T0 + 3 * HOUR_MS, None, "still down")  # open: to the end
    assert store.coverage(T0 + 4 * HOUR_MS, 4 * HOUR_MS) == (
        3 * HOUR_MS - 30 * MINUTE_MS, 4 * HOUR_MS)
