"""WriteGuard (bot/run/writes.py): held in order, bounded, counted, said once each way."""

from __future__ import annotations

import asyncio

from bot.run.writes import WriteGuard
from feeds.store import StoreError


class Disk:
    def __init__(self) -> None:
        self.full = False
        self.rows: list[int] = []

    async def store(self, items: list[int]) -> None:
        if self.full:
            raise StoreError("/x/live.db: database or disk is full")
        self.rows += items


async def test_held_in_order_then_stored_when_writes_work_again():
    disk, notices = Disk(), []

    async def notify(text: str) -> None:
        notices.append(text)

    guard = WriteGuard(disk.store, notify, retry_s=0.0)
    await guard.put([1, 2])
    disk.full = True
    for i in range(3, 10):
        await guard.put([i])
    assert guard.report() == {"error": "database or disk is full", "since_ms": guard.since_ms,
                              "held": 7, "dropped": 0}
    disk.full = False
    await guard.put([10])
    await guard.settle()
    assert disk.rows == list(range(1, 11)) and guard.report() == "ok"
    assert len(notices) == 2 and "database or disk is full" in notices[0]
    assert "7 held items stored" not in notices[1] and "8 held items stored" in notices[1]


async def test_past_the_bound_the_oldest_are_dropped_counted_and_said():
    disk, notices = Disk(), []

    async def notify(text: str) -> None:
        notices.append(text)

    guard = WriteGuard(disk.store, notify, max_held=5, retry_s=60.0)
    disk.full = True
    for i in range(8):
        await guard.put([i])
    await asyncio.sleep(0)
    assert list(guard.held) == [3, 4, 5, 6, 7] and guard.dropped == 3
    disk.full = False
    await guard.retry()
    await guard.settle()
    assert disk.rows == [3, 4, 5, 6, 7]
    assert "cannot write" in notices[0] and "oldest are being dropped" in notices[1]
    assert len(notices) == 3 and "5 held items stored, 3 dropped" in notices[2]


async def test_a_job_write_that_fails_then_works_is_one_fault():
    notices: list[str] = []

    async def notify(text: str) -> None:
        notices.append(text)

    async def boom() -> None:
        raise StoreError("/x/live.db: attempt to write a readonly database")

    guard = WriteGuard(Disk().store, notify)
    assert await guard.guarded(boom) is None
    assert await guard.guarded(boom) is None
    assert guard.report()["error"] == "attempt to write a readonly database"
    guard.wrote()
    await guard.settle()
    assert guard.report() == "ok" and len(notices) == 2


async def test_other_writes_are_held_in_line_with_the_items():
    disk, calls = Disk(), []

    async def notify(text: str) -> None:
        return None

    async def run(fn, *args):
        if disk.full:
            raise StoreError("/x/live.db: database or disk is full")
        return fn(*args)

    guard = WriteGuard(disk.store, notify, run=run, retry_s=60.0)
    disk.full = True
    await guard.put([1, 2])
    await guard.call(lambda *a: calls.append((a, list(disk.rows))), "binance", 0, None, "lost")
    await guard.put([3])
    disk.full = False
    await guard.retry()
    await guard.settle()
    assert disk.rows == [1, 2, 3] and guard.report() == "ok"
    assert calls == [(("binance", 0, None, "lost"), [1, 2])]  # after 1, 2 and before 3
