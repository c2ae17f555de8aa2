"""Chat commands, once for every platform: parse arguments -> query the store -> render.

Adapters (Telegram, Discord) call `dispatch` and `press` on the writer thread and only
translate the `Reply` into their own message format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from bot.render import money, render_status, render_totals, without_dust
from bot.state.subscriptions import ALL_KINDS, Subscription, Subscriptions
from feeds.model import MARKET, coin_of
from feeds.store import WINDOWS_MS, Store, parse_window, window_name
from feeds.venues.registry import SAMPLED_VENUES
from signals.kinds import KIND_WORDS

_SYMBOL = re.compile(r"^[A-Za-z0-9]{2,20}$")
_WINDOWISH = re.compile(r"^\d+[mhdw]$", re.IGNORECASE)
_USD = re.compile(r"^\$?(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)([kKmMbB]?)$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")  # 1e400 is no coin (1INCH is)
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9}
MIN_USD_PRESETS = (0.0, 1e6, 10e6, 50e6)


class CommandError(ValueError):
    """Bad arguments: the message is the one line of help the user sees."""


@dataclass(frozen=True, slots=True)
class Ctx:
    platform: str
    chat_id: str
    now_ms: int
    is_group: bool = False
    is_admin: bool = True  # private chats: the user owns their settings


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    # Rows of (label, data) buttons; adapters map them to inline keyboards / components.
    buttons: tuple[tuple[tuple[str, str], ...], ...] = ()
    error: bool = False
    # A chart to send with the text as its caption (bot.charts.ChartSpec.key): the spec, not
    # the picture, so a committed answer stays small and a restart draws it again.
    chart: str | None = None


Handler = Callable[[Store, Ctx, Sequence[str]], Reply]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    admin: bool = False


def parse_usd(token: str) -> float | None:
    """`10M`, `$500k`, `2.5b`, `1000000` -> USD; None when the token is not an amount."""
    m = _USD.match(token.replace(",", "").replace("_", ""))
    if not m:
        return None
    value = float(m.group(1)) * _SCALE[m.group(2).lower()]
    if not value <= 1e12:  # also inf, from 1e400
        raise CommandError(f"{token}: amounts above $1T make no sense here")
    return value


def parse_symbol(token: str) -> str:
    if not _SYMBOL.match(token) or _NUMBER.match(token):
        raise CommandError(f"{token[:24]!r} is not a symbol (letters and digits, e.g. BTC)")
    return coin_of(token)


def _symbol_and_window(args: Sequence[str], usage: str) -> tuple[str | None, int, str]:
    symbol, window_name = None, "1h"
    for tok in args:
        if tok.lower() in WINDOWS_MS:
            window_name = tok.lower()
        elif _WINDOWISH.match(tok):  # "7d" is a window we lack, not a coin called 7D
            raise CommandError(f"unknown window {tok!r}: use one of {', '.join(WINDOWS_MS)}")
        elif symbol is None:
            symbol = parse_symbol(tok)
        else:
            raise CommandError(f"too many arguments. Usage: {usage}")
    return symbol, parse_window(window_name), window_name


def cmd_help(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    lines = ["liqbot watches crypto liquidations and alerts on short squeezes and long cascades.",
             ""]
    lines += [f"{c.usage} — {c.help}" for c in COMMANDS.values() if c.name != "start"]
    return Reply("\n".join(lines))


def cmd_liqs(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    symbol, window, _ = _symbol_and_window(args, COMMANDS["liqs"].usage)
    return Reply(_totals_text(store, ctx, symbol, window))


def _totals_text(store: Store, ctx: Ctx, symbol: str | None, window: int) -> str:
    """`/liqs` (and `/chart`'s caption): the totals and the window's largest liquidation."""
    totals = store.totals(ctx.now_ms, window, coin=symbol, sampled_venues=SAMPLED_VENUES)
    largest = store.largest_liquidation(symbol, totals.start_ms, totals.end_ms)
    return render_totals(totals, window, symbol or "All coins",
                         asdict(largest) if largest else None)


def cmd_top(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    symbol, window, name = _symbol_and_window(args, COMMANDS["top"].usage)
    if symbol:
        raise CommandError(f"/top takes only a window. Usage: {COMMANDS['top'].usage}")
    totals = store.totals(ctx.now_ms, window)
    coins = [c for c in without_dust(totals.by("coin"), totals.total_usd) if c[0] != MARKET][:10]
    if not coins:
        return Reply(f"No liquidations recorded in the last {name}.")
    lines = [f"Top liquidated coins, last {name}:"]
    for i, (coin, lg, sh) in enumerate(coins, 1):
        side = "shorts" if sh >= lg else "longs"
        share = round(100 * max(lg, sh) / (lg + sh)) if lg + sh else 0
        lines.append(f"{i}. {coin} {money(lg + sh)} · {share}% {side}")
    return Reply("\n".join(lines))


def cmd_funding(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    if len(args) > 1:
        raise CommandError(f"too many arguments. Usage: {COMMANDS['funding'].usage}")
    coin = parse_symbol(args[0]) if args else "BTC"
    rows = store.latest_funding(coin, ctx.now_ms)
    if not rows:
        return Reply(f"No funding data for {coin} yet.")
    lines = [f"{coin} funding (per 8h; raw rate and interval in brackets):"]
    for f in sorted(rows, key=lambda f: f.exchange):
        lines.append(f"{f.exchange} {f.symbol}: {f.rate_8h * 100:+.4f}% "
                     f"({float(f.rate) * 100:+.4f}% / {f.interval_h:g}h)")
    return Reply("\n".join(lines))


def _parse_subscribe(args: Sequence[str], base: Subscription) -> Subscription:
    kinds: list[str] = []
    symbols: list[str] = []
    min_usd = base.min_usd
    for tok in args:
        word = tok.lower()
        if word in ("all", "both"):
            kinds.extend(ALL_KINDS)
        elif word in KIND_WORDS:
            kinds.append(KIND_WORDS[word])
        elif (usd := parse_usd(tok)) is not None:
            min_usd = usd
        else:
            symbols.append(parse_symbol(tok))
    return replace(base, kinds=tuple(dict.fromkeys(kinds)) or base.kinds, min_usd=min_usd,
                   symbols=tuple(dict.fromkeys(symbols)) or base.symbols, active=True)


def cmd_subscribe(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    subs = Subscriptions(store)
    base = subs.get(ctx.platform, ctx.chat_id) or Subscription(ctx.platform, ctx.chat_id)
    sub = _parse_subscribe(args, base)
    subs.put(sub, ctx.now_ms)
    return Reply("Subscribed. " + describe(sub), buttons=settings_buttons(sub))


def cmd_unsubscribe(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    subs = Subscriptions(store)
    sub = subs.get(ctx.platform, ctx.chat_id)
    if sub is None or not sub.active:
        return Reply("This chat has no subscription.")
    subs.put(replace(sub, active=False), ctx.now_ms)
    return Reply("Unsubscribed: no more alerts here. /subscribe to start again.")


def cmd_settings(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    sub = Subscriptions(store).get(ctx.platform, ctx.chat_id)
    if sub is None or not sub.active:
        return Reply("No subscription yet: /subscribe [squeeze|cascade] [min USD] [symbols]")
    return Reply(describe(sub), buttons=settings_buttons(sub))


def cmd_backtest(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    kind = None
    if args:
        kind = KIND_WORDS.get(args[0].lower())
        if kind is None or len(args) > 1:
            raise CommandError(f"usage: {COMMANDS['backtest'].usage}")
    try:
        from backtests.track import render_backtest_summary
    except ImportError:
        return Reply("No backtest results yet.")
    return Reply(render_backtest_summary(store, kind) or "No backtest results yet: "
                 "an operator runs `liqbot backtest`.")


def cmd_chart(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    from bot.charts import ChartSpec, load_chart

    symbol, window, name = _symbol_and_window(args, COMMANDS["chart"].usage)
    spec = ChartSpec.now(symbol or MARKET, window, ctx.now_ms)
    label = symbol or "All coins"
    if load_chart(store, spec).empty:
        return Reply(f"Nothing to chart for {label}: no liquidations or prices in the last "
                     f"{window_name(spec.span_ms)}.")
    return Reply(_totals_text(store, ctx, symbol, window), chart=spec.key)


def cmd_status(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    from bot.ops.health import status_report

    return Reply(render_status(status_report(store, ctx.now_ms), ctx.now_ms))


def describe(sub: Subscription) -> str:
    kinds = ", ".join(k.replace("_", " ") for k in sub.kinds)
    symbols = ", ".join(sub.symbols) if sub.symbols else "all coins"
    minimum = money(sub.min_usd) if sub.min_usd else "any size"
    quiet = " · silent notifications" if sub.quiet else ""
    return f"Alerts: {kinds} · {symbols} · minimum {minimum}{quiet}."


def settings_buttons(sub: Subscription) -> tuple[tuple[tuple[str, str], ...], ...]:
    """Buttons whose data `press` understands; every datum is well under 64 bytes."""
    def mark(on: bool) -> str:
        return "✅" if on else "▫️"

    kinds = tuple((f"{mark(k in sub.kinds)} {k.replace('_', ' ')}", f"kind:{k}") for k in ALL_KINDS)
    sizes = tuple((f"{mark(sub.min_usd == v)} {money(v) if v else 'any'}", f"min:{int(v)}")
                  for v in MIN_USD_PRESETS)
    return (kinds, sizes, ((f"{mark(sub.quiet)} silent", "quiet"),))


def press(store: Store, ctx: Ctx, data: str) -> Reply:
    """Apply one settings button; groups need an admin."""
    if ctx.is_group and not ctx.is_admin:
        return Reply("Only group admins can change alert settings.", error=True)
    subs = Subscriptions(store)
    sub = subs.get(ctx.platform, ctx.chat_id)
    if sub is None:
        return Reply("No subscription yet: /subscribe first.", error=True)
    key, _, value = data.partition(":")
    if key == "kind" and value in ALL_KINDS:
        kinds = tuple(k for k in ALL_KINDS if (k in sub.kinds) != (k == value))
        sub = replace(sub, kinds=kinds or sub.kinds)
    elif key == "min" and value.isdigit() and float(value) in MIN_USD_PRESETS:
        sub = replace(sub, min_usd=float(value))
    elif key == "quiet":
        sub = replace(sub, quiet=not sub.quiet)
    else:
        return Reply("That button is out of date; send /settings again.", error=True)
    subs.put(sub, ctx.now_ms)
    return Reply(describe(sub), buttons=settings_buttons(sub))


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("start", "/start", "what liqbot does", cmd_help),
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
    Command("backtest", "/backtest [squeeze|cascade]", "how past alerts played out", cmd_backtest),
    Command("status", "/status", "feed health per venue", cmd_status),
)}


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
    except (CommandError, ValueError) as exc:
        return Reply(f"{exc}. Usage: {command.usage}" if "Usage" not in str(exc) else str(exc),
                     error=True)
