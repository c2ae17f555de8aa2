"""`liqbot run --replay` with Discord configured: every printed alert reaches every webhook (and
bot channel) through the outbox, faults on the way included; tokens stay out of logs and the DB."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import sqlite3
from pathlib import Path

from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.discord.service import discord_services
from bot.discord.webhook import parse_webhook_url
from bot.run.assembly import chat_services
from bot.run.live import run_live
from bot.run.replay import run_replay
from feeds.history.replay import load_replay
from tests.helpers.cli import liqbot_async, write_coinglass_csv
from tests.helpers.discord_interactions import slash
from tests.helpers.fake_discord import (
    CHANNEL_ID,
    MANAGE_GUILD,
    TOKEN,
    VIEW_AND_SEND,
    FakeDiscord,
)

TWO_EPISODES = {50: (1e6, 60e6), 120: (40e6, 0.5e6)}


def printed_alerts(stdout: str) -> list[str]:
    return [b.strip() for b in stdout.split("\n\n") if "liquidated in" in b]


def headlines(payloads: list[dict]) -> list[str]:
    """The headline of each posted embed, as the console printed it."""
    return [p["embeds"][0]["description"].strip("*") for p in payloads]


def episodes(payloads: list[dict]) -> list[tuple[str, str]]:
    """(headline, bar span) of each posted embed: episodes of equal size differ in the span."""
    out = []
    for p in payloads:
        window = {f["name"]: f["value"] for f in p["embeds"][0]["fields"]}["Window"]
        out.append((p["embeds"][0]["description"].strip("*"), window.split(" UTC")[0]))
    return out


def printed_episodes(stdout: str) -> list[tuple[str, str]]:
    return [(lines[1], lines[3].split(" UTC")[0])
            for lines in (a.splitlines() for a in printed_alerts(stdout))]


def statuses(db: Path) -> list[tuple[str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT DISTINCT status FROM outbox").fetchall()
    finally:
        conn.close()


async def test_replay_delivers_every_printed_alert_to_each_webhook(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
    db = tmp_path / "r.db"
    async with FakeDiscord() as fake:
        urls = [fake.add_webhook(), fake.add_webhook()]
        ids = [parse_webhook_url(u).id for u in urls]
        fake.rate_limit_next(("webhook", ids[0]), 0.5)  # faults on the way, to be absorbed
        fake.fail_next(("webhook", ids[1]), 502, message="Bad Gateway")
        settings = load_settings(None, environ={"LIQBOT_DISCORD_WEBHOOK_URLS": ",".join(urls)},
                                 overrides={"db": str(db)})
        out = io.StringIO()
        summary = await run_replay(load_replay([csv], symbol="BTC"), settings,
                                   notifiers={"console": ConsoleNotifier(out)},
                                   services=discord_services(settings), drain_timeout_s=10)
    alerts = printed_alerts(out.getvalue())
    assert len(alerts) == 2 and summary.delivered == 6
    for hook_id in ids:
        assert headlines(fake.sent_to(("webhook", hook_id))) == [
            a.splitlines()[1] for a in alerts]  # each printed alert, once, in order
    assert statuses(db) == [("sent",)]
    for url in urls:
        assert url.rsplit("/", 1)[1] not in caplog.text
        assert url.rsplit("/", 1)[1].encode() not in db.read_bytes()


async def test_replay_posts_to_bot_channels_without_the_gateway(tmp_path, monkeypatch):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
    db = tmp_path / "b.db"
    async with FakeDiscord() as fake:
        fake.point_discord_py(monkeypatch)
        env = {"LIQBOT_DISCORD_TOKEN": TOKEN, "LIQBOT_DISCORD_CHANNEL_IDS": CHANNEL_ID}
        settings = load_settings(None, environ=env, overrides={"db": str(db)})
        out = io.StringIO()
        await run_replay(load_replay([csv], symbol="BTC"), settings,
                         notifiers={"console": ConsoleNotifier(out)},
                         services=discord_services(settings), drain_timeout_s=10)
    alerts = printed_alerts(out.getvalue())
    assert headlines(fake.sent_to(("channel", CHANNEL_ID))) == [a.splitlines()[1] for a in alerts]
    assert fake.syncs == 0 and not fake.identified.is_set()  # a replay answers no commands


async def test_the_runner_serves_discord_from_settings_alone(tmp_path):
    """No services passed in: `chat_services` finds the webhooks in the settings."""
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
    async with FakeDiscord() as fake:
        url = fake.add_webhook()
        settings = load_settings(None, environ={"LIQBOT_DISCORD_WEBHOOK_URLS": url},
                                 overrides={"db": str(tmp_path / "w.db")})
        assert [s.name for s in chat_services(settings)] == ["discord-webhook"]
        out = io.StringIO()
        await run_replay(load_replay([csv], symbol="BTC"), settings,
                         notifiers={"console": ConsoleNotifier(out)})
    hook = ("webhook", parse_webhook_url(url).id)
    assert headlines(fake.sent_to(hook)) == [
        a.splitlines()[1] for a in printed_alerts(out.getvalue())]




async def test_cli_replay_delivers_every_printed_alert_to_the_webhook(tmp_path):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
    db = tmp_path / "c.db"
    async with FakeDiscord() as fake:
        url = fake.add_webhook()
        fake.rate_limit_next(("webhook", parse_webhook_url(url).id), 0.3)
        code, out, err = await liqbot_async("run", "-v", "--replay", str(csv), "--symbol", "BTC",
                                      "--speed", "0", "--db", str(db),
                                      LIQBOT_DISCORD_WEBHOOK_URLS=url)
    assert code == 0, err[-3000:]
    alerts = printed_alerts(out)
    assert len(alerts) == 2
    sent = fake.sent_to(("webhook", parse_webhook_url(url).id))
    assert headlines(sent) == [a.splitlines()[1] for a in alerts]
    assert all(p["allowed_mentions"] == {"parse": []} for p in sent)
    token = url.rsplit("/", 1)[1]
    assert token not in out and token not in err  # DEBUG logging on, the token masked
    for f in (db, Path(f"{db}-wal")):
        assert not f.exists() or token.encode() not in f.read_bytes()


async def test_kill9_between_send_and_ack_duplicates_at_most_once_and_loses_nothing(tmp_path):
    """The Telegram guarantee, for webhooks: at least once, at most one extra per pair."""
    spikes = {h: (0.5e6, 30e6 + h) for h in range(20, 60, 12)}  # 4 separate episodes
    csv = write_coinglass_csv(tmp_path / "cg.csv", 70, spikes)
    clean = io.StringIO()
    await run_replay(load_replay([csv], symbol="BTC"),
                     load_settings(None, environ={}, overrides={"db": str(tmp_path / "c.db")}),
                     notifiers={"console": ConsoleNotifier(clean)})
    expected = printed_episodes(clean.getvalue())
    assert len(set(expected)) == 4
    db = tmp_path / "k.db"
    args = ("run", "--replay", str(csv), "--symbol", "BTC", "--db", str(db))
    async with FakeDiscord() as fake:
        urls = [fake.add_webhook(), fake.add_webhook()]
        keys = [("webhook", parse_webhook_url(u).id) for u in urls]
        env = {"LIQBOT_DISCORD_WEBHOOK_URLS": ",".join(urls)}
        code, _, _ = await liqbot_async(*args, LIQBOT_CRASH_AT="after_send:5", **env)
        first = sum(len(fake.sent_to(k)) for k in keys)
        assert code == -signal.SIGKILL and 0 < first < 2 * len(expected)
        code, _, err = await liqbot_async(*args, **env)
        assert code == 0, err[-3000:]
    extra = 0
    for key in keys:
        got = episodes(fake.sent_to(key))
        assert set(got) == set(expected), key  # nothing lost
        assert all(got.count(h) <= 2 for h in expected), key
        extra += len(got) - len(expected)
    assert extra <= len(keys)  # only a send in flight at the kill: one per webhook at most
    assert statuses(db) == [("sent",)]


async def test_live_slash_subscriptions_route_alerts_to_their_channels(tmp_path, monkeypatch):
    """`run_live` builds the bot from the settings alone; /subscribe in two channels with
    different filters; a later run posts each alert to the channel that asked for it."""
    manager = VIEW_AND_SEND | MANAGE_GUILD
    squeezes, cascades = "810000000000000001", "810000000000000002"
    env = {"LIQBOT_DISCORD_TOKEN": TOKEN}
    db = str(tmp_path / "live.db")
    async with FakeDiscord() as fake:
        fake.point_discord_py(monkeypatch)
        live = load_settings(None, environ=env, overrides={"db": db, "venues": []})
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(live, stop=stop, notifiers={}, feeds=[]))
        try:
            async with asyncio.timeout(20):
                r = await fake.answer_to(slash("subscribe", permissions=manager,
                                               channel_id=squeezes, kinds="squeeze",
                                               min_usd="10M"))
                assert r.content.startswith("Subscribed. Alerts: short squeeze")
                r = await fake.answer_to(slash("subscribe", permissions=manager,
                                               channel_id=cascades, kinds="cascade"))
                assert r.content.startswith("Subscribed. Alerts: long cascade")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        assert fake.syncs == 1
        csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
        out = io.StringIO()
        await run_replay(load_replay([csv], symbol="BTC"),
                         load_settings(None, environ=env, overrides={"db": db}),
                         notifiers={"console": ConsoleNotifier(out)}, drain_timeout_s=10)
    squeeze, cascade = (a.splitlines()[1] for a in printed_alerts(out.getvalue()))
    assert headlines(fake.sent_to(("channel", squeezes))) == [squeeze]
    assert headlines(fake.sent_to(("channel", cascades))) == [cascade]
    assert "98% shorts" in squeeze and "longs" in cascade
