"""The track record: the latest backtest kept in the store, quoted in alerts and by /backtest.

`liqbot backtest --db F` calls `save_latest`; the bot calls `track_record` when it builds an
alert and `render_backtest_summary` for `/backtest`. Both only read the saved summary.

An alert quotes only what was known when it fired: episodes of the same kind, cohort (a
first alert quotes first alerts, an escalation escalations), severity and scope family
whose return had closed (entry + the main horizon) by the alert's decision time. A replay
of the backtested file therefore starts with "no track record before this alert".
"""

from __future__ import annotations

import json
import math
from statistics import median
from typing import Any, Protocol

from feeds.model import MARKET, iso_z
from signals.kinds import KIND_WORDS, KINDS, find_kind, kind_info
from signals.params import SEVERITY_NAMES

META_KEY = "backtest_latest"
VERSION = 2  # 2: per-episode rows ("episodes") for the point-in-time quote; rows name cohorts
VOL_Q = 0.10  # a volatility lead is quoted only when its range q-value is at most this
MIN_QUOTE_N = 5  # below this a "track record" would be one or two anecdotes: say so instead
_ROW_KEYS = ("kind", "scope", "severity", "horizon", "n", "mean", "median", "hit",
             "hit_reversal", "net_continuation", "net_reversal", "small_n")
FIRST, ESCALATION = "first", "escalation"
_COHORTS = {"first": "first alerts", "escalation": "escalations", "peak": "episode peaks"}

# One saved episode: kind, scope, cohort, severity, entry_ms, close_ms, return at the
# main horizon.
Episode = tuple[str, str, str, int, int, int, float]


class MetaStore(Protocol):
    """The two store calls used here (feeds.store.core.Store has them)."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


def _episodes(results: dict[str, Any], horizon: str) -> list[list[Any]]:
    out = []
    for s in results["signals"]:
        ret = (s.get("returns") or {}).get(horizon)
        closes = s.get("closes_ms") or {}
        if ret is None or horizon not in closes:
            continue
        for cohort in s.get("cohorts", []):
            out.append([s["kind"], s["symbol"], cohort, s["severity"], s["entry_ms"],
                        closes[horizon], ret])
    return sorted(out, key=lambda e: (e[5], e[0], e[1], e[2]))


def _moves(results: dict[str, Any], horizon: str) -> list[list[Any]]:
    """Per counted episode: kind, scope, cohort, severity, close, range, normal range."""
    out = []
    for s in results["signals"]:
        fav, adv = (s.get("favourable") or {}).get(horizon), (s.get("adverse") or {}).get(horizon)
        normal = (s.get("normal_range") or {}).get(horizon)
        close = (s.get("closes_ms") or {}).get(horizon)
        if fav is None or adv is None or not normal or close is None:
            continue
        out += [[s["kind"], s["symbol"], cohort, s["severity"], close, fav - adv, normal]
                for cohort in s.get("cohorts", [])]
    return sorted(out, key=lambda e: (e[4], e[0], e[1], e[2]))


def _vol_edges(results: dict[str, Any], horizon: str) -> list[list[str]]:
    """[kind, cohort] whose alerts were followed by wider ranges than matched random times
    at the main horizon, surviving the report's correction (q <= VOL_Q)."""
    out = []
    for r in results.get("volatility", []):
        x = r.get("range") or {}
        if r["horizon"] == horizon and (x.get("ratio") or 0) > 1 and \
                x.get("q") is not None and x["q"] <= VOL_Q:
            out.append([r["kind"], r["cohort"]])
    return out


