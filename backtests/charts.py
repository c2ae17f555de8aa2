"""PNG charts of a study, drawn with matplotlib's Agg canvas (no display, no global state).

Each chart puts the signals next to random entry times, so a reader sees at a glance
whether the line leaves the grey band.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from backtests.bars import Bars, Floats
from backtests.outcomes import price_paths
from backtests.study import ALL, PEAK, GroupResult, SignalOutcome, Study
from signals.kinds import KINDS

_BOOT = 400


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _counted(study: Study, kind: str) -> list[SignalOutcome]:
    return [s for s in study.signals if s.counted and s.record.kind == kind]


def _mean_band(paths: Floats, rng: np.random.Generator, n: int | None = None) -> tuple[Floats, ...]:
    """Mean path and the 95 % band of the mean of `n` paths drawn with replacement."""
    n = n or paths.shape[0]
    idx = rng.integers(0, paths.shape[0], size=(_BOOT, n))
    with warnings.catch_warnings():
        # Offsets past the end of the data have no prices at all: NaN there, silently.
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(paths[idx], axis=1)
        lo, hi = np.nanpercentile(means, [2.5, 97.5], axis=0)
        return np.nanmean(paths, axis=0), lo, hi


def _paths(bars: Bars, signals: list[SignalOutcome], bars_around: int) -> Floats:
    rows = []
    for scope in sorted({s.record.scope for s in signals}):
        ends = np.array([s.record.end_ms for s in signals if s.record.scope == scope])
        rows.append(price_paths(bars.prices[scope], ends, bars_around, bars_around))
    return np.vstack(rows) * 100


def price_path_chart(study: Study, bars: Bars, path: Path) -> Path:
    """Event-aligned average price path per kind, with the random-entry band."""
    longest = max(h.ms for h in study.config.horizons)
    fig = Figure(figsize=(10, 4))
    rng = np.random.default_rng(study.config.seed)
    for ax_i, (kind, info) in enumerate(KINDS.items()):
        title, colour = info.plural, info.chart_colour
        ax = fig.add_subplot(1, 2, ax_i + 1)
        signals = _counted(study, kind)
        ax.set_title(f"{title} (n={len(signals)})")
        ax.axvline(0, color="grey", lw=0.8)
        ax.axhline(0, color="grey", lw=0.8)
        if not signals:
            continue
        span = bars.prices[signals[0].record.scope].span_ms
        k = min(longest // span, 96)
        x = np.arange(-k, k + 1) * span / 3_600_000
        mean, lo, hi = _mean_band(_paths(bars, signals, k), rng)
        ax.plot(x, mean, color=colour, label="after signals (mean)")
        ax.fill_between(x, lo, hi, color=colour, alpha=0.2, label="95% CI of the mean")
        if study.pools is not None:
            scope = signals[0].record.scope
            ends = study.pools.eligible(scope, longest)
            if ends.size:
                rand = price_paths(bars.prices[scope], ends, k, k) * 100
                _, rlo, rhi = _mean_band(rand, rng, len(signals))
                ax.fill_between(x, rlo, rhi, color="grey", alpha=0.25,
                                label=f"random times, 95% band (n={len(signals)})")
        ax.set_xlabel("hours from entry (next bar's open)")
        ax.set_ylabel("price vs entry, %")
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def returns_chart(study: Study, path: Path) -> Path:
    """Distribution of main-horizon returns per kind against all random entries."""
    h = study.config.main_horizon
    fig = Figure(figsize=(10, 4))
    for ax_i, (kind, info) in enumerate(KINDS.items()):
        title, colour = info.plural, info.chart_colour
        ax = fig.add_subplot(1, 2, ax_i + 1)
        values = np.array([s.returns[h] for s in _counted(study, kind) if s.returns[h] is not None],
                          dtype=float) * 100
        ax.set_title(f"{title}: {h} returns (n={values.size})")
        pool = _pool(study, kind, h)
        bins = _bins(np.concatenate([values, pool]))
        if pool.size:
            ax.hist(np.clip(pool, bins[0], bins[-1]), bins=bins.tolist(), density=True,
                    color="grey", alpha=0.4, histtype="stepfilled", label="random times")
        if values.size:
            ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins.tolist(), density=True,
                    color=colour, alpha=0.6, histtype="stepfilled", label="after signals")
            ax.axvline(float(np.median(values)), color=colour, ls="--", lw=1, label="median")
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlabel(f"return at {h}, %")
        ax.legend(fontsize=7)
    return _save(fig, path)


def _bins(values: Floats) -> Floats:
    """40 bins over the middle 99 % (the tails land in the edge bins)."""
    finite = values[np.isfinite(values)]
    lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (-1.0, 1.0)
    return np.linspace(lo, hi if hi > lo else lo + 1.0, 41)


def _pool(study: Study, kind: str, h: str) -> Floats:
    if study.pools is None:
        return np.empty(0)
    scopes = sorted({s.record.scope for s in _counted(study, kind)}) or ["*"]
    horizon = next(x for x in study.config.horizons if x.name == h)
    return np.concatenate([study.pools.get(sc, horizon) for sc in scopes]) * 100


def severity_chart(study: Study, path: Path) -> Path:
    """Continuation hit rate by severity tier, with bootstrap CIs and the random-time band."""
    h = study.config.main_horizon
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot(1, 1, 1)
    for offset, (kind, info) in zip((-0.2, 0.2), KINDS.items(), strict=True):
        title, colour = info.plural, info.chart_colour
        rows = [g for g in study.groups if g.kind == kind and g.scope == ALL
                and g.horizon == h and g.severity is not None and g.cohort == PEAK]
        for g in rows:
            _severity_bar(ax, g, offset, colour, title if g is rows[0] else None)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xticks([1, 2, 3], ["notable", "large", "extreme"])
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"share moving the kind's way at {h}")
    ax.set_title("Hit rate by episode peak severity (bars: 95% CI; dashes: random times)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _severity_bar(ax: Axes, g: GroupResult, offset: float, colour: str, label: str | None
                  ) -> None:
    s, x = g.stats, (g.severity or 0) + offset
    if s.hit is None:
        return
    err = None if s.hit_ci is None else [[s.hit - s.hit_ci[0]], [s.hit_ci[1] - s.hit]]
    ax.bar(x, s.hit, width=0.35, color=colour, alpha=0.7, yerr=err, capsize=3, label=label)
    ax.text(x, 0.02, f"n={s.n}", ha="center", fontsize=7)
    if g.placebo and g.placebo.hit is not None:
        ax.hlines(g.placebo.hit, x - 0.17, x + 0.17, colors="black", linestyles="--")


def equity_chart(study: Study, path: Path) -> Path:
    """Cumulative net return of trading each signal (both hypotheses), summed, after costs."""
    h, cost = study.config.main_horizon, study.config.cost
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot(1, 1, 1)
    for kind, info in KINDS.items():
        title, colour = info.plural, info.chart_colour
        done = sorted((s.entry_ms or 0, info.direction * r) for s in _counted(study, kind)
                      if (r := s.returns[h]) is not None)
        if not done:
            continue
        when = np.array([t for t, _ in done], dtype="datetime64[ms]")
        signed = np.array([r for _, r in done])
        ax.step(when, np.cumsum(signed - cost) * 100, where="post", color=colour,
                label=f"{title}: continuation")
        ax.step(when, np.cumsum(-signed - cost) * 100, where="post", color=colour, ls="--",
                label=f"{title}: reversal")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel(f"cumulative net return, % (sum of {h} trades)")
    ax.set_title(f"Implied trades after {cost * 100:.2f}% round-trip costs")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return _save(fig, path)


CHARTS: dict[str, tuple[str, Callable[..., Path]]] = {
    "price_path.png": ("Event-aligned average price path", price_path_chart),
    "returns.png": ("Distribution of returns", returns_chart),
    "severity.png": ("Hit rate by severity", severity_chart),
    "equity.png": ("Equity of an implied trade", equity_chart),
}


def draw_all(study: Study, bars: Bars, out_dir: Path) -> dict[str, Path]:
    """Write every chart into out_dir; return name -> path."""
    out = {}
    for name, (_, draw) in CHARTS.items():
        path = out_dir / name
        out[name] = draw(study, bars, path) if draw is price_path_chart else draw(study, path)
    return out
