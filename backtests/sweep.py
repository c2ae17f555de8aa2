"""Parameter sweeps with walk-forward: tune on one period, test on the next, never mixed.

Every configuration runs over the whole history once (the alert policy's state flows on as
it would live), then its episodes are scored per period: an entry counts in a period only
if it and its horizon both fall inside it. The tuning choice (configuration AND whether to
trade continuation or reversal) is made on the tuning period alone; the test period is then
read once for that choice, for the defaults, and against random entry times.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from backtests.bars import Bars
from backtests.engine import KINDS, Alerts, decide_arrays
from backtests.outcomes import DIRECTION, forward
from backtests.study import StudyConfig
from backtests.windows import WindowCache, coverage
from feeds.model import HOUR_MS
from signals import SignalParams

# A sensible first grid: 5 x 4 x 3 x 2 = 120 configurations.
DEFAULT_GRID = ("min_share=0.6,0.7,0.75,0.8,0.9", "tiers_usd_scale=0.25,0.5,1,2",
                "tiers_ratio_scale=0.5,1,2", "windows=1h,1h+4h")
_SCALED = {"tiers_usd_scale": "tiers_usd_1h", "tiers_ratio_scale": "tiers_ratio"}
Scored = tuple["Candidate", Alerts, list[dict[str, Any]]]
_BOOL = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


@dataclass(frozen=True)
class Candidate:
    """One point of the grid: the parameter object plus the policy's cooldown."""

    label: str
    params: SignalParams
    cooldown_ms: int


def _value(key: str, text: str, base: SignalParams) -> Any:
    if key == "windows":
        return tuple(text.split("+"))
    if key in _SCALED:
        return tuple(t * float(text) for t in getattr(base, _SCALED[key]))
    if key == "cooldown_h":
        return float(text)
    kind = type(getattr(base, key))
    if kind is bool:
        if text.lower() not in _BOOL:
            raise ValueError(f"--sweep {key}: not a boolean: {text!r}")
        return _BOOL[text.lower()]
    return kind(text)


def parse_grid(specs: Sequence[str], base: SignalParams, cooldown_ms: int) -> list[Candidate]:
    """`KEY=V1,V2` specs (or `default`) -> every combination; unknown keys are errors."""
    specs = [s for spec in specs for s in (DEFAULT_GRID if spec == "default" else (spec,))]
    fields = {f.name for f in dataclasses.fields(SignalParams) if f.name != "extra"}
    axes: list[tuple[str, list[tuple[str, Any]]]] = []
    for spec in specs:
        key, _, values = spec.partition("=")
        key = key.strip()
        if key not in fields | set(_SCALED) | {"cooldown_h"} or not values:
            known = ", ".join(sorted(fields | set(_SCALED) | {"cooldown_h"}))
            raise ValueError(f"--sweep {spec!r}: expected KEY=V1,V2,... with KEY one of {known}")
        axes.append((key, [(v.strip(), _value(key, v.strip(), base)) for v in values.split(",")]))
    out = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        changes = {key: v for (key, _), (_, v) in zip(axes, combo, strict=True)}
        cooldown = changes.pop("cooldown_h", None)
        for scaled, name in _SCALED.items():
            if scaled in changes:
                changes[name] = changes.pop(scaled)
        params = dataclasses.replace(base, **changes)
        params.validate()
        label = " ".join(f"{key}={text}" for (key, _), (text, _) in zip(axes, combo, strict=True))
        out.append(Candidate(label, params, cooldown_ms if cooldown is None
                             else int(cooldown * HOUR_MS)))
    return out


