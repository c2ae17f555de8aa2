"""`liqbot run --replay` with Telegram configured: the real CLI as a subprocess, the fake Bot API
in the test's loop. Delivery to every configured chat, kill -9 between send and ack, and the
token kept out of logs, stderr and the database (RELIABILITY.md items 11, 12, 23)."""

from __future__ import annotations

import io
import logging
import signal
import sqlite3
from pathlib import Path

import pytest

from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.run.replay import run_replay
from bot.telegram.delivery import TelegramLimits
from bot.telegram.service import TelegramService
from feeds.history.replay import load_replay
from tests.helpers.cli import liqbot_async, write_coinglass_csv
from tests.helpers.fake_telegram import TOKEN, FakeBotApi, fail, telegram_settings

pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")
TWO_EPISODES = {50: (1e6, 60e6), 120: (40e6, 0.5e6)}




def tg_env(fake: FakeBotApi, chats: str, token: str = TOKEN) -> dict[str, str]:
    return {"LIQBOT_TELEGRAM_TOKEN": token, "LIQBOT_TELEGRAM_API_URL": fake.base_url,
            "LIQBOT_TELEGRAM_CHAT_IDS": chats}


def printed_alerts(stdout: str) -> list[str]:
    return [b.strip() for b in stdout.split("\n\n") if "liquidated in" in b]


def no_token_in(token: str, *texts: str, files: list[Path] = ()) -> None:
    for text in texts:
        assert token not in text
    for f in files:
        if f.exists():
            assert token.encode() not in f.read_bytes(), f


async def test_replay_delivers_every_printed_alert_to_each_configured_chat(tmp_path):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
    db = tmp_path / "r.db"
    chats = ["-1001234567890", "555", "@liqchannel"]
    async with FakeBotApi(TOKEN) as fake:
        # Faults on the way: a flood wait and a server error, both to be absorbed.
        fake.next_reply["555"] = [fail(429, "Too Many Requests: retry after 1", retry_after=1)]
        fake.next_reply["-1001234567890"] = [fail(500, "Internal Server Error")]
        code, out, err = await liqbot_async("run", "-v", "--replay", str(csv), "--symbol", "BTC",
                                      "--speed", "0", "--db", str(db),
                                      **tg_env(fake, ",".join(chats)))
    assert code == 0, err[-3000:]
    alerts = printed_alerts(out)
    assert len(alerts) == 2
    for chat in chats:
        assert fake.sent_to(chat) == alerts, chat  # each printed alert, once, in order
    assert not fake.early and len(fake.rate_limited) == 1
    assert "flood control, retry after 1s" in err and "Set Bot API URL" in err  # DEBUG on...
    no_token_in(TOKEN, out, err, files=[db, Path(f"{db}-wal")])  # ...and masked the token


async def test_kill9_between_send_and_ack_duplicates_at_most_once_and_loses_nothing(tmp_path):
    spikes = {h: (0.5e6, 30e6 + h) for h in range(20, 60, 12)}  # 4 separate episodes
    csv = write_coinglass_csv(tmp_path / "cg.csv", 70, spikes)
    clean = io.StringIO()
    await run_replay(load_replay([csv], symbol="BTC"),
                     load_settings(None, environ={}, overrides={"db": str(tmp_path / "c.db")}),
                     notifiers={"console": ConsoleNotifier(clean)})
    expected = printed_alerts(clean.getvalue())
    assert len(expected) == 4
    db = str(tmp_path / "k.db")
    args = ("run", "--replay", str(csv), "--symbol", "BTC", "--db", db)
    async with FakeBotApi(TOKEN) as fake:
        env = tg_env(fake, "555,556")
        code, out1, _ = await liqbot_async(*args, LIQBOT_CRASH_AT="after_send:5", **env)
        assert code == -signal.SIGKILL and 0 < len(fake.sent) < 2 * len(expected)
        code, out2, err = await liqbot_async(*args, **env)
        assert code == 0, err[-3000:]
    for chat in ("555", "556"):
        got = fake.sent_to(chat)
        assert set(got) == set(expected), chat  # nothing lost
        assert all(got.count(a) <= 2 for a in expected)  # at most twice
    duplicated = {a for c in ("555", "556") for a in expected if fake.sent_to(c).count(a) == 2}
    assert len(duplicated) <= 1  # only the alert whose sends were in flight at the kill
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT DISTINCT status FROM outbox").fetchall() == [("sent",)]
    finally:
        conn.close()


async def test_rejected_token_is_masked_and_the_replay_still_finishes(tmp_path):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
    db = tmp_path / "w.db"
    wrong = "1111111111:AAWrongTokenTheServerRefuses_0000"
    async with FakeBotApi(TOKEN) as fake:
        code, out, err = await liqbot_async("run", "-v", "--replay", str(csv), "--symbol", "BTC",
                                      "--db", str(db), **tg_env(fake, "555", token=wrong))
    assert code == 0 and len(printed_alerts(out)) == 2  # the console still got everything
    assert fake.bad_token >= 1 and "rejected the token" in err
    no_token_in(wrong, out, err, files=[db, Path(f"{db}-wal")])


async def test_refused_connections_and_timeouts_never_log_the_token(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    csv = write_coinglass_csv(tmp_path / "cg.csv", 200, TWO_EPISODES)
    async with FakeBotApi(TOKEN) as fake:
        fake.delays["555"] = [1.0]  # answers after our read timeout
        settings = telegram_settings(fake, str(tmp_path / "t.db"), chat_ids=("555",))
        service = TelegramService(settings, limits=TelegramLimits(timeout_s=0.3))
        await run_replay(load_replay([csv], symbol="BTC"), settings, notifiers={},
                         services=[service], drain_timeout_s=5)
        port = fake.port
    assert len(fake.sent_to(555)) == 3  # one alert timed out after the write: sent again
    dead = telegram_settings(fake, str(tmp_path / "d.db"), chat_ids=("555",))
    dead = dead.__class__(**{**dead.__dict__, "telegram_api_url": f"http://127.0.0.1:{port}/bot"})
    await run_replay(load_replay([csv], symbol="BTC"), dead, notifiers={},
                     services=[TelegramService(dead, startup_wait_s=0.5)], drain_timeout_s=1)
    assert "Set Bot API URL" in caplog.text and "cannot reach the Bot API" in caplog.text
    no_token_in(TOKEN, caplog.text, files=[tmp_path / "t.db", tmp_path / "d.db"])
