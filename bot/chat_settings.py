"""A chat's alert settings: the commands that change them, their buttons, their summary.

Per chat (bot/state/subscriptions.py): which kinds, which coins, a minimum size; each
kind x severity on, silent (no notification sound) or off; quiet hours in the chat's
time zone (alerts then arrive silently); a digest, daily or every 4 h.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.grammar import COIN, KIND, LEVEL, SIZE, parse_words
from bot.render import money
from bot.reply import Buttons, CommandError, Ctx, Reply
from bot.state.subscriptions import (
    ALL_KINDS,
    DIGESTS,
    MODES,
    OFF,
    ON,
    SILENT,
    Subscription,
    Subscriptions,
    parse_hours,
    zone,
)
from feeds.store import Store
from signals.kinds import find_kind
from signals.params import SEVERITY_NAMES

MIN_USD_PRESETS = (0.0, 1e6, 10e6, 50e6)
SEVERITIES = tuple(SEVERITY_NAMES.values())  # notable, large, extreme
NO_SUBSCRIPTION = "No subscription yet: /subscribe [squeeze|cascade] [min USD] [SYMBOLS]"
_MODE_MARK = {ON: "🔔", SILENT: "🔕", OFF: "✖️"}
SUBSCRIBE_ROW = (("🚨 Squeezes", "sub:short_squeeze"), ("🩸 Cascades", "sub:long_cascade"),
                 ("Both", "sub:all"))


def _kind_name(kind: str) -> str:
    info = find_kind(kind)
    return info.name.lower() if info else kind.replace("_", " ")


def describe(sub: Subscription) -> str:
    kinds = ", ".join(k.replace("_", " ") for k in sub.kinds)
    symbols = ", ".join(sub.symbols) if sub.symbols else "all coins"
    minimum = money(sub.min_usd) if sub.min_usd else "any size"
    quiet = " · silent notifications" if sub.quiet else ""
    lines = [f"Alerts: {kinds} · {symbols} · minimum {minimum}{quiet}."]
    for mode in (SILENT, OFF):
        named = [f"{_kind_name(k.split('.')[0])} {k.split('.')[1]}"
                 for k, m in sub.levels if m == mode]
        if named:
            lines.append(f"{mode.capitalize()}: {', '.join(named)}.")
    if sub.quiet_hours:
        lines.append(f"Quiet hours {sub.quiet_hours} {sub.tz}: alerts arrive silently.")
    if sub.digest != "off":
        lines.append(f"Digest: {'daily' if sub.digest == 'daily' else 'every 4h'}.")
    return "\n".join(lines)


def settings_buttons(sub: Subscription) -> Buttons:
    """Buttons whose data `press_setting` understands; every datum is well under 64 bytes.

    Five rows at most (Discord's limit): kinds, sizes, silent + digest, then one row per
    kind whose buttons cycle its severities through on -> silent -> off.
    """
    def mark(on: bool) -> str:
        return "✅" if on else "▫️"

    kinds = tuple((f"{mark(k in sub.kinds)} {k.replace('_', ' ')}", f"kind:{k}") for k in ALL_KINDS)
    sizes = tuple((f"{mark(sub.min_usd == v)} {money(v) if v else 'any'}", f"min:{int(v)}")
                  for v in MIN_USD_PRESETS)
    toggles = ((f"{mark(sub.quiet)} silent", "quiet"), (f"🗞 digest: {sub.digest}", "dg"))
    levels = tuple(
        tuple((f"{_MODE_MARK[sub.mode(k, s)]} {_kind_name(k).split()[-1]} {s}", f"lvl:{k}.{s}")
              for s in SEVERITIES) for k in ALL_KINDS)
    return (kinds, sizes, toggles, *levels)


class NoSubscription(Exception):
    """A setting for a chat with no subscription: answered with how to subscribe."""


def no_subscription() -> Reply:
    return Reply(NO_SUBSCRIPTION, buttons=(SUBSCRIBE_ROW,))


def _current(store: Store, ctx: Ctx) -> tuple[Subscriptions, Subscription]:
    subs = Subscriptions(store)
    sub = subs.get(ctx.platform, ctx.chat_id)
    if sub is None or not sub.active:
        raise NoSubscription
    return subs, sub


def _saved(subs: Subscriptions, sub: Subscription, ctx: Ctx, head: str = "") -> Reply:
    subs.put(sub, ctx.now_ms)
    return Reply(head + describe(sub), buttons=settings_buttons(sub))


def cmd_subscribe(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    subs = Subscriptions(store)
    base = subs.get(ctx.platform, ctx.chat_id) or Subscription(ctx.platform, ctx.chat_id)
    words = parse_words(store, args, (KIND, SIZE, COIN), "subscribe", max_coins=12)
    sub = replace(base, kinds=words.kinds or base.kinds, symbols=words.coins or base.symbols,
                  min_usd=base.min_usd if words.min_usd is None else words.min_usd, active=True)
    return _saved(subs, sub, ctx, "Subscribed. ")


def cmd_unsubscribe(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    subs = Subscriptions(store)
    sub = subs.get(ctx.platform, ctx.chat_id)
    if sub is None or not sub.active:
        return Reply("This chat has no subscription.")
    subs.put(replace(sub, active=False), ctx.now_ms)
    return Reply("Unsubscribed: no more alerts here. /subscribe to start again.")


def cmd_settings(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    if args:
        raise CommandError(f"{args[0][:24]!r}: /settings takes no arguments")
    _, sub = _current(store, ctx)
    return Reply(describe(sub), buttons=settings_buttons(sub))


def cmd_quiet(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    """`/quiet 23-07 Europe/Berlin`, `/quiet 22:30-06:00`, `/quiet off`."""
    subs, sub = _current(store, ctx)
    if not args:
        return Reply(describe(sub), buttons=settings_buttons(sub))
    if len(args) > 2:
        raise CommandError(f"{args[2][:24]!r}: /quiet takes hours and a time zone")
    if args[0].lower() == "off":
        if len(args) > 1:
            raise CommandError(f"{args[1][:24]!r}: /quiet off takes nothing more")
        return _saved(subs, replace(sub, quiet_hours=""), ctx, "Quiet hours off. ")
    hours = parse_hours(args[0])
    if hours is None:
        raise CommandError(f"{args[0][:24]!r} is not a span of hours (e.g. 23-07 or 22:30-06:00)")
    tz = args[1] if len(args) > 1 else sub.tz
    if zone(tz) is None:
        raise CommandError(f"{tz[:40]!r} is not a time zone (e.g. Europe/Berlin, UTC)")
    text = "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in hours)
    return _saved(subs, replace(sub, quiet_hours=text, tz=tz), ctx)


def cmd_digest(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    subs, sub = _current(store, ctx)
    if not args:
        return Reply(describe(sub), buttons=settings_buttons(sub))
    if len(args) != 1 or args[0].lower() not in DIGESTS:
        word = repr(args[1 if args and args[0].lower() in DIGESTS else 0][:24]) if args else ""
        raise CommandError(f"{word or 'which digest?'}: use daily, 4h or off")
    # digest_ms 0: the first digest covers the first whole period from now on.
    return _saved(subs, replace(sub, digest=args[0].lower(), digest_ms=0), ctx)


def _set_levels(store: Store, ctx: Ctx, args: Sequence[str], mode: str, command: str) -> Reply:
    subs, sub = _current(store, ctx)
    if not args:  # all of them at once only when asked: /mute all
        return Reply(describe(sub), buttons=settings_buttons(sub))
    words = parse_words(store, args, (KIND, LEVEL), command)
    for kind in words.kinds or ALL_KINDS:
        for level in words.levels or SEVERITIES:
            sub = sub.with_mode(kind, level, mode)
    return _saved(subs, sub, ctx)


def cmd_mute(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    return _set_levels(store, ctx, args, OFF, "mute")


def cmd_silent(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    return _set_levels(store, ctx, args, SILENT, "silent")


def cmd_unmute(store: Store, ctx: Ctx, args: Sequence[str]) -> Reply:
    return _set_levels(store, ctx, args, ON, "unmute")


def press_setting(store: Store, ctx: Ctx, data: str) -> Reply:
    """Apply one settings button (groups: admins only, checked by the caller)."""
    subs = Subscriptions(store)
    sub = subs.get(ctx.platform, ctx.chat_id)
    key, _, value = data.partition(":")
    if key == "sub" and (value in ALL_KINDS or value == "all"):
        base = sub or Subscription(ctx.platform, ctx.chat_id)
        kinds = ALL_KINDS if value == "all" else (value,)
        return replace(_saved(subs, replace(base, kinds=kinds, active=True), ctx,
                              "Subscribed. "), edit=False)
    if sub is None or not sub.active:
        return Reply("No subscription yet: /subscribe first.", error=True)
    kind, _, level = value.partition(".")
    if key == "kind" and value in ALL_KINDS:
        kinds = tuple(k for k in ALL_KINDS if (k in sub.kinds) != (k == value))
        sub = replace(sub, kinds=kinds or sub.kinds)
    elif key == "min" and value.isdigit() and float(value) in MIN_USD_PRESETS:
        sub = replace(sub, min_usd=float(value))
    elif key == "quiet":
        sub = replace(sub, quiet=not sub.quiet)
    elif key == "dg":
        sub = replace(sub, digest=DIGESTS[(DIGESTS.index(sub.digest) + 1) % len(DIGESTS)]
                      if sub.digest in DIGESTS else "off", digest_ms=0)
    elif key == "lvl" and kind in ALL_KINDS and level in SEVERITIES:
        mode = MODES[(MODES.index(sub.mode(kind, level)) + 1) % len(MODES)]
        sub = sub.with_mode(kind, level, mode)
    else:
        return Reply("That button is out of date; send /settings again.", error=True)
    return _saved(subs, sub, ctx)