def periods_of(bars: Bars, folds: int) -> list[tuple[int, int]]:
    """`folds + 1` consecutive periods holding equal numbers of evaluations.

    Split by evaluations, not by calendar: a hole in the data (the shared BTC files miss
    two months) would otherwise leave one period nearly empty.
    """
    if folds < 1:
        raise ValueError("walk-forward needs at least one fold (two periods)")
    # Evaluations while liquidation bars exist: candles may run on without them.
    ticks = bars.ticks[(bars.ticks > bars.origin_ms) & (bars.ticks <= bars.end_ms)]
    cuts = [int(ticks[len(ticks) * i // (folds + 1)]) for i in range(1, folds + 1)]
    cuts = [c - (c - bars.origin_ms) % bars.cell_ms for c in cuts]  # on bar boundaries
    edges = [int(ticks[0]), *cuts, int(ticks[-1]) + 1]
    return list(itertools.pairwise(edges))


def score(bars: Bars, alerts: Alerts, config: StudyConfig,
          periods: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
    """Per period: counted episodes at the main horizon; net trade means per hypothesis."""
    h = next(x for x in config.horizons if x.name == config.main_horizon)
    direction = np.array([DIRECTION[k.value] for k in KINDS], dtype=np.float64)[alerts.kind]
    signed = np.full(alerts.tick.size, np.nan)
    entry = np.zeros(alerts.tick.size, dtype=np.int64)
    for si, scope in enumerate(bars.scopes):
        prices = bars.prices.get(scope)
        m = (alerts.scope == si) & ~alerts.escalation
        if prices is None or not m.any():
            continue
        start = alerts.start_ms[m]
        ok = coverage(bars, scope, start - config.lookback_ms, start) >= config.min_coverage
        fwd = forward(prices, alerts.end_ms[m], (h,), with_extremes=False)
        signed[m] = np.where(ok, direction[m] * fwd.returns[h.name], np.nan)
        entry[m] = fwd.entry_ms
    out = []
    for a, b in periods:
        m = (entry >= a) & (entry + h.ms <= b) & np.isfinite(signed)
        x = signed[m]
        mean = float(x.mean()) if x.size else float("nan")
        # Per kind, sums rather than means: the snooping test adds periods up (CSCV halves).
        kinds = {k.value: {"n": int(xk.size), "sum": float(xk.sum()),
                           "up": int((xk > 0).sum()), "down": int((xk < 0).sum())}
                 for ki, k in enumerate(KINDS) for xk in (signed[m & (alerts.kind == ki)],)}
        out.append({"n": int(x.size), "continuation": mean - config.cost,
                    "reversal": -mean - config.cost,
                    "hit": float((x > 0).mean()) if x.size else float("nan"),
                    "hit_reversal": float((x < 0).mean()) if x.size else float("nan"),
                    "kinds": kinds})
    return out


def progress_bar(stream: TextIO | None = None) -> Callable[[int, int], None]:
    """A plain text progress bar on stderr: `[#####.....] 120/1000 12.3 s`."""
    out = stream or sys.stderr
    t0 = time.perf_counter()

    def update(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        out.write(f"\rsweep [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                  f"{time.perf_counter() - t0:.1f} s")
        if done >= total:
            out.write("\n")
        out.flush()

    return update


def run_sweep(bars: Bars, candidates: Sequence[Candidate], config: StudyConfig,
              periods: Sequence[tuple[int, int]], *, cache: WindowCache | None = None,
              on_progress: Callable[[int, int], None] | None = None,
              ) -> list[Scored]:
    """Run every candidate over the whole data; score each period separately."""
    cache = cache or WindowCache(bars)
    out = []
    step = max(1, len(candidates) // 100)
    for i, cand in enumerate(candidates, start=1):
        alerts, _ = decide_arrays(cache, cand.params, cand.cooldown_ms)
        out.append((cand, alerts, score(bars, alerts, config, periods)))
        if on_progress and (i % step == 0 or i == len(candidates)):
            on_progress(i, len(candidates))
    return out


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: what the tuning period chose and how it did on the next."""

    tune: tuple[int, int]
    test: tuple[int, int]
    choice: Candidate | None  # None: no configuration had enough episodes to choose from
    hypothesis: str | None  # "continuation" or "reversal"
    tune_score: dict[str, Any] | None
    test_score: dict[str, Any] | None
    default_test: dict[str, Any] | None
    ranking: list[tuple[str, str, dict[str, Any]]]  # the top of the tuning table


def walk_forward(results: Sequence[Scored], periods: Sequence[tuple[int, int]],
                 default_scores: list[dict[str, Any]], min_n: int, top: int = 10) -> list[Fold]:
    """Choose on period i (best net mean with at least `min_n` episodes), read period i + 1."""
    folds = []
    for i in range(len(periods) - 1):
        options = [(s[i][hyp], s[i]["n"], k, hyp)
                   for k, (_, _, s) in enumerate(results) for hyp in ("continuation", "reversal")
                   if s[i]["n"] >= min_n and np.isfinite(s[i][hyp])]
        options.sort(key=lambda o: (-o[0], -o[1], o[2]))
        ranking = [(results[k][0].label, hyp, _pick(results[k][2][i], hyp))
                   for _, _, k, hyp in options[:top]]
        fold = Fold(periods[i], periods[i + 1], None, None, None, None,
                    _pick(default_scores[i + 1], "continuation"), ranking)
        if options:
            _, _, k, hyp = options[0]
            cand, _, scores = results[k]
            fold = dataclasses.replace(fold, choice=cand, hypothesis=hyp,
                                       tune_score=_pick(scores[i], hyp),
                                       test_score=_pick(scores[i + 1], hyp),
                                       default_test=_pick(default_scores[i + 1], hyp))
        folds.append(fold)
    return folds


def _pick(score: dict[str, Any], hypothesis: str) -> dict[str, Any]:
    """One hypothesis' view of a period score: n, net mean, hit rate."""
    hit = score["hit"] if hypothesis == "continuation" else score["hit_reversal"]
    return {"n": score["n"], "net_mean": score[hypothesis], "hit": hit}
