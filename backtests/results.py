"""results.json: a study as plain data (DESIGN.md "Command-line contract"), and back.

`generate_results` builds the dict; the renderers and the track record only read it, so
numbers can be re-checked or re-rendered from a saved file without re-running anything.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backtests.bars import Bars
from backtests.execution import execute
from backtests.study import ALL, FIRST, SignalOutcome, Study
from backtests.sweep import Fold
from backtests.volatility import TESTED, normal_ranges, volatility_rows
from feeds.model import HOUR_MS, MARKET, iso_z
from feeds.store import window_name
from signals.params import SEVERITY_NAMES

# 2: summary rows name their "cohort" (first / escalation / peak); signals list the
# "cohorts" they count in, whether they are their episode's "peak", their baseline's
# "coverage", and entry and close times in ms ("closes_ms" per horizon) for the
# point-in-time track record.
# 3: rows judge "abnormal" returns (drift known at entry subtracted) against a "placebo"
# matched on volatility and hour and de-clustered ("method": "matched"), carry the old
# uniform placebo as "uniform", block-bootstrap CIs and q-values (Benjamini-Hochberg over
# "fdr"'s family); "primary" holds one pre-declared hypothesis per kind; config "null"
# names the settings; signals carry "abnormal", "benchmark" and "vol".
# `read_results` reads version 1 files as first-alert rows, version 2 with their uniform
# placebo as both "placebo" and "uniform" and q-values over its p-values.
VERSION = 3
P_KEYS = ("p_mean", "p_hit")  # the p-values the report prints, each with its q


DAY_MS = 24 * HOUR_MS


def periods(study: Study, bars: Bars, held_out: bool, folds: list[Fold] | None
            ) -> list[str]:
    """Every period the study used or kept out, in words the report prints."""
    a, b = study.period
    out = [f"studied {iso_z(a)} → {iso_z(b)}" + (" (--from/--until)" if held_out else "")]
    if held_out and a > bars.origin_ms:
        out.append(f"before {iso_z(a)}: only as history for baselines and drift (no alert, "
                   "return or random entry counted)")
    if held_out and b < bars.end_ms:
        out.append(f"held out, never read: {iso_z(b)} → {iso_z(bars.end_ms)}")
    for i, f in enumerate(folds or []):
        out.append(f"sweep fold {i + 1}: tuned {iso_z(f.tune[0])} → {iso_z(f.tune[1])}, tested "
                   f"{iso_z(f.test[0])} → {iso_z(f.test[1])}")
    return out


def budget(study: Study) -> list[dict[str, Any]]:
    """Alerts per day per scope under the study's parameters: every alert the policy sent
    in the period (first alerts and escalations, warm-up included: live sends those too)."""
    a, b = study.period
    days = max((b - a) / DAY_MS, 1e-9)
    rows = []
    scopes = sorted({s.record.scope for s in study.signals}, key=lambda x: (x != MARKET, x))
    for scope in [*scopes, ALL] if len(scopes) > 1 else scopes:
        mine = [s.record for s in study.signals if scope in (ALL, s.record.scope)]
        kinds: dict[str, int] = {}
        for r in mine:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        rows.append({"scope": scope, "alerts": len(mine),
                     "escalations": sum(r.escalation for r in mine), "by_kind": kinds,
                     "days": days, "per_day": len(mine) / days})
    return rows


def _signal(s: SignalOutcome, bar_ms: int, horizons: dict[str, int]) -> dict[str, Any]:
    r = s.record
    return {
        # The signal bar's open: the window's last bar, whose close decided the alert.
        "time": iso_z(r.end_ms - bar_ms), "kind": r.kind, "symbol": r.scope,
        "window": window_name(r.window_ms), "window_start": iso_z(r.start_ms),
        "decided_at": iso_z(r.end_ms), "usd": r.total_usd, "long_usd": r.long_usd,
        "short_usd": r.short_usd, "share": r.share, "ratio": r.ratio,
        "baseline_usd": r.baseline_usd, "severity": r.severity,
        "severity_name": SEVERITY_NAMES[r.severity], "escalation": r.escalation,
        "episode_start": iso_z(r.episode_ms), "price_change": r.price_change,
        "funding_8h": r.funding_8h, "warmup": s.warmup, "counted": s.counted,
        "entry_time": None if s.entry_ms is None else iso_z(s.entry_ms),
        "entry_price": s.entry_price, "returns": s.returns, "favourable": s.favour,
        "adverse": s.adverse, "cohorts": list(s.cohorts), "peak": s.peak,
        "coverage": r.coverage, "decided_ms": r.end_ms, "entry_ms": s.entry_ms,
        # When each return is known: entry + horizon (what a later alert may quote).
        "closes_ms": None if s.entry_ms is None else
        {h: s.entry_ms + ms for h, ms in horizons.items()},
        "abnormal": s.abnormal, "benchmark": s.benchmark, "vol": s.vol,
    }


def _group(g: Any) -> dict[str, Any]:
    return {"kind": g.kind, "cohort": g.cohort, "scope": g.scope, "severity": g.severity,
            "horizon": g.horizon,
            **g.stats.as_dict(), "placebo": g.placebo.as_dict() if g.placebo else None,
            "abnormal": g.abnormal.as_dict() if g.abnormal else None,
            "uniform": g.uniform.as_dict() if g.uniform else None,
            "shifted": g.shifted.as_dict() if g.shifted else None}


def _fold(f: Fold) -> dict[str, Any]:
    return {
        "tune": [iso_z(f.tune[0]), iso_z(f.tune[1])], "test": [iso_z(f.test[0]), iso_z(f.test[1])],
        "choice": f.choice.label if f.choice else None,
        "params": f.choice.params.as_dict() if f.choice else None,
        "cooldown_h": f.choice.cooldown_ms / HOUR_MS if f.choice else None,
        "hypothesis": f.hypothesis, "tune_score": f.tune_score, "test_score": f.test_score,
        "default_test": f.default_test,
        "ranking": [{"config": lbl, "hypothesis": h, **sc} for lbl, h, sc in f.ranking],
    }


def _clean(x: Any) -> Any:
    """NaN and infinities (an empty period's mean, say) become null: JSON has no NaN."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def generate_results(study: Study, bars: Bars, *, folds: list[Fold] | None = None,
                     sweep_size: int = 0, test_studies: list[Study | None] | None = None,
                     held_out: bool = False) -> dict[str, Any]:
    """The whole study as JSON-ready data; `held_out`: the study's period was cut with
    --from/--until and the data outside it is named as held out."""
    results = dict(_clean(_results(study, bars, folds, sweep_size, test_studies)))
    results["data"]["periods"] = periods(study, bars, held_out, folds)
    results["budget"] = budget(study)
    add_qvalues(results)
    results["primary"] = primary(results)
    return results


