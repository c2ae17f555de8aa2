"""The digest as each platform renders it, and when a chat's digest is due."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from bot.digest import PERIOD_MS, compose, queue_due
from bot.discord.render import render_embed
from bot.render import render_text
from bot.state.subscriptions import Subscription, Subscriptions
from bot.telegram.render import render_plain
from feeds.model import HOUR_MS
from feeds.store import Store
from tests.helpers.factories import T0, make_liq

END = T0 - T0 % (4 * HOUR_MS) + 4 * HOUR_MS


def _store(tmp_path) -> Store:
    store = Store(tmp_path / "d.db")
    store.insert_liquidations([make_liq(ts_exchange_ms=END - HOUR_MS + 5,
                                        notional_usd=Decimal(2_000_000))])
    return store


def test_every_platform_renders_the_digest_as_composed(tmp_path):
    store = _store(tmp_path)
    try:
        digest = compose(store, Subscription("telegram", "42", digest="4h"), END)
    finally:
        store.close()
    assert digest.text is not None and digest.kind == "digest"
    lines = digest.text.splitlines()
    assert lines[1] == "All coins: $2M liquidated in 4h, 100% shorts"
    assert lines[-1] == "No alerts were sent here in this period."
    assert render_text(digest) == digest.text  # the console
    assert render_plain(digest) == [digest.text]  # Telegram's plain fallback
    embed = render_embed(digest)
    assert embed["title"] == lines[0] and embed["fields"] == []
    assert embed["description"].endswith("No alerts were sent here in this period.")


def test_a_digest_is_queued_once_per_period_and_first_after_a_whole_one(tmp_path):
    store = _store(tmp_path)
    try:
        subs = Subscriptions(store)
        subs.put(Subscription("telegram", "42", digest="4h"), 0)  # just asked: digest_ms 0
        assert queue_due(store, END + 60_000) == 0  # starts counting from here
        assert subs.get("telegram", "42").digest_ms == END
        nxt = END + PERIOD_MS["4h"]
        assert queue_due(store, nxt + 60_000) == 1
        assert queue_due(store, nxt + 120_000) == 0  # the same period: once
        late = dataclasses.replace(subs.get("telegram", "42"), digest_ms=nxt)
        subs.put(late, 0)
        # Down for two days: the latest period's digest, not twelve one after another.
        back = nxt + 2 * 24 * HOUR_MS + 60_000
        # Due now, but only for the platforms asked: a Discord-only pass leaves it alone.
        assert queue_due(store, back, platforms=frozenset({"discord"})) == 0
        assert queue_due(store, back) == 1
        assert subs.get("telegram", "42").digest_ms == back - 60_000
        assert queue_due(store, back + 60_000) == 0
    finally:
        store.close()
