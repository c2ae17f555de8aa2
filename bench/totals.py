"""Window-totals benchmark: Store.totals (4h, 1h, 10m and 1m buckets) vs a naive scan of events.

Builds (once, cached under bench/.data/) a store of --events synthetic liquidations over
--days days: 3 exchanges x 15 coins, BTC/ETH half the flow, a daily cycle, ~2 bursts a day.
Rows go in through Store.insert_event_rows (the store's INSERT plus its bucket sums)
in big transactions, raw NULL; the last --store-sample events go through
Store.insert_liquidations in 500-event batches to measure the live write path on a full DB.

Then, at --queries random end times, times Store.totals(end, window) against the baseline
`SELECT side, sum(usd) FROM events WHERE ts_ms >= ? AND ts_ms < ? GROUP BY side` (served by
the events (ts_ms, uid) index) over the same minute-aligned window, and checks both agree.

    .venv/bin/python bench/totals.py [--events 10000000] [--queries 200] [--rebuild]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    DATA_DIR,
    loadavg,
    percentile,
    progress,
    synth_events,
    table,
    verdict,
)
from feeds.model import HOUR_MS, MINUTE_MS, Liquidation, Side  # noqa: E402
from feeds.store.core import _INSERT_EVENT, Store  # noqa: E402
from feeds.store.schema import MIGRATIONS  # noqa: E402

GEN_VERSION = 2  # bump when synth_events changes, so cached DBs are rebuilt
TARGET_RATIO, TARGET_P50_MS = 100.0, 5.0
NAIVE = "SELECT side, sum(usd) FROM events WHERE ts_ms >= ? AND ts_ms < ?{} GROUP BY side"
SCENARIOS = (("24h, all coins", 24 * HOUR_MS, None), ("24h, coin=BTC", 24 * HOUR_MS, "BTC"),
             ("1h, all coins", HOUR_MS, None))


def db_path(args: argparse.Namespace) -> Path:
    """Cache key: the parameters plus the store's schema and insert SQL."""
    steps = [m if isinstance(m, str) else m.__qualname__ for m in MIGRATIONS]
    key = "\n".join([*steps, _INSERT_EVENT, str(GEN_VERSION)])
    h = hashlib.sha1(key.encode())
    return Path(args.data_dir) / (
        f"totals-n{args.events}-d{args.days}-s{args.seed}-{h.hexdigest()[:10]}.db")


def to_liquidation(row: tuple[Any, ...]) -> Liquidation:
    _, exchange, symbol, _, side, qty, price, _, ts, recv, sampled, _ = row
    q, p = Decimal(qty), Decimal(price)
    return Liquidation(exchange, symbol, Side(side), q, p, q * p, ts, recv, bool(sampled))


