"""The report as blocks (headings, paragraphs, tables, images) built from results.json data.

One list of blocks renders to markdown, to self-contained HTML (`backtests.html`) and, in
part, to the terminal, so the three never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backtests.blocks import Block, band, money, pct, pval, share
from backtests.execution import execution_lines
from backtests.report_sweep import sweep_blocks
from backtests.results import cohort_label, scope_label
from backtests.volatility import volatility_table
from signals.kinds import KINDS, kind_info


def rows_for(results: dict[str, Any], *, severity: bool = False,
             cohort: str | None = "first") -> list[dict[str, Any]]:
    """Summary rows to show: per scope, plus the pooled row when several scopes counted;
    of one cohort (first alerts unless asked), or of all when `cohort` is None."""
    several = len(results.get("scopes_with_episodes", [])) > 1
    return [r for r in results["summary"]
            if (r["severity"] is not None) == severity and (r["scope"] != "all" or several)
            and cohort in (None, r.get("cohort", "first"))]


def headline_row(results: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The row a headline quotes: pooled if several scopes counted, else the one scope."""
    h = results["config"]["main_horizon"]
    rows = [r for r in rows_for(results) if r["kind"] == kind and r["horizon"] == h]
    pooled = [r for r in rows if r["scope"] == "all"]
    return (pooled or rows)[0] if rows else None


def null_name(row: dict[str, Any]) -> str:
    method = (row.get("placebo") or {}).get("method", "uniform")
    return "matched random times" if method == "matched" else "random entry times"


def judged(p: float | None, q: float | None) -> str:
    """How a p-value reads once the many tests of a run are counted (q: BH-adjusted)."""
    if p is None:
        return "no random-time baseline"
    qtext = "" if q is None else f", q = {pval(q)}"
    if p < 0.05 and q is not None and q < 0.05:
        return f"differs (p = {pval(p)}{qtext})"
    if p < 0.05:
        return f"p = {pval(p)} looks small, but{qtext[1:]} after the run's many tests: no edge"
    return f"no edge (p = {pval(p)}{qtext})"


def verdict(row: dict[str, Any]) -> str:
    p = row.get("placebo") or {}
    ps = [(p[k], p.get("q" + k[1:])) for k in ("p_mean", "p_hit") if p.get(k) is not None]
    if row["n"] == 0:
        return "nothing to judge"
    if not ps:
        return "no random-time baseline (no prices)"
    low, q = min(ps, key=lambda t: t[0])
    qtext = "" if q is None else f", q = {pval(q)}"
    if low < 0.05 and q is not None and q < 0.05:
        return f"differs from {null_name(row)} (lowest p = {pval(low)}{qtext})"
    if low < 0.05:
        return (f"lowest p = {pval(low)} against {null_name(row)}, but{qtext[1:]} after "
                "correcting for every p-value printed: no edge")
    return f"indistinguishable from {null_name(row)} (lowest p = {pval(low)}{qtext})"


def budget_line(results: dict[str, Any]) -> str | None:
    """Alerts per day per scope: how noisy these parameters would be live."""
    rows = results.get("budget")
    if not rows:
        return None
    parts = [f"{scope_label(r['scope'])} {r['per_day']:.2f} ({r['alerts']} alerts, "
             f"{r['escalations']} escalations)" for r in rows]
    return (f"Alert budget under these parameters, per day over {rows[0]['days']:.0f} days: "
            + "; ".join(parts) + ".")


def primary_lines(results: dict[str, Any]) -> list[str]:
    """The pre-declared hypotheses, one per kind, as sentences (report and terminal)."""
    out = []
    for h in results.get("primary") or []:
        info = kind_info(h["kind"])
        what = (f"{info.plural}: {h['horizon']} continuation return ({info.way}) after first "
                f"alerts ({scope_label(h['scope'] or '*')}), minus the drift known at entry, "
                "vs matched random times")
        if not h["n"]:
            out.append(f"{what}: no episodes with prices.")
            continue
        out.append(f"{what}: {pct(h['estimate'])} [95% block CI {band(h['ci'], pct)}], n = "
                   f"{h['n']} in {h['blocks']} blocks; matched random times {pct(h['placebo'])} "
                   f"[{band(h['placebo_band'], pct)}]: {judged(h['p'], h['q'])}"
                   + ("" if h.get("shift_p") is None else
                      f"; all alerts shifted by whole days ({h['shifts']} shifts, clustering "
                      f"kept): p = {pval(h['shift_p'])}, q = {pval(h.get('shift_q'))}") + ".")
    return out


