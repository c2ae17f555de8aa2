"""A light process (issue 16): the everyday commands never load the heavy libraries.

pandas, pyarrow and numpy belong to the history loaders and backtests, matplotlib to the
charts, discord.py and python-telegram-bot to a run that configures them, sqlite-utils to
`db check` and `browse`. Each check runs the real entry point in a fresh interpreter and
reads `sys.modules` as the command ends, so an import added anywhere on the path fails it.
Timings are bench/startup.py's business, not a test's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.startup import HEAVY  # one list of the libraries a light command must not load
from feeds.store import Store
from tests.helpers.cli import REPO, clean_env
from tests.helpers.factories import T0, make_liq

# Network clients: needed by a run, not by a command that reads the database.
CLIENTS = ("aiohttp", "websockets")
# Run main() as the console script would, then print which heavy packages were imported.
PROBE = """
import json, sys
from bot.cli.main import main
heavy = {heavy!r}
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
print("\\nLOADED " + json.dumps(sorted(m for m in heavy if m in sys.modules)))
sys.exit(code or 0)
"""


def loaded(*argv: str, heavy: tuple[str, ...] = HEAVY, **env: str
           ) -> tuple[int, list[str], str]:
    code = PROBE.format(heavy=heavy, argv=list(argv))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=REPO, env=clean_env(**env))
    last = r.stdout.rstrip().splitlines()[-1]
    assert last.startswith("LOADED "), r.stdout + r.stderr
    return r.returncode, json.loads(last.removeprefix("LOADED ")), r.stderr


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "l.db"
    s = Store(path)
    s.insert_liquidations([make_liq(ts_exchange_ms=T0 + i * 60_000) for i in range(3)])
    s.close()
    return str(path)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["totals", "--help"],
                                  ["run", "--help"], ["backtest", "--help"]])
def test_help_and_version_load_nothing_heavy(argv):
    code, heavy, err = loaded(*argv)
    assert code == 0, err
    assert heavy == []


def test_totals_and_status_load_nothing_heavy(db):
    code, heavy, err = loaded("totals", "--db", db, "--at", "latest", "--window", "24h")
    assert code == 0, err
    assert heavy == []
    code, heavy, err = loaded("status", "--db", db)
    assert code == 0, err
    assert heavy == []


@pytest.mark.parametrize("argv", [["--help"], ["totals", "--at", "latest"], ["status"]])
def test_reading_commands_load_no_network_client(db, argv):
    args = argv if argv == ["--help"] else [*argv, "--db", db]
    code, loaded_clients, err = loaded(*args, heavy=CLIENTS)
    assert code == 0, err
    assert loaded_clients == []


def test_the_probe_sees_a_heavy_import(db):
    """The check can fail: a command that does load pandas is seen loading it."""
    code, heavy, err = loaded("db", "check", "--db", db)
    assert code == 0, err
    assert "sqlite_utils" in heavy  # db check uses sqlite-utils' table listing


def test_a_live_run_module_does_not_pull_the_replay_loaders():
    """`liqbot run` without --replay: importing the live loop brings no pandas or pyarrow."""
    code = ("import sys, bot.cli.main, bot.run.live; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=REPO, env=clean_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    r = subprocess.run([sys.executable, "-m", "bot.cli.main", "--version"], capture_output=True,
                       text=True, timeout=60, cwd=REPO, env=clean_env())
    assert r.returncode == 0 and r.stdout == f"liqbot {version('liqbot')}\n", r.stderr



def test_venue_names_for_light_commands_agree_with_the_venue_modules():
    """feeds/venues/names.py (read by settings and totals) says what the modules say."""
    from feeds.venues import names, registry

    assert names.VENUE_NAMES == tuple(registry.VENUES)
    assert names.FUNDING_VENUES == tuple(registry.FUNDING)
    assert names.SAMPLED_VENUES == {n for n, v in registry.VENUES.items() if v.SAMPLED}
    assert set(names.DEFAULT_LIVE) <= set(names.VENUE_NAMES)
