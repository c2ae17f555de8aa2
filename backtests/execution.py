"""The implied trade as an account could have run it: late, with funding, slippage, one at a time.

The event study asks what price did after an alert; this asks what trading it would have
left. Per kind, first alerts in time order (all scopes pooled: one account), a trade that
would open before the previous one closed is skipped. Each trade:

- opens `latency_s` after the alert's window closes, at the open of the first price bar
  starting then, when the prices come in 1m or 5m bars; coarser bars open at the window's
  close, so entry there is the next bar's open, as in the event study (zero latency; the
  report says so);
- is charged funding for its hold from the funding the data carries (the rate last known
  at each hour of the hold, averaged over venues, accrued per hour as rate_8h / 8: longs
  pay a positive rate, shorts receive it);
- pays fees and slippage per side, plus on entry an impact of `impact_bps` per $10M
  liquidated in the alert's window (capped at `impact_cap_bps`): entering inside a cascade
  costs more the bigger it is;
- is scored after all of that: hit rate (net > 0), mean, and equity compounded trade after
  trade.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from backtests.bars import Bars, PriceSeries
from backtests.blocks import pct, share
from backtests.outcomes import DIRECTION, bars_for
from feeds.model import HOUR_MS, MINUTE_MS

if TYPE_CHECKING:
    from backtests.study import SignalOutcome, StudyConfig

FINE_MS = 5 * MINUTE_MS  # prices this fine or finer honour the latency
IMPACT_UNIT_USD = 10e6


def entry_index(prices: PriceSeries, decided_ms: int, latency_ms: int) -> tuple[int, bool]:
    """(bar index of the entry, whether the latency was honoured)."""
    fine = prices.span_ms <= FINE_MS
    delay = latency_ms if fine else 0
    k = prices.index_at_or_after(np.array([decided_ms + delay], dtype=np.int64))
    return int(k[0]), fine


def funding_cost(bars: Bars, coin: str, start_ms: int, end_ms: int) -> float | None:
    """Funding a long pays over [start, end) as a fraction of notional (None: no data)."""
    series = [s for s in bars.funding.get(coin, ()) if s.ts.size]
    if not series:
        return None
    hours = np.arange(start_ms, end_ms, HOUR_MS, dtype=np.int64)
    rates = []
    for s in series:
        i = np.searchsorted(s.ts, hours, side="right") - 1  # last rate known at that hour
        rates.append(np.where(i >= 0, s.rate_8h[np.clip(i, 0, None)], np.nan))
    per_hour = np.nanmean(np.vstack(rates), axis=0) if rates else np.empty(0)
    per_hour = np.where(np.isfinite(per_hour), per_hour, 0.0)
    return float(per_hour.sum() / 8.0)


def impact(total_usd: float, config: StudyConfig) -> float:
    """Extra entry slippage, as a fraction, for a window of `total_usd` liquidated."""
    bps = min(config.impact_cap_bps, config.impact_bps * total_usd / IMPACT_UNIT_USD)
    return bps / 10_000


def settings(config: StudyConfig) -> dict[str, float]:
    return {"latency_s": config.latency_s, "fees_bps": config.fees_bps,
            "slippage_bps": config.slippage_bps, "impact_bps_per_10m": config.impact_bps,
            "impact_cap_bps": config.impact_cap_bps}


def _score(nets: Sequence[float]) -> dict[str, float | int | None]:
    a = np.array(nets, dtype=float)
    if not a.size:
        return {"hit": None, "mean": None, "equity": None, "max_drawdown": None}
    curve = np.cumprod(1 + a)
    peak = np.maximum.accumulate(np.concatenate([[1.0], curve]))[1:]
    return {"hit": float((a > 0).mean()), "mean": float(a.mean()),
            "equity": float(curve[-1] - 1), "max_drawdown": float((curve / peak - 1).min())}


def execute(signals: Sequence[SignalOutcome], bars: Bars, config: StudyConfig
            ) -> dict[str, Any]:
    """Per kind: the non-overlapping trades of its first alerts, after every cost."""
    latency = int(config.latency_s * 1000)
    horizon = next(h for h in config.horizons if h.name == config.main_horizon)
    kinds: dict[str, Any] = {}
    honoured: set[bool] = set()
    for kind in sorted({s.record.kind for s in signals if s.counted}):
        chosen = sorted((s for s in signals if s.counted and s.record.kind == kind),
                        key=lambda s: s.record.end_ms)
        busy_until, cont, rev, costs, fund = -1, [], [], [], []
        skipped = 0
        for s in chosen:
            prices = bars.prices.get(s.record.scope)
            if prices is None:
                continue
            k, fine = entry_index(prices, s.record.end_ms, latency)
            n = bars_for(horizon, prices)
            if k < 0 or k + n >= prices.open.size:
                continue
            entry, exit_ = float(prices.open[k]), float(prices.open[k + n])
            if not (entry > 0 and exit_ > 0):
                continue
            start = prices.origin_ms + k * prices.span_ms
            if start < busy_until:
                skipped += 1
                continue
            honoured.add(fine)
            busy_until = start + horizon.ms
            d = DIRECTION[kind]
            ret = exit_ / entry - 1
            f = funding_cost(bars, prices.coin, start, busy_until) or 0.0
            cost = config.cost + impact(s.record.total_usd, config)
            cont.append(d * ret - d * f - cost)
            rev.append(-d * ret + d * f - cost)
            costs.append(cost)
            fund.append(d * f)
        kinds[kind] = {"trades": len(cont), "skipped_overlapping": skipped,
                       "mean_cost": float(np.mean(costs)) if costs else None,
                       "mean_funding_paid_continuation": float(np.mean(fund)) if fund else None,
                       "continuation": _score(cont), "reversal": _score(rev)}
    how = ("latency honoured on 1m/5m prices" if honoured == {True} else
             "next bar's open (prices coarser than 5m: zero latency assumed)"
             if honoured == {False} else "mixed" if honoured else "no trades")
    return {"settings": settings(config), "horizon": horizon.name, "entry": how,
            "funding": "charged" if any(bars.funding.values()) else "no funding in the data",
            "kinds": kinds}


def execution_lines(results: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """One line per kind for the report and the terminal."""
    ex = results.get("execution")
    if not ex:
        return []
    s = ex["settings"]
    out = [f"Executed trades ({ex['horizon']} holds, first alerts, one at a time): entry "
           f"{s['latency_s']:g}s after the window closes -> {ex['entry']}; funding "
           f"{ex['funding']}; {s['fees_bps']:g} bps fees + {s['slippage_bps']:g} bps slippage "
           f"per side + {s['impact_bps_per_10m']:g} bps per $10M liquidated on entry (cap "
           f"{s['impact_cap_bps']:g} bps)."]
    for kind, k in ex["kinds"].items():
        c, r = k["continuation"], k["reversal"]
        out.append(f"{labels.get(kind, kind)}: {k['trades']} trades ({k['skipped_overlapping']} "
                   f"skipped, overlapping), mean cost {pct(k['mean_cost'], 2, False)}; "
                   f"continuation hit {share(c['hit'])}, mean {pct(c['mean'])}, equity "
                   f"{pct(c['equity'], 1)}; reversal hit {share(r['hit'])}, mean "
                   f"{pct(r['mean'])}, equity {pct(r['equity'], 1)} (after costs, compounded).")
    return out
