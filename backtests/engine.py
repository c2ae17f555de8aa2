"""The fast path: every evaluation of a data set classified at once, then the alert policy.

Equivalent, alert for alert and float for float, to running `backtests.reference` (the
live bot's per-tick path) over the same Bars; tests prove it. A sweep runs this once per
configuration and reuses the window arrays between configurations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backtests.bars import Bars
from backtests.windows import WindowArrays, WindowCache, coins_in_top, market_included
from feeds.model import HOUR_MS
from feeds.store import parse_window
from signals import SignalKind, SignalParams
from signals.episodes import DEFAULT_COOLDOWN_MS
from signals.stats import evaluated_windows
from signals.vectorized import classify_arrays


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert the policy sent: what the console prints, plus the numbers behind it."""

    kind: str
    scope: str
    window_ms: int
    start_ms: int
    end_ms: int  # the evaluation time: the window's end
    severity: int
    long_usd: float
    short_usd: float
    share: float
    ratio: float | None
    baseline_usd: float | None
    price_change: float | None
    funding_8h: float | None
    escalation: bool
    episode_ms: int
    coverage: float | None = None  # share of the baseline lookback holding data

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    @property
    def key(self) -> tuple[str, str, int, int, int]:
        """What the parity tests compare: (kind, scope, window, start, severity)."""
        return self.kind, self.scope, self.window_ms, self.start_ms, self.severity


def live_windows(params: SignalParams, bar_ms: int) -> list[int]:
    """Configured windows the live path evaluates: whole multiples of the data's bar."""
    return evaluated_windows([parse_window(name) for name in params.windows], bar_ms)


@dataclass
class _Best:
    """Per kind, [scope, tick]: the strongest window so far (rank = severity, scaled size)."""

    severity: npt.NDArray[np.int8]
    size: npt.NDArray[np.float64]
    window: npt.NDArray[np.int64]


def _included(arrays: WindowArrays, params: SignalParams) -> npt.NDArray[np.bool_]:
    """[scope, tick]: which WindowStats signals.stats.build_stats would have built."""
    coins = coins_in_top(arrays, params.max_coins)
    if not params.per_coin:
        coins = np.zeros_like(coins)
    return np.vstack([market_included(arrays)[None, :], coins])


def _strongest(
    cache: WindowCache, windows: list[int], params: SignalParams, kind: SignalKind
) -> tuple[_Best, dict[int, tuple[np.ndarray, np.ndarray]]]:
    bars = cache.bars
    shape = (len(bars.scopes), bars.ticks.size)
    best = _Best(np.zeros(shape, np.int8), np.zeros(shape), np.full(shape, -1, np.int64))
    extra: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    lookback = params.baseline_hours * HOUR_MS
    for wi, w in enumerate(windows):
        a = cache.window(w)
        base = cache.baseline(w, lookback)
        c = classify_arrays(kind, a.long_usd, a.short_usd, base, a.price_change, a.funding_8h,
                            w, params, cache.coverage(w, lookback))
        sev = np.where(_included(a, params), c.severity, 0)
        size = (a.long_usd + a.short_usd) / params.scale(w)
        # Strictly better only: on a tie the earlier window keeps it, as in strongest().
        stronger = (sev > best.severity) | ((sev == best.severity) & (size > best.size))
        better = (sev > 0) & stronger
        best.severity[better], best.size[better] = sev[better], size[better]
        best.window[better] = wi
        extra[wi] = (c.share, c.ratio)
    return best, extra


def _opt(x: float) -> float | None:
    return None if x != x else x  # NaN is the arrays' "unknown"


Row = tuple[int, int, int, int, bool, int, int]  # tick, kind, scope, window, escalation,
# episode start, severity


def _walk(sev_row: np.ndarray, win_row: np.ndarray, ticks: list[int], windows: list[int],
          cooldown_ms: int, ki: int, si: int, out: list[Row]) -> None:
    """Append one (kind, scope)'s alerts to `out`, walking its candidates in time order.

    `signals.episodes.step`, inlined: a sweep runs this loop millions of times. The
    reference path calls step() itself, and tests prove the two give the same alerts.
    """
    last_end, last_sev, episode = None, 0, 0
    idx = np.flatnonzero(sev_row)
    for t, sev, wi in zip(idx.tolist(), sev_row[idx].tolist(), win_row[idx].tolist(),
                          strict=True):
        end = ticks[t]
        if last_end is None or end - last_end >= cooldown_ms:
            episode, last_end, last_sev = end - windows[wi], end, sev
            out.append((t, ki, si, wi, False, episode, sev))
        elif sev > last_sev:
            last_end, last_sev = end, sev
            out.append((t, ki, si, wi, True, episode, sev))


