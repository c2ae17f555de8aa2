"""Benchmark: a 1,000-configuration sweep, vectorized backtest vs the pure per-bar reference.

    .venv/bin/python bench/sweep.py                      # 1000 configs x 5 symbols x 8760 1h bars
    .venv/bin/python bench/sweep.py --configs 20 --hours 500 --live-ticks 50   # a quick look

Ours: `backtests.sweep.run_sweep` (window arrays built once, every configuration classified
by `signals.vectorized`, the alert policy, walk-forward scoring), timed end to end.
Baseline: the pure per-bar reference (`backtests.reference`: the same WindowStats, the real
classifiers, `signals.episodes`, no SQLite), over the FULL length of the data, on
--reference-configs configurations. Two ratios, both from this run:
  - the 1,000-configuration sweep against the reference's measured seconds per
    configuration times the configurations (each runs the same bars on its own);
  - ours and the reference on the very same few configurations, nothing scaled.
Every reference run must produce exactly the alerts the sweep produced; so must the bot's
own live path (SQLite store, build_stats, evaluate, Policy) over the first --live-ticks
ticks of a few configurations, a check of equality only: it is not timed against ours.
Times are CPU seconds of this process (time.process_time), so a busy machine slows every
path alike; wall-clock seconds are printed too.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backtests.bars import Bars, build_bars  # noqa: E402
from backtests.engine import live_windows  # noqa: E402
from backtests.reference import run_reference  # noqa: E402
from backtests.snooping import blocks_of, snooping  # noqa: E402
from backtests.study import StudyConfig  # noqa: E402
from backtests.sweep import Candidate, periods_of, progress_bar, run_sweep  # noqa: E402
from backtests.synthetic import COINS, synthetic_history  # noqa: E402
from backtests.windows import WindowCache  # noqa: E402
from feeds.history.replay import ReplayData  # noqa: E402
from signals import SignalParams, evaluate  # noqa: E402
from signals.episodes import DEFAULT_COOLDOWN_MS  # noqa: E402
from signals.stats import build_stats  # noqa: E402

TARGET = 100.0


def grid(n: int) -> list[Candidate]:
    """Up to 1000 configurations: 10 shares x 10 absolute-tier scales x 10 ratio-tier scales."""
    base = SignalParams(windows=("1h", "4h"))
    shares = [0.55 + 0.04 * i for i in range(10)]
    scales = [0.25 * 1.3 ** i for i in range(10)]
    out = []
    for share, usd, ratio in itertools.product(shares, scales, scales):
        params = SignalParams(
            windows=base.windows, min_share=round(share, 2),
            tiers_usd_1h=tuple(t * usd for t in base.tiers_usd_1h),
            tiers_ratio=tuple(t * ratio for t in base.tiers_ratio))
        out.append(Candidate(f"share={share:.2f} usd×{usd:.2f} ratio×{ratio:.2f}", params,
                             DEFAULT_COOLDOWN_MS))
    step = max(1, len(out) // n)
    return out[::step][:n]


def live_keys(data: ReplayData, bars: Bars, cand: Candidate, n_ticks: int) -> tuple[list, float]:
    """Run the bot's own per-tick path over the first ticks; return (alert keys, seconds)."""
    from bot.policy import Policy, PolicyConfig
    from bot.state.schema import migrate_store
    from feeds.store import Store

    store = Store(":memory:")
    migrate_store(store)  # the chat tables, as the bot opens the file
    with store.transaction():  # ingest is not timed: it is the same for every configuration
        store.insert_buckets(data.buckets)
        store.insert_candles(data.candles)
        store.insert_funding(data.funding)
    policy = Policy(store, cand.params, PolicyConfig(cooldown_ms=cand.cooldown_ms))
    windows = live_windows(cand.params, bars.bar_ms)
    keys = []
    t0 = time.process_time()
    for tick in bars.ticks[:n_ticks].tolist():
        stats = build_stats(store, tick, cand.params, windows)
        alerts = policy.decide(evaluate(stats, cand.params))
        if alerts:
            policy.record(alerts, [], tick)
        keys += [(a.kind, a.scope, a.window_ms, a.start_ms, a.severity) for a in alerts]
    seconds = time.process_time() - t0
    store.close()
    return keys, seconds


def _table(rows: list[list[str]]) -> str:
    headers = ["path", "measured", "CPU s", "ours CPU s, same configs", "ours is faster by"]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*headers), fmt.format(*("-" * w for w in widths)),
                      *(fmt.format(*r) for r in rows)])


