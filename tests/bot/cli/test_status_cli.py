"""`liqbot status` tells a stopped bot (no lock) and a stuck one (lock held, status old) from
a running one (issue 14: it used to read "up" for a bot that was gone)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from feeds.store import Store
from tests.helpers.cli import REPO, clean_env
from tests.helpers.factories import T0, make_liq


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "s.db"
    s = Store(path)
    s.insert_liquidations([make_liq(ts_exchange_ms=T0)])
    s.close()
    return str(path)



def _status_saved(db: str, age_ms: int) -> None:
    import time as _time

    s = Store(db)
    now = int(_time.time() * 1000)
    s.set_meta("status", json.dumps({"at_ms": now - age_ms, "venues": [
        {"exchange": "bybit", "connected": 1, "connected_since_ms": now - 2 * age_ms,
         "last_event_ms": now - age_ms, "events": 5, "parse_errors": 0, "reconnects": 0,
         "last_error": None, "sockets": 1, "state": "up"}]}))
    s.close()


def test_status_of_a_stopped_bot_says_so_and_of_a_stuck_one_says_that(db):
    """No lock held: "not running"; a lock held by a run whose status is an hour old: stuck."""
    from bot.run.lock import acquire_lock, release_lock

    _status_saved(db, 3_600_000)
    r = subprocess.run([sys.executable, "-m", "bot.cli.main", "status", "--db", db],
                       capture_output=True, text=True, timeout=60, cwd=REPO, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("liqbot is not running on this database")
    assert "bybit: stopped" in r.stdout
    fd = acquire_lock(db)  # stands for a live process that stopped saving its status
    try:
        r = subprocess.run([sys.executable, "-m", "bot.cli.main", "status", "--db", db],
                           capture_output=True, text=True, timeout=60, cwd=REPO, env=clean_env())
        j = subprocess.run([sys.executable, "-m", "bot.cli.main", "status", "--db", db, "--json"],
                           capture_output=True, text=True, timeout=60, cwd=REPO, env=clean_env())
        _status_saved(db, 5_000)
        fresh = subprocess.run([sys.executable, "-m", "bot.cli.main", "status", "--db", db],
                               capture_output=True, text=True, timeout=60, cwd=REPO,
                               env=clean_env())
    finally:
        release_lock(fd)
    assert r.stdout.startswith("liqbot holds this database's lock but last saved its status "
                               "1h ago: it may be stuck"), r.stdout
    doc = json.loads(j.stdout)
    assert doc["running"] is True and doc["stale"] is True and doc["status_age_s"] >= 3600
    assert fresh.stdout.startswith("Feeds as of") and "bybit: up" in fresh.stdout
