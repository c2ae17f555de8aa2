"""Issue 15, items 5-6: every bad setting, argument, file or event, run as the user would.

Each case gives one `error:` line naming what is wrong and a non-zero exit — never a
traceback — or, for events, is kept out of the store and counted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.state.schema import migrate_store
from feeds.store import Store
from tests.bot.ops.replay_data import write_events
from tests.helpers.cli import REPO, clean_env, run_liqbot
from tests.helpers.factories import T0, make_liq


@dataclass
class Case:
    name: str
    args: list[str]  # {dir} is the test's folder, {events} a small recorded file
    says: str  # the error line names this
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    toml: str | None = None  # written to {dir}/c.toml and passed as --config
    prepare: Callable[[Path], None] | None = None


def _corrupt_version(folder: Path) -> None:
    store = Store(folder / "x.db")
    store.set_meta("schema_version", "v7!")
    store.close()


def _a_file(folder: Path) -> None:
    (folder / "report").write_text("not a folder")


TOTALS = ["totals", "--db", "{dir}/x.db"]
REPLAY = ["run", "--replay", "{events}", "--db", "{dir}/x.db"]
BACKTEST = ["backtest", "--data", "{events}", "--out", "{dir}/out"]

CASES = [
    # -- item 5: numbers that are not numbers -------------------------------------------
    Case("nan interval", TOTALS, "eval_interval_s", toml="[scheduler]\neval_interval_s = nan"),
    Case("inf interval", TOTALS, "deliver_interval_s",
         toml="[scheduler]\ndeliver_interval_s = inf"),
    Case("nan cooldown", TOTALS, "cooldown_s", toml="[policy]\ncooldown_s = nan"),
    Case("1e400 retention", TOTALS, "retention", toml="[retention]\ndays = 1e400"),
    Case("nan share", TOTALS, "min_share", toml="[signals]\nmin_share = nan"),
    Case("nan tier", TOTALS, "tiers_usd_1h", toml="[signals]\ntiers_usd_1h = [1e6, nan, 5e7]"),
    Case("speed nan", [*REPLAY, "--speed", "nan"], "--speed"),
    Case("speed inf", [*REPLAY, "--speed", "inf"], "--speed"),
    Case("fees nan", [*BACKTEST, "--fees-bps", "nan"], "--fees-bps"),
    Case("slippage inf", [*BACKTEST, "--slippage-bps", "inf"], "--slippage-bps"),
    # -- item 3/6: settings that load but could never work --------------------------------
    Case("unknown window", TOTALS, "signals.windows", toml='[signals]\nwindows = ["7m", "1h"]'),
    Case("twice a window", TOTALS, "signals.windows", toml='[signals]\nwindows = ["1h", "1H"]'),
    Case("log level", TOTALS, "log_level", toml='log_level = "LOUD"'),
    Case("log level env", ["backup", "--db", "{dir}/x.db", "{dir}/bk/"], "LIQBOT_LOG_LEVEL",
         env={"LIQBOT_LOG_LEVEL": "LOUD"}),
    Case("api url", TOTALS, "LIQBOT_TELEGRAM_API_URL",
         env={"LIQBOT_TELEGRAM_API_URL": "not a url"}),
    Case("api port", TOTALS, "telegram.api_url",
         env={"LIQBOT_TELEGRAM_API_URL": "http://127.0.0.1:99999/bot"}),
    Case("ops port", TOTALS, "ops.listen", env={"LIQBOT_OPS_LISTEN": "127.0.0.1:99999"}),
    Case("chat ids", TOTALS, "LIQBOT_TELEGRAM_CHAT_IDS", env={"LIQBOT_TELEGRAM_CHAT_IDS": "abc"}),
    Case("admin ids", TOTALS, "telegram.admin_chat_ids",
         toml='[telegram]\nadmin_chat_ids = ["12; DROP"]'),
    Case("channel ids", TOTALS, "discord.channel_ids",
         env={"LIQBOT_DISCORD_CHANNEL_IDS": "general"}),
    Case("blank token", TOTALS, "LIQBOT_TELEGRAM_TOKEN", env={"LIQBOT_TELEGRAM_TOKEN": "   "}),
    Case("blank token file", TOTALS, "telegram.token", toml='[telegram]\ntoken = ""'),
    Case("webhook", TOTALS, "discord.webhook_urls",
         env={"LIQBOT_DISCORD_WEBHOOK_URLS": "discord.com/api/webhooks/1/SECRET"}),
    Case("ws url", TOTALS, "feeds.ws_urls.binance",
         toml='[feeds.ws_urls]\nbinance = "https://not-a-socket"'),
    Case("coin", TOTALS, "coinglass.symbols", toml='[coinglass]\nsymbols = ["BTC", "1 E"]'),
    Case("plan", TOTALS, "coinglass.plan", toml='[coinglass]\nplan = "gold"'),
    # -- item 6: files and folders ---------------------------------------------------------
    Case("db folder missing", [*REPLAY[:3], "--db", "/nonexistent/dir/x.db"], "/nonexistent",
         code=1),
    Case("totals typo", ["totals", "--db", "{dir}/typo.db"], "no such database file", code=1),
    Case("status typo", ["status", "--db", "{dir}/typo.db"], "no such database file", code=1),
    Case("db check typo", ["db", "check", "--db", "{dir}/typo.db"], "no such database",
         code=1),
    Case("browse typo", ["browse", "--db", "{dir}/typo.db"], "no such database", code=1),
    # -- issue 14: a secret written into the TOML is refused, never echoed -----------------
    Case("plaintext token", TOTALS, "$env:LIQBOT_TELEGRAM_TOKEN",
         toml='[telegram]\ntoken = "123456:SECRETSECRETSECRETSECRETSECRET"'),
    Case("plaintext webhook", TOTALS, "discord.webhook_urls",
         toml='[discord]\nwebhook_urls = ["https://discord.com/api/webhooks/1/SECRETXXXXXX"]'),
    Case("plaintext api key", TOTALS, "$file:",
         toml='[coinglass]\napi_key = "SECRET0123456789"'),
    Case("schema_version", TOTALS, "not a schema version", code=1, prepare=_corrupt_version),
    Case("schema_version run", REPLAY, "not a schema version", code=1, prepare=_corrupt_version),
    Case("backtest out", [*BACKTEST[:-1], "{dir}/report"], "is a file", code=1, prepare=_a_file),
    Case("backup keep 0", ["backup", "--db", "{dir}/x.db", "--keep", "0", "{dir}/bk/"],
         "--keep must be at least 1", code=1, prepare=lambda d: Store(d / "x.db").close()),
    Case("decode coinglass", ["decode", "--exchange", "coinglass"], "not a CoinGlass frame",
         code=1),
]


def _fill(args: list[str], folder: Path, events: Path) -> list[str]:
    return [a.format(dir=folder, events=events) for a in args]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_bad_input_is_one_line_and_a_non_zero_exit(case: Case, tmp_path: Path) -> None:
    events = write_events(tmp_path / "events.jsonl", hours=2)
    args = _fill(case.args, tmp_path, events)
    if case.toml is not None:
        (tmp_path / "c.toml").write_text(case.toml + "\n")
        args += ["--config", str(tmp_path / "c.toml")]
    if case.prepare is not None:
        case.prepare(tmp_path)
    r = run_liqbot(*args, stdin='{"hello": 1}\n', timeout=60, **case.env)
    errors = [line for line in r.stderr.splitlines() if "error:" in line or "line 1:" in line]
    assert r.returncode == case.code, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and len(errors) == 1, r.stderr[-2000:]
    assert case.says in errors[0], errors[0]
    assert "SECRET" not in r.stderr
    assert not (tmp_path / "typo.db").exists()  # read-only commands never create a file


# A full disk and a read-only database, made inside SQLite so no root or mount is needed:
# the CLI runs as the user starts it, with the store capped (max_page_count) or refusing
# writes (query_only) once it is open.
_LIMITED = """
import sys
from feeds.store import core
opened = core.Store.__init__
def limited(self, *args, **kwargs):
    opened(self, *args, **kwargs)
    conn = self.database.conn
    if sys.argv[1] == "full":
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    else:
        conn.execute("PRAGMA query_only = ON")
