"""`liqbot chart`: the PNG an alert or `/chart` sends, drawn from a database to a file.

    liqbot chart --db liqbot.db --symbol BTC --window 1h --at latest --out btc.png
    liqbot chart --db liqbot.db --alert latest-extreme --out alert.png

It prints the text that goes with the picture (the alert, or the `/chart` caption). Kept
apart from bot/cli/main.py, which only registers it: matplotlib loads when it draws.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.config import ConfigError, Settings

LATEST_EXTREME = "latest-extreme"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               common: Callable[[argparse.ArgumentParser], None]) -> None:
    ch = sub.add_parser("chart", help="draw the chart an alert or /chart sends, to a PNG file")
    common(ch)
    ch.add_argument("--out", required=True, help="PNG file to write")
    ch.add_argument("--alert", metavar="KEY",
                    help=f"a recorded alert's key, or {LATEST_EXTREME}: its window and text")
    ch.add_argument("--symbol", help="coin (default: every coin)")
    ch.add_argument("--window", default="1h", help="5m, 15m, 30m, 1h, 4h or 24h (default 1h)")
    ch.add_argument("--at", default="latest",
                    help="window end: latest (newest data, default), now or an ISO time")


def run(args: argparse.Namespace, settings: Settings, at_ms: int | None, out: TextIO) -> int:
    """Draw and write the chart; print its text. `at_ms` None: the newest data."""
    from bot.charts import ChartSpec, load_chart, render_png
    from bot.commands import Ctx, parse_symbol
    from bot.render import render_text
    from bot.state.alerts import AlertLog
    from feeds.model import MARKET
    from feeds.store import Store, parse_window

    try:
        parse_window(args.window)  # checked before the database is opened
        symbol = parse_symbol(args.symbol) if args.symbol else None
    except ValueError as exc:
        raise ConfigError(f"--symbol/--window: {exc}") from None
    store = Store(settings.db, existing=True)  # a typo must not leave an empty database
    try:
        if args.alert:
            key = None if args.alert == LATEST_EXTREME else args.alert
            alert = AlertLog(store).find(key, min_severity=3)
            if alert is None:
                raise ConfigError(f"--alert: no such alert in {settings.db}: {args.alert}")
            spec, text = ChartSpec.of(alert), render_text(alert)
        else:
            at = store.latest_ms() if at_ms is None else at_ms
            if at is None:
                raise ConfigError("--at latest: the database holds no data yet")
            from bot.commands import cmd_chart

            words = [w for w in (symbol, args.window) if w]
            try:  # the chat grammar: a coin the store has never seen is refused by name
                reply = cmd_chart(store, Ctx("cli", "", at), words)
            except ValueError as exc:
                raise ConfigError(f"--symbol/--window: {exc}") from None
            if reply.chart is None:
                raise ConfigError(reply.text)
            spec, text = ChartSpec.parse(reply.chart), reply.text
        data = load_chart(store, spec)
    finally:
        store.close()
    if data.empty:
        scope = "every coin" if spec.scope == MARKET else spec.scope
        raise ConfigError(f"nothing to chart for {scope} around --at {args.at}")
    Path(args.out).write_bytes(render_png(data))
    out.write(text + "\n")
    return 0