def headline(results: dict[str, Any], kind: str) -> str:
    """One honest paragraph per kind, quoting the main horizon."""
    row, c = headline_row(results, kind), results["config"]
    info = kind_info(kind)
    title, h, cost = info.plural, c["main_horizon"], c["round_trip_cost"]
    if row is None or row["n"] == 0:
        return f"**{title}**: no independent episodes with prices in this data."
    p = row.get("placebo") or {}
    a = row.get("abnormal") or {}
    abn = "" if not a else (f"; net of the drift known at entry {pct(a['mean'])}, 95% block "
                            f"CI {band(a['mean_ci'], pct)}")
    blocks = f" in {a['blocks']} independent blocks" if a else ""
    text = (f"**{title}** ({scope_label(row['scope'])}, first alerts): {row['n']} "
            f"episodes{blocks}. {h} after entry the median return was {pct(row['median'])} (mean "
            f"{pct(row['mean'])}, 95% CI {band(row['mean_ci'], pct)}{abn}). Price {info.moved} "
            f"after {share(row['hit'])} of them ({null_name(row)}: {share(p.get('hit'))}, 95% "
            f"band {band(p.get('hit_band'))}). Net of {pct(cost, 2, False)} round-trip costs, "
            f"trading the continuation averaged {pct(row['net_continuation'])} per trade, the "
            f"reversal {pct(row['net_reversal'])}. Verdict at {h}: {verdict(row)}.")
    if row["small_n"]:
        text += f" Small sample (n < {c['small_n']}): treat as anecdote."
    return text + _elsewhere(results, row)


def _elsewhere(results: dict[str, Any], row: dict[str, Any]) -> str:
    """Name the other horizon that departs most from random times, with its net after costs."""
    others = [r for r in rows_for(results) if (r["kind"], r["scope"]) == (row["kind"], row["scope"])
              and r["horizon"] != row["horizon"] and (r.get("placebo") or {}).get("p_hit")
              is not None]
    if not others:
        return ""
    best = min(others, key=lambda r: min(r["placebo"]["p_hit"], r["placebo"]["p_mean"] or 1))
    p = min(best["placebo"]["p_hit"], best["placebo"]["p_mean"] or 1)
    if p >= 0.05:
        return " No other horizon departs from random times either (all p ≥ 0.05)."
    q = best["placebo"].get("q_hit" if p == best["placebo"]["p_hit"] else "q_mean")
    if q is not None and q >= 0.05:
        return (f" At {best['horizon']} the hit rate was {share(best['hit'])} against "
                f"{share(best['placebo']['hit'])} at random times (p = {pval(p)}, but q = "
                f"{pval(q)} once every printed p-value is counted: a lead at most).")
    trade = max(("continuation", best["net_continuation"]), ("reversal", best["net_reversal"]),
                key=lambda t: t[1] if t[1] is not None else -1)
    return (f" At {best['horizon']} the hit rate was {share(best['hit'])} against "
            f"{share(best['placebo']['hit'])} at random times (p = {pval(p)}); the better trade "
            f"there, the {trade[0]}, netted {pct(trade[1])} after costs.")


_HOW = (
    "Each alert is what `liqbot run --replay` would have sent over this data: the same "
    "classifiers, parameters and alert policy (strongest window, cooldown, escalation).",
    "Entry is the open of the bar after the signal bar closed (an alert cannot trade "
    "earlier); a return at h runs from that open to the open h later.",
    "Alerts are scored in three cohorts, never mixed: first alerts (one per cooldown "
    "episode; the headline quotes these), escalations (each at its own entry), and episode "
    "peaks (each episode's highest-severity alert: an episode's severity is its peak's). "
    "Alerts whose trailing baseline had too little data (warm-up, gaps) are listed below "
    "but not counted. Episodes at least a cooldown apart can still overlap at long horizons "
    "(24h), so those are not fully independent.",
    "Continuation = price moves the kind's way (up after squeezes, down after cascades); "
    "reversal = the opposite. Hit = share of episodes moving that way.",
    "Abnormal return = return minus the drift known at entry: the mean return at that "
    "horizon over the trailing days of entries whose horizon had already closed.",
    "Matched random times: per draw, one random entry per alert from the same scope and "
    "period, in the alert's trailing-volatility bin and hour-of-day block, and no two entries "
    "of a draw within the cooldown (as first alerts and peaks never are). p is two-sided "
    "(share of draws at least as extreme): p mean compares the abnormal mean, p hit the hit "
    "rate.",
    "CIs are block-bootstrap 95% intervals: alerts within a day of each other are resampled "
    "together, since they share the same market move.",
    "Many rows are tested at once (kinds, cohorts, scopes, horizons, severities): q is the "
    "Benjamini-Hochberg adjusted p over every p-value printed here. Only the primary "
    "hypotheses at the top were declared in advance; read anything else by its q.",
)


