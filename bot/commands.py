"""Chat commands, once for every platform: parse arguments -> query the store -> render.

Adapters (Telegram, Discord) call `dispatch` and `press` on the writer thread and only
translate the `Reply` into their own message format. Every argument goes through one
grammar (bot/grammar.py); the settings commands live in bot/chat_settings.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from bot.chat_settings import (
    MIN_USD_PRESETS,
    SUBSCRIBE_ROW,
    NoSubscription,
    cmd_digest,
    cmd_mute,
    cmd_quiet,
    cmd_settings,
    cmd_silent,
    cmd_subscribe,
    cmd_unmute,
    cmd_unsubscribe,
    describe,
    no_subscription,
    press_setting,
    settings_buttons,
)
from bot.grammar import COIN, KIND, WINDOW, parse_symbol, parse_usd, parse_words
from bot.render import duration, money, render_status, render_totals, without_dust
from bot.reply import CommandError, Ctx, Reply
from feeds.model import MARKET
from feeds.store import Store, parse_window, window_name
from feeds.venues.registry import SAMPLED_VENUES
from signals.kinds import KIND_WORDS

__all__ = ["COMMANDS", "KIND_WORDS", "MIN_USD_PRESETS", "CommandError", "Ctx", "Reply",
           "describe", "dispatch", "parse_symbol", "parse_usd", "press", "settings_buttons"]

Handler = Callable[[Store, Ctx, Sequence[str]], Reply]

INTRO = (
    "liqbot watches liquidations on the big crypto venues and alerts when shorts or longs "
    "are wiped out far above normal.",
    "🚨 Short squeezes (shorts liquidated, price forced up) and 🩸 long cascades (longs "
    "liquidated, price forced down), with size, side, window and price move.",
    "Pick alerts below, or ask any time: /liqs, /top, /status. Every command: /help.",
)
START_BUTTONS = (SUBSCRIBE_ROW, (("📊 Last hour", "new:liqs"), ("⚙️ Settings", "new:settings")))
KEYBOARD = (("/liqs", "/top", "/status"), ("/settings", "/help"))


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    admin: bool = False


def cmd_start(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    # A reply keyboard in a group would sit under every member's input field: private only.
    return Reply("\n".join(INTRO), buttons=START_BUTTONS,
                 keyboard=() if ctx.is_group else KEYBOARD)


def cmd_help(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    lines = ["liqbot watches crypto liquidations and alerts on short squeezes and long cascades.",
             "Arguments are words in any order: a kind (squeeze, cascade), a window (5m … 24h), "
             "a size (10M), a coin (BTC).", ""]
    lines += [f"{c.usage} — {c.help}" for c in COMMANDS.values() if c.name != "start"]
    return Reply("\n".join(lines))


def _refresh(data: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    return ((("🔄 Refresh", data),),)


def cmd_liqs(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    words = parse_words(store, args, (COIN, WINDOW), "liqs")
    symbol = words.coins[0] if words.coins else None
    name = words.window or "1h"
    window = parse_window(name)
    return Reply(_totals_text(store, ctx, symbol, window),
                 buttons=_refresh(f"run:liqs:{name}" + (f":{symbol}" if symbol else "")))


def _totals_text(store: Store, ctx: Ctx, symbol: str | None, window: int) -> str:
    """`/liqs` (and `/chart`'s caption): the totals and the window's largest liquidation."""
    totals = store.totals(ctx.now_ms, window, coin=symbol, sampled_venues=SAMPLED_VENUES)
    largest = store.largest_liquidation(symbol, totals.start_ms, totals.end_ms)
    return render_totals(totals, window, symbol or "All coins",
                         asdict(largest) if largest else None)


def cmd_top(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    name = parse_words(store, args, (WINDOW,), "top").window or "1h"
    window = parse_window(name)
    totals = store.totals(ctx.now_ms, window)
    coins = [c for c in without_dust(totals.by("coin"), totals.total_usd) if c[0] != MARKET][:10]
    if not coins:
        return Reply(f"No liquidations recorded in the last {name}.",
                     buttons=_refresh(f"run:top:{name}"))
    lines = [f"Top liquidated coins, last {name}:"]
    for i, (coin, lg, sh) in enumerate(coins, 1):
        side = "shorts" if sh >= lg else "longs"
        share = round(100 * max(lg, sh) / (lg + sh)) if lg + sh else 0
        lines.append(f"{i}. {coin} {money(lg + sh)} · {share}% {side}")
    return Reply("\n".join(lines), buttons=_refresh(f"run:top:{name}"))


def cmd_funding(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    words = parse_words(store, args, (COIN,), "funding")
    coin = words.coins[0] if words.coins else "BTC"
    rows = store.latest_funding(coin, ctx.now_ms)
    if not rows:
        return Reply(f"No funding data for {coin} yet.")
    lines = [f"{coin} funding (per 8h; raw rate and interval in brackets):"]
    for f in sorted(rows, key=lambda f: f.exchange):
        lines.append(f"{f.exchange} {f.symbol}: {f.rate_8h * 100:+.4f}% "
                     f"({float(f.rate) * 100:+.4f}% / {f.interval_h:g}h)")
    return Reply("\n".join(lines))


def cmd_backtest(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    kinds = parse_words(store, args, (KIND,), "backtest").kinds
    kind = kinds[0] if len(kinds) == 1 else None
    try:
        from backtests.track import render_backtest_summary
    except ImportError:
        return Reply("No backtest results yet.")
    return Reply(render_backtest_summary(store, kind) or "No backtest results yet: "
                 "an operator runs `liqbot backtest`.")


def cmd_chart(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    from bot.charts import ChartSpec, load_chart

    words = parse_words(store, args, (COIN, WINDOW), "chart")
    symbol = words.coins[0] if words.coins else None
    window = parse_window(words.window or "1h")
    spec = ChartSpec.now(symbol or MARKET, window, ctx.now_ms)
    label = symbol or "All coins"
    if load_chart(store, spec).empty:
        return Reply(f"Nothing to chart for {label}: no liquidations or prices in the last "
                     f"{window_name(spec.span_ms)}.")
    return Reply(_totals_text(store, ctx, symbol, window), chart=spec.key)


def cmd_status(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    from bot.ops.health import status_report

    if args:
        raise CommandError(f"{args[0][:24]!r}: /status takes no arguments")
    report = status_report(store, ctx.now_ms)
    if ctx.operator:  # an operators' chat: the full table, errors included
        return Reply(render_status(report, ctx.now_ms, detail=True))
    return Reply(status_brief(report, ctx.now_ms))


def status_brief(report: dict[str, Any], now_ms: int) -> str:
    """One plain line per venue for traders: no error text, no socket counts."""
    if report["snapshot_at_ms"] is None:
        return "liqbot has not started watching the venues yet."
    if report.get("running") is False:
        return "liqbot is not running right now; alerts resume when it is back."
    lines = ["Feeds:"]
    for v in report["venues"]:
        last = v["last_event_ms"]
        seen = "no liquidations yet" if last is None else (
            f"last liquidation {duration(now_ms - last)} ago")
        if v["state"] == "down":
            text = "down: its liquidations are missing for now"
        elif v["state"] == "silent":
            text = f"connected but quiet, {seen}"
        elif v["connected_since_ms"] is None:
            text = "connecting"  # not up yet, not down yet: the first minute
        else:
            text = "live · " + seen + (" · sampled feed" if v["exchange"] in SAMPLED_VENUES
                                      else "")
        lines.append(f"{v['exchange']}: {text}")
    failing = [p["name"] for p in report.get("pollers") or [] if p["consecutive_failures"]]
    if failing:
        lines.append(f"Funding/open interest: {', '.join(failing)} not answering; retrying.")
    return "\n".join(lines)


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("start", "/start", "what liqbot does", cmd_start),
    Command("help", "/help", "this list", cmd_help),
    Command("liqs", "/liqs [SYMBOL] [WINDOW]", "totals, e.g. /liqs BTC 4h", cmd_liqs),
    Command("top", "/top [WINDOW]", "most liquidated coins", cmd_top),
    Command("chart", "/chart [SYMBOL] [WINDOW]", "a day of price and liquidations, e.g. "
            "/chart BTC 1h", cmd_chart),
    Command("funding", "/funding [SYMBOL]", "funding rates per venue", cmd_funding),
    Command("subscribe", "/subscribe [squeeze|cascade] [min USD] [SYMBOLS]",
            "get alerts here, e.g. /subscribe squeeze 10M BTC ETH", cmd_subscribe, admin=True),
    Command("unsubscribe", "/unsubscribe", "stop alerts here", cmd_unsubscribe, admin=True),
    Command("settings", "/settings", "change this chat's filters", cmd_settings),
    Command("quiet", "/quiet HH-HH [TIME ZONE] | off",
            "quiet hours, alerts arrive silently, e.g. /quiet 23-07 Europe/Berlin", cmd_quiet,
            admin=True),
    Command("digest", "/digest daily|4h|off", "a summary of the period's liquidations",
            cmd_digest, admin=True),
    Command("silent", "/silent [KIND] [SEVERITY]",
            "no sound for these alerts, e.g. /silent cascade notable", cmd_silent, admin=True),
    Command("mute", "/mute [KIND] [SEVERITY]", "no more of these alerts, e.g. /mute squeeze "
            "notable", cmd_mute, admin=True),
    Command("unmute", "/unmute [KIND] [SEVERITY]", "these alerts with sound again", cmd_unmute,
            admin=True),
    Command("backtest", "/backtest [squeeze|cascade]", "how past alerts played out", cmd_backtest),
    Command("status", "/status", "feed health per venue", cmd_status),
)}


def press(store: Store, ctx: Ctx, data: str) -> Reply:
    """Apply one button: a Refresh or a view (anyone), a setting (group admins only)."""
    key, _, rest = data.partition(":")
    if key in ("run", "new"):  # run: the answer replaces the message; new: a new one
        name, *args = rest.split(":")
        if name not in ("liqs", "top", "settings"):
            return Reply("That button is out of date; send /help.", error=True)
        return replace(dispatch(store, ctx, name, args), edit=key == "run")
    if ctx.is_group and not ctx.is_admin:
        return Reply("Only group admins can change alert settings.", error=True)
    return press_setting(store, ctx, data)


def dispatch(store: Store, ctx: Ctx, name: str, args: Sequence[str]) -> Reply:
    """Run one command; bad input becomes one line of help, never a stack trace."""
    command = COMMANDS.get(name.lower())
    if command is None:
        return Reply(f"Unknown command /{name[:32]}. Try /help.", error=True)
    if command.admin and ctx.is_group and not ctx.is_admin:
        return Reply(f"Only group admins can use /{command.name}.", error=True)
    if len(args) > 12 or any(len(a) > 64 for a in args):
        return Reply(f"Too many or too long arguments. Usage: {command.usage}", error=True)
    try:
        return command.handler(store, ctx, args)
    except NoSubscription:
        return no_subscription()
    except (CommandError, ValueError) as exc:
        return Reply(f"{exc}. Usage: {command.usage}", error=True)
