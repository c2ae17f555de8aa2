"""Ingest benchmark: raw Binance forceOrder frames -> parse_message -> Store.insert_liquidations.

Baseline, measured in the same run: plain `sqlite3` executemany of the very same row tuples
the store inserts (already parsed), with the store's own INSERT into a fresh database of the
store's schema (the same events table and unique index), one transaction per batch of the
same size, in WAL. What the ratio prices is ours on top: JSON decoding, normalization, the
event key, the raw payload, the bucket sums and the store layer. For reference the same rows
also go into a bare table with no index at all (an info row, not the target).

    .venv/bin/python bench/ingest.py [--frames 200000] [--batch 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    loadavg,
    peak_rss_mib,
    progress,
    synth_frames,
    table,
    verdict,
)
from feeds.store.core import _INSERT_EVENT, Store, _event_row  # noqa: E402
from feeds.venues.binance import parse_message  # noqa: E402

TARGET = 0.25
PLAIN_TABLE = (
    "CREATE TABLE events (uid INTEGER, exchange TEXT, symbol TEXT, coin TEXT, side TEXT, qty TEXT,"
    " price TEXT, usd REAL, ts_ms INTEGER, recv_ms INTEGER, sampled INTEGER, raw TEXT)"
)
PLAIN_INSERT = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def ingest(store: Store, frames: list[tuple[str, int]], batch: int) -> tuple[int, float, float]:
    """Feed frames the way the live feed does: parse each, store a batch per transaction."""
    new = 0
    t, c = time.perf_counter(), time.process_time()
    for i in range(0, len(frames), batch):
        events = []
        for text, recv_ms in frames[i:i + batch]:
            events.extend(parse_message(text, recv_ms))
        new += store.insert_liquidations(events)
    return new, time.perf_counter() - t, time.process_time() - c


def parsed_rows(frames: list[tuple[str, int]]) -> tuple[list[tuple[Any, ...]], float, float]:
    """The exact tuples Store.insert_liquidations executes, and the time to make them."""
    t, c = time.perf_counter(), time.process_time()
    rows = [_event_row(e, True) for text, recv_ms in frames for e in parse_message(text, recv_ms)]
    return rows, time.perf_counter() - t, time.process_time() - c


def baseline(path: Path, rows: list[tuple[Any, ...]], batch: int, *,
             bare: bool = False) -> tuple[int, float, float]:
    """executemany of `rows`: into the store's events table, or (`bare`) an unindexed one."""
    if not bare:
        Store(path).close()  # the schema only; nothing of the store runs while timed
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # what Store sets
    if bare:
        conn.execute(PLAIN_TABLE)
    insert = PLAIN_INSERT if bare else _INSERT_EVENT
    t, c = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows[i:i + batch])
        conn.execute("COMMIT")
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    return count, secs, cpu


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200_000, help="distinct frames (default 200000)")
    ap.add_argument("--batch", type=int, default=500, help="frames per transaction (default 500)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="alternate ours/baseline this many times on fresh DBs; best of each")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tmpdir", default=None, help="where the temporary DBs go (default: /tmp)")
    return ap.parse_args(argv)


