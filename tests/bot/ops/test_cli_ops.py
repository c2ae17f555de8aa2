"""The operator's commands through the real console entry point: backup, db check, logs."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from bot.state.schema import migrate_store
from feeds.store import Store
from tests.bot.ops.exposition import parse_metrics
from tests.bot.ops.replay_data import write_events
from tests.helpers.cli import REPO, clean_env, liqbot_cmd, run_liqbot
from tests.helpers.factories import T0, make_liq


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "liqbot.db"
    store = Store(path)
    migrate_store(store)  # the chat tables, as the bot opens the file
    store.insert_liquidations([make_liq(ts_exchange_ms=T0 + i) for i in range(100)])
    store.close()
    return path


def test_backup_command_writes_a_checked_copy(db, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    proc = run_liqbot("backup", "--db", str(db), "--keep", "3", str(folder) + "/")
    assert proc.returncode == 0, proc.stderr
    (copy,) = folder.glob("liqbot-*.db")
    assert str(copy) in proc.stdout + proc.stderr
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 100


def test_db_check_command_prints_integrity_and_tables(db):
    proc = run_liqbot("db", "check", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "integrity ok" in proc.stdout and "events" in proc.stdout
    report = json.loads(run_liqbot("db", "check", "--db", str(db), "--json").stdout)
    assert report["ok"] is True and {t["name"] for t in report["tables"]} >= {"events", "outbox"}


def test_db_check_exits_non_zero_on_a_missing_file(tmp_path):
    proc = run_liqbot("db", "check", "--db", str(tmp_path / "nope.db"))
    assert proc.returncode != 0 and "no such database" in proc.stderr


def test_browse_command_is_there():
    proc = run_liqbot("browse", "--help")
    assert proc.returncode == 0 and "--snapshot" in proc.stdout


def test_log_json_flag_makes_every_stderr_line_json(tmp_path):
    events = write_events(tmp_path / "events.jsonl")
    proc = run_liqbot("run", "--replay", str(events), "--db", str(tmp_path / "r.db"),
                      "--log-json", "-v")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)
    # That secrets stay out of JSON logs is test_secrets.py's job: there the token is used.


def test_replay_serves_the_ops_page_only_with_ops(tmp_path):
    events = write_events(tmp_path / "events.jsonl", hours=2, spikes={})
    quiet = run_liqbot("run", "--replay", str(events), "--db", str(tmp_path / "a.db"))
    served = run_liqbot("run", "--replay", str(events), "--db", str(tmp_path / "b.db"), "--ops")
    assert quiet.returncode == served.returncode == 0, quiet.stderr + served.stderr
    assert "/healthz" not in quiet.stderr
    assert "ops: /healthz and /metrics on http://127.0.0.1:" in served.stderr


def test_live_run_serves_health_and_metrics_and_says_not_ok_without_feeds(tmp_path):
    """`liqbot run` with every venue unreachable: /healthz 503, /metrics parses, SIGTERM stops."""
    cfg = tmp_path / "liqbot.toml"
    cfg.write_text('[feeds]\nvenues = ["binance"]\nbackoff_cap_s = 0.4\n[feeds.ws_urls]\n'
                   'binance = "ws://127.0.0.1:9/market/ws/!forceOrder@arr"\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(liqbot_cmd("run", "--config", str(cfg), "--db", str(tmp_path / "l.db")),
                            cwd=REPO, env=clean_env(LIQBOT_OPS_LISTEN=f"127.0.0.1:{port}"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                pytest.fail("healthz said ok with every feed down")
            except urllib.error.HTTPError as exc:
                status, body = exc.code, json.loads(exc.read())
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "no ops endpoint"
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            samples = parse_metrics(resp.read().decode())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert status == 503 and body == {"ok": False, "scheduler": "running", "store": "ok",
                                        "venues": {"binance": "down"}}
    assert samples["liqbot_healthy"][()] == 0
    assert samples["liqbot_feed_connected"][(("venue", "binance"),)] == 0
    assert proc.returncode == 0 and "Traceback" not in err


def test_live_run_with_a_busy_ops_port_exits_with_one_clear_line(tmp_path):
    cfg = tmp_path / "liqbot.toml"
    cfg.write_text('[feeds]\nvenues = ["binance"]\n[feeds.ws_urls]\n'
                   'binance = "ws://127.0.0.1:9/market/ws/!forceOrder@arr"\n')
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_liqbot("run", "--config", str(cfg), "--db", str(tmp_path / "l.db"),
                          timeout=60, LIQBOT_OPS_LISTEN=f"127.0.0.1:{port}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"ops.listen: cannot listen on 127.0.0.1:{port}" in proc.stderr