core.Store.__init__ = limited
from bot.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(("fault", "says"), [("full", "database or disk is full"),
                                             ("readonly", "readonly database")])
def test_a_full_or_read_only_database_stops_a_replay_with_one_line_and_loses_nothing(
        fault: str, says: str, tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    store = Store(db)
    migrate_store(store)
    store.insert_liquidations([make_liq(ts_exchange_ms=T0 - 60_000 + i) for i in range(5)])
    store.close()
    events = write_events(tmp_path / "events.jsonl", hours=6)
    r = subprocess.run([sys.executable, "-c", _LIMITED, fault, "run", "--replay", str(events),
                        "--db", str(db)], capture_output=True, text=True, timeout=120,
                       cwd=REPO, env=clean_env())
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(errors) == 1 and says in errors[0], errors
    with sqlite3.connect(db) as conn:  # what was stored before is all there, intact
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] >= 5


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        r = run_liqbot("run", "--replay", str(write_events(tmp_path / "e.jsonl", hours=1)),
                       "--db", str(folder / "x.db"))
    finally:
        folder.chmod(0o755)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if "error:" in line]


def test_implausible_events_are_counted_never_stored_never_alerted(tmp_path: Path) -> None:
    """The issue's events: usd 1e17 against qty x price 950, a price of 1e17, a timestamp in
    2200, symbols with NUL and a right-to-left override. Each fault is logged once."""
    good = json.loads(write_events(tmp_path / "g.jsonl", hours=1).read_text().splitlines()[0])

    def bad(**changes: object) -> str:
        return json.dumps({**good, **changes})

    lines = [json.dumps(good)] + 3 * [
        bad(usd=1e17, qty=0.0095, price=100_000.0, ts=good["ts"] + 1),
        bad(price=1e17, usd=1e17 * good["qty"], ts=good["ts"] + 2),
        bad(ts=7_258_118_400_000),
        bad(symbol="BTC\u0000USDT", ts=good["ts"] + 3),
        bad(symbol="BTC\u202eUSDT", ts=good["ts"] + 4),
    ]
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    db = tmp_path / "x.db"
    r = run_liqbot("run", "--replay", str(tmp_path / "bad.jsonl"), "--db", str(db))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    rejected = [line for line in r.stderr.splitlines() if "rejected an implausible" in line]
    assert sorted(line.split("(")[1].split(")")[0] for line in rejected) == [
        "price", "symbol", "timestamp", "usd_vs_qty_price"]  # once per fault, not per event
    assert "T liquidated" not in r.stdout and "\u202e" not in r.stdout + r.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), max(usd) FROM events").fetchone() == (
            1, good["usd"])
