"""`liqbot run --replay` with Discord configured: every printed alert reaches every webhook (and
bot channel) through the outbox, faults on the way included; tokens stay out of logs and the DB."""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
from pathlib import Path

from bot import runner
from bot.config import load_settings
from bot.discord import discord_services
from bot.discord_delivery import parse_webhook_url
from bot.notify import ConsoleNotifier
from bot.runner import run_replay
from feeds.replay import load_replay
from tests.helpers.cli import REPO, clean_env, liqbot_cmd, write_coinglass_csv
from tests.helpers.fake_discord import CHANNEL_ID, TOKEN, FakeDiscord

TWO_EPISODES = {50: (1e6, 60e6), 120: (40e6, 0.5e6)}


def printed_alerts(stdout: str) -> list[str]:
    return [b.strip() for b in stdout.split("\n\n") if "liquidated in" in b]


def headlines(payloads: list[dict]) -> list[str]:
    """The headline of each posted embed, as the console printed it."""
    return [p["embeds"][0]["description"].strip("*") for p in payloads]


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
        assert [s.name for s in runner.chat_services(settings)] == ["discord-webhook"]
        out = io.StringIO()
        await run_replay(load_replay([csv], symbol="BTC"), settings,
                         notifiers={"console": ConsoleNotifier(out)})
    hook = ("webhook", parse_webhook_url(url).id)
    assert headlines(fake.sent_to(hook)) == [
        a.splitlines()[1] for a in printed_alerts(out.getvalue())]


async def liqbot(*args: str, within_s: float = 60, **env: str) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop that serves the fake; kill it by pid if stuck."""
    proc = await asyncio.create_subprocess_exec(
        *liqbot_cmd(*args), cwd=REPO, env=clean_env(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within_s)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_replay_delivers_every_printed_alert_to_the_webhook(tmp_path):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
    db = tmp_path / "c.db"
    async with FakeDiscord() as fake:
        url = fake.add_webhook()
        fake.rate_limit_next(("webhook", parse_webhook_url(url).id), 0.3)
        code, out, err = await liqbot("run", "-v", "--replay", str(csv), "--symbol", "BTC",
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
