"""Window-totals benchmark: Store.totals (4h, 1h, 10m and 1m buckets) against the best plain
query and DuckDB over the same events, idle and while ingest runs in the same process.

Builds (once, cached under bench/.data/) a store of --events synthetic liquidations over
--days days: 3 exchanges x 15 coins, BTC/ETH half the flow, a daily cycle, ~2 bursts a day.
Rows go in through Store.insert_event_rows (the store's INSERT plus its bucket sums)
in big transactions; the last --store-sample events go through Store.insert_liquidations
in 500-event batches to measure the live write path on a full DB.

Baselines, at the same --queries random end times over the same minute-aligned windows,
each checked to agree with ours:
  - covering index: one pass summing both sides (`total(CASE WHEN side = 'long' THEN usd
    END)`, the same for short) over the window's range of a bench-only index (ts_ms, side,
    usd), or (coin, ts_ms, side, usd) with a coin filter: no table row is read and no
    sorter is built (the best plain SQLite query);
  - DuckDB: the same sum over a DuckDB table of (ts_ms, coin, side, usd) in time order
    (built once from the store, cached beside it); skipped with a note when duckdb is not
    installed (`pip install duckdb`, pinned in the test extra).
Under load (bench/totals_load.py): `/liqs 24h` and `1h` on the full store while a writer
thread of the same process ingests Binance frames through Store.insert_liquidations at
--load-rate events/s, on a copy of the store.

    .venv/bin/python bench/totals.py [--events 10000000] [--queries 200] [--rebuild]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sqlite3
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import totals_load  # noqa: E402
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
from feeds.store import Store  # noqa: E402
from feeds.store.ingest import _INSERT_EVENT  # noqa: E402
from feeds.store.schema import MIGRATIONS  # noqa: E402

GEN_VERSION = 2  # bump when synth_events changes, so cached DBs are rebuilt
TARGET_LOAD_P99_MS = 2.0  # /liqs 24h p99 while ingest runs (issue 16)
# Bench-only covering indexes: the plain query then reads index entries only, no table rows.
COVERING = ("CREATE INDEX IF NOT EXISTS bench_cover ON events (ts_ms, side, usd)",
            "CREATE INDEX IF NOT EXISTS bench_cover_coin ON events (coin, ts_ms, side, usd)")
# One pass, both sides summed as the rows go by: no GROUP BY sorter behind it.
SIDES_SUM = ("SELECT 'long', total(CASE WHEN side = 'long' THEN usd END), "
             "'short', total(CASE WHEN side = 'short' THEN usd END)")
PLAIN = SIDES_SUM + " FROM events INDEXED BY {index} WHERE {coin}ts_ms >= ? AND ts_ms < ?"
DUCK = ("SELECT 'long', coalesce(sum(usd) FILTER (WHERE side = 'long'), 0), "
        "'short', coalesce(sum(usd) FILTER (WHERE side = 'short'), 0) "
        "FROM ev WHERE {coin}ts_ms >= ? AND ts_ms < ?")
SCENARIOS = (("24h, all coins", 24 * HOUR_MS, None), ("24h, coin=BTC", 24 * HOUR_MS, "BTC"),
             ("1h, all coins", HOUR_MS, None), ("1h, coin=BTC", HOUR_MS, "BTC"))


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
    """Time fn(end) for every end after one unrecorded call at each (a hot cache, as the
    windows a running bot is asked about are; every contender gets the same)."""
    for end in ends:
        fn(end)
    out, wall, cpu = [], [], []
    for end in ends:
        res, w, c = timed(fn, end)
        out.append(res)
        wall.append(w)
        cpu.append(c)
    return out, wall, cpu


def add_covering_indexes(path: Path) -> float:
    """Create the baseline's covering indexes once (kept in the cached file); seconds taken."""
    conn = sqlite3.connect(path)
    try:
        t = time.perf_counter()
        for sql in COVERING:
            conn.execute(sql)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return time.perf_counter() - t
    finally:
        conn.close()


