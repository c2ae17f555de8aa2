"""The SQLite store: idempotent events, derived buckets, windows, retention, schema."""

import sqlite3
from decimal import Decimal

import pytest

from feeds.model import HOUR_MS, MINUTE_MS, Candle, Funding, Side
from feeds.store import Store, StoreError, parse_window
from feeds.store.schema import SCHEMA_VERSION
from tests.feeds.store.legacy_schema import build_legacy, shape
from tests.helpers.factories import T0, make_bucket, make_liq


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "t.db")
    yield s
    s.close()


def test_same_event_twice_is_stored_once(store):
    e = make_liq()
    assert store.insert_liquidations([e, e]) == 1
    assert store.insert_liquidations([e]) == 0
    assert store.count_events() == 1
    assert store.totals(T0 + MINUTE_MS, HOUR_MS).short_usd == 100_000


def test_exact_values_survive_as_text(store):
    store.insert_liquidations([make_liq(qty_base=Decimal("0.014"), price=Decimal("9910.10"))])
    row = store.database.conn.execute("SELECT qty, price FROM events").fetchone()
    assert row == ("0.014", "9910.10")


def test_window_uses_hours_inside_and_minutes_at_edges(store):
    # One event per minute for 3 hours, alternating sides.
    events = [
        make_liq(ts_exchange_ms=T0 + i * MINUTE_MS + 7,
                 position_side=Side.LONG if i % 2 else Side.SHORT,
                 notional_usd=Decimal(i + 1))
        for i in range(180)
    ]
    assert store.insert_liquidations(events) == 180
    # Window [T0+30m, T0+150m): minutes 30..149 -> sum of (i+1).
    t = store.totals(T0 + 150 * MINUTE_MS, 2 * HOUR_MS)
    assert t.total_usd == sum(range(31, 151))
    assert t.count == 120
    naive = store.database.conn.execute(
        "SELECT sum(usd) FROM events WHERE ts_ms >= ? AND ts_ms < ?",
        (T0 + 30 * MINUTE_MS, T0 + 150 * MINUTE_MS),
    ).fetchone()[0]
    assert t.total_usd == naive


def test_window_end_rounds_up_to_include_current_minute(store):
    store.insert_liquidations([make_liq(ts_exchange_ms=T0 + 10_000)])
    assert store.totals(T0 + 20_000, 5 * MINUTE_MS).count == 1


def test_filters_by_coin_and_exchange(store):
    store.insert_liquidations([
        make_liq(symbol="BTCUSDT"), make_liq(symbol="ETHUSDT", notional_usd=Decimal(5)),
        make_liq(exchange="bybit", symbol="BTCUSDT", sampled=False, notional_usd=Decimal(7)),
    ])
    end = T0 + MINUTE_MS
    assert store.totals(end, HOUR_MS, coin="ETH").total_usd == 5
    assert store.totals(end, HOUR_MS, coin="btcusdt").total_usd == 100_007
    t = store.totals(end, HOUR_MS, exchange="bybit")
    assert t.total_usd == 7 and not t.sampled_exchanges
    assert not store.totals(end, HOUR_MS).sampled_exchanges  # the caller names the sampled
    sampled = store.totals(end, HOUR_MS, sampled_venues={"binance", "okx"}).sampled_exchanges
    assert sampled == {"binance"}


def test_aggregate_buckets_count_when_fully_inside(store):
    store.insert_buckets([make_bucket(start_ms=T0 + i * HOUR_MS, short_usd=10.0 * i)
                          for i in range(4)])
    t = store.totals(T0 + 2 * HOUR_MS, 2 * HOUR_MS)
    assert t.short_usd == 10.0 and t.long_usd == 2e6
    # A re-import replaces rather than double counts.
    store.insert_buckets([make_bucket(start_ms=T0, short_usd=0.0)])
    assert store.totals(T0 + 2 * HOUR_MS, 2 * HOUR_MS).short_usd == 10.0


def test_prune_keeps_buckets(store):
    store.insert_liquidations([make_liq(ts_exchange_ms=T0 + i) for i in range(10)])
    assert store.prune_events(T0 + HOUR_MS) == 10
    assert store.count_events() == 0
    assert store.totals(T0 + MINUTE_MS, HOUR_MS).count == 10


def test_context_queries(store):
    store.insert_candles([
        Candle("binance", "BTC", T0 + i * HOUR_MS, HOUR_MS, 100 + i, 0, 0, 101 + i)
        for i in range(3)])
    assert store.price_change("BTC", T0, T0 + 3 * HOUR_MS) == pytest.approx(103 / 100 - 1)
    store.insert_funding([Funding("binance", "BTCUSDT", T0, Decimal("-0.0001"), 4.0)])
    (f,) = store.latest_funding("BTC", T0 + 1)
    assert f.rate_8h == pytest.approx(-0.0002)