# Alerts are listed as the live policy emits them: by time, then kind value, then scope.
KINDS: tuple[SignalKind, ...] = tuple(sorted(SignalKind.__members__.values(),
                                             key=lambda k: k.value))


@dataclass(frozen=True)
class Alerts:
    """The alerts of one run as parallel arrays, in the live order (see KINDS)."""

    tick: npt.NDArray[np.int64]  # index into Bars.ticks
    end_ms: npt.NDArray[np.int64]
    window_ms: npt.NDArray[np.int64]
    window: npt.NDArray[np.int64]  # index into live_windows(...)
    kind: npt.NDArray[np.int64]  # index into KINDS
    scope: npt.NDArray[np.int64]  # index into Bars.scopes
    severity: npt.NDArray[np.int64]
    escalation: npt.NDArray[np.bool_]
    episode_ms: npt.NDArray[np.int64]

    @property
    def start_ms(self) -> npt.NDArray[np.int64]:
        return self.end_ms - self.window_ms

    def keys(self, bars: Bars) -> list[tuple[str, str, int, int, int]]:
        """(kind, scope, window, start, severity) per alert, as AlertRecord.key."""
        return [(KINDS[k].value, bars.scopes[s], w, e - w, sev) for k, s, w, e, sev in zip(
            self.kind.tolist(), self.scope.tolist(), self.window_ms.tolist(),
            self.end_ms.tolist(), self.severity.tolist(), strict=True)]


Extras = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]  # (kind, window) -> share, ratio


def decide_arrays(cache: WindowCache, params: SignalParams,
                  cooldown_ms: int = DEFAULT_COOLDOWN_MS) -> tuple[Alerts, Extras]:
    """Every alert over the bars as arrays, plus the classifier's shares and ratios."""
    bars = cache.bars
    windows = live_windows(params, bars.bar_ms)
    ticks = bars.ticks.tolist()
    rows: list[Row] = []
    extras: Extras = {}
    for ki, kind in enumerate(KINDS):
        best, extra = _strongest(cache, windows, params, kind)
        extras.update({(ki, wi): v for wi, v in extra.items()})
        for si in range(len(bars.scopes)):
            _walk(best.severity[si], best.window[si], ticks, windows, cooldown_ms, ki, si, rows)
    cols = np.array(rows, dtype=np.int64).reshape(len(rows), 7).T
    order = np.lexsort((cols[2], cols[1], cols[0]))
    tick, kinds, scope, win, esc, episode, sev = (c[order] for c in cols)
    win_ms = np.array(windows, dtype=np.int64)[win]
    return Alerts(tick, bars.ticks[tick], win_ms, win, kinds, scope, sev, esc.astype(bool),
                  episode), extras


def run_vectorized(
    cache: WindowCache, params: SignalParams, cooldown_ms: int = DEFAULT_COOLDOWN_MS
) -> list[AlertRecord]:
    """Return the alerts the live bot would send over these bars, in time order."""
    bars = cache.bars
    alerts, extras = decide_arrays(cache, params, cooldown_ms)
    lookback = params.baseline_hours * HOUR_MS
    n = alerts.tick.size
    cols = {k: np.full(n, np.nan)
            for k in ("long", "short", "share", "ratio", "base", "pc", "fd", "cov")}
    for w in np.unique(alerts.window_ms).tolist():
        a, base = cache.window(w), cache.baseline(w, lookback)
        m = alerts.window_ms == w
        for key, arr in (("long", a.long_usd), ("short", a.short_usd), ("base", base),
                         ("pc", a.price_change), ("fd", a.funding_8h),
                         ("cov", cache.coverage(w, lookback))):
            cols[key][m] = arr[alerts.scope[m], alerts.tick[m]]
    for (ki, wi), (share, ratio) in extras.items():
        m = (alerts.kind == ki) & (alerts.window == wi)
        cols["share"][m] = share[alerts.scope[m], alerts.tick[m]]
        cols["ratio"][m] = ratio[alerts.scope[m], alerts.tick[m]]
    kinds = [k.value for k in KINDS]
    return [AlertRecord(kinds[k], bars.scopes[s], w, e - w, e, sev, lo, sh, sr, _opt(rt),
                        _opt(bs), _opt(pc), _opt(fd), esc, ep, cv)
            for k, s, w, e, sev, lo, sh, sr, rt, bs, pc, fd, esc, ep, cv in zip(
                alerts.kind.tolist(), alerts.scope.tolist(), alerts.window_ms.tolist(),
                alerts.end_ms.tolist(), alerts.severity.tolist(), cols["long"].tolist(),
                cols["short"].tolist(), cols["share"].tolist(), cols["ratio"].tolist(),
                cols["base"].tolist(), cols["pc"].tolist(), cols["fd"].tolist(),
                alerts.escalation.tolist(), alerts.episode_ms.tolist(), cols["cov"].tolist(),
                strict=True)]