def _primary(results: dict[str, Any]) -> list[Block]:
    lines = primary_lines(results)
    if not lines:
        return []
    return [Block("h2", "Primary hypotheses (one per kind, declared before the data)"),
            Block("list", items=tuple(lines))]


def _summary_table(results: dict[str, Any]) -> Block:
    headers = ("Kind", "Cohort", "Scope", "h", "n", "Median", "Mean [95% CI]",
               "Abnormal mean [95% CI]", "t vs drift", "Hit [95% CI]", "Random hit [band]",
               "p mean", "q", "p hit", "q", "Net cont.", "Net rev.", "")
    rows = []
    for r in rows_for(results, cohort=None):
        p, a = r.get("placebo") or {}, r.get("abnormal") or {}
        t = a.get("t_stat")
        rows.append((kind_info(r["kind"]).plural, cohort_label(r.get("cohort", "first")),
                     scope_label(r["scope"]), r["horizon"],
                     str(r["n"]), pct(r["median"]), f"{pct(r['mean'])} [{band(r['mean_ci'], pct)}]",
                     f"{pct(a.get('mean'))} [{band(a.get('mean_ci'), pct)}]",
                     "—" if t is None else f"{t:.2f}",
                     f"{share(r['hit'])} [{band(r['hit_ci'])}]",
                     f"{share(p.get('hit'))} [{band(p.get('hit_band'))}]",
                     pval(p.get("p_mean")), pval(p.get("q_mean")), pval(p.get("p_hit")),
                     pval(p.get("q_hit")), pct(r["net_continuation"]), pct(r["net_reversal"]),
                     "small n" if r["small_n"] else ""))
    return Block("table", headers=headers, rows=tuple(rows))


def _severity_table(results: dict[str, Any]) -> Block:
    h = results["config"]["main_horizon"]
    headers = ("Kind", "Cohort", "Scope", "Severity", "n", f"Median {h}", "Hit [95% CI]",
               "Random hit", "p hit", "q", "")
    rows = [(kind_info(r["kind"]).plural, cohort_label(r.get("cohort", "first")),
             scope_label(r["scope"]),
             {1: "notable", 2: "large", 3: "extreme"}[r["severity"]], str(r["n"]),
             pct(r["median"]), f"{share(r['hit'])} [{band(r['hit_ci'])}]",
             share((r.get("placebo") or {}).get("hit")),
             pval((r.get("placebo") or {}).get("p_hit")),
             pval((r.get("placebo") or {}).get("q_hit")), "small n" if r["small_n"] else "")
            for r in rows_for(results, severity=True, cohort=None) if r["horizon"] == h]
    return Block("table", headers=headers, rows=tuple(rows))


def _drift_table(results: dict[str, Any]) -> Block:
    rows = [(scope_label(scope), h, str(d["n"]), pct(d["mean"], 3), pct(d["median"], 3),
             share(d["up"]))
            for scope, per_h in results["baseline"]["drift"].items() for h, d in per_h.items()]
    return Block("table", headers=("Scope", "h", "n", "Mean", "Median", "Up"), rows=tuple(rows))


def _signal_rows(results: dict[str, Any]) -> Block:
    c = results["config"]
    hs, h = c["horizons"], c["main_horizon"]
    headers = ("Signal bar (UTC)", "Kind", "Scope", "Window", "Severity", "Size", "Share",
               "× base", "Entry", *hs, f"MFE/MAE {h}", "Counted")
    rows = []
    for s in results["signals"]:
        cohorts = s.get("cohorts", ["first"] if s["counted"] else [])
        note = (", ".join(cohorts) if cohorts else "escalation" if s["escalation"]
                else "warm-up" if s["warmup"] else "no price" if s["entry_price"] is None
                else "outside period")
        entry = "—" if s["entry_price"] is None else f"{s['entry_price']:.6g}"
        rows.append((s["time"].replace("T", " ").rstrip("Z"), kind_info(s["kind"]).name,
                     scope_label(s["symbol"]), s["window"], s["severity_name"], money(s["usd"]),
                     share(s["share"]), "—" if s["ratio"] is None else f"{s['ratio']:.1f}",
                     entry, *(pct(s["returns"][x]) for x in hs),
                     f"{pct(s['favourable'][h])} / {pct(s['adverse'][h])}", note))
    return Block("table", headers=headers, rows=tuple(rows))


def _files(paths: list[str]) -> str:
    """`folder/`: a, b, c — full paths are long and say little more."""
    folders = sorted({p.rsplit("/", 2)[-2] if p.count("/") else "." for p in paths})
    names = ", ".join(p.rsplit("/", 1)[-1] for p in paths)
    return f"{', '.join(f + '/' for f in folders)} {names}"


