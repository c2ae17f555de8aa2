"""Run every benchmark (`make bench`) and print a one-line verdict for each; always exits 0.

    .venv/bin/python bench/run_all.py            # full scale (about 30 minutes)
    .venv/bin/python bench/run_all.py --quick    # a smaller scale of each, for a fast look
    .venv/bin/python bench/run_all.py --only ingest,totals

Each benchmark prints its own table and its ratio against the baseline it names, measured
in the same run; `parsers` has no target (it reports the cost of normalization per venue).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (  # noqa: E402
    chart,
    ingest,
    latency,
    parsers,
    replay,
    startup,
    study,
    sweep,
    telegram_fanout,
    totals,
)
from bench.common import verdict  # noqa: E402

# name -> (module, quick arguments)
BENCHES = {
    "ingest": (ingest, ["--frames", "20000", "--repeat", "2"]),
    "totals": (totals, ["--events", "1000000", "--queries", "50", "--load-seconds", "10"]),
    "parsers": (parsers, ["--frames", "5000"]),
    "sweep": (sweep, ["--configs", "100", "--hours", "2000", "--live-ticks", "24"]),
    "study": (study, ["--loop-draws", "20", "--repeat", "1"]),
    "telegram": (telegram_fanout, ["--chats", "1000", "--rates", "300"]),
    "latency": (latency, ["--trials", "10", "--baseline-trials", "3", "--events", "100000"]),
    "chart": (chart, ["--events", "20000", "--repeat", "3"]),
    "startup": (startup, ["--runs", "3", "--idle-s", "10"]),
    "replay": (replay, ["--sizes", "100000,300000"]),
}


def _verdict(res: object) -> str:
    if isinstance(res, dict) and "passed" in res:
        return verdict(bool(res["passed"]))
    return "measured"  # no target: the numbers are the result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller scale for a fast look")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached totals DB")
    ap.add_argument("--only", default=",".join(BENCHES), help="comma list of benchmarks")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(BENCHES)}")
    summary = []
    for name in names:
        mod, quick = BENCHES[name]
        bench_args = list(quick) if args.quick else []
        if name == "totals" and args.rebuild:
            bench_args.append("--rebuild")
        print(f"\n===== bench/{mod.__name__.split('.')[-1]}.py {' '.join(bench_args)}", flush=True)
        t = time.perf_counter()
        try:
            summary.append((name, _verdict(mod.main(bench_args)), time.perf_counter() - t))
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            print(f"bench {name} crashed: {exc!r}")
            summary.append((name, "*** ERROR ***", time.perf_counter() - t))
    print("\n===== summary")
    for name, result, secs in summary:
        print(f"  {name:9s} {result:14s} ({secs:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
