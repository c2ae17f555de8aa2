"""A kill -9 harness around the real CLI: start it, kill it when the fake says so, rerun.

Each fault test prints one line of figures (`FAULT name: lost=… duplicated=… tracebacks=…`)
so `make faults` shows them; the assertions fail on any loss.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from tests.helpers.cli import REPO, clean_env, liqbot_cmd


@dataclass
class Runs:
    """What the runs of one fault case printed, and how they ended."""

    codes: list[int] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def tracebacks(self) -> int:
        return sum(err.count("Traceback (most recent call last)") for err in self.stderr)


async def run_until(args: tuple[str, ...], env: dict[str, str], runs: Runs,
                    kill_after: Awaitable[Any] | None = None, delay_s: float = 0.0,
                    within_s: float = 90.0) -> int:
    """Run the CLI; once `kill_after` is done, wait `delay_s` and SIGKILL it. Its exit code."""
    proc = await asyncio.create_subprocess_exec(
        *liqbot_cmd(*args), cwd=REPO, env=clean_env(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    talk = asyncio.ensure_future(proc.communicate())
    try:
        async with asyncio.timeout(within_s):
            if kill_after is not None:
                trigger = asyncio.ensure_future(kill_after)
                await asyncio.wait({trigger, talk}, return_when=asyncio.FIRST_COMPLETED)
                trigger.cancel()
                if not talk.done():
                    await asyncio.sleep(delay_s)
                    if proc.returncode is None:
                        proc.send_signal(signal.SIGKILL)
            out, err = await talk
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    code = proc.returncode if proc.returncode is not None else 0
    runs.codes.append(code)
    runs.stdout.append(out.decode())
    runs.stderr.append(err.decode())
    return code


def outbox_rows(db: str) -> list[tuple[str, str, str, int]]:
    """(alert key, destination, status, maybe_sent) for every outbox row."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT alert_key, destination, status, maybe_sent FROM outbox").fetchall()
    finally:
        conn.close()


def figures(name: str, **values: object) -> str:
    line = f"FAULT {name}: " + " ".join(f"{k}={v}" for k, v in values.items())
    print(line)
    return line