def compact(results: dict[str, Any]) -> dict[str, Any]:
    """The part of results.json that alerts and /backtest quote."""
    data, c = results["data"], results["config"]
    rows = []
    for r in results["summary"]:
        p = r.get("placebo") or {}
        rows.append({**{k: r[k] for k in _ROW_KEYS}, "cohort": r.get("cohort", FIRST),
                     "random_hit": p.get("hit"), "p_hit": p.get("p_hit"),
                     "p_mean": p.get("p_mean"), "q_hit": p.get("q_hit"),
                     "q_mean": p.get("q_mean")})
    return {"version": VERSION, "generated_at": results["generated_at"],
            "period": [data["start"], data["end"]],
            "files": [f.rsplit("/", 1)[-1] for f in data["files"]],
            "price_coins": data.get("price_coins", {}), "main_horizon": c["main_horizon"],
            "cost": c["round_trip_cost"], "small_n": c["small_n"],
            "scopes_with_episodes": results.get("scopes_with_episodes", []), "rows": rows,
            "episodes": _episodes(results, c["main_horizon"]),
            "moves": _moves(results, c["main_horizon"]),
            "vol_edges": _vol_edges(results, c["main_horizon"])}


def save_latest(store: MetaStore, results: dict[str, Any]) -> None:
    """Keep this study as the one alerts quote (replacing the previous)."""
    store.set_meta(META_KEY, json.dumps(compact(results), separators=(",", ":")))


def load_latest(store: MetaStore) -> dict[str, Any] | None:
    text = store.get_meta(META_KEY)
    if text is None:
        return None
    saved: dict[str, Any] = json.loads(text)
    return saved


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def _label(saved: dict[str, Any], scopes: set[str] | str) -> str:
    coins = saved.get("price_coins", {})
    names = {scopes} if isinstance(scopes, str) else scopes
    if "all" in names:
        names = set(saved["scopes_with_episodes"])
    return "/".join(sorted({str(coins.get(s, s)) for s in names}))


def _day(ms: int) -> str:
    return iso_z(ms)[:10]


def sign_test(hits: int, n: int) -> float:
    """Two-sided p of `hits` of `n` against a coin flip (exact binomial)."""
    k = min(hits, n - hits)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / float(2 ** n)
    return min(1.0, 2 * tail)


def similar_before(saved: dict[str, Any], kind: str, cohort: str, severity: int, scope: str,
                   at_ms: int) -> list[Episode]:
    """Episodes an alert at `at_ms` may quote: closed by then; the same kind, cohort and
    severity; its own scope, or for a coin with too few of its own, every coin's."""
    before: list[Episode] = [
        (str(k), str(sc), str(co), int(sev), int(entry), int(close), float(ret))
        for k, sc, co, sev, entry, close, ret in saved.get("episodes", [])
        if (k, co, sev) == (kind, cohort, severity) and close <= at_ms]
    same = [e for e in before if e[1] == scope]
    if len(same) >= MIN_QUOTE_N or scope == MARKET:
        return same
    return [e for e in before if e[1] != MARKET]


def track_record(store: MetaStore, kind: str, severity: int, scope: str, *, at_ms: int,
                 escalation: bool = False) -> str | None:
    """One line for an alert decided at `at_ms`, e.g. `after 37 similar (first alerts,
    notable; each closed before this alert): BTC median +1.8% at 4h, up 62% of the time
    (2025-12-04→2026-03-01, p=0.16 vs a coin flip)`; a line saying there are too few when
    so; None when no (point-in-time) backtest is stored.

    `kind` is a SignalKind value, `scope` the alert's coin or "*" for market-wide.
    """
    saved = load_latest(store)
    info = find_kind(kind)
    if saved is None or info is None or "episodes" not in saved:
        return None
    cohort = ESCALATION if escalation else FIRST
    what = f"{_COHORTS[cohort]}, {SEVERITY_NAMES.get(severity, str(severity))}"
    found = similar_before(saved, kind, cohort, severity, scope, at_ms)
    if not found:
        return f"no track record before this alert ({what})"
    n = len(found)
    if n < MIN_QUOTE_N:
        return f"only {n} similar before this alert ({what}): too few to quote"
    returns = [e[6] for e in found]
    hits = sum(info.direction * r > 0 for r in returns)
    period = f"{_day(min(e[4] for e in found))}→{_day(max(e[5] for e in found))}"
    text = (f"after {n} similar ({what}; each closed before this alert): "
            f"{_label(saved, {e[1] for e in found})} median {_pct(median(returns))} at "
            f"{saved['main_horizon']}, {info.way} {hits / n * 100:.0f}% of the time "
            f"({period}, p={sign_test(hits, n):.2f} vs a coin flip)")
    text += _move_quote(saved, kind, cohort, severity, scope, at_ms)
    return text + (" — small sample" if n < saved["small_n"] else "")