def _results(study: Study, bars: Bars, folds: list[Fold] | None, sweep_size: int,
             test_studies: list[Study | None] | None) -> dict[str, Any]:
    c = study.config
    scopes = sorted({s.record.scope for s in study.signals if s.counted})
    return {
        "version": VERSION,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {"files": list(bars.files), "bar": window_name(bars.bar_ms),
                 "start": iso_z(study.period[0]), "end": iso_z(study.period[1]),
                 "scopes": list(bars.scopes), "evaluations": int(bars.ticks.size),
                 "prices": {k: p.source for k, p in sorted(bars.prices.items())},
                 "price_coins": {k: p.coin for k, p in sorted(bars.prices.items())}},
        "config": {"params": c.params.as_dict(), "cooldown_h": c.cooldown_ms / HOUR_MS,
                   "horizons": [h.name for h in c.horizons], "main_horizon": c.main_horizon,
                   "fees_bps": c.fees_bps, "slippage_bps": c.slippage_bps,
                   "round_trip_cost": c.cost, "placebo_draws": c.placebo_draws, "seed": c.seed,
                   "small_n": c.small_n, "min_coverage": c.min_coverage,
                   "null": c.null_settings(), "latency_s": c.latency_s,
                   "impact_bps_per_10m": c.impact_bps, "impact_cap_bps": c.impact_cap_bps},
        "execution": execute(study.signals, bars, c),
        "volatility": [] if study.pools is None else
        volatility_rows(study.signals, bars, study.pools, c),
        "signals": [{**_signal(s, bars.bar_ms, {h.name: h.ms for h in c.horizons}),
                     "normal_range": nr}
                    for s, nr in zip(study.signals, normal_ranges(study.signals, bars, c),
                                     strict=True)],
        # "all" pools scopes (de-clustered across them); with one scope it repeats that scope.
        "summary": [_group(g) for g in study.groups],
        "scopes_with_episodes": scopes,
        "baseline": {
            "placebo": {"draws": c.placebo_draws, "method": MATCHED_METHOD},
            "uniform": {"draws": c.placebo_draws, "method": "random entry times from the same "
                        "evaluated period and scopes (warm-up excluded), same horizons and "
                        "costs, as many per draw as the group has episodes"},
            "drift": study.drift,
        },
        "sweep": None if folds is None else {
            "configurations": sweep_size, "folds": [_fold(f) for f in folds],
            "test_summary": [None if t is None else
                             [_group(g) for g in t.groups
                              if g.severity is None and g.cohort == FIRST]
                             for t in (test_studies or [])],
        },
        "notes": study.notes,
    }


