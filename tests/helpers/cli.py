"""Run the real `liqbot` console entry point as a subprocess and read what it printed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.shared import REPO_ROOT as REPO
from tests.helpers.shared import SHARED_DATA  # noqa: F401 (re-exported)


def liqbot_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli.main", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment minus any LIQBOT_* settings of the developer's shell.

    A live `liqbot run` serves its ops page; on a free port, so that parallel test runs
    on one machine never fight over the default 9108.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQBOT_")}
    env["LIQBOT_OPS_LISTEN"] = "127.0.0.1:0"
    env.update(extra)
    return env


def run_liqbot(*args: str, timeout: float = 120, stdin: str | None = None,
               **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        liqbot_cmd(*args), input=stdin, capture_output=True, text=True, timeout=timeout,
        cwd=REPO, env=clean_env(**env),
    )


def alert_blocks(stdout: str) -> list[tuple[str, ...]]:
    """Split console output into alerts: (title, headline, split, window) per alert."""
    blocks = []
    for chunk in stdout.split("\n\n"):
        lines = chunk.strip().splitlines()
        if len(lines) >= 4 and "liquidated in" in lines[1]:
            blocks.append(tuple(lines[:4]))
    return blocks


def write_coinglass_csv(path: Path, hours: int, spikes: dict[int, tuple[float, float]],
                        start_ms: int = 1_767_225_600_000) -> Path:
    """A CoinGlass-format hourly export: quiet hours, plus (long, short) USD spikes."""
    rows = ["timestamp,datetime_utc,longUsd,shortUsd,totalUsd"]
    for h in range(hours):
        ts = start_ms + h * 3_600_000
        lo, sh = spikes.get(h, (400_000.0 + 1_000 * (h % 7), 300_000.0 + 1_000 * (h % 5)))
        rows.append(f"{ts},x,{lo},{sh},{lo + sh}")
    path.write_text("\n".join(rows) + "\n")
    return path


async def liqbot_async(*args: str, within_s: float = 60, **env: str) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop that serves a fake; kill it by pid if stuck."""
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
