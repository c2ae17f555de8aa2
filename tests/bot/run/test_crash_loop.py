"""A crash loop during a fan-out (issue 15 item 2): one alert to 60 Telegram chats, the real
CLI killed with SIGKILL three times 0.25 s after its first send, then a clean run.

An attempt counts as "maybe sent" only once its request leaves (after every rate limiter);
a kill while it waits there costs nothing, and a row maybe sent is retried until it is
acknowledged, so every chat gets the alert. Duplicates come only from requests in flight at
a kill; they are counted here and bounded by the outbox's maybe_sent column.
"""

from __future__ import annotations

import io
import signal

from bot.chat.console import ConsoleNotifier
from bot.config import load_settings
from bot.run.replay import run_replay
from feeds.history.replay import load_replay
from tests.bot.run.crash_rig import Runs, figures, outbox_rows, run_until
from tests.helpers.cli import write_coinglass_csv
from tests.helpers.fake_telegram import TOKEN, FakeBotApi

CHATS = [str(1000 + i) for i in range(60)]
KILLS = 3


async def test_crash_loop_during_a_60_chat_fan_out_loses_no_alert(tmp_path):
    csv = write_coinglass_csv(tmp_path / "cg.csv", 70, {50: (1e6, 60e6)})
    clean = io.StringIO()
    await run_replay(load_replay([csv], symbol="BTC"),
                     load_settings(None, environ={}, overrides={"db": str(tmp_path / "c.db")}),
                     notifiers={"console": ConsoleNotifier(clean)})
    assert clean.getvalue().count("liquidated in") == 1
    db = str(tmp_path / "k.db")
    args = ("run", "--replay", str(csv), "--symbol", "BTC", "--db", db, "--ops")  # metered
    runs = Runs()
    async with FakeBotApi(TOKEN) as fake:
        env = {"LIQBOT_TELEGRAM_TOKEN": TOKEN, "LIQBOT_TELEGRAM_API_URL": fake.base_url,
               "LIQBOT_TELEGRAM_CHAT_IDS": ",".join(CHATS)}
        for _ in range(KILLS):
            first_send = fake.wait_sent(len(fake.sent) + 1, within_s=60)
            code = await run_until(args, env, runs, kill_after=first_send, delay_s=0.25)
            assert code == -signal.SIGKILL, runs.stderr[-1][-3000:]
        code = await run_until(args, env, runs)
        assert code == 0, runs.stderr[-1][-3000:]
    got = {chat: len(fake.sent_to(chat)) for chat in CHATS}
    lost = sum(1 for n in got.values() if n == 0)
    duplicated = sum(n - 1 for n in got.values() if n > 1)
    rows = outbox_rows(db)
    maybe_dup = sum(max(0, m - 1) for *_, m in rows)
    figures("crash loop (3 x kill -9 during a 60-chat fan-out)", lost=lost,
            duplicated=duplicated, maybe_duplicated_per_outbox=maybe_dup,
            tracebacks=runs.tracebacks, sends=len(fake.sent))
    assert lost == 0, {c: n for c, n in got.items() if n == 0}
    assert {status for _, _, status, _ in rows} == {"sent"}
    # Every duplicate is a request that left before a kill and was never acknowledged:
    # at most one per chat in flight per kill, and the outbox counted each of them.
    assert duplicated <= maybe_dup
    # ...and counted only what left: a kill while sends wait in the limiter counts nothing
    # (counted at the start of each send, this read 48).
    assert maybe_dup <= duplicated + KILLS * 4
    assert runs.tracebacks == 0


async def test_kills_with_requests_in_flight_duplicate_only_what_the_outbox_counted(tmp_path):
    """The other crash: killed after a send left and before its acknowledgement was stored
    (LIQBOT_CRASH_AT=after_send), three times in a row. Those chats get the alert twice;
    each such copy is one `maybe_sent` on its row, and none is lost."""
    csv = write_coinglass_csv(tmp_path / "cg.csv", 70, {50: (1e6, 60e6)})
    db = str(tmp_path / "k.db")
    args = ("run", "--replay", str(csv), "--symbol", "BTC", "--db", db)
    runs = Runs()
    async with FakeBotApi(TOKEN) as fake:
        env = {"LIQBOT_TELEGRAM_TOKEN": TOKEN, "LIQBOT_TELEGRAM_API_URL": fake.base_url,
               "LIQBOT_TELEGRAM_CHAT_IDS": ",".join(CHATS)}
        for n in (5, 3, 7):
            code = await run_until(args, {**env, "LIQBOT_CRASH_AT": f"after_send:{n}"}, runs)
            assert code == -signal.SIGKILL, runs.stderr[-1][-3000:]
        code = await run_until(args, env, runs)
        assert code == 0, runs.stderr[-1][-3000:]
    got = {chat: len(fake.sent_to(chat)) for chat in CHATS}
    lost = sum(1 for n in got.values() if n == 0)
    duplicated = sum(n - 1 for n in got.values() if n > 1)
    maybe_dup = sum(max(0, m - 1) for *_, m in outbox_rows(db))
    figures("3 x kill -9 with a send in flight (60 chats)", lost=lost, duplicated=duplicated,
            maybe_duplicated_per_outbox=maybe_dup, tracebacks=runs.tracebacks)
    assert lost == 0 and 1 <= duplicated <= maybe_dup
    assert max(got.values()) <= 1 + KILLS  # per chat: one copy per kill at most
    assert {status for _, _, status, _ in outbox_rows(db)} == {"sent"}
    assert runs.tracebacks == 0
