"""Run every benchmark (`make bench`) and print a one-line verdict for each; always exits 0.

    .venv/bin/python bench/run_all.py            # full scale: 200k frames, 10M-event store
    .venv/bin/python bench/run_all.py --quick    # 20k frames, 1M-event store, 50 queries
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest, totals  # noqa: E402
from bench.common import verdict  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller scale for a fast look")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached totals DB")
    args = ap.parse_args(argv)
    ingest_args = ["--frames", "20000", "--repeat", "2"] if args.quick else []
    totals_args = ["--events", "1000000", "--queries", "50"] if args.quick else []
    totals_args += ["--rebuild"] if args.rebuild else []
    summary = []
    for name, mod, bench_args in (("ingest", ingest, ingest_args), ("totals", totals, totals_args)):
        print(f"\n===== bench/{name}.py {' '.join(bench_args)}", flush=True)
        t = time.perf_counter()
        try:
            res = mod.main(bench_args)
            summary.append((name, verdict(res["passed"]), time.perf_counter() - t))
        except Exception as exc:  # one broken benchmark must not hide the other's numbers
            print(f"bench/{name}.py crashed: {exc!r}")
            summary.append((name, "*** ERROR ***", time.perf_counter() - t))
    print("\n===== summary")
    for name, result, secs in summary:
        print(f"  {name:8s} {result:14s} ({secs:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
