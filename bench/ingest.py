"""Ingest benchmark: raw Binance forceOrder frames -> parse_message -> Store.insert_liquidations.

Baseline, measured in the same run: plain `sqlite3` executemany of the very same event rows
the store writes (read back from a store fed the same frames, untimed: the Binance payload
remainder of feeds/store/compact.py is in them), with the store's own INSERT into a fresh
database of the store's schema (the same events table and unique index), one transaction
per batch of the same size, in WAL. What the ratio prices is ours on top: JSON decoding,
normalization, the plausibility gate, the event key, the bucket sums, the compressed venue
payloads and the store layer.

Two shapes, each ours and baseline alternating on fresh files, `--repeat` times, reported as
the median with its spread (min..max over the rounds):
  - batched: `--batch` frames per transaction (a replay, a busy minute of the live feed);
  - per frame: one frame per transaction (the live path when frames arrive one at a time).
Stored size: bytes per event of our file (events, buckets and payload blocks, after a WAL
checkpoint) against the same rows with the payload as JSON text in the row (the layout
before schema v7).

    .venv/bin/python bench/ingest.py [--frames 200000] [--batch 500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    loadavg,
    peak_rss_mib,
    progress,
    synth_frames,
    table,
    verdict,
)
from feeds.store import Store  # noqa: E402
from feeds.store.ingest import _INSERT_EVENT, _event_row  # noqa: E402
from feeds.venues.binance import parse_message  # noqa: E402

TARGET = 0.5


def ingest(store: Store, frames: Sequence[tuple[str, int]], batch: int) -> tuple[int, float]:
    """Feed frames the way the live feed does: parse each, store a batch per transaction."""
    new = 0
    t = time.perf_counter()
    for i in range(0, len(frames), batch):
        events = []
        for text, recv_ms in frames[i:i + batch]:
            events.extend(parse_message(text, recv_ms))
        new += store.insert_liquidations(events)
    return new, time.perf_counter() - t


def stored_rows(path: Path, frames: Sequence[tuple[str, int]], batch: int
                ) -> list[tuple[Any, ...]]:
    """The event rows exactly as the store writes them (a Binance frame's payload remainder
    in the row, feeds/store/compact.py), read back from a store fed the same frames."""
    store = Store(path)
    try:
        ingest(store, frames, batch)
        return store.database.conn.execute(
            "SELECT uid, exchange, symbol, coin, side, qty, price, usd, ts_ms, recv_ms, "
            "sampled, raw FROM events ORDER BY rowid").fetchall()
    finally:
        store.close()


def v6_rows(frames: Sequence[tuple[str, int]]) -> list[tuple[Any, ...]]:
    """The same events with the whole payload as JSON text in the row (before schema v7)."""
    return [_event_row(e, True) for text, recv_ms in frames
            for e in parse_message(text, recv_ms)]


def baseline(path: Path, rows: Sequence[tuple[Any, ...]], batch: int) -> tuple[int, float]:
    """executemany of `rows` into the store's events table, `batch` rows per transaction."""
    Store(path).close()  # the schema only; nothing of the store runs while timed
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # what Store sets
    t = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_INSERT_EVENT, rows[i:i + batch])
        conn.execute("COMMIT")
    secs = time.perf_counter() - t
    count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    return count, secs


