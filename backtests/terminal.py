"""The summary table `liqbot backtest` prints: one line per kind, cohort and scope, main horizon."""

from __future__ import annotations

from typing import Any

from backtests.blocks import pct, pval, share
from backtests.execution import execution_lines
from backtests.report import budget_line, headline_row, primary_lines, rows_for, verdict
from backtests.results import cohort_label, scope_label
from signals.kinds import KINDS, kind_info


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                     for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()


def render_table(results: dict[str, Any]) -> str:
    """Plain text: n, median, hit vs random times, p-values and net trade returns."""
    c = results["config"]
    h = c["main_horizon"]
    headers = ["Kind", "Cohort", "Scope", "n", f"Median {h}", "Abn. mean", "Hit", "Random hit",
               "p hit", "q", "p mean", "q", "Net cont.", "Net rev.", ""]
    rows = []
    for r in rows_for(results, cohort=None):
        if r["horizon"] != h:
            continue
        p = r.get("placebo") or {}
        rows.append([kind_info(r["kind"]).plural, cohort_label(r.get("cohort", "first")),
                     scope_label(r["scope"]), str(r["n"]),
                     pct(r["median"]), pct((r.get("abnormal") or {}).get("mean")),
                     share(r["hit"]), share(p.get("hit")), pval(p.get("p_hit")),
                     pval(p.get("q_hit")), pval(p.get("p_mean")), pval(p.get("q_mean")),
                     pct(r["net_continuation"]),
                     pct(r["net_reversal"]), "small n" if r["small_n"] else ""])
    widths = [max(len(x[i]) for x in [headers, *rows]) for i in range(len(headers))]
    data = results["data"]
    lines = [f"Backtest {data['start']} → {data['end']} ({data['bar']} bars): "
             f"{len(results['signals'])} alerts, "
             f"{sum(s['counted'] for s in results['signals'])} counted episodes (first "
             f"alerts); entry at the next bar's open; net after "
             f"{pct(c['round_trip_cost'], 2, False)} round trip."]
    lines += [f"Period: {x}." for x in data.get("periods", [])[1:]]
    lines += [x for x in (budget_line(results),) if x]
    primary = primary_lines(results)
    if primary:
        lines += ["Primary hypotheses (declared before the data):", *(f"  {x}" for x in primary)]
    lines += [_line(headers, widths), _line(["-" * w for w in widths], widths)]
    lines += [_line(r, widths) for r in rows] or ["(no episodes)"]
    for kind, info in KINDS.items():
        row = headline_row(results, kind)
        if row is not None and row["n"]:
            lines.append(f"{info.plural} (first alerts): {verdict(row)}.")
    lines += execution_lines(results, {k.value: i.plural for k, i in KINDS.items()})
    return "\n".join(lines)