def open_duck(path: Path) -> tuple[Any, str]:
    """A DuckDB connection holding (ts_ms, coin, side, usd) of every event in time order,
    built from the store once and cached beside it; (None, why) without duckdb."""
    try:
        import duckdb
    except ImportError:
        return None, "duckdb is not installed: pip install duckdb==2.0.0 (the test extra pins it)"
    duck_path = path.with_name(path.name + ".duckdb")
    if not duck_path.exists():
        progress(f"[totals] copying events into DuckDB ({duck_path.name}) ...")
        part = duck_path.with_name(duck_path.name + ".part")
        part.unlink(missing_ok=True)
        src = sqlite3.connect(path)
        con = duckdb.connect(str(part))
        con.execute("CREATE TABLE ev (ts_ms BIGINT, coin VARCHAR, side VARCHAR, usd DOUBLE)")
        cur = src.execute("SELECT ts_ms, coin, side, usd FROM events ORDER BY ts_ms")
        while rows := cur.fetchmany(500_000):
            cols = list(zip(*rows, strict=True))
            chunk = {"ts_ms": np.array(cols[0], dtype=np.int64),
                     "coin": np.array(cols[1], dtype=object),
                     "side": np.array(cols[2], dtype=object),
                     "usd": np.array(cols[3], dtype=np.float64)}
            con.register("chunk", chunk)
            con.execute("INSERT INTO ev SELECT * FROM chunk")
            con.unregister("chunk")
        con.execute("CHECKPOINT")
        con.close()
        src.close()
        os.replace(part, duck_path)
    return duckdb.connect(str(duck_path), read_only=True), f"duckdb {duckdb.__version__}"


def pairs(cursor: Any) -> dict[str, float]:
    """{'long': usd, 'short': usd} from the one row (side, sum, side, sum) a baseline returns."""
    row = cursor.fetchone()
    return {row[0]: row[1], row[2]: row[3]}


def agrees(tot: Any, sums: dict[str, float]) -> bool:
    return (math.isclose(tot.long_usd, sums.get("long", 0.0), rel_tol=1e-9, abs_tol=1e-6)
            and math.isclose(tot.short_usd, sums.get("short", 0.0), rel_tol=1e-9, abs_tol=1e-6))