def sweep(bars: Bars, cands: list[Candidate]) -> tuple[list[Any], float, float]:
    """Run the vectorized sweep as `liqbot backtest --sweep` does; (results, CPU s, wall s)."""
    config = StudyConfig()
    t, wall = time.process_time(), time.perf_counter()
    # Walk-forward periods plus the CSCV blocks, then PBO.
    periods = periods_of(bars, 1)
    blocks = blocks_of((periods[0][0], periods[-1][1]))
    results = run_sweep(bars, cands, config, [*periods, *blocks], cache=WindowCache(bars),
                        on_progress=progress_bar())
    snooping([c.label for c, _, _ in results], [sc for _, _, sc in results], periods, blocks,
             config.cost, config.small_n)
    return results, time.process_time() - t, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", type=int, default=1000)
    ap.add_argument("--symbols", type=int, default=5, choices=range(1, len(COINS) + 1))
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--live-configs", type=int, default=3,
                    help="configurations whose alerts the live path must reproduce")
    ap.add_argument("--live-ticks", type=int, default=96,
                    help="ticks per live-path check (the first ones)")
    ap.add_argument("--reference-configs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    t = time.perf_counter()
    data = synthetic_history(tuple(COINS)[: args.symbols], args.hours, seed=args.seed)
    bars = build_bars(data)
    prep = time.perf_counter() - t
    cands = grid(args.configs)
    n = len(cands)
    print(f"data: {args.symbols} symbols x {args.hours} 1h bars (synthetic, seed {args.seed}), "
          f"{bars.ticks.size} evaluations; {n} configurations; prepared in {prep:.1f} s")

    results, ours, ours_wall = sweep(bars, cands)
    alerts = {c.label: found.keys(bars) for c, found, _ in results}

    refs = cands[:: max(1, n // max(args.reference_configs, 1))][: args.reference_configs]
    ref_s, ref_ok = 0.0, True
    for cand in refs:
        t = time.process_time()
        keys = [r.key for r in run_reference(bars, cand.params, cand.cooldown_ms)]
        ref_s += time.process_time() - t
        ref_ok &= keys == alerts[cand.label]
    ref_per = ref_s / max(len(refs), 1)
    _, ours_few, _ = sweep(bars, refs)  # the same configurations, nothing scaled

    picks = cands[:: max(1, n // max(args.live_configs, 1))][: args.live_configs]
    live_ticks, live_ok = min(args.live_ticks, bars.ticks.size), True
    end = int(bars.ticks[live_ticks - 1])
    for cand in picks:
        keys, _ = live_keys(data, bars, cand, live_ticks)
        live_ok &= sorted(keys) == sorted(k for k in alerts[cand.label] if k[3] + k[2] <= end)

    ratio, ratio_few = ref_per * n / ours, ref_s / ours_few
    print(_table([
        ["per-bar reference (pure), full length", f"{len(refs)} configs, all ticks",
         f"{ref_s:.2f}", f"{ours_few:.2f}", f"{ratio_few:,.0f}×"],
        ["  the same per configuration, × configs", f"{ref_per:.2f} s × {n}",
         f"{ref_per * n:,.0f}", f"{ours:.2f}", f"{ratio:,.0f}×"]]))
    print(f"ours: {ours:.1f} CPU s ({ours_wall:.1f} s wall) for {n} configurations, "
          f"{1000 * ours / n:.1f} ms each, window arrays built once and included")
    print(f"identical alerts: reference {'yes' if ref_ok else 'NO'} ({len(refs)} configs, full "
          f"length); live path {'yes' if live_ok else 'NO'} ({len(picks)} configs, first "
          f"{live_ticks} ticks, not timed)")
    passed = ratio >= TARGET and ref_ok and live_ok
    print(f"ratio vs the pure per-bar reference = {ratio:,.0f}× for {n} configurations "
          f"({ratio_few:,.0f}× on the same {len(refs)}) (target >= {TARGET:.0f}×): "
          f"{'PASS' if passed else '*** FAIL ***'}")
    return {"ours_s": ours, "reference_full_s": ref_per * n, "ratio_reference": ratio,
            "ratio_same_configs": ratio_few, "configs": n, "identical": live_ok and ref_ok,
            "passed": passed}


if __name__ == "__main__":
    main()
