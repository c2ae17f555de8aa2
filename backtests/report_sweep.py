"""The walk-forward section of the report: tuning and test periods side by side, never mixed."""

from __future__ import annotations

from typing import Any

from backtests.blocks import Block, pct, pval, share
from backtests.results import scope_label
from signals.kinds import kind_info


def _score(s: dict[str, Any] | None) -> str:
    if not s or not s["n"]:
        return "no episodes"
    return f"net {pct(s['net_mean'])} per trade, hit {share(s['hit'])}, n={s['n']}"


def _fold_text(i: int, f: dict[str, Any], min_n: int) -> str:
    head = (f"Fold {i + 1}: tuned on {f['tune'][0]} → {f['tune'][1]}, tested on "
            f"{f['test'][0]} → {f['test'][1]}.")
    if f["choice"] is None:
        return (f"{head} No configuration had {min_n} or more episodes in the tuning period, "
                f"so nothing was chosen. Defaults in the test period: {_score(f['default_test'])}.")
    text = (f"{head} Chosen on the tuning period alone: `{f['choice']}`, trading the "
            f"{f['hypothesis']}. Tuning period: {_score(f['tune_score'])}. Test period: "
            f"{_score(f['test_score'])}. The default parameters, trading the same way, in the "
            f"test period: {_score(f['default_test'])}.")
    tuned, tested = (f["tune_score"] or {}).get("net_mean"), (f["test_score"] or {}).get(
        "net_mean")
    if tuned is not None and tuned <= 0:
        text += " Even the best configuration lost money after costs in the tuning period."
    elif tuned is not None and tested is not None and tested < tuned:
        text += (f" Out of sample the edge shrank from {pct(tuned)} to {pct(tested)} per trade"
                 + (", below zero after costs." if tested <= 0 else "."))
    return text


def _ranking(f: dict[str, Any]) -> Block:
    rows = tuple((r["config"], r["hypothesis"], str(r["n"]), pct(r["net_mean"]), share(r["hit"]))
                 for r in f["ranking"])
    return Block("table", headers=("Configuration (tuning period)", "Trade", "n", "Net mean",
                                   "Hit"), rows=rows)


def _test_table(rows: list[dict[str, Any]]) -> Block:
    out = []
    for r in rows:
        p = r.get("placebo") or {}
        out.append((kind_info(r["kind"]).plural, scope_label(r["scope"]), r["horizon"], str(r["n"]),
                    pct(r["median"]), share(r["hit"]), share(p.get("hit")),
                    pval(p.get("p_mean")), pval(p.get("p_hit")),
                    "small n" if r["small_n"] else ""))
    return Block("table", headers=("Kind", "Scope", "h", "n", "Median", "Hit", "Random hit",
                                   "p mean", "p hit", ""), rows=tuple(out))


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:+.{digits}f}"


def _family_rows(fams: list[dict[str, Any]]) -> Block:
    rows = []
    for f in fams:
        rho = " ".join(_num(g["spearman"]) for g in f["folds"]) or "–"
        rows.append((kind_info(f["kind"]).plural, f"{f['hypothesis']} ({f['trade']})", rho,
                     _num(f["mean_spearman"]), str(f["oos_n"]),
                     "–" if f["oos_net_mean"] is None else pct(f["oos_net_mean"]),
                     "–" if f["pbo"] is None else f"{f['pbo']:.2f}", f["verdict"]))
    return Block("table", headers=("Kind", "Trade", "IS/OOS Spearman per fold", "Mean",
                                   "OOS n", "OOS net", "PBO", "Verdict"), rows=tuple(rows))


def snooping_blocks(sw: dict[str, Any]) -> list[Block]:
    """Per kind and direction: rank agreement and PBO; absent from older results files."""
    sn = sw.get("snooping")
    if not sn:
        return []
    fams = sn["families"]
    edge = [f for f in fams if f["verdict"] != "no edge"]
    verdict = ("No edge: for every kind and direction the tuned choice fails out of sample, "
               "its in-sample ranking does not carry over, or PBO is 0.5 or more."
               if not edge else
               "Not ruled out for " + ", ".join(
                   f"{kind_info(f['kind']).plural} traded {f['hypothesis']}" for f in edge)
               + " (positive out-of-sample net, PBO under 0.5, positive rank agreement); "
               "treat as a lead to check on a hold-out, not as an edge.")
    return [Block("h2", "Data snooping: tuned per kind and direction"),
            Block("p", "Each kind is tuned separately for each trade direction (continuation "
                  "and reversal), on each fold's tuning period alone, and read on the next. "
                  "Spearman compares every configuration's in-sample and out-of-sample net "
                  "mean rank (near 0 or below: tuning picks noise). PBO, the probability of "
                  "backtest overfitting (combinatorially symmetric cross-validation over "
                  f"{len(sn['blocks'])} equal blocks, all half/half splits), is the share of "
                  "splits where the in-sample winner ranks at or below the out-of-sample "
                  "median."),
            _family_rows(fams), Block("p", verdict)]


def sweep_blocks(results: dict[str, Any]) -> list[Block]:
    sw = results.get("sweep")
    if not sw:
        return []
    c = results["config"]
    blocks = [Block("h2", "Walk-forward parameter sweep"),
              Block("p", f"{sw['configurations']} configurations, each run over the whole "
                    "history with the live alert policy, then scored per period at "
                    f"{c['main_horizon']} after {pct(c['round_trip_cost'], 2, False)} costs. A "
                    "period counts an episode only if its entry and its horizon both fall "
                    "inside it. The choice (configuration and trade direction) needs at least "
                    f"{c['small_n']} episodes and is made on the tuning period alone.")]
    for i, f in enumerate(sw["folds"]):
        blocks += [Block("p", _fold_text(i, f, c["small_n"])), _ranking(f)]
        tests = sw.get("test_summary") or []
        if f["choice"] is not None and i < len(tests) and tests[i] is not None:
            blocks += [Block("p", "The chosen configuration in the test period, against random "
                             "entry times from that period only:"), _test_table(tests[i])]
    return blocks + snooping_blocks(sw)
