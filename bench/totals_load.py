"""`/liqs` totals while ingest runs in the same process (bench/totals.py's under-load phase).

On a copy of the benchmark store (without the bench-only covering indexes, so the writer
pays what the live store pays), a writer thread ingests synthetic Binance frames through
parse_message and Store.insert_liquidations at a steady rate, a batch every 10 ms as the
live feed's writer does; the main thread meanwhile asks Store.totals for the 24h and 1h
windows ending at the newest stored event, every few milliseconds, each on its own Store
connection as the live process has. The same queries are timed first with no writer
running, over the same span of window ends, so idle and loaded figures come from the same
run and the same mix of bucket edges.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import percentile, progress, synth_frames, table
from feeds.model import HOUR_MS, MINUTE_MS
from feeds.store import Store
from feeds.venues.binance import parse_message

TICK_S = 0.010
WINDOWS = (("24h", 24 * HOUR_MS), ("1h", HOUR_MS))
PAUSE_S = 0.004  # between queries: chat commands, not a tight loop


class Writer(threading.Thread):
    """Ingest `frames` at `rate` events/s through the real Store path until told to stop."""

    def __init__(self, path: Path, frames: list[tuple[str, int]], rate: int) -> None:
        super().__init__(name="bench-writer", daemon=True)
        self.path, self.frames, self.rate = path, frames, rate
        self.stop = threading.Event()
        self.sent = 0
        self.latest_ms = 0
        self.busy_s = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        store = Store(self.path)
        try:
            start = time.perf_counter()
            while not self.stop.is_set() and self.sent < len(self.frames):
                due = min(int((time.perf_counter() - start) * self.rate), len(self.frames))
                if due > self.sent:
                    t = time.perf_counter()
                    events = []
                    for text, recv_ms in self.frames[self.sent:due]:
                        events.extend(parse_message(text, recv_ms))
                    store.insert_liquidations(events)
                    self.busy_s += time.perf_counter() - t
                    self.sent = due
                    self.latest_ms = events[-1].ts_ms if events else self.latest_ms
                time.sleep(TICK_S)
            self.elapsed_s = time.perf_counter() - start
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            store.close()


def query_loop(store: Store, end_of: Any, seconds: float) -> dict[str, list[float]]:
    """Alternate the 24h and 1h totals for `seconds`: wall ms per call per window, and the
    reader thread's own CPU ms per call under "<window> cpu" (time waiting for a core or
    for the GIL is in the first, not the second)."""
    out: dict[str, list[float]] = {}
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        for name, window in WINDOWS:
            end = end_of()
            t, c = time.perf_counter_ns(), time.thread_time_ns()
            store.totals(end, window)
            out.setdefault(name, []).append((time.perf_counter_ns() - t) / 1e6)
            out.setdefault(f"{name} cpu", []).append((time.thread_time_ns() - c) / 1e6)
            time.sleep(PAUSE_S)
    return out


def run(path: Path, rate: int, seconds: float, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liqbot-load-") as tmp:
        copy = Path(tmp) / "load.db"
        progress(f"[totals] under load: copying the store to {copy} ...")
        src = sqlite3.connect(path)
        src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        src.close()
        shutil.copyfile(path, copy)
        conn = sqlite3.connect(copy)
        conn.execute("DROP INDEX IF EXISTS bench_cover")
        conn.execute("DROP INDEX IF EXISTS bench_cover_coin")
        last, before = conn.execute("SELECT max(ts_ms), count(*) FROM events").fetchone()
        conn.close()
        n = int(rate * seconds * 1.1) + 1
        # 1 ms apart: the simulated clock runs 1000 / rate times real time (5x at 5k/s), so
        # windows move about as they do live; 250 ms apart moved them 600x too fast.
        frames = synth_frames(n, seed + 1, t0_ms=(last // MINUTE_MS + 1) * MINUTE_MS,
                              gap_ms=(1, 1))
        reader = Store(copy)
        try:
            progress(f"[totals] under load: {seconds:.0f} s idle, then {seconds:.0f} s with "
                     f"a writer at {rate:,} events/s ...")
            # The loaded windows end at the newest event as the writer moves it on, through
            # the span its frames cover; the idle ones sweep the same span of the data
            # already there, so both meet the same mix of bucket edges.
            span = len(frames) and frames[-1][1] - frames[0][1]
            t0 = time.perf_counter()
            idle = query_loop(reader, lambda: last + 1 - span + int(
                span * min(1.0, (time.perf_counter() - t0) / seconds)), seconds)
            writer = Writer(copy, frames, rate)
            writer.latest_ms = last
            writer.start()
            loaded = query_loop(reader, lambda: writer.latest_ms + 1, seconds)
            writer.stop.set()
            writer.join()
            if writer.error is not None:
                raise writer.error
            stored = reader.count_events() - before
        finally:
            reader.close()
    achieved = writer.sent / writer.elapsed_s
    rows, p99 = [], {}
    for name, _ in WINDOWS:
        p99[name] = percentile(loaded[name], 99)
        cpu = loaded[f"{name} cpu"]
        rows.append([f"/liqs {name}", len(idle[name]), f"{percentile(idle[name], 50):.3f}",
                     f"{percentile(idle[name], 99):.3f}", len(loaded[name]),
                     f"{percentile(loaded[name], 50):.3f}", f"{p99[name]:.3f}",
                     f"{max(loaded[name]):.2f}",
                     f"{percentile(cpu, 50):.3f} / {percentile(cpu, 99):.3f}"])
    print(f"under load: writer thread at {achieved:,.0f} events/s for {writer.elapsed_s:.1f} s "
          f"({writer.sent:,} frames, busy {100 * writer.busy_s / writer.elapsed_s:.0f} % of the "
          f"time), same process, own connection; reader every {PAUSE_S * 1000:.0f} ms")
    table(["query", "idle n", "idle p50 ms", "idle p99 ms", "loaded n", "loaded p50 ms",
           "loaded p99 ms", "loaded max ms", "loaded reader CPU p50 / p99"], rows)
    checks = {
        f"writer kept up: >= 95 % of {rate:,} events/s": achieved >= 0.95 * rate,
        "every frame the writer sent is stored": stored == writer.sent,
    }
    return {"rate": achieved, "p99": p99, "checks": checks,
            "cpu_p99": {name: percentile(loaded[f"{name} cpu"], 99) for name, _ in WINDOWS},
            "idle_p99": {name: percentile(idle[name], 99) for name, _ in WINDOWS}}
