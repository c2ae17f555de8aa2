"""kill -9 with commands in flight: the real `liqbot run` against the fake Bot API.

Each trial sends `per_chat` commands from each of `chats` new chats, starts the bot and
kills it with SIGKILL at the first answer it sends; the next trial's bot finds what the
last one left. A last run answers the rest; then a burst from one chat (answers paced at
1/s) is cut short by SIGTERM, timed, and answered by one more run. Every command asks
`/liqs` for its own coin, so each answer names the one command it answers.

    python -m tests.bot.telegram.kill9 [--trials 10]   # prints the figures
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.cli import clean_env, liqbot_cmd
from tests.helpers.fake_telegram import TOKEN, FakeBotApi
from tests.helpers.shared import REPO_ROOT

NO_FEEDS = '[feeds]\nvenues = []\n[funding]\nvenues = []\n'


@dataclass
class Figures:
    commands: int = 0
    kills: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    sigterm_s: float = 0.0
    sigterm_queued: int = 0  # answers still owed when SIGTERM came
    tracebacks: int = 0

    def lines(self) -> list[str]:
        return [f"commands sent:          {self.commands}",
                f"kill -9 with commands in flight: {self.kills}",
                f"commands never answered: {len(self.lost)}",
                f"duplicate answers:       {sum(self.duplicated.values())}",
                f"SIGTERM stop with {self.sigterm_queued} answers owed: {self.sigterm_s:.2f} s",
                f"tracebacks in stderr:    {self.tracebacks}"]


def answer_to(coin: str) -> str:
    return f"No liquidations recorded for {coin} in the last 1h."


class Bot:
    """One `liqbot run` process; its stderr goes to a file, read for tracebacks at the end."""

    def __init__(self, tmp: Path, fake: FakeBotApi, n: int) -> None:
        self.tmp, self.fake, self.n = tmp, fake, n
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        cfg = self.tmp / "nofeeds.toml"
        cfg.write_text(NO_FEEDS)
        env = clean_env(LIQBOT_TELEGRAM_TOKEN=TOKEN, LIQBOT_TELEGRAM_API_URL=self.fake.base_url)
        err = (self.tmp / f"bot{self.n}.err").open("wb")  # noqa: SIM115, ASYNC230 (the child owns it)
        self.proc = await asyncio.create_subprocess_exec(
            *liqbot_cmd("run", "--config", str(cfg), "--db", str(self.tmp / "k.db")),
            cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=err)
        err.close()

    async def signal(self, sig: int, within_s: float = 30.0) -> float:
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        with contextlib.suppress(TimeoutError):  # the time says so; SIGKILL it then
            await asyncio.wait_for(self.proc.wait(), within_s)
        took = time.monotonic() - t0
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        return took


async def run(tmp: Path, trials: int = 10, chats: int = 10, per_chat: int = 5,
              jitter_s: float = 0.0, seed: int = 15) -> Figures:
    """`jitter_s`: kill up to that long after the first answer instead of at it."""
    rng = random.Random(seed)
    figures = Figures()
    coins: list[str] = []
    async with FakeBotApi(TOKEN) as fake:
        def ask(coin: str, chat: int) -> None:
            coins.append(coin)
            fake.push_command(f"/liqs {coin}", chat)

        def answered() -> Counter[str]:
            return Counter(m["plain"] for m in fake.sent)

        runs = 0
        for t in range(trials):
            for i in range(chats):
                for k in range(per_chat):
                    ask(f"T{t}C{i}N{k}", 1000 + t * chats + i)
            before = len(fake.sent)
            bot = Bot(tmp, fake, runs := runs + 1)
            await bot.start()
            await fake.wait_until(lambda: len(fake.sent) > before, within_s=60)  # noqa: B023
            if jitter_s:
                await asyncio.sleep(rng.uniform(0, jitter_s))
            await bot.signal(signal.SIGKILL)
            figures.kills += 1
        bot = Bot(tmp, fake, runs := runs + 1)
        await bot.start()
        want = {answer_to(c) for c in coins}
        with contextlib.suppress(TimeoutError):
            await fake.wait_until(lambda: want <= set(answered()), within_s=120)
        # SIGTERM with answers owed to one chat at 1/s: the stop must not wait them out.
        burst = [f"S{k}" for k in range(12)]
        for coin in burst:
            ask(coin, 999)
        with contextlib.suppress(TimeoutError):
            await fake.wait_until(lambda: answer_to("S0") in answered(), within_s=30)
        await asyncio.sleep(0.5)
        figures.sigterm_queued = sum(answer_to(c) not in answered() for c in burst)
        figures.sigterm_s = await bot.signal(signal.SIGTERM)
        bot = Bot(tmp, fake, runs := runs + 1)
        await bot.start()
        want = {answer_to(c) for c in coins}
        with contextlib.suppress(TimeoutError):
            await fake.wait_until(lambda: want <= set(answered()), within_s=60)
        await asyncio.sleep(1.0)  # time enough for a (wrong) second answer to arrive
        await bot.signal(signal.SIGTERM)
        got = answered()
    figures.commands = len(coins)
    figures.lost = [c for c in coins if got[answer_to(c)] == 0]
    figures.duplicated = {c: got[answer_to(c)] - 1 for c in coins if got[answer_to(c)] > 1}
    figures.tracebacks = sum((tmp / f"bot{n}.err").read_text().count("Traceback")
                             for n in range(1, runs + 1))
    return figures


if __name__ == "__main__":
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--jitter", type=float, default=0.0, help="kill up to this long after "
                    "the first answer (seconds)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        result = asyncio.run(run(Path(d), trials=args.trials, jitter_s=args.jitter))
    print("\n".join(result.lines()))
    if result.lost:
        print("lost:", ", ".join(result.lost))
    os._exit(1 if result.lost or sum(result.duplicated.values()) > 1 else 0)