def first_round_checks(store: Store, frames: list[tuple[str, int]], new: int,
                       batch: int) -> dict[str, Any]:
    """Correctness on the first fresh store: counts, buckets, and a full re-ingest."""
    n = len(frames)
    count = store.count_events()
    bucket_n, bucket_usd = store.database.conn.execute(
        "SELECT sum(long_n + short_n), sum(long_usd + short_usd) FROM buckets_1h").fetchone()
    event_usd = store.database.conn.execute("SELECT sum(usd) FROM events").fetchone()[0]
    rss = peak_rss_mib()
    progress("[ingest] re-ingesting the same frames ...")
    again, again_s, _ = ingest(store, frames, batch)
    checks = {
        f"rows stored == N ({count:,})": count == n == new,
        "re-ingest added 0 rows": again == 0 and store.count_events() == n,
        "hour buckets count N events, same USD": bucket_n == n
        and abs(bucket_usd - event_usd) <= 1e-9 * abs(event_usd),
    }
    return {"checks": checks, "again": again, "again_s": again_s, "rss": rss}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    n, batch = args.frames, args.batch
    progress(f"[ingest] synthesizing {n:,} frames ...")
    frames = synth_frames(n, args.seed)
    print(f"ingest: {n:,} raw Binance forceOrder frames, {batch} per transaction, WAL, "
          f"synchronous=NORMAL; {loadavg()}\n"
          f"  sample: {frames[0][0]}")
    ours: list[tuple[float, float]] = []
    base: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="liqbot-bench-", dir=args.tmpdir) as tmp:
        rows, parse_s, parse_cpu = parsed_rows(frames)  # the baseline's input, made untimed
        for r in range(1, args.repeat + 1):
            progress(f"[ingest] round {r}/{args.repeat}: ours (parse + insert_liquidations) ...")
            gc.collect()
            store = Store(Path(tmp) / f"ours{r}.db")
            new, secs, cpu = ingest(store, frames, batch)
            ours.append((secs, cpu))
            if r == 1:
                first = first_round_checks(store, frames, new, batch)
            store.close()
            progress(f"[ingest] round {r}/{args.repeat}: baseline (plain executemany) ...")
            gc.collect()
            base_count, secs, cpu = baseline(Path(tmp) / f"baseline{r}.db", rows, batch)
            base.append((secs, cpu))
            _, secs, cpu = baseline(Path(tmp) / f"bare{r}.db", rows, batch, bare=True)
            bare.append((secs, cpu))
    (ours_s, ours_cpu), (base_s, base_cpu) = min(ours), min(base)
    ours_fps, base_fps = n / ours_s, n / base_s
    ratio = ours_fps / base_fps
    print(f"best of {args.repeat} alternating rounds (wall s per round: ours "
          f"{', '.join(f'{s:.2f}' for s, _ in ours)}; "
          f"baseline {', '.join(f'{s:.2f}' for s, _ in base)})")
    sql_s, sql_cpu = max(ours_s - parse_s, 1e-9), max(ours_cpu - parse_cpu, 0.0)
    table(["run", "rows", "wall s", "cpu s", "frames/s"], [
        ["ours: parse_message + Store.insert_liquidations", new, f"{ours_s:.2f}",
         f"{ours_cpu:.2f}", f"{ours_fps:,.0f}"],
        ["baseline: executemany, same rows, same table", base_count, f"{base_s:.2f}",
         f"{base_cpu:.2f}", f"{base_fps:,.0f}"],
        ["(info) executemany into a bare table, no index", len(rows), f"{min(bare)[0]:.2f}",
         f"{min(bare)[1]:.2f}", f"{n / min(bare)[0]:,.0f}"],
        ["(info) parse_message + store row tuples only", len(rows), f"{parse_s:.2f}",
         f"{parse_cpu:.2f}", f"{n / parse_s:,.0f}"],
        ["(info) ours minus that = SQL share (approx.)", "", f"{sql_s:.2f}", f"{sql_cpu:.2f}",
         f"{n / sql_s:,.0f}"],
        ["(info) re-ingest same frames (all duplicates)", first["again"],
         f"{first['again_s']:.2f}", "", f"{n / first['again_s']:,.0f}"],
    ])
    checks = {**first["checks"], "baseline stored N rows": base_count == n == len(rows)}
    for name, ok in checks.items():
        print(f"check: {name:45s} {'ok' if ok else 'FAILED'}")
    print(f"peak RSS (whole process, {n:,} frames + parsed rows in memory): {first['rss']:,.0f} "
          f"MiB after the first ours round, {peak_rss_mib():,.0f} MiB at end")
    passed = ratio >= TARGET and all(checks.values())
    print(f"ratio = ours / baseline = {ours_fps:,.0f} / {base_fps:,.0f} frames/s = {ratio:.3f}   "
          f"(cpu-time ratio {base_cpu / ours_cpu:.3f})   target >= {TARGET}   {verdict(passed)}")
    print(f"(info) against the bare table: {ours_s and min(bare)[0] / ours_s:.3f}")
    return {"frames": n, "ours_fps": ours_fps, "baseline_fps": base_fps, "ratio": ratio,
            "checks": checks, "checks_ok": all(checks.values()), "passed": passed}


if __name__ == "__main__":
    main()
    sys.exit(0)
