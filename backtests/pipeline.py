"""What `liqbot backtest` does once its arguments are parsed: load, study, sweep, write, print.

Kept apart from `backtests.cli` so that adding the subcommand to `liqbot` imports nothing
heavy (numpy, matplotlib) until a backtest actually runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tomllib
from pathlib import Path
from typing import Any, TextIO

from backtests.bars import BacktestError, Bars, load_bars
from backtests.charts import CHARTS, draw_all
from backtests.engine import decide_arrays, run_vectorized
from backtests.html import render_html
from backtests.outcomes import parse_horizons
from backtests.report import build_blocks, render_markdown
from backtests.results import generate_results, write_results
from backtests.snooping import blocks_of, snooping
from backtests.study import Study, StudyConfig, run_study, with_params
from backtests.sweep import parse_grid, periods_of, progress_bar, run_sweep, score, walk_forward
from backtests.terminal import render_table
from backtests.windows import WindowCache
from feeds.model import ParseError, iso_z
from signals import SignalParams
from signals.episodes import DEFAULT_COOLDOWN_MS


def _signal_config(path: str | None) -> tuple[SignalParams, int]:
    """[signals] and [policy] cooldown_s of a liqbot config (the rest is the bot's business)."""
    if not path:
        return SignalParams(), DEFAULT_COOLDOWN_MS
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"--config {path}: {exc}") from None
    params = SignalParams.from_dict(data.get("signals", {}))
    cooldown_s = data.get("policy", {}).get("cooldown_s", DEFAULT_COOLDOWN_MS / 1000)
    return params, int(float(cooldown_s) * 1000)


def study_config(args: argparse.Namespace) -> StudyConfig:
    params, cooldown = _signal_config(args.config)
    horizons = parse_horizons(args.horizons)
    names = [h.name for h in horizons]
    main = args.main_horizon or ("4h" if "4h" in names else names[len(names) // 2])
    return StudyConfig(params=params, cooldown_ms=cooldown, horizons=tuple(horizons),
                       main_horizon=main, fees_bps=args.fees_bps, slippage_bps=args.slippage_bps,
                       placebo_draws=args.placebo_draws, seed=args.seed,
                       bootstrap_draws=getattr(args, "bootstrap_draws", 10_000),
                       latency_s=getattr(args, "latency_s", 60.0),
                       impact_bps=getattr(args, "impact_bps", 1.0))


def study_period(args: argparse.Namespace, bars: Bars) -> tuple[int, int] | None:
    """[from, until) of --from/--until, on bar boundaries; None when neither is given."""
    a, b = getattr(args, "from_ms", None), getattr(args, "until_ms", None)
    if a is None and b is None:
        return None
    start = bars.origin_ms if a is None else max(int(a), bars.origin_ms)
    end = bars.end_ms if b is None else min(int(b), bars.end_ms)
    if end <= start:
        raise BacktestError(f"--from/--until: nothing to study between {iso_z(start)} and "
                            f"{iso_z(end)} (the data runs {iso_z(bars.origin_ms)} → "
                            f"{iso_z(bars.end_ms)})")
    return start, end


def _periods(bars: Bars, folds: int, span: tuple[int, int] | None) -> list[tuple[int, int]]:
    """Walk-forward periods; with --from/--until, cut from that span alone."""
    periods = periods_of(bars, folds)
    if span is None:
        return periods
    ticks = bars.ticks[(bars.ticks > span[0]) & (bars.ticks <= span[1])]
    if ticks.size < folds + 1:
        raise BacktestError("--sweep: too few evaluations between --from and --until")
    cuts = [int(ticks[len(ticks) * i // (folds + 1)]) for i in range(1, folds + 1)]
    cuts = [c - (c - bars.origin_ms) % bars.cell_ms for c in cuts]
    return list(itertools.pairwise([span[0], *cuts, span[1]]))


def _sweep(args: argparse.Namespace, bars: Bars, cache: WindowCache, config: StudyConfig,
           span: tuple[int, int] | None = None) -> dict[str, Any]:
    candidates = parse_grid(args.sweep, config.params, config.cooldown_ms)
    periods = _periods(bars, args.folds, span)
    blocks = blocks_of((periods[0][0], periods[-1][1]))
    # One pass scores the walk-forward periods and the CSCV blocks alike.
    scored = run_sweep(bars, candidates, config, [*periods, *blocks], cache=cache,
                       on_progress=progress_bar(sys.stderr))
    defaults = score(bars, decide_arrays(cache, config.params, config.cooldown_ms)[0], config,
                     periods)
    folds = walk_forward(scored, periods, defaults, config.small_n)
    tests: list[Study | None] = [
        None if f.choice is None else run_study(
            bars, with_params(config, f.choice.params, f.choice.cooldown_ms), cache=cache,
            period=f.test)
        for f in folds]
    snoop = snooping([c.label for c, _, _ in scored], [sc for _, _, sc in scored], periods,
                     blocks, config.cost, config.small_n)
    return {"folds": folds, "sweep_size": len(candidates), "test_studies": tests,
            "snooping": snoop}


def _keep_track(db: str | None, results: dict[str, Any], err: TextIO) -> None:
    if not db:
        return
    from backtests.track import save_latest
    from feeds.store import Store

    store = Store(db)
    try:
        save_latest(store, results)
    finally:
        store.close()
    err.write(f"track record saved to {db}\n")


def run_backtest(args: argparse.Namespace, out: TextIO | None = None,
                 err: TextIO | None = None) -> int:
    """Run the backtest the parsed arguments describe; return the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    folder = Path(args.out)
    try:
        if folder.exists() and not folder.is_dir():  # before minutes of work, not after
            raise BacktestError(f"--out {folder}: is a file; name a folder for the report")
        config = study_config(args)
        bars = load_bars(args.data, symbol=args.symbol, tz_offset_hours=args.tz_offset,
                         instruments=args.instruments)
        cache = WindowCache(bars)
        if args.sweep:  # a bad grid fails now, not after the study
            parse_grid(args.sweep, config.params, config.cooldown_ms)
        span = study_period(args, bars)
        records = run_vectorized(cache, config.params, config.cooldown_ms)
        if span is not None:  # the policy ran over everything; only the span is read
            records = [r for r in records if span[0] <= r.end_ms < span[1]]
        study = run_study(bars, config, cache=cache, period=span, records=records)
        extra = _sweep(args, bars, cache, config, span) if args.sweep else {}
    except (ValueError, OSError) as exc:  # ParseError and BacktestError are ValueErrors
        err.write(f"liqbot backtest: error: {exc}\n")
        return 1 if isinstance(exc, ParseError | BacktestError | OSError) else 2
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err.write(f"liqbot backtest: error: --out {folder}: {exc.strerror}\n")
        return 1
    draw_all(study, bars, folder)
    snoop = extra.pop("snooping", None)
    results = generate_results(study, bars, **extra, held_out=span is not None)
    if snoop is not None and results.get("sweep"):
        results["sweep"]["snooping"] = snoop
    write_results(results, folder / "results.json")
    blocks = build_blocks(results, {name: cap for name, (cap, _) in CHARTS.items()})
    (folder / "report.md").write_text(render_markdown(blocks), encoding="utf-8")
    (folder / "report.html").write_text(render_html(blocks, folder), encoding="utf-8")
    out.write(json.dumps(results) + "\n" if args.json else render_table(results) + "\n")
    err.write(f"wrote {folder}/report.md, report.html, results.json and "
              f"{len(CHARTS)} charts\n")
    _keep_track(args.db, results, err)
    return 0
