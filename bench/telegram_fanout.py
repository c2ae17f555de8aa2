"""Telegram fan-out, through the real PTB client against the fake Bot API.

Fan-out: one alert to --chats subscribed chats (a --groups share of them groups), delivered
by the outbox exactly as `liqbot run` does, to a fake server that enforces R messages/s
overall with a sliding window (plus 1/s per chat, 20/min per group) and answers 429 with
retry_after above it. Target: achieved rate / R >= 0.9, no message lost, no 429 unhandled
(a chat asked again before its retry_after ended counts as unhandled).

Alert latency (frame -> accepted sendMessage through `liqbot run`) is bench/latency.py.

    .venv/bin/python bench/telegram_fanout.py                      # 10,000 chats, R = 30 and 300
    .venv/bin/python bench/telegram_fanout.py --rates 300 --chats 2000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import loadavg, progress, table, verdict  # noqa: E402
from bot.chat.delivery import deliver_due  # noqa: E402
from bot.policy import Policy  # noqa: E402
from bot.state.outbox import Outbox  # noqa: E402
from bot.state.subscriptions import Subscription, Subscriptions  # noqa: E402
from bot.state.writer import Writer  # noqa: E402
from bot.telegram.delivery import TelegramLimits  # noqa: E402
from bot.telegram.service import TelegramService  # noqa: E402
from signals import SignalParams  # noqa: E402
from tests.helpers.factories import make_alert  # noqa: E402
from tests.helpers.fake_telegram import TOKEN, telegram_settings  # noqa: E402

TARGET_RATIO = 0.9
def chat_ids(n: int, groups: float, seed: int = 7) -> list[str]:
    """n distinct chats: private ids, and a share of supergroup ids (-100...)."""
    rng = random.Random(seed)
    return [str(-1001000000000 - i) if rng.random() < groups else str(10_000 + i)
            for i in range(n)]


class RemoteFake:
    """The fake Bot API in its own process, so its CPU is not counted against the bot's."""

    def __init__(self, rate: float) -> None:
        self.rate, self.token = rate, TOKEN
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""

    async def __aenter__(self) -> RemoteFake:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.helpers.fake_telegram", "--overall", str(self.rate),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None
        port = int((await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode())
        self.base_url = f"http://127.0.0.1:{port}/bot"
        return self

    async def stats(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.base_url[:-4] + "/_stats") as r:
                return dict(await r.json())

    async def __aexit__(self, *_: Any) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()


async def fanout(rate: float, chats: list[str], tmpdir: Path, parallel: int) -> dict[str, Any]:
    """One alert to every chat at `rate`; measure what the fake accepted and refused."""
    db = str(tmpdir / f"fanout-{rate:g}.db")
    async with RemoteFake(rate) as fake:
        settings = telegram_settings(fake, db)  # type: ignore[arg-type]
        writer = Writer(db)
        service = TelegramService(settings, limits=TelegramLimits(messages_per_s=rate,
                                                                  parallel=parallel))
        try:
            await service.start(writer, live=False)
            alert = make_alert(key=f"bench-{rate:g}")

            def record() -> None:
                subs = Subscriptions(writer.store)
                with writer.store.transaction():
                    for c in chats:
                        subs.put(Subscription("telegram", c), 0)
                    Policy(writer.store, SignalParams()).record(
                        [alert], [f"telegram:{c}" for c in chats], int(time.time() * 1000))

            await writer.run(record)
            outbox = Outbox(writer.store)
            notifiers = {"telegram": service.notifier}
            t0, c0 = time.monotonic(), time.process_time()
            while True:
                await deliver_due(outbox, notifiers, int(time.time() * 1000), writer.run)
                nxt = await writer.run(outbox.next_due_ms, ["telegram"])
                if nxt is None:
                    break
                await asyncio.sleep(max(0.01, nxt / 1000 - time.time()))
            elapsed, cpu = time.monotonic() - t0, time.process_time() - c0
            status = await writer.run(lambda: dict(writer.store.database.conn.execute(
                "SELECT status, count(*) FROM outbox GROUP BY status")))
            stats = await fake.stats()
        finally:
            await service.stop()
            writer.close()
    times = sorted(t for _, t in stats["sent"])
    got = {c for c, _ in stats["sent"]}
    achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return {
        "rate": rate, "chats": len(chats), "accepted": len(stats["sent"]),
        "lost": len(set(chats) - got), "duplicates": len(stats["sent"]) - len(got),
        "achieved": achieved, "ratio": achieved / rate, "elapsed_s": elapsed,
        "cpu_ms_per_msg": 1000 * cpu / max(1, len(chats)),
        "r429": stats["rate_limited"], "unhandled_429": stats["early"], "outbox": status,
    }


def report(fan: list[dict[str, Any]]) -> bool:
    ok = True
    rows = []
    for r in fan:
        good = (r["ratio"] >= TARGET_RATIO and r["lost"] == 0 and r["unhandled_429"] == 0
                and r["outbox"] == {"sent": r["chats"]})
        ok &= good
        rows.append([f"{r['rate']:g}/s", r["chats"], r["accepted"], r["lost"], r["duplicates"],
                     f"{r['achieved']:.1f}/s", f"{r['ratio']:.3f}", r["r429"],
                     r["unhandled_429"], f"{r['elapsed_s']:.1f}", f"{r['cpu_ms_per_msg']:.2f}",
                     verdict(good)])
    print("\nFan-out: one alert to every chat; ratio = achieved rate / R (target >= "
          f"{TARGET_RATIO}), no loss, no 429 unhandled")
    table(["R", "chats", "accepted", "lost", "dup", "achieved", "ratio", "429s", "unhandled",
           "seconds", "cpu ms/msg", "verdict"], rows)
    print(loadavg())
    return ok


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chats", type=int, default=10_000)
    ap.add_argument("--groups", type=float, default=0.1, help="share of chats that are groups")
    ap.add_argument("--rates", default="30,300", help="comma list of R, messages/s")
    ap.add_argument("--parallel", type=int, default=TelegramLimits().parallel,
                    help="chats served at once by an outbox pass")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    chats = chat_ids(args.chats, args.groups)

    async def run() -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="tgbench-") as tmp:
            fan = []
            for rate in (float(r) for r in args.rates.split(",") if r):
                progress(f"fan-out: {len(chats)} chats at R = {rate:g}/s "
                         f"(about {len(chats) / rate / 0.95:.0f} s)")
                fan.append(await fanout(rate, chats, Path(tmp), args.parallel))
            return fan

    fan = asyncio.run(run())
    passed = report(fan)
    return {"passed": passed, "fanout": fan}


if __name__ == "__main__":
    main()