def write_results(results: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.write_text(json.dumps(results, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return p


def read_results(path: str | Path) -> dict[str, Any]:
    """A results.json of any version, brought to this one's shape where it can be."""
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return upgrade(data)


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 scored first alerts only: its rows and counted signals are that cohort.
    Version 2 had only the uniform placebo: it stays the row's placebo (so named), with
    q-values over its p-values, and no abnormal returns or primary hypotheses."""
    version = data.get("version", 1)
    if version < 2:
        for r in data.get("summary", []):
            r.setdefault("cohort", FIRST)
        for s in data.get("signals", []):
            s.setdefault("cohorts", [FIRST] if s.get("counted") else [])
    if version < 3:
        for r in _all_rows(data):
            if r.get("placebo"):
                r["placebo"].setdefault("method", "uniform")
            r.setdefault("uniform", r.get("placebo"))
            r.setdefault("abnormal", None)
            r.setdefault("shifted", None)
        data.setdefault("config", {}).setdefault("null", None)
        data.setdefault("primary", [])
        add_qvalues(data)
        data["version"] = VERSION
    return data


MATCHED_METHOD = (
    "random entries of the same scope and period (warm-up excluded), one per alert from "
    "its stratum of trailing volatility (quantile bins) and hour of day (blocks), no two "
    "entries of a draw within the cooldown (first alerts, peaks) like the alerts; mean and "
    "median of abnormal returns (minus the trailing drift known at entry), hit of raw "
    "returns; p two-sided")


def _all_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    sweep = data.get("sweep") or {}
    tests = [r for t in sweep.get("test_summary") or [] if t for r in t]
    return [*data.get("summary", []), *tests]


def _shown(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows whose p-values the report prints: every unsplit row (the pooled one only
    with several scopes), severity rows at the main horizon, the sweep's test rows."""
    several = len(data.get("scopes_with_episodes", [])) > 1
    main = data.get("config", {}).get("main_horizon")
    rows = [r for r in data.get("summary", []) if (r["scope"] != ALL or several)
            and (r["severity"] is None or r["horizon"] == main)]
    return rows + _all_rows(data)[len(data.get("summary", [])):]


def add_qvalues(data: dict[str, Any]) -> None:
    """Benjamini-Hochberg q beside each printed p-value (`q_mean`, `q_hit` in the row's
    placebo), over the family of every p-value the report prints; "fdr" describes it."""
    from backtests.null import bh_qvalues

    slots = [(r["placebo"], key) for r in _shown(data) if r.get("placebo")
             for key in P_KEYS if r["placebo"].get(key) is not None]
    # The primary hypotheses also print their circular-shift p.
    slots += [(r["shifted"], "p_mean") for r in _primary_rows(data).values()
              if r and (r.get("shifted") or {}).get("p_mean") is not None]
    # Volatility outcomes: the size of the move against matched random times.
    slots += [(r[key], "p") for r in data.get("volatility", []) for key in TESTED
              if r.get(key) and r[key].get("p") is not None]
    for (placebo, key), q in zip(slots, bh_qvalues([p[k] for p, k in slots]), strict=True):
        placebo["q" + key[1:]] = q
    data["fdr"] = {"method": "Benjamini-Hochberg", "m": len(slots),
                   "family": "p mean and p hit of every row the report prints (the table by "
                   "cohort, scope and horizon; severity rows at the main horizon; the sweep's "
                   "test rows), the primary hypotheses' circular-shift p, and the volatility "
                   "outcomes' p (absolute return and range); the uniform "
                   "placebo's p-values and the other rows' shift p-values are kept for "
                   "comparison only"}


def _signed(x: float | None, d: int) -> float | None:
    return None if x is None else d * x


def _signed_band(b: list[float] | None, d: int) -> list[float] | None:
    return None if not b else sorted((d * b[0], d * b[1]))


def _primary_rows(data: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Kind -> the row its primary hypothesis reads: first alerts, the headline scope (the
    pooled one with several scopes), the main horizon."""
    from signals.kinds import KINDS

    several = len(data.get("scopes_with_episodes", [])) > 1
    h = data["config"]["main_horizon"]
    out: dict[str, dict[str, Any] | None] = {}
    for kind in KINDS:
        rows = [r for r in data["summary"] if r["kind"] == kind.value and r["severity"] is None
                and r["horizon"] == h and r.get("cohort", FIRST) == FIRST
                and (r["scope"] == ALL) == several]
        out[kind.value] = rows[0] if rows else None
    return out


def primary(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One hypothesis per kind, fixed before any data is read: first alerts, headline
    scope, main horizon, the mean abnormal return in the continuation direction against
    the matched placebo (circular shifts beside it)."""
    from signals.kinds import kind_info

    h = data["config"]["main_horizon"]
    out = []
    for kind, r in _primary_rows(data).items():
        a, p, d = (r or {}).get("abnormal") or {}, (r or {}).get("placebo") or {}, \
            kind_info(kind).direction
        sh = (r or {}).get("shifted") or {}

        out.append({"kind": kind, "cohort": FIRST, "scope": r["scope"] if r else None,
                    "horizon": h, "statistic": "mean abnormal return, continuation direction",
                    "n": a.get("n", 0), "blocks": a.get("blocks"),
                    "estimate": _signed(a.get("mean"), d), "ci": _signed_band(a.get("mean_ci"), d),
                    "placebo": _signed(p.get("mean"), d), "placebo_band":
                    _signed_band(p.get("mean_band"), d), "p": p.get("p_mean"),
                    "q": p.get("q_mean"), "shift_p": sh.get("p_mean"),
                    "shift_q": sh.get("q_mean"), "shifts": sh.get("draws")})
    return out


COHORT_LABELS = {"first": "first alerts", "escalation": "escalations", "peak": "episode peaks"}


def cohort_label(cohort: str) -> str:
    return COHORT_LABELS.get(cohort, cohort)


def scope_label(scope: str) -> str:
    return "market-wide" if scope == MARKET else "all scopes" if scope == ALL else scope