def _move_quote(saved: dict[str, Any], kind: str, cohort: str, severity: int, scope: str,
                at_ms: int) -> str:
    """"; next 4h range typically 1.8% high to low, 1.6× normal (n=31)" when the study found
    such alerts followed by wider moves than matched random times; else nothing."""
    if [kind, cohort] not in saved.get("vol_edges", []):
        return ""
    before = [m for m in saved.get("moves", [])
              if (m[0], m[2], m[3]) == (kind, cohort, severity) and m[4] <= at_ms]
    same = [m for m in before if m[1] == scope]
    found = same if len(same) >= MIN_QUOTE_N or scope == MARKET else \
        [m for m in before if m[1] != MARKET]
    if len(found) < MIN_QUOTE_N:
        return ""
    ranges, normal = [float(m[5]) for m in found], [float(m[6]) for m in found]
    return (f"; next {saved['main_horizon']} range typically {median(ranges) * 100:.1f}% high "
            f"to low, {sum(ranges) / sum(normal):.1f}× normal (n={len(found)})")


def _cohort_rows(saved: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    several = len(saved["scopes_with_episodes"]) > 1
    return [r for r in saved["rows"] if r["kind"] == kind and r["severity"] is None
            and r["horizon"] == saved["main_horizon"] and (r["scope"] == "all") == several]


def _p(r: dict[str, Any]) -> str:
    if r["p_hit"] is None:
        return "p n/a"
    q = r.get("q_hit")  # absent from track records saved before q-values
    return f"p={r['p_hit']:.2f}" + ("" if q is None else f", q={q:.2f}")


def _kind_lines(saved: dict[str, Any], kind: str) -> list[str]:
    rows = _cohort_rows(saved, kind)
    first = [r for r in rows if r.get("cohort", FIRST) == FIRST]
    info = kind_info(kind)
    if not first or not first[0]["n"]:
        return [f"{info.plural}: no episodes."]
    r = first[0]
    random = "" if r["random_hit"] is None else f" (random {r['random_hit'] * 100:.0f}%, {_p(r)})"
    lines = [f"{info.plural} ({_label(saved, r['scope'])}, first alerts): n={r['n']} · "
             f"{r['horizon']} median {_pct(r['median'])} · {info.way} {r['hit'] * 100:.0f}%"
             f"{random} · net after costs: continuation {_pct(r['net_continuation'])}, "
             f"reversal {_pct(r['net_reversal'])}" + (" · small sample" if r["small_n"] else "")]
    others = [f"{_COHORTS.get(o['cohort'], o['cohort'])} n={o['n']}, median "
              f"{_pct(o['median'])}, {info.way} {o['hit'] * 100:.0f}%, {_p(o)}"
              for o in rows if o.get("cohort", FIRST) != FIRST and o["n"]]
    if others:
        lines.append("  " + "; ".join(others))
    return lines


def render_backtest_summary(store: MetaStore, kind: str | None = None) -> str:
    """The answer to `/backtest [kind]`: the latest study, per kind and cohort, at its main
    horizon, with n, the period and the p-value against random times."""
    if kind is not None and kind.lower() not in KIND_WORDS:
        return f"Unknown kind {kind!r}: use squeeze or cascade."
    saved = load_latest(store)
    if saved is None:
        return "No backtest stored yet: run `liqbot backtest --data FILE --db DB`."
    kinds = [KIND_WORDS[kind.lower()]] if kind else [k.value for k in KINDS]
    head = (f"Latest backtest: {', '.join(saved['files'])}, {saved['period'][0][:10]}→"
            f"{saved['period'][1][:10]}; entries at the next bar's open, "
            f"{saved['cost'] * 100:.2f}% round-trip costs; p: hit rate against random times"
            + ("; q: the same, corrected for the study's many tests (Benjamini–Hochberg)."
               if any(r.get("q_hit") is not None for r in saved["rows"]) else "."))
    return "\n".join([head, *(line for k in kinds for line in _kind_lines(saved, k))])
