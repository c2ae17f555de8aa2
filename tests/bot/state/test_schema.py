"""The chat tables' own migrations: new files, files made before the split, and the seam."""

import asyncio
import sqlite3

import pytest

from bot.state.schema import (
    STATE_KEY,
    STATE_VERSION,
    _legacy_version,
    migrate_store,
    state_version,
)
from bot.state.subscriptions import Subscription, Subscriptions
from bot.state.writer import Writer
from feeds.store import Store, StoreError
from tests.feeds.store.legacy_schema import build_legacy, shape


def _opened(path):
    store = Store(path)
    migrate_store(store)
    return store


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_a_file_made_before_the_split_ends_like_a_new_one(tmp_path, version):
    build_legacy(tmp_path / "old.db", version)
    old, new = _opened(tmp_path / "old.db"), _opened(tmp_path / "new.db")
    try:
        assert shape(old.database.conn) == shape(new.database.conn)
        assert state_version(old.database) == state_version(new.database) == STATE_VERSION
    finally:
        old.close()
        new.close()


@pytest.mark.parametrize("version", [1, 3, 4])
def test_market_first_then_chat_later_still_ends_like_a_new_one(tmp_path, version):
    # `liqbot totals` on an old file migrates the market part only; the bot comes later.
    build_legacy(tmp_path / "old.db", version)
    Store(tmp_path / "old.db").close()
    old, new = _opened(tmp_path / "old.db"), _opened(tmp_path / "new.db")
    try:
        assert shape(old.database.conn) == shape(new.database.conn)
    finally:
        old.close()
        new.close()


@pytest.mark.parametrize(("version", "seeded"), [(1, 1), (2, 1), (3, 2), (4, 3), (5, 4)])
def test_the_state_version_is_seeded_from_what_an_old_file_holds(tmp_path, version, seeded):
    build_legacy(tmp_path / "old.db", version)
    store = Store(tmp_path / "old.db")
    try:
        assert store.get_meta(STATE_KEY) is None
        assert _legacy_version(store.database.conn) == seeded
        migrate_store(store)
        assert state_version(store.database) == STATE_VERSION
    finally:
        store.close()


def test_subscriptions_keep_their_rows_across_the_upgrade(tmp_path):
    build_legacy(tmp_path / "old.db", 5)
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("INSERT INTO subscriptions (platform, chat_id, kinds, min_usd, symbols, "
                 "updated_ms) VALUES ('telegram', '42', 'squeeze', 1e6, 'BTC', 0)")
    conn.commit()
    conn.close()
    store = Store(tmp_path / "old.db")
    try:
        sub = Subscriptions(store).get("telegram", "42")
        assert sub == Subscription("telegram", "42", ("squeeze",), 1e6, ("BTC",))
    finally:
        store.close()


def test_a_bare_store_gets_its_chat_tables_on_first_use(tmp_path):
    store = Store(tmp_path / "s.db")  # as `liqbot totals` or a backfill makes it
    try:
        assert state_version(store.database) == 0
        Subscriptions(store).put(Subscription("discord", "7"), 1)
        assert state_version(store.database) == STATE_VERSION
        assert [s.chat_id for s in Subscriptions(store).active()] == ["7"]
    finally:
        store.close()


def test_the_writer_opens_both_parts(tmp_path):
    writer = Writer(str(tmp_path / "w.db"))
    try:
        assert asyncio.run(writer.run(state_version, writer.store.database)) == STATE_VERSION
    finally:
        writer.close()


def test_a_newer_state_schema_is_refused(tmp_path):
    _opened(tmp_path / "a.db").close()
    conn = sqlite3.connect(tmp_path / "a.db")
    conn.execute("UPDATE meta SET value = '999' WHERE key = ?", (STATE_KEY,))
    conn.commit()
    conn.close()
    store = Store(tmp_path / "a.db")  # the market part alone still opens
    try:
        with pytest.raises(StoreError, match="chat state schema v999 is newer"):
            migrate_store(store)
    finally:
        store.close()


def test_v5_to_v6_adds_notification_settings_and_keeps_every_subscription(tmp_path):
    # A file the previous release left at state v5, with a quiet chat; v6 (issue 14) adds
    # levels, quiet hours, the zone and the digest with defaults that change nothing.
    from bot.state.schema import MIGRATIONS

    store = Store(tmp_path / "v5.db")
    store.database.migrate(STATE_KEY, MIGRATIONS[:5], what="chat state")
    store.database.conn.execute(
        "INSERT INTO subscriptions (platform, chat_id, kinds, min_usd, symbols, quiet, "
        "updated_ms) VALUES ('telegram', '42', 'short_squeeze', 1e6, 'BTC', 1, 0)")
    store.close()
    store = Store(tmp_path / "v5.db")
    try:
        assert state_version(store.database) == 5
        subs = Subscriptions(store)
        assert state_version(store.database) == STATE_VERSION == 6
        sub = subs.get("telegram", "42")
        assert sub == Subscription("telegram", "42", ("short_squeeze",), 1e6, ("BTC",),
                                   quiet=True)
        assert (sub.levels, sub.quiet_hours, sub.tz, sub.digest, sub.digest_ms) == (
            (), "", "UTC", "off", 0)
        assert subs.silencing("telegram")["42"].quiet  # the old toggle still silences
        changed = sub.with_mode("long_cascade", "notable", "off")
        subs.put(changed, 1)
        assert subs.get("telegram", "42").levels == (("long_cascade.notable", "off"),)
    finally:
        store.close()
