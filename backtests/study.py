"""The event study: alerts over history -> outcomes per alert -> statistics per group.

Alerts are scored in three cohorts, never mixed in one statistic: the first alert of each
cooldown episode, escalations (each at its own entry), and each episode's peak (its
highest-severity alert, whose severity is the episode's). In the first and peak cohorts an
episode counts once; one that escalates twice (notable, large, extreme) gives two
escalations, hours apart and so not independent of each other. Only alerts whose trailing
baseline had real data behind it count (signals in the warm-up after the data starts, or
after a gap, are listed and flagged).

Each group is judged against `backtests.null`: abnormal returns (net of the drift known at
entry) against random entries matched on volatility and hour and de-clustered like the
alerts, with block-bootstrap intervals. The uniform random-time placebo of earlier
versions is kept beside it for comparison.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backtests.bars import Bars, Floats, Ints
from backtests.engine import AlertRecord, run_vectorized
from backtests.null import blocks_of, circular_shifts, draw_matched
from backtests.outcomes import (
    DIRECTION,
    Horizon,
    draw_placebo,
    excursions,
    forward,
    parse_horizons,
)
from backtests.pools import Pools
from backtests.stats import (
    BOOTSTRAP,
    SMALL_N,
    Abnormal,
    Placebo,
    Stats,
    abnormal_stats,
    compare_matched,
    compare_placebo,
    compare_shifts,
    compute_stats,
    drift,
)
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
    placebo_draws: int = 10_000
    seed: int = 7
    small_n: int = SMALL_N
    bootstrap_draws: int = BOOTSTRAP
    drift_days: float = 30.0  # the drift benchmark's trailing window
    vol_hours: float = 24.0  # trailing volatility the placebo is matched on
    vol_bins: int = 5  # volatility quantile bins
    hour_bins: int = 6  # hour-of-day blocks (6: four hours each)
    min_stratum: int = 20  # a thinner (volatility, hour) stratum widens to every hour
    block_hours: float = 24.0  # alerts chained within this form one bootstrap block
    latency_s: float = 60.0  # executed trades: entry this long after the window closes
    impact_bps: float = 1.0  # executed trades: extra entry slippage per $10M liquidated
    impact_cap_bps: float = 50.0

    def __post_init__(self) -> None:
        names = [h.name for h in self.horizons]
        if self.main_horizon not in names:
            raise ValueError(f"main horizon {self.main_horizon} is not among {', '.join(names)}")
        if min(self.fees_bps, self.slippage_bps, self.latency_s, self.impact_bps,
               self.impact_cap_bps) < 0 or self.placebo_draws < 10:
            raise ValueError("costs must be >= 0 and placebo draws >= 10")
        if self.bootstrap_draws < 10 or min(self.drift_days, self.vol_hours) <= 0 or \
                self.vol_bins < 1 or 24 % max(self.hour_bins, 1) or self.block_hours < 0:
            raise ValueError("null settings: bootstrap draws >= 10, drift days and volatility "
                             "hours > 0, volatility bins >= 1, hour bins dividing 24, block "
                             "hours >= 0")

    def null_settings(self) -> dict[str, float | int]:
        """What the null and the intervals depend on (results.json keeps it)."""
        return {"placebo_draws": self.placebo_draws, "bootstrap_draws": self.bootstrap_draws,
                "drift_days": self.drift_days, "vol_hours": self.vol_hours,
                "vol_bins": self.vol_bins, "hour_bins": self.hour_bins,
                "min_stratum": self.min_stratum, "block_hours": self.block_hours,
                "spacing_h": self.cooldown_ms / HOUR_MS}

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
    abnormal: dict[str, float | None] = field(default_factory=dict)  # return - benchmark
    benchmark: dict[str, float | None] = field(default_factory=dict)  # drift known at entry
    vol: float | None = None  # trailing volatility at entry (1-bar log returns)


@dataclass(frozen=True)
class GroupResult:
    kind: str
    scope: str
    severity: int | None
    horizon: str
    stats: Stats
    placebo: Placebo | None  # matched (method "matched"); uniform for rows without it
    cohort: str = FIRST
    abnormal: Abnormal | None = None
    uniform: Placebo | None = None  # the uniform random-time placebo, for comparison
    shifted: Placebo | None = None  # circular shifts by whole days (clustering kept)


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
             period: tuple[int, int] | None = None, pools: Pools | None = None
             ) -> list[SignalOutcome]:
    """Attach entry, returns, excursions and abnormal returns to each alert; flag warm-up
    and counted episodes.

    With a `period`, only entries inside it count, and only returns that end inside it.
    """
    pools = pools or Pools(bars, config, period or (bars.origin_ms, bars.end_ms),
                           strict=period is not None)
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
        k = prices.index_at_or_after(np.array([r.end_ms for r in recs], dtype=np.int64))
        for h in config.horizons:
            inside = (fwd.entry_ms >= a) & (fwd.entry_ms + h.ms <= b) if period else True
            fav, adv = excursions(fwd, h.name, direction)
            ser = pools.series(scope, h)
            cols[h.name] = [np.where(inside, x, np.nan) for x in (
                fwd.returns[h.name], fav, adv, _at(ser.abnormal, k), _at(ser.drift, k))]
        vols = _at(pools.series(scope, config.horizons[0]).vol, k)
        peaks = _peaks(recs)
        for j, (i, r) in enumerate(zip(idx, recs, strict=True)):
            price = _opt(fwd.entry_price[j])
            entry = int(fwd.entry_ms[j])
            ok = not warm[j] and price is not None and a <= entry < b
            cohorts = tuple(c for c, member in ((FIRST, not r.escalation),
                                                (ESCALATION, r.escalation),
                                                (PEAK, j in peaks)) if ok and member)
            ret, up, down, abn, bench = ({h: _opt(c[col][j]) for h, c in cols.items()}
                                         for col in range(5))
            out[i] = SignalOutcome(r, bool(warm[j]), FIRST in cohorts, entry, price, ret, up,
                                   down, cohorts, j in peaks, abn, bench, _opt(vols[j]))
    return [out[i] for i in range(len(records))]


def _at(values: Floats, k: Ints) -> Floats:
    ok = (k >= 0) & (k < values.size)
    return np.where(ok, values[np.clip(k, 0, max(values.size - 1, 0))], np.nan)


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


def _values(members: Sequence[SignalOutcome], of: str, h: str) -> Floats:
    return np.array([np.nan if (x := getattr(s, of).get(h)) is None else x for s in members],
                    dtype=float)


def _matched(members: Sequence[SignalOutcome], h: Horizon, d: int, spacing_ms: int,
             pools: Pools, rng: np.random.Generator, config: StudyConfig
             ) -> tuple[Abnormal | None, Placebo | None, Placebo | None]:
    """Abnormal statistics of the members a matched placebo can serve, that placebo, and
    the circular shifts of the same members."""
    abn, raw = _values(members, "abnormal", h.name), _values(members, "returns", h.name)
    ok = np.isfinite(abn) & np.array([s.vol is not None for s in members], dtype=bool)
    these = [s for s, keep in zip(members, ok, strict=True) if keep]
    if not these:
        return None, None, None
    entry = np.array([s.entry_ms for s in these], dtype=np.int64)
    blocks = blocks_of(entry, int(config.block_hours * HOUR_MS))
    observed = abnormal_stats(abn[ok], raw[ok], d, blocks, seed=int(rng.integers(1 << 31)),
                              boot=config.bootstrap_draws)
    names = sorted({s.record.scope for s in these})
    mpools, starts, counts = [], [], []
    for sc in names:
        mine = [s for s in these if s.record.scope == sc]
        pool = pools.matched(sc, h)
        st, ct = pool.ranges(np.array([s.vol for s in mine], dtype=float),
                             (np.array([s.entry_ms for s in mine], dtype=np.int64) // HOUR_MS)
                             % 24, config.min_stratum)
        mpools.append(pool)
        starts.append(st)
        counts.append(ct)
    # Draw columns go scope by scope, not in member order: the statistics ignore order.
    draws = draw_matched(mpools, starts, counts, config.placebo_draws, spacing_ms, rng)
    shifts = circular_shifts([pools.shift_column(s.record.scope, h, s.entry_ms or 0)
                              for s in these])
    return (observed, compare_matched(draws.abnormal, draws.ret, draws.clustered, d, observed),
            compare_shifts(*shifts, d, observed))


def _group_results(signals: Sequence[SignalOutcome], pools: Pools,
                   config: StudyConfig) -> list[GroupResult]:
    out = []
    block_ms = int(config.block_hours * HOUR_MS)
    for gi, (kind, cohort, scope, sev, members) in enumerate(
            groups_of(signals, config.cooldown_ms)):
        d = DIRECTION[kind]
        spacing = 0 if cohort == ESCALATION else config.cooldown_ms
        entry = np.array([s.entry_ms or 0 for s in members], dtype=np.int64)
        blocks = blocks_of(entry, block_ms)
        for hi, h in enumerate(config.horizons):
            values = _values(members, "returns", h.name)
            stats = compute_stats(values, d, config.cost, seed=config.seed + gi,
                                  boot=config.bootstrap_draws, small_n=config.small_n,
                                  blocks=blocks)
            scopes = [s.record.scope for s, v in zip(members, values, strict=True)
                      if np.isfinite(v)]
            names = sorted(set(scopes))
            rng = np.random.default_rng([config.seed, gi, hi])
            draws = draw_placebo([pools.get(sc, h) for sc in names],
                                 [scopes.count(sc) for sc in names], config.placebo_draws, rng)
            uniform = compare_placebo(draws, d, stats)
            abnormal, matched, shifted = _matched(members, h, d, spacing, pools, rng, config)
            out.append(GroupResult(kind, scope, sev, h.name, stats, matched or uniform, cohort,
                                   abnormal, uniform, shifted))
    return out


def run_study(bars: Bars, config: StudyConfig, *, cache: WindowCache | None = None,
              period: tuple[int, int] | None = None,
              records: Sequence[AlertRecord] | None = None) -> Study:
    """Run the alert engine over the bars (or take its records) and study what followed."""
    if records is None:
        records = run_vectorized(cache or WindowCache(bars), config.params, config.cooldown_ms)
    # Without a period: from the first bar to the close of the last liquidation bar.
    span = period or (bars.origin_ms, bars.end_ms)
    pools = Pools(bars, config, span, strict=period is not None)
    signals = outcomes(bars, records, config, period, pools)
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
