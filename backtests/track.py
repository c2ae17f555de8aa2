"""The track record: the latest backtest kept in the store, quoted in alerts and by /backtest.

`liqbot backtest --db F` calls `save_latest`; the bot calls `track_record` when it builds an
alert and `render_backtest_summary` for `/backtest`. Both only read the saved summary.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from signals.kinds import KIND_WORDS, KINDS, find_kind, kind_info

META_KEY = "backtest_latest"
MIN_QUOTE_N = 5  # below this a "track record" would be one or two anecdotes: say nothing
_ROW_KEYS = ("kind", "scope", "severity", "horizon", "n", "mean", "median", "hit",
             "hit_reversal", "net_continuation", "net_reversal", "small_n")


class MetaStore(Protocol):
    """The two store calls used here (feeds.store.core.Store has them)."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


def compact(results: dict[str, Any]) -> dict[str, Any]:
    """The part of results.json that alerts and /backtest quote."""
    data, c = results["data"], results["config"]
    rows = []
    for r in results["summary"]:
        p = r.get("placebo") or {}
        rows.append({**{k: r[k] for k in _ROW_KEYS}, "random_hit": p.get("hit"),
                     "p_hit": p.get("p_hit"), "p_mean": p.get("p_mean")})
    return {"version": 1, "generated_at": results["generated_at"],
            "period": [data["start"], data["end"]],
            "files": [f.rsplit("/", 1)[-1] for f in data["files"]],
            "price_coins": data.get("price_coins", {}), "main_horizon": c["main_horizon"],
            "cost": c["round_trip_cost"], "small_n": c["small_n"],
            "scopes_with_episodes": results.get("scopes_with_episodes", []), "rows": rows}


def save_latest(store: MetaStore, results: dict[str, Any]) -> None:
    """Keep this study as the one alerts quote (replacing the previous)."""
    store.set_meta(META_KEY, json.dumps(compact(results), separators=(",", ":")))


def load_latest(store: MetaStore) -> dict[str, Any] | None:
    text = store.get_meta(META_KEY)
    if text is None:
        return None
    saved: dict[str, Any] = json.loads(text)
    return saved


def _find(saved: dict[str, Any], kind: str, scope: str, severity: int | None
          ) -> dict[str, Any] | None:
    h = saved["main_horizon"]
    rows: list[dict[str, Any]] = saved["rows"]
    for sc, sev in ((scope, severity), (scope, None), ("all", severity), ("all", None)):
        for r in rows:
            if (r["kind"], r["scope"], r["severity"], r["horizon"]) == (kind, sc, sev, h) \
                    and r["n"] >= MIN_QUOTE_N and r["median"] is not None:
                return r
    return None


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def _label(saved: dict[str, Any], scope: str) -> str:
    coins = saved.get("price_coins", {})
    if scope == "all":
        return "/".join(sorted({coins.get(s, s) for s in saved["scopes_with_episodes"]}))
    return str(coins.get(scope, scope))


def _months(saved: dict[str, Any]) -> str:
    return "→".join(t[:7] for t in saved["period"])


def track_record(store: MetaStore, kind: str, severity: int, scope: str) -> str | None:
    """One line for an alert, e.g. `after 37 similar: BTC median +1.8% at 4h, up 62% of the
    time (random times 51%; n=37, 2025-12→2026-05)`; None when nothing fair can be said.

    `kind` is a SignalKind value, `scope` the alert's coin or "*" for market-wide. Falls back
    from this scope and severity to the scope, then to every scope pooled.
    """
    saved = load_latest(store)
    info = find_kind(kind)
    if saved is None or info is None:
        return None
    r = _find(saved, kind, scope, severity)
    if r is None:
        return None
    text = (f"after {r['n']} similar: {_label(saved, r['scope'])} median {_pct(r['median'])} "
            f"at {r['horizon']}, {info.way} {r['hit'] * 100:.0f}% of the time (")
    if r.get("random_hit") is not None:
        text += f"random times {r['random_hit'] * 100:.0f}%; "
    text += f"n={r['n']}, {_months(saved)})"
    return text + (" — small sample" if r["small_n"] else "")


def _kind_line(saved: dict[str, Any], kind: str) -> str:
    several = len(saved["scopes_with_episodes"]) > 1
    rows = [r for r in saved["rows"] if r["kind"] == kind and r["severity"] is None
            and r["horizon"] == saved["main_horizon"] and (r["scope"] == "all") == several]
    if not rows or not rows[0]["n"]:
        return f"{kind_info(kind).plural}: no episodes."
    r = rows[0]
    p = "" if r["p_hit"] is None else f", p={r['p_hit']:.2f}"
    random = "" if r["random_hit"] is None else f" (random {r['random_hit'] * 100:.0f}%{p})"
    info = kind_info(kind)
    return (f"{info.plural} ({_label(saved, r['scope'])}): n={r['n']} · {r['horizon']} "
            f"median {_pct(r['median'])} · {info.way} {r['hit'] * 100:.0f}%{random} · net "
            f"after costs: continuation {_pct(r['net_continuation'])}, reversal "
            f"{_pct(r['net_reversal'])}" + (" · small sample" if r["small_n"] else ""))


def render_backtest_summary(store: MetaStore, kind: str | None = None) -> str:
    """The answer to `/backtest [kind]`: the latest study, per kind, at its main horizon."""
    if kind is not None and kind.lower() not in KIND_WORDS:
        return f"Unknown kind {kind!r}: use squeeze or cascade."
    saved = load_latest(store)
    if saved is None:
        return "No backtest stored yet: run `liqbot backtest --data FILE --db DB`."
    kinds = [KIND_WORDS[kind.lower()]] if kind else [k.value for k in KINDS]
    head = (f"Latest backtest: {', '.join(saved['files'])}, {_months(saved)}; entries at the "
            f"next bar's open, {saved['cost'] * 100:.2f}% round-trip costs.")
    return "\n".join([head, *(_kind_line(saved, k) for k in kinds)])
