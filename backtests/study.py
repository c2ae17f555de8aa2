"""The event study: alerts over history -> outcomes per alert -> statistics per group.

Alerts are scored in three cohorts, never mixed in one statistic: the first alert of each
cooldown episode, escalations (each at its own entry), and each episode's peak (its
highest-severity alert, whose severity is the episode's). In the first and peak cohorts an
episode counts once; one that escalates twice (notable, large, extreme) gives two
escalations, hours apart and so not independent of each other. Only alerts whose trailing
baseline had real data behind it count (signals in the warm-up after the data starts, or
after a gap, are listed and flagged).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backtests.bars import Bars, Floats, Ints
from backtests.engine import AlertRecord, run_vectorized
from backtests.outcomes import (
    DIRECTION,
    Horizon,
    draw_placebo,
    excursions,
    forward,
    parse_horizons,
    random_pool,
)
from backtests.stats import SMALL_N, Placebo, Stats, compare_placebo, compute_stats, drift
from backtests.windows import WindowCache, coverage
from feeds.model import HOUR_MS, MARKET
from signals import DEFAULTS, SignalParams
from signals.episodes import DEFAULT_COOLDOWN_MS

ALL = "all"  # the pooled scope: every scope's episodes of a kind, de-clustered across scopes
FIRST, ESCALATION, PEAK = "first", "escalation", "peak"
COHORTS = (FIRST, ESCALATION, PEAK)  # in report order; FIRST is what headlines quote


@dataclass(frozen=True)
class StudyConfig:
    """Everything a study depends on besides the data; plain keywords, validated up front."""

    params: SignalParams = DEFAULTS
    cooldown_ms: int = DEFAULT_COOLDOWN_MS
    horizons: tuple[Horizon, ...] = tuple(parse_horizons("1h,4h,24h"))
    main_horizon: str = "4h"
    fees_bps: float = 5.0  # per side
    slippage_bps: float = 5.0  # per side
    placebo_draws: int = 1000
    seed: int = 7
    small_n: int = SMALL_N

    def __post_init__(self) -> None:
        names = [h.name for h in self.horizons]
        if self.main_horizon not in names:
            raise ValueError(f"main horizon {self.main_horizon} is not among {', '.join(names)}")
        if min(self.fees_bps, self.slippage_bps) < 0 or self.placebo_draws < 10:
            raise ValueError("costs must be >= 0 and placebo draws >= 10")

    @property
    def cost(self) -> float:
        """Round-trip cost as a fraction: fees and slippage on entry and exit."""
        return 2 * (self.fees_bps + self.slippage_bps) / 10_000

    @property
    def min_coverage(self) -> float:
        """Share of the baseline lookback that must hold data: the live rule's own setting."""
        return self.params.min_coverage

    @property
    def lookback_ms(self) -> int:
        return self.params.baseline_hours * HOUR_MS


@dataclass(frozen=True)
class SignalOutcome:
    """One alert with what followed it."""

    record: AlertRecord
    warmup: bool
    counted: bool  # counted in the first-alert cohort (what headlines quote)
    entry_ms: int | None
    entry_price: float | None
    returns: dict[str, float | None]
    favour: dict[str, float | None]  # max favourable excursion, continuation direction
    adverse: dict[str, float | None]
    cohorts: tuple[str, ...] = ()  # the cohorts it is counted in
    peak: bool = False  # its episode's highest-severity alert


@dataclass(frozen=True)
class GroupResult:
    kind: str
    scope: str
    severity: int | None
    horizon: str
    stats: Stats
    placebo: Placebo | None
    cohort: str = FIRST


