"""Replay benchmark: `liqbot run --replay` of normalized-events JSONL at several sizes.

For each size a file of that many `liqbot decode` lines is generated once (not timed; kept
under bench/.data): three venues, fifteen coins, minute rates with a daily cycle, noise and
about two burst episodes a day, 100,000 events a day, so 3M events span a month and the
evaluation reads a full 168h baseline for most of it. Each file is then replayed by the real
CLI in a subprocess (`--speed 0`, a fresh database), timed on the wall clock, with the
child's peak RSS from wait4.

Baseline, measured in the same run on the same file: a plain load — `json.loads` per line
and `sqlite3` executemany of the row tuples into the same events table (the store's schema,
its unique index, WAL, batches of 20,000 rows), also in a subprocess. It stores; it does not
check, key, bucket or evaluate anything. What the ratio prices is everything the replay does
on top: parsing into the model, the plausibility gate, the event key, bucket sums, the
signal evaluation every simulated minute, alerts.

Targets (issue 16): >= 50,000 events/s at every size, peak RSS <= 300 MB (10^6 bytes)
whatever the size, and a flat slope (events/s at the largest size / at the smallest).

    .venv/bin/python bench/replay.py [--sizes 300000,1000000,3000000] [--tmpdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    DATA_DIR,
    ROOT,
    count_events,
    loadavg,
    progress,
    synth_events,
    table,
    verdict,
)

TARGET_EPS = 50_000
TARGET_RSS_MB = 300.0
EVENTS_PER_DAY = 100_000
PLAIN_BATCH = 20_000
PLAIN_INSERT = (
    "INSERT OR IGNORE INTO events (uid, exchange, symbol, coin, side, qty, price, usd, ts_ms, "
    "recv_ms, sampled, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def events_file(n: int, data_dir: Path, seed: int = 7) -> Path:
    """The n-event JSONL (generated once, then reused; the name says size and seed)."""
    path = data_dir / f"replay_{n}_s{seed}.jsonl"
    if path.exists():
        return path
    import orjson  # noqa: PLC0415

    data_dir.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    days = max(1, round(n / EVENTS_PER_DAY))
    with open(part, "wb") as f:
        for rows in synth_events(n, days, seed=seed, chunk=200_000):
            for _, ex, sym, coin, side, qty, price, usd, ts, _, sampled, _ in rows:
                f.write(orjson.dumps({
                    "exchange": ex, "symbol": sym, "coin": coin, "side": side,
                    "qty": float(qty), "price": float(price), "usd": round(usd, 8), "ts": ts,
                    "sampled": bool(sampled)}) + b"\n")
    part.rename(path)
    return path


def plain_load(src: Path, db: Path) -> int:
    """The baseline: json.loads per line, executemany into the store's events table."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    rows: list[tuple[Any, ...]] = []
    n = 0
    with open(src, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            rows.append((hash((e["exchange"], e["symbol"], e["side"], e["ts"], e["price"],
                               e["qty"])), e["exchange"], e["symbol"], e["coin"], e["side"],
                         str(e["qty"]), str(e["price"]), e["usd"], e["ts"], e["ts"],
                         int(e["sampled"]), None))
            if len(rows) == PLAIN_BATCH:
                n += _commit(conn, rows)
                rows = []
    n += _commit(conn, rows)
    conn.close()
    return n


def _commit(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(PLAIN_INSERT, rows)
    conn.execute("COMMIT")
    return len(rows)


# A child's peak RSS as wait4 reports it includes the image it was forked from (the kernel
# carries the pre-exec high-water mark over), and this process holds numpy and the generated
# data. So each command starts from a bare interpreter (`-S`, stdlib only) that forks it and
# reports its wait4 figures: the fork image measured is then that small launcher's.
_LAUNCH = """
import json, os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps([time.perf_counter() - t, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]),
      file=sys.stderr)
"""


def measured(cmd: list[str]) -> tuple[float, float, str, str]:
    """(wall seconds, peak RSS MB, stdout, stderr) of one child process."""
    proc = subprocess.run([sys.executable, "-S", "-c", _LAUNCH, *cmd], cwd=ROOT,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    *lines, last = proc.stderr.rstrip("\n").split("\n")
    secs, rss_kib, code = json.loads(last)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {code}: {proc.stderr[-800:]}")
    return secs, rss_kib * 1024 / 1e6, proc.stdout, "\n".join(lines)




def run_size(n: int, src: Path, tmp: Path) -> dict[str, Any]:
    from feeds.store import Store  # noqa: PLC0415

    base_db, our_db = tmp / f"plain_{n}.db", tmp / f"replay_{n}.db"
    Store(base_db).close()  # the schema only; nothing of the store runs while timed
    progress(f"replay bench: {n:,} events: plain load")
    b_s, b_rss, _, _ = measured([sys.executable, "-m", "bench.replay", "--plain", str(src),
                                 str(base_db)])
    progress(f"replay bench: {n:,} events: liqbot run --replay")
    o_s, o_rss, out, _ = measured([sys.executable, "-m", "bot.cli.main", "run", "--replay",
                                   str(src), "--speed", "0", "--db", str(our_db)])
    res = {"n": n, "plain_s": b_s, "plain_eps": n / b_s, "plain_rss_mb": b_rss,
           "ours_s": o_s, "ours_eps": n / o_s, "ours_rss_mb": o_rss,
           "stored": count_events(our_db), "plain_stored": count_events(base_db),
           "alerts": out.count("liquidated in ")}
    for suffix in ("", "-wal", "-shm", ".lock"):
        for db in (base_db, our_db):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    return res


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="300000,1000000,3000000",
                    help="comma list of event counts (default 300000,1000000,3000000)")
    ap.add_argument("--tmpdir", default=None, help="where the databases go (default: /tmp)")
    ap.add_argument("--data-dir", default=str(DATA_DIR), help="where generated files are kept")
    ap.add_argument("--plain", nargs=2, metavar=("FILE", "DB"), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.plain:
        plain_load(Path(args.plain[0]), Path(args.plain[1]))
        return {}
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    print(f"replay bench: sizes {', '.join(f'{s:,}' for s in sizes)}; {loadavg()}")
    results = []
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        for n in sizes:
            results.append(run_size(n, events_file(n, Path(args.data_dir)), Path(tmp)))
    rows = [(f"{r['n']:,}", f"{r['plain_s']:.1f}", f"{r['plain_eps']:,.0f}",
             f"{r['plain_rss_mb']:.0f}", f"{r['ours_s']:.1f}", f"{r['ours_eps']:,.0f}",
             f"{r['ours_eps'] / r['plain_eps']:.2f}", f"{r['ours_rss_mb']:.0f}",
             f"{r['stored']:,}", r["alerts"]) for r in results]
    table(["events", "plain s", "plain ev/s", "plain MB", "replay s", "replay ev/s",
           "ratio", "replay peak MB", "stored", "alerts"], rows)
    print("ratio = replay events/s / plain json + executemany events/s (same file, same table)")
    slope = results[-1]["ours_eps"] / results[0]["ours_eps"]
    print(f"slope: events/s at {sizes[-1]:,} / at {sizes[0]:,} = {slope:.2f} "
          "(1.00: the cost per event does not grow with history replayed)")
    checks = {
        # Both key events by their fields (the generator's rare exact repeats count once).
        "every event stored": all(r["stored"] == r["plain_stored"] > r["n"] * 0.999
                                  for r in results),
        f">= {TARGET_EPS:,} events/s at every size": all(r["ours_eps"] >= TARGET_EPS
                                                         for r in results),
        f"peak RSS <= {TARGET_RSS_MB:.0f} MB at every size": all(
            r["ours_rss_mb"] <= TARGET_RSS_MB for r in results),
    }
    for name, ok in checks.items():
        print(f"  {verdict(ok)}  {name}")
    return {"results": results, "slope": slope, "checks": checks,
            "checks_ok": checks["every event stored"], "passed": all(checks.values())}


if __name__ == "__main__":
    main()