def build(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    part = path.with_name(path.name + ".part")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{part}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    progress(f"[totals] building {args.events:,} events over {args.days} days -> {path}")
    t_start = time.perf_counter()
    store = Store(part, synchronous="OFF")  # a throwaway build: no durability needed
    # 2 GB page cache for the build only
    store.database.conn.execute("PRAGMA cache_size = -2000000")
    n, sample = args.events, min(args.store_sample, args.events)
    done, gen_s, sql_s, live = 0, 0.0, 0.0, []
    chunks = synth_events(n, args.days, args.seed, chunk=1_000_000)
    while True:
        t = time.perf_counter()
        rows = next(chunks, None)
        gen_s += time.perf_counter() - t
        if rows is None:
            break
        tail = max(0, done + len(rows) - (n - sample))  # the last `sample` go via the Store
        live += [to_liquidation(r) for r in rows[len(rows) - tail:]]
        bulk = rows[:len(rows) - tail]
        t = time.perf_counter()
        store.insert_event_rows(bulk)  # one transaction per million: buckets summed per chunk
        sql_s += time.perf_counter() - t
        done += len(bulk)
        progress(f"[totals]   {done:>12,} / {n:,} events  {time.perf_counter() - t_start:7.1f} s")
    t = time.perf_counter()
    store.database.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ckpt_s = time.perf_counter() - t
    store.close()
    store = Store(part)  # the live write path: default cache, synchronous=NORMAL, 500 per batch
    t = time.perf_counter()
    for i in range(0, len(live), 500):
        store.insert_liquidations(live[i:i + 500], keep_raw=False)
    store_s = time.perf_counter() - t
    progress(f"[totals]   {n:>12,} / {n:,} events  {time.perf_counter() - t_start:7.1f} s "
             f"(last {len(live):,} via Store.insert_liquidations)")
    count = store.count_events()
    in_buckets = store.database.conn.execute(
        "SELECT sum(long_n + short_n) FROM buckets_1h").fetchone()[0]
    info = {"events": n, "stored": count, "in_buckets": in_buckets, "build_s": 0.0, "gen_s": gen_s,
            "executemany_s": sql_s, "checkpoint_s": ckpt_s, "store_sample": sample,
            "store_s": store_s}
    info["build_s"] = time.perf_counter() - t_start
    store.set_meta("bench_build", json.dumps(info))
    store.database.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    os.replace(part, path)
    return info


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[Any, float, float]:
    """Return fn's result, wall ms and this process's CPU ms."""
    t, c = time.perf_counter_ns(), time.process_time_ns()
    out = fn(*args, **kw)
    return out, (time.perf_counter_ns() - t) / 1e6, (time.process_time_ns() - c) / 1e6


def run_pass(fn: Any, ends: list[int]) -> tuple[list[Any], list[float], list[float]]:
    """Time fn(end) for every end after 3 unrecorded warm-up calls."""
    for end in ends[:3]:
        fn(end)
    out, wall, cpu = [], [], []
    for end in ends:
        res, w, c = timed(fn, end)
        out.append(res)
        wall.append(w)
        cpu.append(c)
    return out, wall, cpu


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000, help="events (default 10M)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--queries", type=int, default=200, help="random end times (default 200)")
    ap.add_argument("--store-sample", type=int, default=50_000,
                    help="last events of the build written via Store.insert_liquidations")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-dir", default=str(DATA_DIR), help=f"DB cache (default {DATA_DIR})")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached DB")
    return ap.parse_args(argv)


def open_or_build(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    path = db_path(args)
    cached = not args.rebuild and path.exists()
    if cached:
        store = Store(path)
        info = json.loads(store.get_meta("bench_build") or "{}")
        store.close()
    else:
        info = build(path, args)
    size = sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))
    info["size_bytes"] = size
    rate = info["store_sample"] / info["store_s"] if info.get("store_s") else float("nan")
    bulk_rate = (info["events"] - info["store_sample"]) / max(info["executemany_s"], 1e-9)
    print(f"totals: store {path.name} ({'cached' if cached else 'built now'}), "
          f"{size / 2**20:,.0f} MiB, {info['stored']:,} events; {loadavg()}")
    print(f"  build {info['build_s']:.1f} s: generate {info['gen_s']:.1f} s, executemany "
          f"{info['executemany_s']:.1f} s ({bulk_rate:,.0f} ev/s), checkpoint "
          f"{info['checkpoint_s']:.1f} s;\n  Store.insert_liquidations (500/batch) on the full DB: "
          f"{rate:,.0f} ev/s over the last {info['store_sample']:,} "
          f"(-> {info['events'] / rate / 60:,.1f} min for all {info['events']:,})")
    return path, info


