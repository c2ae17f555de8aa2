"""Commands at least once, answered at most once, and no chat starving another (issue 15).

The kill -9 harness runs the real CLI (tests/bot/telegram/kill9.py); the rest run the bot in
this loop against the fake Bot API, whose getUpdates has Telegram's offset semantics.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from bot.state.subscriptions import Subscriptions
from bot.state.updates import QueuedUpdate, Received, UpdateQueue
from bot.telegram.inbox import FloodGate, Inbox, InboxLimits
from bot.telegram.service import OFFSET_KEY
from feeds.clock import WallClock
from feeds.store import Store
from tests.bot.telegram import kill9
from tests.bot.telegram.test_service import Live
from tests.helpers.fake_telegram import TOKEN, FakeBotApi

pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")


async def test_kill9_with_commands_in_flight_loses_none_and_repeats_at_most_one(tmp_path):
    figures = await kill9.run(tmp_path, trials=10)
    print("\n" + "\n".join(figures.lines()))  # pytest -s shows the figures
    assert figures.kills == 10 and figures.commands == 10 * 10 * 5 + 12
    assert figures.lost == []
    assert sum(figures.duplicated.values()) <= 1, figures.duplicated
    # SIGTERM came with answers owed at 1/s; they wait in the store, not in the stop.
    assert figures.sigterm_queued >= 5 and figures.sigterm_s < 3.0
    assert figures.tracebacks == 0


async def test_a_flooding_chat_gets_one_slow_down_and_another_chat_is_answered_at_once(
        tmp_path):
    async with FakeBotApi(TOKEN) as fake:
        bot = Live(fake, str(tmp_path / "f.db"))
        async with asyncio.timeout(60):
            await bot.ask("/help", 7)  # connected and polling
            for k in range(500):
                fake.push_command(f"/liqs F{k}", 42)
            asked = time.monotonic()
            fake.push_command("/liqs BTC", 43)
            await fake.wait_until(lambda: bool(fake.sent_to(43)), within_s=10)
            (answer,) = [m for m in fake.sent if m["chat_id"] == 43]
            waited = answer["t"] - asked
            await asyncio.sleep(2.5)
            flood = fake.sent_to(42)
            await bot.stop()
    print(f"\n500-command flood from one chat: another chat answered in {waited:.2f} s; "
          f"the flooding chat got {len(flood)} messages, 429s: {len(fake.rate_limited)}")
    assert waited < 2.0
    assert answer["plain"] == "No liquidations recorded for BTC in the last 1h."
    assert sum(m.startswith("Slow down: at most 20 commands a minute") for m in flood) == 1
    assert len(flood) <= 21 and not fake.rate_limited


async def test_a_command_older_than_a_few_minutes_gets_an_apology_and_is_not_run(tmp_path):
    db = str(tmp_path / "s.db")
    async with FakeBotApi(TOKEN) as fake:
        fake.push_command("/subscribe squeeze", 42, date=int(time.time()) - 600)
        bot = Live(fake, db)
        async with asyncio.timeout(30):
            await fake.wait_sent(1)
            assert await bot.ask("/status", 43)  # a fresh one is answered as usual
            await bot.stop()
    assert fake.sent_to(42) == ["Sorry, I was restarting and your /subscribe (10 min old) was "
                                "not run. Send it again if you still need it."]
    store = Store(db)
    try:
        assert Subscriptions(store).get("telegram", "42") is None
    finally:
        store.close()


async def test_a_restart_sends_committed_answers_but_not_the_one_caught_going_out(tmp_path):
    db = str(tmp_path / "r.db")
    store = Store(db)  # as a kill -9 left it: 3 stored, 1 answered, 1 going out, 1 unhandled
    queue = UpdateQueue(store, "telegram", OFFSET_KEY)
    now = int(time.time() * 1000)
    queue.receive([Received(i, "42", now, "{}") for i in (1, 2)], now)

    def answer(text: str) -> str:
        return json.dumps({"chat": "42", "text": text, "error": False, "buttons": [],
                           "edit": None})
    with store.transaction():
        queue.finish(1, answer("was going out"))
        queue.begin_send(1)
        queue.finish(2, answer("committed, not sent"))
    store.close()
    async with FakeBotApi(TOKEN) as fake:
        fake.pending.clear()
        bot = Live(fake, db)
        async with asyncio.timeout(20):
            await fake.wait_sent(1)
            await fake.wait_until(lambda: fake.confirmed >= 3)  # stored ones stay confirmed
            await asyncio.sleep(0.5)
            await bot.stop()
    assert fake.sent_to(42) == ["committed, not sent"]
    store = Store(db)
    try:
        assert UpdateQueue(store, "telegram", OFFSET_KEY).counts() == {"done": 2}
    finally:
        store.close()


def test_the_queue_stores_a_batch_once_and_polls_past_it(tmp_path: Path):
    store = Store(tmp_path / "q.db")
    try:
        queue = UpdateQueue(store, "telegram", OFFSET_KEY)
        assert queue.next_offset() == 0
        batch = [Received(i, "42", 0, "{}") for i in (5, 6, 7)]
        assert queue.receive(batch, 1) == 3
        assert queue.receive(batch[1:], 2) == 0  # offered again: stored once
        assert queue.next_offset() == 8 and store.get_meta(OFFSET_KEY) == "7"
        assert [u.update_id for u in queue.queued()] == [5, 6, 7]
        queue.close_unhandled([5])
        assert [u.update_id for u in queue.queued()] == [6, 7]
        assert queue.prune(now_ms=10**15) == 1 and queue.next_offset() == 8
    finally:
        store.close()


def test_the_flood_gate_warns_once_then_drops_until_the_minute_passes():
    gate = FloodGate(per_minute=3)
    assert [gate.admit("a", t) for t in (0, 1, 2, 3, 4)] == ["ok", "ok", "ok", "warn", "drop"]
    assert gate.admit("b", 4) == "ok"  # another chat is not affected
    assert gate.admit("a", 60.5) == "ok"  # the first one left the window
    assert gate.admit("a", 60.6) == "warn"


def test_only_commands_that_waited_on_the_bot_are_dated():
    # A host clock minutes off Telegram's must not turn fresh commands into apologies.
    inbox = Inbox(None, None, None, WallClock(), process=None, answer=None,  # type: ignore[arg-type]
                  is_command=None, limits=InboxLimits(backlog_s=30))  # type: ignore[arg-type]
    start = inbox.started_ms

    def row(received_ms: int) -> QueuedUpdate:
        return QueuedUpdate(1, "42", received_ms, 0, "{}")
    assert inbox._waited(row(start - 60_000))  # stored before this start
    assert inbox._waited(row(start + 10_000))  # the backlog found at the start
    assert not inbox._waited(row(start + 60_000))  # arrived while running: fresh
