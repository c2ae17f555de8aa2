"""Benchmark: the 10,000-draw event study on the BTC regime file, vectorised vs a plain loop.

    .venv/bin/python bench/study.py                  # regime_1h.csv, 10,000 draws
    .venv/bin/python bench/study.py --loop-draws 20  # a quicker baseline sample

Ours: `backtests.study.run_study` end to end on the loaded bars (alert engine, outcomes,
abnormal returns, and per row of the summary: the matched placebo, the uniform placebo and
two block bootstraps, 10,000 draws each), best of `--repeat` runs.
Baseline, measured in the same run: the same draws as a plain per-draw Python loop (the
`random` module; per alert a random entry of its stratum, redrawn while closer than the
spacing to one already drawn; per draw the mean, median and hit rate; blocks resampled
whole for the bootstraps). It is slow, so it runs `--loop-draws` draws per row, timed apart
from its per-row setup, and only the draws are extrapolated linearly to the study's count;
the setup and the study's own non-draw time (the study at 10 draws) are added once.
Target: ours under 10 s.
Times are CPU seconds of this process (time.process_time); wall-clock is printed too.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from backtests.bars import load_bars  # noqa: E402
from backtests.null import blocks_of  # noqa: E402
from backtests.study import (  # noqa: E402
    ESCALATION,
    Pools,
    SignalOutcome,
    Study,
    StudyConfig,
    groups_of,
    run_study,
)
from backtests.windows import WindowCache  # noqa: E402
from bench.common import loadavg, table, verdict  # noqa: E402
from feeds.model import HOUR_MS  # noqa: E402
from signals.kinds import find_kind  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/coinglass_btc/regime_1h.csv")
TARGET_S = 10.0


def _stats(values: list[float], raw: list[float], d: int) -> tuple[float, float, float]:
    return (sum(values) / len(values), statistics.median(values),
            sum(d * r > 0 for r in raw) / len(raw))


def _loop_row(members: list[SignalOutcome], h: Any, d: int, spacing: int, pools: Pools,
              config: StudyConfig, draws: int, rng: random.Random) -> tuple[float, float]:
    """The row's draws, one at a time: (CPU s of the setup, CPU s of the draws)."""
    t0 = time.process_time()
    these = [s for s in members if s.abnormal.get(h.name) is not None and s.vol is not None]
    if not these:
        return 0.0, 0.0
    cands = []
    for s in these:
        pool = pools.matched(s.record.scope, h)
        st, ct = pool.ranges(np.array([s.vol]), np.array([(s.entry_ms or 0) // HOUR_MS % 24]),
                             config.min_stratum)
        cands.append((pool.entry_ms.tolist(), pool.ret.tolist(), pool.abnormal.tolist(),
                      int(st[0]), int(ct[0])))
    uniform = [pools.get(s.record.scope, h).tolist() for s in these]
    abn = [float(s.abnormal[h.name] or 0.0) for s in these]
    raw = [float(s.returns[h.name] or 0.0) for s in these]
    block_ids = blocks_of(np.array([s.entry_ms or 0 for s in these]),
                          int(config.block_hours * HOUR_MS)).tolist()
    blocks: dict[int, list[int]] = {}
    for i, b in enumerate(block_ids):
        blocks.setdefault(b, []).append(i)
    groups = list(blocks.values())
    t1 = time.process_time()
    for _ in range(draws):
        taken: list[int] = []
        a, r = [], []
        for times, rets, abns, st, ct in cands:  # the matched placebo
            i = st + rng.randrange(ct)
            for _try in range(40):
                if all(abs(times[i] - t) >= spacing for t in taken):
                    break
                i = st + rng.randrange(ct)
            taken.append(times[i])
            a.append(abns[i])
            r.append(rets[i])
        _stats(a, r, d)
        u = [pool[rng.randrange(len(pool))] for pool in uniform]  # the uniform placebo
        _stats(u, u, d)
        for values in (raw, abn):  # the two block bootstraps
            picked = [i for _ in groups for i in groups[rng.randrange(len(groups))]]
            _stats([values[i] for i in picked], [raw[i] for i in picked], d)
    t2 = time.process_time()
    return t1 - t0, t2 - t1


def loop_baseline(study: Study, pools: Pools, draws: int, seed: int = 1
                  ) -> tuple[float, float, int]:
    """CPU seconds of the loop's setup and of `draws` draws, over every row the study
    scored; and how many rows had entries to draw for."""
    config = study.config
    rng = random.Random(seed)
    setup = drawing = 0.0
    rows = 0
    for kind, cohort, _scope, _sev, members in groups_of(study.signals, config.cooldown_ms):
        info = find_kind(kind)
        d = info.direction if info else 1
        spacing = 0 if cohort == ESCALATION else config.cooldown_ms
        for h in config.horizons:
            a, b = _loop_row(members, h, d, spacing, pools, config, draws, rng)
            setup, drawing, rows = setup + a, drawing + b, rows + (b > 0)
    return setup, drawing, rows


def _timed(fn: Any) -> tuple[Any, float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="a regime CSV (default: BTC 1h)")
    ap.add_argument("--symbol", default="BTC")
    ap.add_argument("--draws", type=int, default=10_000, help="placebo and bootstrap draws")
    ap.add_argument("--loop-draws", type=int, default=100,
                    help="draws per row the loop baseline runs (then extrapolated)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of ours; the best counts")
    args = ap.parse_args(argv)
    bars = load_bars([args.data], symbol=args.symbol)
    config = StudyConfig(placebo_draws=args.draws, bootstrap_draws=args.draws)
    print(f"{Path(args.data).name}: {bars.ticks.size} evaluations; {loadavg()}")
    runs = []
    study: Study | None = None
    for _ in range(max(1, args.repeat)):
        study, cpu, wall = _timed(lambda: run_study(bars, config, cache=WindowCache(bars)))
        runs.append((cpu, wall))
    assert study is not None
    ours_cpu, ours_wall = min(runs)
    small = dataclasses.replace(config, placebo_draws=10, bootstrap_draws=10)
    _, fixed_cpu, _ = _timed(lambda: run_study(bars, small, cache=WindowCache(bars)))
    pools = Pools(bars, config, study.period, strict=False)
    setup_cpu, loop_cpu, rows = loop_baseline(study, pools, args.loop_draws)
    base_cpu = fixed_cpu + setup_cpu + loop_cpu * args.draws / args.loop_draws
    ratio = base_cpu / ours_cpu
    rows_scored = len(study.groups)
    table(["path", "draws per row", "rows", "CPU s", "wall s"], [
        ["ours: vectorised run_study", f"{args.draws:,}", rows_scored, f"{ours_cpu:.2f}",
         f"{ours_wall:.2f}"],
        ["baseline: per-draw Python loop (extrapolated)", f"{args.draws:,}", rows,
         f"{base_cpu:.1f}", "—"],
        [f"  measured: loop at {args.loop_draws} draws", f"{args.loop_draws:,}", rows,
         f"{loop_cpu:.2f}", "—"],
        ["  measured: the loop's setup per row (pools, lists)", "—", rows,
         f"{setup_cpu:.2f}", "—"],
        ["  measured: the study's non-draw work (10 draws)", "10", rows_scored,
         f"{fixed_cpu:.2f}", "—"],
    ])
    passed = ours_cpu < TARGET_S and ours_wall < TARGET_S
    print(f"ratio vs the per-draw loop: {ratio:,.0f}× (the loop's draws extrapolated linearly "
          f"from {args.loop_draws} per row)")
    print(f"target: the {args.draws:,}-draw study under {TARGET_S:g} s: {ours_cpu:.2f} s CPU, "
          f"{ours_wall:.2f} s wall -> {verdict(passed)}")
    return {"passed": passed, "ours_s": ours_cpu, "ours_wall_s": ours_wall,
            "baseline_s": base_cpu, "ratio": ratio, "rows": rows_scored}


if __name__ == "__main__":
    main()
