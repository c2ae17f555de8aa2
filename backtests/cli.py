"""`liqbot backtest`: replay history through the live signal path and report what followed.

    liqbot backtest --data F... [--symbol S] [--horizons 1h,4h,24h] [--out DIR] [--json]
                    [--config F] [--fees-bps X] [--slippage-bps X] [--sweep KEY=V1,V2 ...]
                    [--from DATE] [--until DATE] [--placebo-draws N] [--bootstrap-draws N]

Writes report.md, report.html (self-contained), PNG charts and results.json into DIR and
prints the summary table. Hooked into `bot.cli.main` with `add_parser` and `run`; `main` runs it
alone (python -m backtests.cli ...).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO


def date_ms(text: str) -> int:
    """An argparse type: `2026-03-01` or `2026-03-01T12:00[:00][Z]` (UTC) -> epoch ms."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date like 2026-03-01 or 2026-03-01T12:00Z, got {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def number(low: float = -math.inf, high: float = math.inf) -> Callable[[str], float]:
    """An argparse type: a finite number within [low, high] (float() alone takes nan, inf)."""
    bounds = f" from {low:g} to {high:g}" if math.isfinite(low) or math.isfinite(high) else ""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a finite number{bounds}, got {text!r}")
        return value
    return parse


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `backtest` subcommand to a parser's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "backtest", help="event study of every signal over history: reports, charts, JSON")
    p.add_argument("--data", nargs="+", required=True, metavar="FILE",
                   help="history files or folders (any format `run --replay` reads)")
    p.add_argument("--config", help="TOML config: its [signals] and [policy] cooldown_s apply")
    p.add_argument("--symbol", help="symbol for files that carry none (CoinGlass exports)")
    p.add_argument("--horizons", default="1h,4h,24h", help="forward-return horizons")
    p.add_argument("--main-horizon", help="horizon quoted in headlines (default 4h or middle)")
    p.add_argument("--out", default="backtest-report", metavar="DIR", help="output folder")
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")
    p.add_argument("--tz-offset", type=number(-24, 24), default=6.0, metavar="HOURS",
                   help="Coinalyze exports: hours their local time is ahead of UTC (default 6)")
    p.add_argument("--instruments", help="OKX instruments JSON for contract values")
    p.add_argument("--fees-bps", type=number(), default=5.0,
                   help="fees per side, bps (default 5)")
    p.add_argument("--slippage-bps", type=number(), default=5.0,
                   help="slippage per side, bps (default 5)")
    p.add_argument("--latency-s", type=number(), default=60.0,
                   help="executed trades enter this long after the window closes, when the "
                        "data has 1m/5m prices (default 60)")
    p.add_argument("--impact-bps", type=number(), default=1.0,
                   help="extra entry slippage per $10M liquidated in the window (default 1)")
    p.add_argument("--placebo-draws", type=int, default=10_000,
                   help="random-time draws per row (10000)")
    p.add_argument("--bootstrap-draws", type=int, default=10_000,
                   help="block-bootstrap draws per row (10000)")
    p.add_argument("--from", dest="from_ms", type=date_ms, metavar="DATE",
                   help="study only alerts decided from this date (UTC); earlier data still "
                   "feeds the baselines, as it would live")
    p.add_argument("--until", dest="until_ms", type=date_ms, metavar="DATE",
                   help="study nothing at or after this date (UTC): no alert, return or "
                   "placebo entry reaches past it, so a later period stays a hold-out")
    p.add_argument("--seed", type=int, default=7, help="random seed (bootstrap and placebo)")
    p.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2",
                   help="walk-forward sweep over these values (or `default` for a 120-point grid)")
    p.add_argument("--folds", type=int, default=3,
                   help="walk-forward folds: tune on period i, test on i+1 (default 3)")
    p.add_argument("--db", help="also keep the results in this liqbot database: alerts and "
                   "/backtest quote the latest")
    return p


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the backtest the parsed arguments describe; return the exit status."""
    from backtests.pipeline import run_backtest  # numpy, pandas, matplotlib: only now

    return run_backtest(args, out, err)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: `python -m backtests.cli --data F ...`."""
    parser = argparse.ArgumentParser(prog="liqbot")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["backtest", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":
    sys.exit(main())