def bytes_per_event(path: Path) -> float:
    """Pages in use (after folding the WAL in) per stored event."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        n = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    return float((pages - free) * size / max(n, 1))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200_000, help="distinct frames (default 200000)")
    ap.add_argument("--batch", type=int, default=500, help="frames per transaction (default 500)")
    ap.add_argument("--single", type=int, default=None,
                    help="frames for the one-per-transaction shape (default frames / 10)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="alternate ours/baseline this many times on fresh DBs (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tmpdir", default=None, help="where the temporary DBs go (default: /tmp)")
    return ap.parse_args(argv)


def first_round_checks(store: Store, frames: Sequence[tuple[str, int]], new: int,
                       batch: int) -> dict[str, Any]:
    """Correctness on the first fresh store: counts, buckets, payloads, a full re-ingest."""
    n = len(frames)
    count = store.count_events()
    conn = store.database.conn
    bucket_n, bucket_usd = conn.execute(
        "SELECT sum(long_n + short_n), sum(long_usd + short_usd) FROM buckets_1h").fetchone()
    event_usd = conn.execute("SELECT sum(usd) FROM events").fetchone()[0]
    last_uid, last_ts = conn.execute(
        "SELECT uid, ts_ms FROM events ORDER BY rowid DESC LIMIT 1").fetchone()
    payload = store.raw_payload(last_uid, last_ts)
    progress("[ingest] re-ingesting the same frames ...")
    again, again_s = ingest(store, frames, batch)
    store._raw.flush()  # noqa: SLF001 - count the blocks as a close would leave them
    blocked = conn.execute("SELECT coalesce(sum(n), 0) FROM raw_blocks").fetchone()[0] + \
        conn.execute("SELECT count(*) FROM events WHERE raw IS NOT NULL").fetchone()[0]
    checks = {
        f"rows stored == N ({count:,})": count == n == new,
        "re-ingest added 0 rows": again == 0 and store.count_events() == n,
        "hour buckets count N events, same USD": bucket_n == n
        and abs(bucket_usd - event_usd) <= 1e-9 * abs(event_usd),
        "one payload per event, none for duplicates": blocked == n,
        "last event's payload is its frame": payload is not None
        and payload == orjson.loads(frames[-1][0]),
    }
    return {"checks": checks, "again": again, "again_s": again_s}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}..{max(values):.3f})"


def run_shape(tmp: str, name: str, frames: Sequence[tuple[str, int]],
              rows: Sequence[tuple[Any, ...]], batch: int, repeat: int,
              first: dict[str, Any] | None) -> dict[str, Any]:
    ours: list[float] = []
    base: list[float] = []
    counts: list[int] = []
    size = 0.0
    for r in range(1, repeat + 1):
        progress(f"[ingest] {name} round {r}/{repeat}: ours, then baseline ...")
        gc.collect()
        path = Path(tmp) / f"{name}-ours{r}.db"
        store = Store(path)
        new, secs = ingest(store, frames, batch)
        ours.append(secs)
        if first is not None and r == 1:
            first.update(first_round_checks(store, frames, new, batch))
        store.close()
        if r == 1:
            size = bytes_per_event(path)
        gc.collect()
        count, secs = baseline(Path(tmp) / f"{name}-base{r}.db", rows, batch)
        base.append(secs)
        counts.append(count)
    n = len(frames)
    ratios = [b / o for o, b in zip(ours, base, strict=True)]
    return {"n": n, "ours_fps": n / statistics.median(ours),
            "base_fps": n / statistics.median(base), "ratios": ratios,
            "ratio": statistics.median(ratios), "ours": ours, "base": base,
            "counts_ok": all(c == n for c in counts), "bytes": size}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    n, batch = args.frames, args.batch
    single_n = args.single or max(n // 10, 100)
    progress(f"[ingest] synthesizing {n:,} frames ...")
    frames = synth_frames(n, args.seed)
    print(f"ingest: {n:,} raw Binance forceOrder frames, WAL, synchronous=NORMAL; "
          f"{loadavg()}\n  sample: {frames[0][0]}")
    first: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="liqbot-bench-", dir=args.tmpdir) as tmp:
        rows = stored_rows(Path(tmp) / "rows.db", frames, batch)  # the baseline's input, untimed
        batched = run_shape(tmp, "batched", frames, rows, batch, args.repeat, first)
        single = run_shape(tmp, "single", frames[:single_n], rows[:single_n], 1,
                           args.repeat, None)
        progress("[ingest] the layout before schema v7, for its size ...")
        old_path = Path(tmp) / "v6-layout.db"
        baseline(old_path, v6_rows(frames), batch)
        old_bytes = bytes_per_event(old_path)
    print(f"{args.repeat} alternating rounds per shape; ratio = baseline s / ours s per round, "
          "median (min..max)")
    table(["shape", "ours frames/s", "baseline rows/s", "ratio"], [
        [f"batched, {batch} frames per transaction ({n:,})", f"{batched['ours_fps']:,.0f}",
         f"{batched['base_fps']:,.0f}", spread(batched["ratios"])],
        [f"one frame per transaction ({single_n:,})", f"{single['ours_fps']:,.0f}",
         f"{single['base_fps']:,.0f}", spread(single["ratios"])],
        ["(info) re-ingest same frames, all duplicates", f"{n / first['again_s']:,.0f}", "", ""],
    ])
    print(f"stored size: {batched['bytes']:,.0f} bytes/event (events, buckets, payload blocks) "
          f"against {old_bytes:,.0f} bytes/event for the same events with the payload as JSON "
          f"text in the row and no buckets (the layout before schema v7)")
    checks = {**first["checks"],
              "baseline stored N rows": batched["counts_ok"] and single["counts_ok"]}
    for name, ok in checks.items():
        print(f"check: {name:45s} {'ok' if ok else 'FAILED'}")
    print(f"peak RSS (whole process, {n:,} frames + parsed rows in memory): "
          f"{peak_rss_mib():,.0f} MiB")
    ratio = batched["ratio"]
    passed = ratio >= TARGET and all(checks.values())
    print(f"ratio = ours / baseline (batched, median of {args.repeat}) = {ratio:.3f}   "
          f"target >= {TARGET}   {verdict(passed)}")
    print(f"(info) one frame per transaction: {single['ratio']:.3f}")
    return {"frames": n, "ours_fps": batched["ours_fps"], "baseline_fps": batched["base_fps"],
            "ratio": ratio, "single_ratio": single["ratio"], "bytes_per_event": batched["bytes"],
            "old_bytes_per_event": old_bytes, "checks": checks,
            "checks_ok": all(checks.values()), "passed": passed}


if __name__ == "__main__":
    main()
    sys.exit(0)
