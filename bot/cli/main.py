"""`liqbot` command line: run, run --replay, totals, decode, and the operator's commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from backtests import cli as backtest_cli
from bot import version
from bot.cli import chart as cli_chart
from bot.cli import ops as cli_ops
from bot.config import ConfigError, Settings, load_settings
from bot.ops.logs import settings_secrets, setup_logging
from bot.render import render_totals
from bot.run.lock import AlreadyRunning
from feeds.model import MARKET, ParseError
from feeds.store import Store, StoreError, parse_window
from feeds.venues.names import SAMPLED_VENUES

logger = logging.getLogger("liqbot")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liqbot", description=__doc__)
    p.add_argument("--version", action=_Version, help="print liqbot's version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="stream venues (or replay files), alert on squeezes/cascades")
    _common(run)
    run.add_argument("--replay", nargs="+", metavar="FILE", help="replay recorded data instead")
    run.add_argument("--symbol", help="symbol for files that carry none (CoinGlass exports)")
    run.add_argument("--speed", type=backtest_cli.number(0, 1e9), default=0.0,
                     help="replay speed: 0 = as fast as possible (default), 60 = 60x real time")
    run.add_argument("--tz-offset", type=backtest_cli.number(-24, 24), default=6.0, metavar="HOURS",
                     help="Coinalyze exports: hours their local time is ahead of UTC (default 6)")
    run.add_argument("--instruments", help="OKX instruments JSON for contract values")
    run.add_argument("--ops", action="store_true",
                     help="replay: serve /healthz and /metrics on [ops] listen too "
                          "(a live run always does unless it is off)")

    tot = sub.add_parser("totals", help="liquidation totals for a window from the database")
    _common(tot)
    tot.add_argument("--window", default="1h", help="5m, 15m, 30m, 1h, 4h or 24h (default 1h)")
    tot.add_argument("--symbol", help="coin or venue symbol (BTC, BTCUSDT)")
    tot.add_argument("--exchange", help="one venue (binance, bybit, ...)")
    tot.add_argument("--at", default="now",
                     help="window end: now (default), latest (newest data) or ISO time")
    tot.add_argument("--json", action="store_true", help="machine-readable output")

    bf = sub.add_parser("backfill", help="load history from an aggregate source into the database")
    _common(bf)
    bf.add_argument("--coinglass", action="store_true", required=True,
                    help="CoinGlass v4 aggregated history (needs LIQBOT_COINGLASS_API_KEY)")
    bf.add_argument("--since", default="30d", help="how far back: 30d, 72h (default 30d)")
    bf.add_argument("--symbols", default="BTC,ETH,SOL", help="comma list of coins")
    bf.add_argument("--interval", default="1h", help="bar size: 1h, 4h, 1d ... (plan limits apply)")
    bf.add_argument("--plan", help="CoinGlass plan (hobbyist, startup, standard, professional)")

    backtest_cli.add_parser(sub)

    st = sub.add_parser("status", help="per venue: connected, last event, rate, gaps, completeness")
    _common(st)
    st.add_argument("--json", action="store_true", help="machine-readable output")

    cli_ops.add_parsers(sub, _common)
    cli_chart.add_parser(sub, _common)

    dec = sub.add_parser("decode", help="raw exchange frames on stdin -> normalized JSON lines")
    dec.add_argument("--exchange", required=True,
                     help="venue: binance, binance-coinm, bybit, okx, bitmex, deribit, coinglass")
    dec.add_argument("--instruments", help="the venue's instruments response (contract values)")
    return p


class _Version(argparse.Action):
    """`--version`, reading the package metadata only when asked (it costs every command)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        sys.stdout.write(f"liqbot {version()}\n")
        parser.exit()



def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: $LIQBOT_CONFIG)")
    p.add_argument("--db", help="SQLite database (default: $LIQBOT_DB or ./liqbot.db)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-json", action="store_true",
                   help="one JSON object per log line (also log_json, LIQBOT_LOG_JSON)")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, overrides={"db": args.db})


def _setup_logging(args: argparse.Namespace, settings: Settings) -> None:
    # Every secret the settings hold is masked in every record, whoever logs it (PTB's
    # DEBUG "Set Bot API URL", httpx request lines, tracebacks).
    setup_logging("DEBUG" if args.verbose else settings.log_level,
                  json=args.log_json or settings.log_json, secrets=settings_secrets(settings))
    logger.debug("settings: %r", settings)  # masked: Settings' repr hides every secret


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _setup_logging(args, settings)
    # Live runs serve the ops page unless it is off; a replay is a batch job, so only on request.
    listen = settings.ops_listen if args.ops or not args.replay else None
    if args.replay:
        # The loaders bring pandas and pyarrow (~90 MB): only a replay pays for them.
        from bot.run.replay import run_replay
        from feeds.history.stream import open_replay

        data = open_replay(args.replay, symbol=args.symbol, tz_offset_hours=args.tz_offset,
                           instruments=args.instruments)
        if args.speed < 0:
            raise ConfigError("--speed must be >= 0")
        s = asyncio.run(run_replay(data, settings, speed=args.speed, ops_listen=listen))
        logger.info("replay done: %d items, %d new events, %d evaluations, %d alerts, %d delivered",
                    s.items, s.events_new, s.evaluations, s.alerts, s.delivered)
        return 0
    from bot.run.live import run_live

    try:
        asyncio.run(run_live(settings, ops_listen=listen))
    except KeyboardInterrupt:
        pass
    return 0