def time_scenario(store: Store, window: int, coin: str | None, ends: list[int],
                  ) -> tuple[dict[str, Any], list[str]]:
    """Time Store.totals, then the naive scan, over the same minute-aligned windows."""
    # One pass per side, so the naive scans do not evict ours from SQLite's page cache.
    tots, ours, ours_cpu = run_pass(lambda e: store.totals(e, window, coin=coin), ends)
    progress("[totals]   ... naive scan at the same end times")
    sql, extra = NAIVE.format(" AND coin = ?" if coin else ""), [coin] if coin else []

    def naive_sums(end: int) -> dict[str, float]:
        stop = -(-end // MINUTE_MS) * MINUTE_MS
        return dict(store.database.conn.execute(sql, [stop - window, stop, *extra]).fetchall())

    sums, naive, _ = run_pass(naive_sums, ends)
    agree = sum(
        tot.end_ms == -(-e // MINUTE_MS) * MINUTE_MS and tot.end_ms - tot.start_ms == window
        and math.isclose(tot.long_usd, res.get("long", 0.0), rel_tol=1e-9, abs_tol=1e-6)
        and math.isclose(tot.short_usd, res.get("short", 0.0), rel_tol=1e-9, abs_tol=1e-6)
        for e, tot, res in zip(ends, tots, sums, strict=True))
    o50, b50, c50 = percentile(ours, 50), percentile(naive, 50), percentile(ours_cpu, 50)
    result = {"ours_p50": o50, "ours_p99": percentile(ours, 99), "ours_cpu_p50": c50,
              "naive_p50": b50, "naive_p99": percentile(naive, 99), "ratio": b50 / o50,
              "agree": agree, "n": len(ends)}
    row = [f"{sum(t.count for t in tots) / len(ends):,.0f}", f"{o50:.3f}",
           f"{result['ours_p99']:.3f}", f"{c50:.3f}", f"{b50:.1f}", f"{result['naive_p99']:.1f}",
           f"{b50 / o50:,.0f}x",
           f"{agree}/{len(ends)}"]
    return result, row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    path, info = open_or_build(args)
    store = Store(path)
    first, last = store.database.conn.execute(
        "SELECT min(ts_ms), max(ts_ms) FROM events").fetchone()
    for name, sql, qargs in (("naive", NAIVE.format(""), [0, 1]),
                             ("naive, coin", NAIVE.format(" AND coin = ?"), [0, 1, "BTC"])):
        plan = store.database.conn.execute("EXPLAIN QUERY PLAN " + sql, qargs).fetchall()
        print(f"  {name} plan: {'; '.join(r[-1] for r in plan)}")
    rng = random.Random(args.seed)
    ends = [rng.randrange(first + 24 * HOUR_MS, last) for _ in range(args.queries)]
    rows, results = [], {}
    for label, window, coin in SCENARIOS:
        progress(f"[totals] timing {label}: Store.totals at {len(ends)} end times ...")
        results[label], row = time_scenario(store, window, coin, ends)
        rows.append([label, *row])
    store.close()
    table(["window", "events/window", "ours p50 ms", "ours p99 ms", "ours cpu p50",
           "naive p50 ms", "naive p99 ms", "ratio p50", "totals agree"], rows)
    print(f"  (wall-clock ms; 'ours cpu p50' is this process's CPU time, which other load on "
          f"the machine inflates less; {loadavg()})")
    checks = {f"{k}: totals agree": v["agree"] == v["n"] for k, v in results.items()}
    checks["store holds every event, buckets count them all"] = (
        info["stored"] == info["events"] == info["in_buckets"])
    for name, ok in checks.items():
        print(f"check: {name:50s} {'ok' if ok else 'FAILED'}")
    head = results[SCENARIOS[0][0]]
    passed = (head["ratio"] >= TARGET_RATIO and head["ours_p50"] < TARGET_P50_MS
              and all(checks.values()))
    print(f"24h /liqs: ratio = naive p50 / ours p50 = {head['naive_p50']:.1f} / "
          f"{head['ours_p50']:.3f} ms = {head['ratio']:,.0f}x (target >= {TARGET_RATIO:.0f}x); "
          f"ours p50 {head['ours_p50']:.3f} ms (target < {TARGET_P50_MS:.0f} ms)   "
          f"{verdict(passed)}")
    return {"db": str(path), "build": info, "results": results, "checks": checks,
            "checks_ok": all(checks.values()), "passed": passed}


if __name__ == "__main__":
    main()
    sys.exit(0)
