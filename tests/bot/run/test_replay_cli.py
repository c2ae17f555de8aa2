"""`liqbot run --replay` end to end: real files, real console output, kill -9 and rerun."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.helpers.cli import (
    REPO,
    SHARED_DATA,
    alert_blocks,
    clean_env,
    liqbot_cmd,
    run_liqbot,
    write_coinglass_csv,
)

COINGLASS_1H = SHARED_DATA / "coinglass_btc" / "liquidations_1h.csv"
REGIME_1H = SHARED_DATA / "coinglass_btc" / "regime_1h.csv"
needs_data = pytest.mark.skipif(not COINGLASS_1H.exists(),
                                reason=f"real data folder absent: {SHARED_DATA}")


@pytest.mark.realdata
@needs_data
def test_replay_coinglass_finds_the_big_squeeze_and_cascade(tmp_path):
    r = run_liqbot("run", "--replay", str(COINGLASS_1H), "--symbol", "BTC", "--speed", "0",
                   "--db", str(tmp_path / "r.db"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    squeeze = lines.index("$84.2M liquidated in 1h, 98% shorts")
    assert "SHORT SQUEEZE" in lines[squeeze - 1]
    assert lines[squeeze + 2].startswith("2026-04-17 13:00–14:00 UTC")
    cascade = [i for i, ln in enumerate(lines) if ln.startswith("2026-05-17 23:00–00:00 UTC")]
    assert cascade and "LONG CASCADE" in lines[cascade[0] - 3]
    assert lines[cascade[0] - 2].endswith("% longs")
    # Cooldown and episode grouping: far fewer alerts than hours with liquidations.
    hours = sum(1 for row in COINGLASS_1H.read_text().splitlines()[1:]
                if float(row.split(",")[4]) > 0)
    assert len(alert_blocks(r.stdout)) < hours / 10


@pytest.mark.realdata
@needs_data
def test_replay_regime_file_uses_price_and_funding_context(tmp_path):
    r = run_liqbot("run", "--replay", str(REGIME_1H), "--symbol", "BTC",
                   "--db", str(tmp_path / "r.db"))
    assert r.returncode == 0, r.stderr
    text = r.stdout
    i = text.index("$84.2M liquidated in 1h, 98% shorts")
    block = text[i:text.index("\n\n", i)]
    assert "Price +" in block and "Funding -" in block


def test_replay_twice_sends_nothing_twice(tmp_path):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, {50: (1e6, 60e6), 120: (40e6, 0.5e6)})
    db = str(tmp_path / "r.db")
    first = run_liqbot("run", "--replay", str(csv), "--symbol", "BTC", "--db", db)
    assert first.returncode == 0, first.stderr
    assert len(alert_blocks(first.stdout)) == 2
    second = run_liqbot("run", "--replay", str(csv), "--symbol", "BTC", "--db", db)
    assert second.returncode == 0 and alert_blocks(second.stdout) == []


def _sent_blocks(db: str) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT alert_key FROM outbox WHERE status = 'sent'").fetchall()
        return {r[0] for r in rows}
    except sqlite3.OperationalError:  # killed before the schema was created
        return set()
    finally:
        conn.close()


def _event_count(db: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM agg_buckets").fetchone()[0]
    finally:
        conn.close()


def test_kill_between_send_and_ack_resends_only_that_alert(tmp_path):
    spikes = {h: (0.5e6, 30e6 + h) for h in range(20, 200, 12)}  # 15 separate episodes
    csv = write_coinglass_csv(tmp_path / "cg.csv", 220, spikes)
    clean = run_liqbot("run", "--replay", str(csv), "--symbol", "BTC",
                       "--db", str(tmp_path / "clean.db"))
    expected = alert_blocks(clean.stdout)
    assert len(expected) == 15

    db = str(tmp_path / "crash.db")
    killed = run_liqbot("run", "--replay", str(csv), "--symbol", "BTC", "--db", db,
                        LIQBOT_CRASH_AT="after_send:5")
    assert killed.returncode == -signal.SIGKILL
    printed = alert_blocks(killed.stdout)
    assert printed == expected[:5]  # the 5th was printed, then the process died before the ack
    assert len(_sent_blocks(db)) == 4

    rerun = run_liqbot("run", "--replay", str(csv), "--symbol", "BTC", "--db", db)
    assert rerun.returncode == 0, rerun.stderr
    # The unacknowledged 5th is resent (at least once); the 4 acknowledged never are.
    assert alert_blocks(rerun.stdout) == expected[4:]
    assert _event_count(db) == _event_count(str(tmp_path / "clean.db"))


@pytest.mark.realdata
@needs_data
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_kill9_during_replay_loses_nothing(tmp_path, seed):
    clean = run_liqbot("run", "--replay", str(REGIME_1H), "--symbol", "BTC",
                       "--db", str(tmp_path / "clean.db"))
    expected = alert_blocks(clean.stdout)
    db = str(tmp_path / "crash.db")
    proc = subprocess.Popen(
        liqbot_cmd("run", "--replay", str(REGIME_1H), "--symbol", "BTC", "--db", db),
        cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        time.sleep(random.Random(seed).uniform(1.0, 3.0))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    acked = _sent_blocks(db)
    rerun = run_liqbot("run", "--replay", str(REGIME_1H), "--symbol", "BTC", "--db", db)
    assert rerun.returncode == 0, rerun.stderr
    first, second = alert_blocks(out), alert_blocks(rerun.stdout)
    # Nothing lost: every alert of a clean run was printed by one run or the other...
    assert set(expected) == set(first) | set(second)
    # ...and nothing acknowledged was printed again: overlap is at most the one in flight.
    assert len(set(first) & set(second)) <= 1
    assert len(first) + len(second) - len(expected) <= 1
    assert len(acked) >= len(first) - 1
    assert _event_count(db) == _event_count(str(tmp_path / "clean.db"))


def test_replay_rejects_unknown_file_with_a_clear_error(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\nworld\n")
    r = run_liqbot("run", "--replay", str(bad), "--db", str(tmp_path / "x.db"))
    assert r.returncode != 0
    assert "liqbot: error:" in r.stderr and "notes.txt" in r.stderr
    assert "Traceback" not in r.stderr


def test_second_instance_on_same_db_exits_with_clear_error(tmp_path):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 3000, {})
    db = str(tmp_path / "r.db")
    first = subprocess.Popen(liqbot_cmd("run", "--replay", str(csv), "--speed", "3600000",
                                        "--db", db), cwd=REPO, env=clean_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        second = run_liqbot("run", "--replay", str(csv), "--db", db, timeout=30)
        assert second.returncode != 0
        assert "already using" in second.stderr
    finally:
        first.kill()
        first.wait(timeout=10)