def time_scenario(store: Store, duck: Any, window: int, coin: str | None, ends: list[int],
                  ) -> tuple[dict[str, Any], list[str]]:
    """Time Store.totals, the covering-index query and DuckDB over the same windows."""
    # One pass per contender, so none evicts another's pages between calls.
    tots, ours, ours_cpu = run_pass(lambda e: store.totals(e, window, coin=coin), ends)
    extra = [coin] if coin else []
    plain_sql = PLAIN.format(index="bench_cover_coin" if coin else "bench_cover",
                             coin="coin = ? AND " if coin else "")
    conn = store.database.conn

    def bounds(end: int) -> list[Any]:
        stop = -(-end // MINUTE_MS) * MINUTE_MS  # the minute Store.totals rounds up to
        return [*extra, stop - window, stop]

    progress("[totals]   ... covering-index query at the same end times")
    plain, plain_ms, _ = run_pass(lambda e: pairs(conn.execute(plain_sql, bounds(e))), ends)
    result: dict[str, Any] = {
        "ours_p50": percentile(ours, 50), "ours_p99": percentile(ours, 99),
        "ours_cpu_p50": percentile(ours_cpu, 50),
        "plain_p50": percentile(plain_ms, 50), "plain_p99": percentile(plain_ms, 99),
        "agree": sum(agrees(t, p) for t, p in zip(tots, plain, strict=True)), "n": len(ends)}
    duck_cells = ["-", "-", "-"]
    if duck is not None:
        progress("[totals]   ... DuckDB at the same end times")
        duck_sql = DUCK.format(coin="coin = ? AND " if coin else "")
        found, duck_ms, _ = run_pass(lambda e: pairs(duck.execute(duck_sql, bounds(e))), ends)
        result.update(duck_p50=percentile(duck_ms, 50), duck_p99=percentile(duck_ms, 99),
                      duck_agree=sum(agrees(t, d) for t, d in zip(tots, found, strict=True)))
        duck_cells = [f"{result['duck_p50']:.2f} / {result['duck_p99']:.2f}",
                      f"{result['duck_p50'] / result['ours_p50']:,.1f}x",
                      f"{result['duck_p99'] / result['ours_p99']:,.1f}x"]
    row = [f"{sum(t.count for t in tots) / len(ends):,.0f}",
           f"{result['ours_p50']:.3f} / {result['ours_p99']:.3f}",
           f"{result['plain_p50']:.2f} / {result['plain_p99']:.2f}",
           f"{result['plain_p50'] / result['ours_p50']:,.1f}x",
           f"{result['plain_p99'] / result['ours_p99']:,.1f}x", *duck_cells,
           f"{result['agree']}/{len(ends)}"]
    return result, row


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
    ap.add_argument("--load-rate", type=int, default=5000,
                    help="events/s the writer thread ingests under load (default 5000)")
    ap.add_argument("--load-seconds", type=float, default=30.0,
                    help="how long the under-load phase runs (default 30; 0 skips it)")
    return ap.parse_args(argv)


def open_or_build(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    path = db_path(args)
    cached = not args.rebuild and path.exists()
    if cached:
        store = Store(path)
        info = json.loads(store.get_meta("bench_build") or "{}")
        store.close()
    else:
        Path(f"{path}.duckdb").unlink(missing_ok=True)
        info = build(path, args)
    index_s = add_covering_indexes(path)
    size = sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))
    info["size_bytes"] = size
    rate = info["store_sample"] / info["store_s"] if info.get("store_s") else float("nan")
    bulk_rate = (info["events"] - info["store_sample"]) / max(info["executemany_s"], 1e-9)
    print(f"totals: store {path.name} ({'cached' if cached else 'built now'}), "
          f"{size / 2**20:,.0f} MiB with the bench's covering indexes, {info['stored']:,} events"
          f" ({index_s:.1f} s for the indexes this run); {loadavg()}")
    print(f"  build {info['build_s']:.1f} s: generate {info['gen_s']:.1f} s, executemany "
          f"{info['executemany_s']:.1f} s ({bulk_rate:,.0f} ev/s), checkpoint "
          f"{info['checkpoint_s']:.1f} s;\n  Store.insert_liquidations (500/batch) on the full DB: "
          f"{rate:,.0f} ev/s over the last {info['store_sample']:,} "
          f"(-> {info['events'] / rate / 60:,.1f} min for all {info['events']:,})")
    return path, info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    path, info = open_or_build(args)
    duck, duck_note = open_duck(path)
    store = Store(path)
    first, last = store.database.conn.execute(
        "SELECT min(ts_ms), max(ts_ms) FROM events").fetchone()
    for coin in (None, "BTC"):
        sql = PLAIN.format(index="bench_cover_coin" if coin else "bench_cover",
                           coin="coin = ? AND " if coin else "")
        plan = store.database.conn.execute(
            "EXPLAIN QUERY PLAN " + sql, [*([coin] if coin else []), 0, 1]).fetchall()
        print(f"  covering-index plan{', coin' if coin else ''}: {'; '.join(r[-1] for r in plan)}")
    print(f"  DuckDB: {duck_note}")
    rng = random.Random(args.seed)
    ends = [rng.randrange(first + 24 * HOUR_MS, last) for _ in range(args.queries)]
    rows, results = [], {}
    for label, window, coin in SCENARIOS:
        progress(f"[totals] timing {label}: Store.totals at {len(ends)} end times ...")
        results[label], row = time_scenario(store, duck, window, coin, ends)
        rows.append([label, *row])
    store.close()
    if duck is not None:
        duck.close()
    table(["window", "events/window", "ours p50 / p99 ms", "covering index p50 / p99",
           "ratio p50", "ratio p99", "DuckDB p50 / p99", "ratio p50", "ratio p99",
           "totals agree"], rows)
    print(f"  (wall-clock ms at {len(ends)} random end times, each run once untimed first; "
          f"idle: no writer running; {loadavg()})")
    checks = {f"{k}: totals agree with the covering index": v["agree"] == v["n"]
              for k, v in results.items()}
    checks.update({f"{k}: totals agree with DuckDB": v["duck_agree"] == v["n"]
                   for k, v in results.items() if "duck_agree" in v})
    checks["store holds every event, buckets count them all"] = (
        info["stored"] == info["events"] == info["in_buckets"])
    load: dict[str, Any] = {}
    if args.load_seconds > 0:
        load = totals_load.run(path, args.load_rate, args.load_seconds, args.seed)
        checks.update(load["checks"])
    for name, ok in checks.items():
        print(f"check: {name:58s} {'ok' if ok else 'FAILED'}")
    head = results[SCENARIOS[0][0]]
    under = load.get("p99", {}).get("24h")
    passed = all(checks.values()) and (under is None or under < TARGET_LOAD_P99_MS)
    plain_x = head["plain_p50"] / head["ours_p50"]
    duck = (f", DuckDB p50 {head['duck_p50']:.2f} ms "
            f"({head['duck_p50'] / head['ours_p50']:,.1f}x)" if "duck_p50" in head else "")
    loaded = (f"; under ingest p99 {under:.3f} ms (target < {TARGET_LOAD_P99_MS:.0f} ms)"
              if under is not None else "; under-load phase skipped")
    print(f"/liqs 24h: ours p50 {head['ours_p50']:.3f} ms, p99 {head['ours_p99']:.3f} ms idle; "
          f"covering index p50 {head['plain_p50']:.1f} ms ({plain_x:,.0f}x){duck}{loaded}   "
          f"{verdict(passed)}")
    return {"db": str(path), "build": info, "results": results, "load": load,
            "checks": checks, "checks_ok": all(checks.values()), "passed": passed}


if __name__ == "__main__":
    main()
    sys.exit(0)
