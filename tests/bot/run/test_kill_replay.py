"""kill -9 at random moments of a replay that delivers to Telegram, three times, then a clean
run: every event stored once, every alert in every chat, duplicates counted (issue 15 fault
suite). The kills land while alerts are being sent: after a random number of accepted
sends, plus a random delay."""

from __future__ import annotations

import io
import random
import signal
import sqlite3

from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.run.replay import run_replay
from feeds.history.replay import load_replay
from tests.bot.run.crash_rig import Runs, figures, run_until
from tests.helpers.cli import write_coinglass_csv
from tests.helpers.fake_telegram import TOKEN, FakeBotApi

CHATS = ["555", "556", "557"]
KILLS = 3


def printed(stdout: str) -> list[str]:
    return [b.strip() for b in stdout.split("\n\n") if "liquidated in" in b]


def buckets(db: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM agg_buckets").fetchone()[0])
    finally:
        conn.close()


async def test_random_kill9_during_replay_with_delivery_loses_nothing(tmp_path):
    spikes = {h: (0.5e6, 30e6 + h) for h in range(20, 116, 12)}  # 8 separate episodes
    csv = write_coinglass_csv(tmp_path / "cg.csv", 130, spikes)
    clean_db = str(tmp_path / "clean.db")
    out = io.StringIO()
    await run_replay(load_replay([csv], symbol="BTC"),
                     load_settings(None, environ={}, overrides={"db": clean_db}),
                     notifiers={"console": ConsoleNotifier(out)})
    expected = printed(out.getvalue())
    assert len(expected) == 8
    db = str(tmp_path / "k.db")
    args = ("run", "--replay", str(csv), "--symbol", "BTC", "--db", db)
    rng = random.Random(15)
    runs = Runs()
    async with FakeBotApi(TOKEN) as fake:
        env = {"LIQBOT_TELEGRAM_TOKEN": TOKEN, "LIQBOT_TELEGRAM_API_URL": fake.base_url,
               "LIQBOT_TELEGRAM_CHAT_IDS": ",".join(CHATS)}
        killed = 0
        for _ in range(KILLS):
            sends = fake.wait_sent(len(fake.sent) + rng.randint(1, 6), within_s=60)
            code = await run_until(args, env, runs, kill_after=sends,
                                   delay_s=rng.uniform(0.0, 0.3))
            killed += code == -signal.SIGKILL
        code = await run_until(args, env, runs)
        assert code == 0, runs.stderr[-1][-3000:]
    lost = sum(1 for chat in CHATS for a in expected if a not in fake.sent_to(chat))
    duplicated = sum(max(0, fake.sent_to(chat).count(a) - 1) for chat in CHATS for a in expected)
    figures("kill -9 during a replay with Telegram delivery", kills=killed, lost=lost,
            duplicated=duplicated, events_equal=buckets(db) == buckets(clean_db),
            tracebacks=runs.tracebacks)
    assert killed >= 1 and lost == 0
    assert buckets(db) == buckets(clean_db)
    # A duplicate needs a request in flight at a kill: at most one per chat and kill.
    assert duplicated <= killed * len(CHATS)
    assert runs.tracebacks == 0
