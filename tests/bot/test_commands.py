"""Platform-neutral commands: arguments, answers, admin rules, one line of help."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.commands import COMMANDS, Ctx, dispatch, parse_usd, press
from bot.state.subscriptions import Router, Subscriptions
from feeds.model import Funding, Side
from feeds.store import Store
from tests.helpers.factories import T0, make_alert, make_liq

NOW = T0 + 30 * 60_000


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "c.db")
    s.insert_liquidations([
        make_liq(ts_exchange_ms=T0 + i * 1000, symbol=sym, position_side=side,
                 notional_usd=Decimal(usd))
        for i, (sym, side, usd) in enumerate([
            ("BTCUSDT", Side.SHORT, 3_000_000), ("BTCUSDT", Side.LONG, 1_000_000),
            ("ETHUSDT", Side.LONG, 500_000), ("SOLUSDT", Side.SHORT, 100_000)])
    ])
    yield s
    s.close()


def run(store, text, **ctx):
    name, *args = text.lstrip("/").split()
    return dispatch(store, Ctx(platform="telegram", chat_id="42", now_ms=NOW, **ctx), name, args)


def test_every_command_in_the_table_answers_without_arguments(store):
    for name in COMMANDS:
        reply = run(store, "/" + name)
        assert reply.text and not reply.error, name


def test_liqs_totals_with_symbol_and_window(store):
    assert run(store, "/liqs").text.splitlines()[0] == (
        "All coins: $4.6M liquidated in 1h, 67% shorts")
    assert run(store, "/liqs BTC 4h").text.splitlines()[0] == (
        "BTC: $4M liquidated in 4h, 75% shorts")
    assert run(store, "/liqs 5m eth").text.startswith("No liquidations recorded for ETH")


@pytest.mark.parametrize("text, fragment", [
    ("/liqs BTC ETH", "'ETH': /liqs takes one coin"),
    ("/liqs BTC 7d", "unknown window '7d'"),
    ("/liqs BTC 10m", "unknown window '10m'"),  # not $10M: /liqs takes no size
    ("/liqs BTC-USD!", "is not a coin"),
    ("/liqs '; DROP TABLE events; --", "is not a coin"),
    ("/top BTC", "'BTC' is a coin, which /top does not take"),
    ("/funding BTC ETH", "'ETH': /funding takes one coin"),
    ("/backtest sideways", "'sideways' is not a kind (squeeze, cascade)"),
    ("/nope", "Unknown command /nope"),
    ("/liqs " + "x" * 100, "Too many or too long"),
    ("/subscribe squeeze 1e400 BTC", "amounts above $1T"),  # was stored as coin 1E400
    ("/subscribe squeeze 2T", "amounts above $1T"),  # was stored as a coin called 2T
    ("/subscribe 5x", "'5x' is not a coin, kind, window or size"),  # was coin 5X
    ("/subscribe squeeze DOGEFATHER", "'DOGEFATHER' is not a coin liqbot has seen"),
    ("/subscribe 4h", "'4h' is a window, which /subscribe does not take"),
    ("/liqs 1e400", "amounts above $1T"),
    ("/funding 123", "'123' is a size (e.g. 10M), which /funding does not take"),
    ("/mute squeeze loud", "'loud' is not a kind (squeeze, cascade) or a severity"),
])
def test_bad_arguments_get_one_line_of_help(store, text, fragment):
    run(store, "/subscribe")  # /mute needs a subscription to refuse a word of
    reply = run(store, text)
    assert reply.error and fragment in reply.text and "\n" not in reply.text
    assert reply.text.lower().count("usage") <= 1, reply.text  # never "usage: … Usage: …"


def test_backtest_with_a_bad_word_answers_one_usage_line(store):
    reply = run(store, "/backtest foo")
    assert reply.text == ("'foo' is not a kind (squeeze, cascade). "
                          "Usage: /backtest [squeeze|cascade]")


def test_subscribe_5x_keeps_the_coins_it_had(store):
    run(store, "/subscribe BTC ETH")
    assert run(store, "/subscribe 5x").error
    assert Subscriptions(store).get("telegram", "42").symbols == ("BTC", "ETH")
    # 5m means $5M to /subscribe (it takes no window), a window to /liqs.
    assert run(store, "/subscribe 5m").text.endswith("minimum $5M.")


def test_top_ranks_coins(store):
    lines = run(store, "/top 1h").text.splitlines()
    assert lines[1] == "1. BTC $4M · 75% shorts"
    assert lines[2] == "2. ETH $500K · 100% longs"


def test_funding_shows_per_8h_and_raw(store):
    store.insert_funding([Funding("binance", "BTCUSDT", T0, Decimal("0.0001"), 4.0)])
    text = run(store, "/funding").text
    assert "binance BTCUSDT: +0.0200% (+0.0100% / 4h)" in text


@pytest.mark.parametrize("token, usd", [("10M", 10e6), ("$500k", 5e5), ("2.5B", 2.5e9),
                                        ("1,000,000", 1e6), ("BTC", None)])
def test_parse_usd(token, usd):
    assert parse_usd(token) == usd


def test_subscribe_filters_route_alerts(store):
    reply = run(store, "/subscribe squeeze 10M BTC ETH")
    assert reply.text == ("Subscribed. Alerts: short squeeze · BTC, ETH · minimum $10M.")
    router = Router(store, ["console"], ["telegram"])
    assert router.destinations(make_alert(scope="BTC")) == ["console", "telegram:42"]
    assert router.destinations(make_alert(scope="SOL")) == ["console"]
    assert router.destinations(make_alert(kind="long_cascade")) == ["console"]
    assert router.destinations(make_alert(long_usd=1e6, short_usd=5e6)) == ["console"]
    run(store, "/unsubscribe")
    assert router.destinations(make_alert()) == ["console"]


def test_groups_need_admins_for_changes(store):
    reply = run(store, "/subscribe", is_group=True, is_admin=False)
    assert reply.error and "Only group admins" in reply.text
    assert Subscriptions(store).get("telegram", "42") is None
    assert not run(store, "/liqs", is_group=True, is_admin=False).error


def test_settings_buttons_toggle_filters(store):
    run(store, "/subscribe")
    ctx = Ctx("telegram", "42", NOW)
    reply = press(store, ctx, "kind:long_cascade")
    assert "short squeeze ·" in reply.text and "long cascade" not in reply.text
    reply = press(store, ctx, "min:10000000")
    assert "minimum $10M" in reply.text
    assert "silent" in press(store, ctx, "quiet").text
    assert press(store, ctx, "min:123").error
    group = Ctx("telegram", "42", NOW, is_group=True, is_admin=False)
    assert press(store, group, "quiet").error
    assert all(len(d.encode()) <= 64 for row in reply.buttons for _, d in row)


def test_migrated_chat_keeps_subscription_and_pending_outbox(store):
    run(store, "/subscribe")
    subs = Subscriptions(store)
    subs.migrate("telegram", "42", "-1003000000000", NOW)
    assert subs.get("telegram", "42") is None
    assert subs.get("telegram", "-1003000000000").active


def test_a_coin_is_known_from_instruments_candles_or_liquidations(store, tmp_path):
    from feeds.model import Candle
    from feeds.store.instruments import replace_instruments

    assert run(store, "/liqs PEPE").error  # nothing names it yet
    replace_instruments(store, "bybit", [("1000PEPEUSDT", "{}"), ("PEPEUSDT", "{}")], NOW)
    assert not run(store, "/liqs PEPE").error  # a venue lists it
    store.insert_candles([Candle("binance", "WIF", T0, 60_000, 1.0, 1.0, 1.0, 1.0)])
    assert not run(store, "/liqs WIF").error  # candles name it
    assert not run(store, "/liqs sol").error  # liquidations name it (lower case too)
    fresh = Store(tmp_path / "fresh.db")  # knows no coin at all: nothing to judge by
    try:
        reply = dispatch(fresh, Ctx("telegram", "1", NOW), "subscribe", ["DOGEFATHER"])
        assert not reply.error and "DOGEFATHER" in reply.text
    finally:
        fresh.close()
