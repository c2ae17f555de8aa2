"""An attempt counts as maybe delivered when its request leaves, not while it waits to.

bot/chat/attempt.py: the outbox pass sets a Departure; the transport calls leaving() after
its rate limiters. A send cancelled (or killed) while it waits costs no attempt.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import discord
import pytest
from aiohttp import web

from bot.chat.attempt import Departure, departing, leaving
from bot.chat.delivery import deliver_due
from bot.discord.channel import ChannelNotifier
from bot.policy import Policy
from bot.state.outbox import Outbox
from bot.state.schema import migrate_store
from bot.telegram.delivery import CountingLimiter
from feeds.store import Store
from signals import SignalParams
from tests.helpers.factories import T0, make_alert


class Limited:
    """A notifier whose transport waits for `gate` (a rate limiter), then writes."""

    name, ready, parallel, counts_departure = "telegram", True, 4, True

    def __init__(self, store: Store) -> None:
        self.gate = asyncio.Event()
        self.store = store
        self.seen_at_write: list[int] = []
        self.notices: list[str] = []

    async def send(self, alert: Any, destination: str) -> None:
        await self.gate.wait()
        await leaving()
        row = self.store.database.conn.execute(
            "SELECT maybe_sent FROM outbox WHERE destination = ?", (destination,)).fetchone()
        self.seen_at_write.append(row[0])  # what a kill at the write would leave behind

    async def notice(self, text: str) -> None:
        self.notices.append(text)

    async def close(self) -> None:
        return None


async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "d.db")
    migrate_store(s)
    yield s
    s.close()


def maybe_sent(store: Store) -> list[int]:
    return [r[0] for r in store.database.conn.execute(
        "SELECT maybe_sent FROM outbox ORDER BY destination")]


async def test_a_send_stopped_in_the_limiter_counts_no_attempt(store):
    Policy(store, SignalParams()).record([make_alert(key="a")], ["telegram:1", "telegram:2"], T0)
    chat = Limited(store)
    task = asyncio.create_task(deliver_due(Outbox(store), {"telegram": chat}, T0, run))
    await asyncio.sleep(0.05)
    task.cancel()  # the process dies while both sends wait for the limiter
    with pytest.raises(asyncio.CancelledError):
        await task
    assert maybe_sent(store) == [0, 0]
    chat.gate.set()
    assert await deliver_due(Outbox(store), {"telegram": chat}, T0, run) == 2
    assert chat.seen_at_write == [1, 1]  # counted before the request was written
    assert maybe_sent(store) == [1, 1]


async def test_rows_maybe_sent_are_retried_up_to_the_cap_then_given_up(store):
    Policy(store, SignalParams()).record([make_alert(key="a")], ["telegram:1", "telegram:2"], T0)
    store.database.conn.execute("UPDATE outbox SET maybe_sent = 4 WHERE destination = 'telegram:1'")
    store.database.conn.execute("UPDATE outbox SET maybe_sent = 5 WHERE destination = 'telegram:2'")
    chat = Limited(store)
    chat.gate.set()
    assert await deliver_due(Outbox(store), {"telegram": chat}, T0, run) == 1
    rows = store.database.conn.execute(
        "SELECT destination, status, maybe_sent FROM outbox ORDER BY destination").fetchall()
    assert rows == [("telegram:1", "sent", 5), ("telegram:2", "dead", 5)]
    assert len(chat.notices) == 1 and "telegram:2: sent 5 times without an acknowledgement" \
        in chat.notices[0]


async def test_a_departure_records_once_per_send():
    calls: list[int] = []

    async def record() -> None:
        calls.append(1)

    with departing(Departure(record)):
        await leaving()
        await leaving()  # a second chunk, a plain-text resend: the same attempt
    await leaving()  # outside a send: nothing
    assert calls == [1]


async def test_telegram_limiter_counts_after_its_wait():
    order: list[str] = []

    async def record() -> None:
        order.append("counted")

    async def write(*_: Any, **__: Any) -> dict[str, Any]:
        order.append("written")
        return {}

    limiter = CountingLimiter(overall_max_rate=1, overall_time_period=0.2, max_retries=0)
    await limiter.initialize()
    with departing(Departure(record)):
        await limiter.process_request(write, (), {}, "sendMessage", {"chat_id": 5}, None)
    assert order == ["counted", "written"]


async def test_discord_channel_requests_count_as_they_start():
    client = discord.Client(intents=discord.Intents.none())
    notifier = ChannelNotifier(client)
    assert notifier.counts_departure and client.http.http_trace is not None
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    calls: list[int] = []

    async def record() -> None:
        calls.append(1)

    try:
        async with aiohttp.ClientSession(trace_configs=[client.http.http_trace]) as session:
            with departing(Departure(record)):
                async with session.get(f"http://127.0.0.1:{port}/") as resp:
                    assert resp.status == 200
    finally:
        await runner.cleanup()
        await client.close()
    assert calls == [1]