def _parse_at(text: str) -> int | None:
    """The window end `--at` names; None for "latest", which only the database knows."""
    if text == "now":
        return int(datetime.now(UTC).timestamp() * 1000)
    if text == "latest":
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--at: not an ISO time: {text!r}") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)


def cmd_totals(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings(args)
    try:
        window = parse_window(args.window)
    except ValueError as exc:
        raise ConfigError(f"--window: {exc}") from None
    at = _parse_at(args.at)  # arguments first: a bad one is exit 2 whatever the file
    store = Store(settings.db, existing=True)  # a typo must not leave an empty database
    try:
        at = store.latest_ms() if at is None else at
        if at is None:
            raise ConfigError("--at latest: the database holds no data yet")
        t = store.totals(at, window, coin=args.symbol, exchange=args.exchange,
                         sampled_venues=SAMPLED_VENUES)
    finally:
        store.close()
    if args.json:
        out.write(json.dumps({"window": args.window, "symbol": args.symbol or MARKET,
                              "exchange": args.exchange or MARKET, **t.as_dict()}) + "\n")
    else:
        label = args.symbol.upper() if args.symbol else "All coins"
        out.write(render_totals(t, window, label) + "\n")
    return 0


def _parse_since(text: str) -> int:
    units = {"d": 86_400_000, "h": 3_600_000}
    unit = text[-1:].lower()
    if unit not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ConfigError(f"--since: expected e.g. 30d or 72h, got {text!r}")
    return int(text[:-1]) * units[unit]


def cmd_backfill(args: argparse.Namespace) -> int:
    from bot.state.writer import Writer
    from feeds.net.http import HttpError
    from feeds.venues.coinglass_api import BASE_URL as COINGLASS_URL
    from feeds.venues.coinglass_api import backfill

    settings = _settings(args)
    _setup_logging(args, settings)
    if not settings.coinglass_api_key:
        raise ConfigError("backfill --coinglass needs LIQBOT_COINGLASS_API_KEY")
    until = int(datetime.now(UTC).timestamp() * 1000)
    since = until - _parse_since(args.since)
    symbols = [parse_coin(s) for s in args.symbols.split(",") if s.strip()]

    async def go() -> int:
        writer = Writer(settings.db)
        try:
            async def write(buckets: list) -> None:
                await writer.run(writer.store.insert_buckets, buckets)

            return await backfill(
                write, settings.coinglass_api_key, symbols=symbols, since_ms=since,
                until_ms=until, interval=args.interval, plan=args.plan,
                base_url=settings.rest_urls.get("coinglass", COINGLASS_URL),
                progress=lambda p: print(p, file=sys.stderr, flush=True))
        finally:
            writer.close()

    try:
        n = asyncio.run(go())
    except (HttpError, ValueError) as exc:
        raise ConfigError(f"backfill: {exc}") from None
    print(f"coinglass backfill: {n} bars stored in {settings.db}", file=sys.stderr)
    return 0


def parse_coin(text: str) -> str:
    coin = text.strip().upper()
    if not coin.isalnum() or len(coin) > 20:
        raise ConfigError(f"--symbols: {text!r} is not a coin")
    return coin


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from bot.ops.health import status_report
    from bot.render import duration, render_status

    settings = _settings(args)
    store = Store(settings.db, existing=True)
    try:
        now = int(datetime.now(UTC).timestamp() * 1000)
        report = status_report(store, now)
    finally:
        store.close()
    # A run saves its status every [scheduler] health_interval_s: one that holds the lock
    # but has not saved for several intervals is alive and stuck, not "up".
    at = report.get("snapshot_at_ms")
    age_s = None if at is None else (now - at) / 1000
    stale = bool(report.get("running")) and age_s is not None and \
        age_s > max(60.0, 4 * settings.health_interval_s)
    if args.json:
        out.write(json.dumps({**report, "status_age_s": age_s, "stale": stale}) + "\n")
        return 0
    if stale and age_s is not None:
        out.write(f"liqbot holds this database's lock but last saved its status "
                  f"{duration(int(age_s * 1000))} ago: it may be stuck (see its /healthz "
                  "and log)\n")
    out.write(render_status(report, now) + "\n")
    return 0


def cmd_decode(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from feeds.venues.decode import decoder_for

    try:
        decode = decoder_for(args.exchange, args.instruments)
    except ValueError as exc:
        raise ConfigError(f"--exchange: {exc}") from None
    bad = 0
    for lineno, line in enumerate(stdin, 1):
        if not line.strip():
            continue
        try:
            events = decode(line)
        except ParseError as exc:
            bad += 1
            err.write(f"line {lineno}: {exc}\n")
            continue
        for e in events:
            out.write(json.dumps(e.as_short_dict()) + "\n")
    out.flush()
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "totals":
            return cmd_totals(args, sys.stdout)
        if args.command == "backtest":
            return backtest_cli.run(args)
        if args.command == "backfill":
            return cmd_backfill(args)
        if args.command == "status":
            return cmd_status(args, sys.stdout)
        if args.command == "chart":
            return cli_chart.run(args, _settings(args), _parse_at(args.at), sys.stdout)
        if args.command in cli_ops.COMMANDS:
            settings = _settings(args)
            _setup_logging(args, settings)
            return cli_ops.run(args, settings)
        return cmd_decode(args, sys.stdin, sys.stdout, sys.stderr)
    except (ConfigError, StoreError, ParseError, AlreadyRunning) as exc:
        print(f"liqbot: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except OSError as exc:  # a full disk, a read-only or missing folder: one line, not a trace
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"liqbot: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
