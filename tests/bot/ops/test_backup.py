"""Backups made while liqbot writes: consistent, checked, restorable (RELIABILITY.md item 10)."""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.ops import backup as backup_mod
from bot.ops.backup import BackupError, backup, db_check, read_only_uri, render_check
from bot.run.replay import run_replay
from feeds.history.replay import load_replay
from feeds.store import Store
from tests.bot.ops.replay_data import write_events
from tests.helpers.cli import alert_blocks
from tests.helpers.factories import T0, make_liq


def count(db: Path, table: str = "events") -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def integrity(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


class Inserter(threading.Thread):
    """The bot's writer in miniature: its own Store, a batch of new events per commit."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db, self.stop, self.batches = db, threading.Event(), 0

    def run(self) -> None:
        store = Store(self.db)
        try:
            while not self.stop.is_set():
                base = T0 + self.batches * 1_000
                store.insert_liquidations(
                    [make_liq(ts_exchange_ms=base + i, ts_recv_ms=base + i) for i in range(50)])
                self.batches += 1
        finally:
            store.close()


def test_backup_during_inserts_restores_with_every_row_present_at_start(tmp_path):
    db, copy = tmp_path / "live.db", tmp_path / "copy.db"
    writer = Inserter(db)
    writer.start()
    try:
        while writer.batches < 20:
            writer.stop.wait(0.01)
        at_start = count(db)
        result = backup(db, copy)
        still_writing = writer.batches
        writer.stop.wait(0.2)
        assert writer.batches > still_writing, "the writer was never blocked by the backup"
    finally:
        writer.stop.set()
        writer.join(10)
    assert result.integrity == "ok" and result.path == copy and result.bytes > 0
    assert integrity(copy) == ["ok"]
    assert count(copy) >= at_start
    assert count(copy) % 50 == 0  # whole commits only: the copy is one consistent snapshot
    assert not Path(f"{copy}-wal").exists()  # a single self-contained file
    restored = Store(copy)  # opens at the current schema and answers queries
    try:
        assert restored.count_events() == count(copy)
        assert restored.totals(T0 + 3_600_000, 3_600_000).count > 0
    finally:
        restored.close()


async def test_backup_during_a_running_replay_restores_and_resumes_without_resending(tmp_path):
    events = write_events(tmp_path / "events.jsonl", spikes={2: "short", 9: "long"})
    data = load_replay([str(events)])
    live, copy, restored = tmp_path / "live.db", tmp_path / "copy.db", tmp_path / "restored.db"
    first_out = io.StringIO()
    settings = load_settings(None, environ={}, overrides={"db": str(live)})
    async with asyncio.timeout(120):
        replay = asyncio.create_task(run_replay(
            data, settings, speed=0, notifiers={"console": ConsoleNotifier(first_out)},
            services=[]))
        # Polling the file: the replay has no event to await.
        while not live.exists() or count(live) < 300:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        at_start = count(live)
        result = await asyncio.to_thread(backup, live, copy)
        assert not replay.done(), "the replay finished before the backup did: make it longer"
        summary = await replay
    assert result.integrity == "ok" and integrity(copy) == ["ok"]
    assert at_start <= count(copy) < summary.events_new
    sent_in_copy = count(copy, "outbox WHERE status = 'sent'")

    shutil.copyfile(copy, restored)  # the restore: the copy is the database now
    second_out = io.StringIO()
    settings = load_settings(None, environ={}, overrides={"db": str(restored)})
    async with asyncio.timeout(120):
        await run_replay(data, settings, speed=0,
                         notifiers={"console": ConsoleNotifier(second_out)}, services=[])
    first, second = alert_blocks(first_out.getvalue()), alert_blocks(second_out.getvalue())
    assert 0 < sent_in_copy < len(first)  # the backup landed between two alerts
    assert len(second) == len(first) - sent_in_copy  # nothing the copy had sent went twice
    assert set(second) <= set(first)
    assert count(restored) == count(live)


def test_backup_into_a_directory_keeps_the_newest(tmp_path):
    db = tmp_path / "live.db"
    Store(db).close()
    folder = tmp_path / "backups"
    folder.mkdir()
    for stamp in ("20200101T000000Z", "20200102T000000Z", "20200103T000000Z"):
        (folder / f"liqbot-{stamp}.db").write_bytes(b"old")
    (folder / "notes.txt").write_text("not a backup")
    result = backup(db, folder, keep=2)
    left = sorted(p.name for p in folder.iterdir())
    made = backup(db, f"{tmp_path}/new/", keep=1).path  # a trailing slash makes the directory
    assert made.parent == tmp_path / "new" and made.name.startswith("liqbot-")
    assert left == ["liqbot-20200103T000000Z.db", result.path.name, "notes.txt"]
    assert [p.name for p in result.removed] == ["liqbot-20200101T000000Z.db",
                                                "liqbot-20200102T000000Z.db"]


def test_backup_refuses_bad_targets(tmp_path):
    db = tmp_path / "live.db"
    Store(db).close()
    with pytest.raises(BackupError, match="onto itself"):
        backup(db, db)
    with pytest.raises(BackupError, match="no such database"):
        backup(tmp_path / "missing.db", tmp_path / "x.db")
    with pytest.raises(BackupError, match="no such directory"):
        backup(db, tmp_path / "nowhere" / "x.db")
    assert not list(tmp_path.glob("*.partial"))


def test_db_check_reports_integrity_rows_and_sizes(tmp_path):
    db = tmp_path / "live.db"
    store = Store(db)
    store.insert_liquidations([make_liq(ts_exchange_ms=T0 + i) for i in range(500)])
    store.close()
    report = db_check(db)
    tables = {t.name: t for t in report.tables}
    assert report.ok and report.integrity == ["ok"] and report.schema_version >= 1
    assert tables["events"].rows == 500 and tables["buckets_1m"].rows == 1
    assert tables["events"].bytes > tables["gaps"].bytes >= 0  # dbstat: indexes included
    text = render_check(report)
    assert "integrity ok" in text and "events" in text and "500" in text
    assert report.as_dict()["tables"][0].keys() == {"name", "rows", "bytes"}
    assert all(t.bytes is None for t in db_check(db, sizes=False).tables)


def test_db_check_finds_corruption(tmp_path):
    db = tmp_path / "broken.db"
    store = Store(db)
    store.insert_liquidations([make_liq(ts_exchange_ms=T0 + i) for i in range(2000)])
    store.database.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    raw = bytearray(db.read_bytes())
    page = 4096
    for p in range(3, len(raw) // page - 1, 2):  # scribble over every other page
        raw[p * page + 100: p * page + 400] = b"\xff" * 300
    db.write_bytes(bytes(raw))
    try:
        report = db_check(db)
    except BackupError as exc:
        assert "not a readable" in str(exc)
    else:
        assert not report.ok and report.integrity != ["ok"]
        assert "FAILED" in render_check(report)


def test_read_only_uri_is_immutable_only_when_nobody_can_be_writing(tmp_path, monkeypatch):
    db = tmp_path / "live.db"
    store = Store(db)  # open: -wal and -shm exist
    assert read_only_uri(db).endswith("?mode=ro")
    store.close()  # closed cleanly: the WAL is gone
    assert read_only_uri(db).endswith("?mode=ro")  # a writable directory can take a -shm
    monkeypatch.setattr(backup_mod.os, "access", lambda *_: False)  # a read-only mount
    assert read_only_uri(db).endswith("?immutable=1")
    assert db_check(db).ok


def test_a_killed_backups_leftovers_are_swept_and_keep_0_is_refused(tmp_path):
    """A backup killed mid-copy leaves `.partial` and `-journal` files; the next one removes
    them, unless a backup still running holds its lock on them."""
    import fcntl
    import os

    db = tmp_path / "live.db"
    Store(db).close()
    folder = tmp_path / "backups"
    folder.mkdir()
    stale = folder / "liqbot-20200101T000000Z.db.partial"
    stale.write_bytes(b"half a copy")
    Path(f"{stale}-journal").write_bytes(b"j")
    orphan = folder / "liqbot-20200102T000000Z.db.partial-journal"
    orphan.write_bytes(b"j")
    running = folder / "liqbot-20200103T000000Z.db.partial"
    running.write_bytes(b"being written")
    fd = os.open(running, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a backup in progress holds it
    try:
        result = backup(db, folder, keep=1)
    finally:
        os.close(fd)
    assert sorted(p.name for p in result.cleaned) == sorted(
        [stale.name, f"{stale.name}-journal", orphan.name])
    assert sorted(p.name for p in folder.iterdir()) == sorted([result.path.name, running.name])
    with pytest.raises(BackupError, match="--keep must be at least 1"):
        backup(db, folder, keep=0)
    assert [p.name for p in folder.glob("liqbot-*.db")] == [result.path.name]