@dataclass
class Study:
    config: StudyConfig
    period: tuple[int, int]
    signals: list[SignalOutcome]
    groups: list[GroupResult]
    drift: dict[str, dict[str, dict[str, float | int | None]]]  # scope -> horizon -> numbers
    notes: list[str] = field(default_factory=list)
    pools: Pools | None = None  # random-entry pools, for charts


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def outcomes(bars: Bars, records: Sequence[AlertRecord], config: StudyConfig,
             period: tuple[int, int] | None = None) -> list[SignalOutcome]:
    """Attach entry, returns and excursions to each alert; flag warm-up and counted episodes.

    With a `period`, only entries inside it count, and only returns that end inside it.
    """
    out: dict[int, SignalOutcome] = {}
    for scope in sorted({r.scope for r in records}):
        idx = [i for i, r in enumerate(records) if r.scope == scope]
        recs = [records[i] for i in idx]
        starts = np.array([r.start_ms for r in recs], dtype=np.int64)
        warm = coverage(bars, scope, starts - config.lookback_ms, starts) < config.min_coverage
        prices = bars.prices.get(scope)
        if prices is None:
            none: dict[str, float | None] = {h.name: None for h in config.horizons}
            out.update({i: SignalOutcome(r, bool(w), False, None, None, none, none, none)
                        for i, r, w in zip(idx, recs, warm, strict=True)})
            continue
        fwd = forward(prices, np.array([r.end_ms for r in recs], dtype=np.int64), config.horizons)
        direction = np.array([DIRECTION[r.kind] for r in recs], dtype=float)
        a, b = period or (fwd.entry_ms.min(), fwd.entry_ms.max() + 1)
        cols = {}
        for h in config.horizons:
            inside = (fwd.entry_ms >= a) & (fwd.entry_ms + h.ms <= b) if period else True
            fav, adv = excursions(fwd, h.name, direction)
            cols[h.name] = [np.where(inside, x, np.nan) for x in (fwd.returns[h.name], fav, adv)]
        peaks = _peaks(recs)
        for j, (i, r) in enumerate(zip(idx, recs, strict=True)):
            price = _opt(fwd.entry_price[j])
            entry = int(fwd.entry_ms[j])
            ok = not warm[j] and price is not None and a <= entry < b
            cohorts = tuple(c for c, member in ((FIRST, not r.escalation),
                                                (ESCALATION, r.escalation),
                                                (PEAK, j in peaks)) if ok and member)
            ret, up, down = ({h: _opt(c[k][j]) for h, c in cols.items()} for k in range(3))
            out[i] = SignalOutcome(r, bool(warm[j]), FIRST in cohorts, entry, price, ret, up,
                                   down, cohorts, j in peaks)
    return [out[i] for i in range(len(records))]


def _peaks(records: Sequence[AlertRecord]) -> set[int]:
    """Indexes of each episode's highest-severity alert (the latest of equals: escalations
    only go up, so it is the episode's last alert)."""
    best: dict[tuple[str, int], int] = {}
    for j, r in enumerate(records):
        key = (r.kind, r.episode_ms)
        if key not in best or r.severity >= records[best[key]].severity:
            best[key] = j
    return set(best.values())


def _pooled(signals: Sequence[SignalOutcome], cooldown_ms: int) -> list[SignalOutcome]:
    """One episode per cooldown across scopes: the earliest, the market first on ties."""
    kept: list[SignalOutcome] = []
    for s in sorted(signals, key=lambda s: (s.entry_ms, s.record.scope != MARKET, s.record.scope)):
        if not kept or (s.entry_ms or 0) - (kept[-1].entry_ms or 0) >= cooldown_ms:
            kept.append(s)
    return kept


Group = tuple[str, str, str, int | None, list[SignalOutcome]]


def groups_of(signals: Sequence[SignalOutcome], cooldown_ms: int) -> list[Group]:
    """(kind, cohort, scope, severity or None, members): per cohort, per scope and pooled,
    all severities and by severity (the scored alert's own: the peak's for PEAK)."""
    out: list[Group] = []
    for kind in DIRECTION:
        for cohort in COHORTS:
            mine = [s for s in signals if cohort in s.cohorts and s.record.kind == kind]
            sets = [(scope, [s for s in mine if s.record.scope == scope])
                    for scope in sorted({s.record.scope for s in mine})]
            sets.append((ALL, _pooled(mine, cooldown_ms)))
            for scope, these in sets:
                out.append((kind, cohort, scope, None, these))
                for sev in (1, 2, 3):
                    sub = [s for s in these if s.record.severity == sev]
                    if sub:
                        out.append((kind, cohort, scope, sev, sub))
    return out