def test_schema_is_versioned_and_reopen_is_a_no_op(tmp_path):
    Store(tmp_path / "a.db").close()
    s = Store(tmp_path / "a.db")
    assert s.schema_version() == SCHEMA_VERSION
    s.close()


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "a.db").close()
    conn = sqlite3.connect(tmp_path / "a.db")
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this liqbot"):
        Store(tmp_path / "a.db")


def test_corrupt_file_is_a_clear_error_and_left_alone(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable liqbot database"):
        Store(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_wal_mode(store):
    assert store.database.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_parse_window_names_choices():
    assert parse_window("4H") == 4 * HOUR_MS
    with pytest.raises(ValueError, match="5m, 15m"):
        parse_window("2d")


def test_events_and_aggregates_are_never_summed_together(store):
    # CoinGlass already counts Binance: a backfill beside live events must not double.
    store.insert_buckets([make_bucket(start_ms=T0, long_usd=5e6, short_usd=5e6)])
    end = T0 + HOUR_MS
    assert store.totals(end, HOUR_MS).total_usd == 10e6  # aggregates only: used
    store.insert_liquidations([make_liq(ts_exchange_ms=T0 + 5)])
    assert store.totals(end, HOUR_MS).total_usd == 100_000  # events win in "auto"
    assert store.totals(end, HOUR_MS, source="aggregates").total_usd == 10e6
    assert store.totals(end, HOUR_MS, source="coinglass").total_usd == 10e6
    assert store.totals(end, HOUR_MS, source="events").total_usd == 100_000


def test_overlapping_aggregate_sources_count_once_per_coin(store):
    store.insert_buckets([
        make_bucket(start_ms=T0, coin="BTC", short_usd=8e6, source="coinglass"),
        make_bucket(start_ms=T0, coin="BTC", exchange="binance", short_usd=3e6, source="coinalyze"),
        make_bucket(start_ms=T0, coin="ETH", exchange="binance", short_usd=2e6, source="coinalyze"),
    ])
    t = store.totals(T0 + HOUR_MS, HOUR_MS)
    assert {c: sh for c, _, sh in t.by("coin")} == {"BTC": 8e6, "ETH": 2e6}


def test_v4_database_upgrades_keeping_events_buckets_and_dedup(tmp_path):
    path = tmp_path / "v4.db"
    old = [make_liq(ts_exchange_ms=T0 + i * 20_000, notional_usd=Decimal(1000 + i))
           for i in range(9)]
    build_legacy(path, 4, old)  # v1's trigger fills the buckets

    store = Store(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.count_events() == 9
        assert store.totals(T0 + HOUR_MS, HOUR_MS).short_usd == sum(1000 + i for i in range(9))
        assert store.insert_liquidations(old) == 0  # the old keys still deduplicate
        later = make_liq(ts_exchange_ms=T0 + 10 * MINUTE_MS, notional_usd=Decimal(5))
        assert store.insert_liquidations([later, *old[:2]]) == 1
        assert store.totals(T0 + HOUR_MS, HOUR_MS).count == 10
        triggers = store.database.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert triggers.fetchall() == []
    finally:
        store.close()


def test_buckets_count_only_the_new_events_of_a_mixed_batch(store):
    seen = [make_liq(ts_exchange_ms=T0 + i, notional_usd=Decimal(10)) for i in range(3)]
    store.insert_liquidations(seen)
    fresh = [make_liq(ts_exchange_ms=T0 + 100 + i, position_side=Side.LONG,
                      notional_usd=Decimal(7)) for i in range(4)]
    assert store.insert_liquidations([*seen, *fresh, fresh[0]]) == 4
    conn = store.database.conn
    minute = conn.execute("SELECT long_usd, short_usd, long_n, short_n FROM buckets_1m")
    assert minute.fetchall() == [(28.0, 30.0, 4, 3)]
    hour = conn.execute("SELECT long_usd, short_usd, long_n, short_n FROM buckets_1h")
    assert hour.fetchall() == [(28.0, 30.0, 4, 3)]


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_files_made_before_the_split_keep_the_market_tables_a_new_file_gets(tmp_path, version):
    build_legacy(tmp_path / "old.db", version)
    old, new = Store(tmp_path / "old.db"), Store(tmp_path / "new.db")
    try:
        chat = {"alerts", "outbox", "subscriptions"}
        legacy = [row for row in shape(old.database.conn) if row[2] not in chat]
        assert legacy == shape(new.database.conn)
        assert old.schema_version() == new.schema_version() == SCHEMA_VERSION
    finally:
        old.close()
        new.close()


def test_a_new_file_holds_no_chat_tables(store):
    # bot/state creates them when the bot opens the file (bot/state/schema.py).
    tables = {r[1] for r in shape(store.database.conn)}
    assert "events" in tables and not tables & {"alerts", "outbox", "subscriptions"}
