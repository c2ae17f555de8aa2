"""The operator's commands: `liqbot backup`, `liqbot db check`, `liqbot browse`.

Kept apart from bot/cli/main.py, which only registers them (`add_parsers`) and hands them the
loaded settings (`run`). None of them takes the instance lock: each is safe next to a
running bot.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TextIO

from bot.config import Settings
from bot.ops.backup import BackupError, backup, db_check, render_check
from bot.ops.browse import EXTRA_HINT, BrowseError, browse

COMMANDS = frozenset({"backup", "db", "browse"})


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register the three commands on the `liqbot` subparsers; `common` adds --config/--db."""
    bk = sub.add_parser("backup", help="copy the database, safely while liqbot runs")
    common(bk)
    bk.add_argument("dest", metavar="DEST",
                    help="a file, or a directory for a timestamped liqbot-YYYYmmddTHHMMSSZ.db")
    bk.add_argument("--keep", type=int, metavar="N",
                    help="into a directory: keep only the newest N backups there, the new "
                         "one included (N >= 1)")
    bk.add_argument("--no-verify", action="store_true",
                    help="skip integrity_check of the copy (faster; the copy is unproven)")

    db = sub.add_parser("db", help="database checks")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    chk = actions.add_parser("check", help="integrity_check, rows and bytes per table")
    common(chk)
    chk.add_argument("--json", action="store_true", help="machine-readable output")
    chk.add_argument("--no-sizes", action="store_true",
                     help="skip the per-table byte sizes (reads every page)")

    br = sub.add_parser("browse", help=f"explore the database in Datasette ({EXTRA_HINT})")
    common(br)
    br.add_argument("--host", default="127.0.0.1",
                    help="address to serve on (default 127.0.0.1; Datasette has no login)")
    br.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    br.add_argument("--snapshot", action="store_true",
                    help="serve a fresh backup instead of the live file (immutable, faster)")
    br.add_argument("--open", action="store_true", help="open a web browser")


def run(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    """Run one of COMMANDS; problems become one `liqbot: error:` line and exit status 1."""
    out = out or sys.stdout
    try:
        if args.command == "backup":
            return _backup(args, settings.db, out)
        if args.command == "db":
            return _check(args, settings.db, out)
        return browse(settings.db, host=args.host, port=args.port, snapshot=args.snapshot,
                      open_browser=args.open)
    except (BackupError, BrowseError) as exc:
        print(f"liqbot: error: {exc}", file=sys.stderr)
        return 1


def _backup(args: argparse.Namespace, db: str, out: TextIO) -> int:
    r = backup(db, args.dest, keep=args.keep, verify=not args.no_verify)
    out.write(f"{r.path}: {r.bytes / 1024 / 1024:.1f} MiB in {r.seconds:.1f}s, "
              f"integrity {r.integrity}")
    out.write(f"; removed {len(r.removed)} old backup(s)" if r.removed else "")
    out.write(f"; removed {len(r.cleaned)} leftover(s) of killed backups\n" if r.cleaned
              else "\n")
    return 0


def _check(args: argparse.Namespace, db: str, out: TextIO) -> int:
    report = db_check(db, sizes=not args.no_sizes)
    out.write((json.dumps(report.as_dict()) if args.json else render_check(report)) + "\n")
    return 0 if report.ok else 1