class Pools:
    """Random-entry returns per (scope, horizon), drawn from the times a signal could occur.

    Entries are evaluation times inside the period with a full baseline behind them. With
    `strict`, the horizon must end inside the period too (walk-forward periods never mix).
    """

    def __init__(self, bars: Bars, config: StudyConfig, period: tuple[int, int],
                 strict: bool) -> None:
        self.bars, self.config, self.period, self.strict = bars, config, period, strict
        self._cache: dict[tuple[str, str], Floats] = {}

    def get(self, scope: str, h: Horizon) -> Floats:
        key = (scope, h.name)
        if key not in self._cache:
            self._cache[key] = self._build(scope, h)
        return self._cache[key]

    def eligible(self, scope: str, horizon_ms: int) -> Ints:
        """Evaluation times a random entry may take."""
        bars = self.bars
        until = self.period[1] - (horizon_ms if self.strict else 0)
        t = bars.ticks[(bars.ticks >= self.period[0]) & (bars.ticks <= until)]
        start = t - bars.cell_ms
        ok = coverage(bars, scope, start - self.config.lookback_ms, start) >= \
            self.config.min_coverage
        return t[ok]

    def _build(self, scope: str, h: Horizon) -> Floats:
        prices = self.bars.prices.get(scope)
        if prices is None:
            return np.empty(0)
        return random_pool(prices, self.eligible(scope, h.ms), h)


def _group_results(signals: Sequence[SignalOutcome], pools: Pools,
                   config: StudyConfig) -> list[GroupResult]:
    out = []
    for gi, (kind, cohort, scope, sev, members) in enumerate(
            groups_of(signals, config.cooldown_ms)):
        d = DIRECTION[kind]
        for hi, h in enumerate(config.horizons):
            values = np.array([np.nan if s.returns[h.name] is None else s.returns[h.name]
                               for s in members], dtype=float)
            stats = compute_stats(values, d, config.cost, seed=config.seed + gi,
                                  small_n=config.small_n)
            scopes = [s.record.scope for s, v in zip(members, values, strict=True)
                      if np.isfinite(v)]
            names = sorted(set(scopes))
            rng = np.random.default_rng([config.seed, gi, hi])
            draws = draw_placebo([pools.get(sc, h) for sc in names],
                                 [scopes.count(sc) for sc in names], config.placebo_draws, rng)
            out.append(GroupResult(kind, scope, sev, h.name, stats,
                                   compare_placebo(draws, d, stats), cohort))
    return out


def run_study(bars: Bars, config: StudyConfig, *, cache: WindowCache | None = None,
              period: tuple[int, int] | None = None,
              records: Sequence[AlertRecord] | None = None) -> Study:
    """Run the alert engine over the bars (or take its records) and study what followed."""
    if records is None:
        records = run_vectorized(cache or WindowCache(bars), config.params, config.cooldown_ms)
    # Without a period: from the first bar to the close of the last liquidation bar.
    span = period or (bars.origin_ms, bars.end_ms)
    signals = outcomes(bars, records, config, period)
    pools = Pools(bars, config, span, strict=period is not None)
    groups = _group_results(signals, pools, config)
    drifts = {scope: {h.name: drift(pools.get(scope, h)) for h in config.horizons}
              for scope in bars.scopes if scope in bars.prices}
    warm = sum(s.warmup for s in signals)
    unpriced = sum(s.entry_price is None and not s.warmup for s in signals)
    notes = list(bars.notes)
    if unpriced:
        notes.append(f"{unpriced} alert(s) have no price bar at entry (the price data does not "
                     "cover them): listed, not counted")
    if warm:
        notes.append(f"{warm} alert(s) fell where the {config.params.baseline_hours}h baseline "
                     f"had under {config.min_coverage:.0%} data (warm-up or gaps): listed, "
                     "not counted")
    return Study(config, span, list(signals), groups, drifts, notes, pools)


def with_params(config: StudyConfig, params: SignalParams, cooldown_ms: int | None = None
                ) -> StudyConfig:
    """The same study with other signal parameters (and cooldown)."""
    return dataclasses.replace(config, params=params,
                               cooldown_ms=config.cooldown_ms if cooldown_ms is None
                               else cooldown_ms)