def _settings(results: dict[str, Any]) -> Block:
    c, d = results["config"], results["data"]
    p = c["params"]
    items: tuple[str, ...] = (
        f"Data: {_files(d['files'])}; {d['bar']} bars, {d['start']} → {d['end']}, "
        f"{d['evaluations']} evaluations; scopes {', '.join(map(scope_label, d['scopes']))}.",
        "Prices: " + "; ".join(f"{scope_label(k)} from {v}" for k, v in d["prices"].items()),
        f"Signals: windows {', '.join(p['windows'])}; min share {p['min_share']}; tiers "
        f"{', '.join(money(t) for t in p['tiers_usd_1h'])} per 1h (sqrt-scaled); ratio tiers "
        f"{', '.join(f'{t:g}×' for t in p['tiers_ratio'])} over a {p['baseline_hours']}h "
        f"baseline; cooldown {c['cooldown_h']:g}h.",
        f"Costs: {c['fees_bps']:g} bps fees + {c['slippage_bps']:g} bps slippage per side = "
        f"{pct(c['round_trip_cost'], 2, False)} per round trip. Random-time draws: "
        f"{c['placebo_draws']} (seed {c['seed']}). Small sample: n < {c['small_n']}.",
    )
    n = c.get("null")
    if n:
        items += (f"Null: drift benchmark over the trailing {n['drift_days']:g} days; placebo "
                  f"matched on {n['vol_hours']:g}h volatility ({n['vol_bins']} quantile bins) and "
                  f"hour of day ({n['hour_bins']} blocks; strata under {n['min_stratum']} "
                  f"entries take every hour), draws spaced {n['spacing_h']:g}h like the "
                  f"alerts; block bootstrap ({n['bootstrap_draws']} draws) with "
                  f"{n['block_hours']:g}h blocks.",)
    fdr = results.get("fdr")
    if fdr:
        items += (f"Multiple tests: {fdr['method']} q over m = {fdr['m']} p-values ("
                  f"{fdr['family']}).",)
    items += tuple(f"Period: {x}." for x in results["data"].get("periods", []))
    items += tuple(x for x in (budget_line(results),) if x)
    return Block("list", items=items)


def _execution(results: dict[str, Any]) -> list[Block]:
    lines = execution_lines(results, {k.value: i.plural for k, i in KINDS.items()})
    if not lines:
        return []
    return [Block("h2", "Executed trades: late entry, funding, slippage, one at a time"),
            Block("p", lines[0]), Block("list", items=tuple(lines[1:]))]


def _volatility(results: dict[str, Any]) -> list[Block]:
    headers, rows = volatility_table(results, {k.value: i.plural for k, i in KINDS.items()})
    if not rows:
        return []
    return [Block("h2", "Size of the next move against matched random times"),
            Block("p", "Mean absolute return, realised range (max high − min low over the "
                  "hold, over entry) and excursions in the continuation direction; × is the "
                  "alerts' mean over the matched random times' (same volatility bin, hour "
                  "block and spacing). p and q as above (the q-values share the report's "
                  "family)."),
            Block("table", headers=headers, rows=tuple(rows))]


def build_blocks(results: dict[str, Any], charts: dict[str, str]) -> list[Block]:
    """The whole report; `charts` maps file name -> caption (images already written)."""
    h = results["config"]["main_horizon"]
    blocks = [Block("h1", "liqbot backtest: what happened after each alert"),
              *_primary(results),
              Block("h2", "Headline"),
              *(Block("p", headline(results, k)) for k in KINDS),
              Block("h2", "Data and settings"), _settings(results),
              Block("h2", "How to read this"), Block("list", items=_HOW),
              Block("h2", "Results by kind, cohort, scope and horizon"),
              _summary_table(results),
              *_execution(results), *_volatility(results),
              Block("h2", f"Hit rate by severity ({h}; a peak's severity is its episode's)"),
              _severity_table(results),
              Block("h2", "Baseline: unconditional drift (every eligible hour)"),
              _drift_table(results), Block("h2", "Charts")]
    blocks += [Block("img", text=name, items=(caption,)) for name, caption in charts.items()]
    blocks += sweep_blocks(results)
    blocks += [Block("h2", f"Every alert ({len(results['signals'])})"), _signal_rows(results),
               Block("h2", "Notes"), Block("list", items=tuple(results["notes"]))]
    return blocks


def render_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            out.append(("# " if b.kind == "h1" else "## ") + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "list":
            out.append("\n".join(f"- {i}" for i in b.items))
        elif b.kind == "img":
            out.append(f"![{b.items[0]}]({b.text})")
        elif b.kind == "table":
            lines = ["| " + " | ".join(b.headers) + " |", "|" + "---|" * len(b.headers)]
            lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in b.rows]
            out.append("\n".join(lines) if b.rows else "_(none)_")
    return "\n\n".join(out) + "\n"
