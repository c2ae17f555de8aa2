"""`liqbot browse`: the canned queries answer on a real database, and Datasette reads it live."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.ops.browse import EXTRA_HINT, QUERIES, BrowseError, browse, datasette_argv, metadata
from bot.run.replay import run_replay
from feeds.history.replay import load_replay
from feeds.store import Store
from tests.bot.ops.replay_data import write_events
from tests.helpers.cli import REPO, clean_env
from tests.helpers.factories import T0, make_liq

needs_datasette = pytest.mark.skipif(importlib.util.find_spec("datasette") is None,
                                     reason=f"Datasette is an optional extra: {EXTRA_HINT}")
BACKTEST = {"version": 1, "main_horizon": "4h", "rows": [
    {"kind": "short_squeeze", "scope": "all", "severity": None, "horizon": "4h", "n": 37,
     "median": 0.018, "hit": 0.62, "random_hit": 0.51},
    {"kind": "short_squeeze", "scope": "BTC", "severity": 3, "horizon": "4h", "n": 12,
     "median": 0.02, "hit": 0.7, "random_hit": 0.5},
    {"kind": "short_squeeze", "scope": "BTC", "severity": 3, "horizon": "1h", "n": 9,
     "median": 0.5, "hit": 0.9, "random_hit": 0.5},
]}


@pytest.fixture(scope="module")
def alerted_db(tmp_path_factory) -> Path:
    """A database after a replay with two episodes, both delivered to the console."""
    tmp = tmp_path_factory.mktemp("browse")
    data = load_replay([str(write_events(tmp / "events.jsonl"))])
    settings = load_settings(None, environ={}, overrides={"db": str(tmp / "liqbot.db")})
    asyncio.run(run_replay(data, settings, notifiers={"console": ConsoleNotifier(io.StringIO())},
                           services=[]))
    return tmp / "liqbot.db"


def run_query(db: Path, name: str) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(QUERIES[name]["sql"])]
    finally:
        conn.close()


def test_biggest_hours_lists_the_spike_first(alerted_db):
    rows = run_query(alerted_db, "biggest_hours")
    assert rows[0]["source"] == "events" and rows[0]["total_usd"] >= 60e6
    assert rows[0]["short_pct"] > 90 and rows[0]["venues"] == "binance"
    assert rows[0]["hour_utc"] == "2026-01-14T01:00Z"


def test_alerts_sent_shows_each_delivery(alerted_db):
    rows = run_query(alerted_db, "alerts_sent")
    assert rows and {r["status"] for r in rows} == {"sent"}
    assert {r["destination"] for r in rows} == {"console"}
    assert {r["kind"] for r in rows} == {"short_squeeze", "long_cascade"}


@pytest.mark.parametrize("stored", [None, "not json", '{"rows": 5}', json.dumps(BACKTEST)])
def test_episodes_tolerate_any_stored_backtest(alerted_db, tmp_path, stored):
    db = tmp_path / "copy.db"
    db.write_bytes(alerted_db.read_bytes())
    store = Store(db)
    if stored is not None:
        store.set_meta("backtest_latest", stored)
    store.close()
    rows = run_query(db, "episodes")
    assert {r["kind"] for r in rows} == {"short_squeeze", "long_cascade"}
    assert all(r["delivered"] >= 1 and r["dead"] == 0 for r in rows)
    # The spike's episode (extreme at its peak); its 4h tail after the cooldown is notable.
    squeeze = next(r for r in rows if r["kind"] == "short_squeeze" and r["peak_severity"] == 3)
    if stored == json.dumps(BACKTEST):  # this scope and severity, at the main horizon
        assert (squeeze["backtest_n"], squeeze["backtest_median_pct"]) == (12, 2.0)
        cascade = next(r for r in rows if r["kind"] == "long_cascade")
        assert cascade["backtest_n"] is None  # no row for that kind: empty, not an error
    else:
        assert squeeze["backtest_n"] is None


def test_deploy_metadata_file_matches_the_code():
    shipped = json.loads((REPO / "deploy" / "datasette-metadata.json").read_text())
    assert shipped == json.loads(json.dumps(metadata("liqbot")))


def test_live_database_opens_read_only_and_snapshots_immutable(tmp_path):
    live = datasette_argv(tmp_path / "l.db", tmp_path / "m.json", host="127.0.0.1", port=1,
                          immutable=False)
    snap = datasette_argv(tmp_path / "l.db", tmp_path / "m.json", host="127.0.0.1", port=1,
                          immutable=True)
    assert "--immutable" not in live and "--nolock" not in live and live[-1].endswith("l.db")
    assert snap[-2:] == ["--immutable", str(tmp_path / "l.db")]


def test_missing_datasette_names_the_extra(tmp_path, monkeypatch):
    db = tmp_path / "l.db"
    Store(db).close()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(BrowseError, match=r"pip install 'liqbot\[browse\]'"):
        browse(db)


@needs_datasette
async def test_datasette_serves_every_canned_query(alerted_db):
    from datasette.app import Datasette

    ds = Datasette([str(alerted_db)], metadata=metadata(alerted_db.stem))
    await ds.invoke_startup()
    for name in QUERIES:
        resp = await ds.client.get(f"/{alerted_db.stem}/{name}.json?_shape=array")
        assert resp.status_code == 200, resp.text
        assert resp.json(), name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> list[dict]:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback)
        return json.loads(resp.read())


@needs_datasette
def test_browse_sees_rows_the_running_bot_commits_after_it_started(tmp_path):
    """Immutable mode would miss them: they sit in the WAL, not yet in the main file."""
    db, port = tmp_path / "liqbot.db", _free_port()
    writer = Store(db)  # stays open: the bot is "running" and the WAL holds its commits
    writer.insert_liquidations([make_liq(ts_exchange_ms=T0)])
    code = f"from bot.ops.browse import browse; browse({str(db)!r}, port={port})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/liqbot.json?sql=select+count(*)+as+n+from+events&_shape=array"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert _get_json(url) == [{"n": 1}]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        writer.insert_liquidations([make_liq(ts_exchange_ms=T0 + i) for i in range(1, 6)])
        assert _get_json(url) == [{"n": 6}]
        with pytest.raises(urllib.error.HTTPError):  # read-only: writes are refused
            _get_json(f"http://127.0.0.1:{port}/liqbot.json?sql=delete+from+events")
        proc.send_signal(signal.SIGTERM)  # docker stop: the wrapper passes it on to Datasette
        assert proc.wait(30) == 0
        with pytest.raises(OSError):  # Datasette is gone too, not orphaned
            _get_json(url)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        writer.close()


def test_host_names_are_judged_without_crashing():
    from bot.ops.browse import _loopback

    assert _loopback("localhost") and _loopback("127.0.0.1") and _loopback("::1")
    assert not _loopback("0.0.0.0") and not _loopback("db.example.org")


def _datasette(db: Path):
    from datasette.app import Datasette

    from bot.ops.browse import PLUGINS_DIR

    return Datasette([str(db)], metadata=metadata(db.stem), plugins_dir=str(PLUGINS_DIR))


@needs_datasette
async def test_pages_show_iso_times_dollars_and_severity_names(alerted_db):
    ds = _datasette(alerted_db)
    await ds.invoke_startup()
    events = (await ds.client.get(f"/{alerted_db.stem}/events")).text
    assert re.search(r">2026-01-1\d \d\d:\d\d:\d\d(\.\d{3})? UTC<", events)  # ts_ms, ISO
    assert re.search(r"\$\d{1,3}(,\d{3})+<", events)  # usd as $92,109,038, not 92109038.0
    alerts = (await ds.client.get(f"/{alerted_db.stem}/alerts")).text
    assert re.search(r">(notable \(1\)|large \(2\)|extreme \(3\))<", alerts)  # by name
    assert re.search(r'col-window type-str">\d+[mh]<', alerts)  # "1h", not "3600000"
    assert "1768352400000" not in alerts.split("<tbody>")[1]  # no raw ms in the cells
    hours = (await ds.client.get(f"/{alerted_db.stem}/biggest_hours")).text
    assert re.search(r"\$\d{1,3}(,\d{3})+<", hours)
    # The JSON keeps what is stored: scripts see numbers, not display text.
    raw = (await ds.client.get(f"/{alerted_db.stem}/alerts.json?_shape=array")).json()
    assert all(isinstance(r["severity"], int) and isinstance(r["signal_ms"], int) for r in raw)


@needs_datasette
async def test_canned_queries_open_on_their_results(alerted_db):
    ds = _datasette(alerted_db)
    await ds.invoke_startup()
    for name in QUERIES:
        page = (await ds.client.get(f"/{alerted_db.stem}/{name}")).text
        assert "?_show_sql=1" in page, name  # the query is one click away, not in the way
        first_table = page.index("<table")
        before = page[:first_table]
        assert "<textarea" not in before and "<pre" not in before, name  # no SQL above it
        shown = (await ds.client.get(f"/{alerted_db.stem}/{name}?_show_sql=1")).text
        assert '<pre id="sql-query">' in shown[:shown.index("<table")]  # asked for: there


def test_cell_rules_leave_other_values_alone():
    from bot.ops.datasette_plugins.liqbot_cells import cell_text

    assert cell_text("usd", 92109038.0) == "$92,109,038" and cell_text("usd", 12.5) == "$12.50"
    assert cell_text("ts_ms", 1768338000123) == "2026-01-13 21:00:00.123 UTC"
    assert cell_text("next_ms", 0) is None and cell_text("severity", 7) is None
    assert cell_text("span_ms", 3_600_000) == "1h" and cell_text("kind", "x") is None
    assert cell_text("usd", None) is None and cell_text("usd", b"\x00") is None
